//! # veloki
//!
//! A log-pipeline component for Kubernetes clusters that run Velero: it tails the pod logs of the
//! `velero` and `velero-manager` namespaces on one node, parses Velero's logrus lines and Gin access
//! lines, labels them with bounded values, pushes them to Loki and derives Prometheus metrics
//! (which backup failed, when, and why).
//!
//! ## Layout
//!
//! The modules follow the data flow; each stage's `mod.rs` says what goes in, what comes out and
//! what it guarantees.
//!
//! ```text
//! discover ─► tail ─► decode ─► parse ─► enrich ─┬─► metrics (derived counters, /metrics)
//!  pods dir   files,   CRI /     nom:     labels,  │
//!  namespace  offsets  docker,   logrus,  metadata,└─► batch ─► push ─► ack ─► checkpoint
//!  filter              P/F join  gin, …   outcomes     per       protobuf  Loki   positions
//!                                                      stream    +snappy  2xx    (atomic)
//! ```
//!
//! * [`discover`] finds `<ns>_<pod>_<uid>/<container>/N.log` files under the pods directory.
//! * [`tail`] reads them from their saved position in blocks and cuts lines with memchr.
//! * [`decode`] removes the CRI or docker json-file envelope and joins partial lines.
//! * [`parse`] recognises the line's format with nom and never fails.
//! * [`enrich`] turns a parsed line into bounded stream labels, structured metadata and backup
//!   outcomes.
//! * [`batch`] groups entries per stream and remembers which file offsets each batch covers.
//! * [`push`] encodes protobuf + snappy and sends to Loki with retries.
//! * [`checkpoint`] advances a file's position only when Loki accepted every entry before it.
//! * [`metrics`] holds the Prometheus registry and serves `/metrics`, `/healthz`, `/ready`.
//! * [`pipeline`] wires the stages together and owns the shutdown order; [`config`] is the typed
//!   pipeline file; [`cmd_parse`] is `veloki parse`; [`gen`] writes synthetic pod-log trees.

#![deny(missing_docs)]

pub mod batch;
pub mod checkpoint;
pub mod cmd_parse;
pub mod config;
pub mod decode;
pub mod discover;
pub mod enrich;
pub mod gen;
pub mod metrics;
pub mod model;
pub mod parse;
pub mod pipeline;
pub mod push;
pub mod tail;
pub mod timefmt;
