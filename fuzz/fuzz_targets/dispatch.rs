#![no_main]
//! The top-level `parse_into` under every hint: never panics, spans stay inside the line,
//! a `Plain` record always has a reason. The same `Record` is reused, as in production.

use libfuzzer_sys::fuzz_target;
use veloki::parse::{parse_into, Hint, Record};

fuzz_target!(|data: &[u8]| {
    let mut rec = Record::new();
    for hint in [
        Hint::Auto,
        Hint::Velero,
        Hint::Gin,
        Hint::VeleroCli,
        Hint::None,
    ] {
        parse_into(data, hint, &mut rec);
        veloki_fuzz::check(data, &rec, true);
    }
});
