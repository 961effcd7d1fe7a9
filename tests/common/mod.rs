//! Helpers shared by the integration tests and the end-to-end bench.
//!
//! Each test binary compiles this module on its own and uses only part of it,
//! so unused items are expected here.
#![allow(dead_code)]

pub mod loki;
