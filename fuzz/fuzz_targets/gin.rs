#![no_main]
//! Gin access, debug and error-continuation parsers on arbitrary bytes, with and without the
//! `[GIN] ` prefix so the fuzzer reaches the cells quickly.

use libfuzzer_sys::fuzz_target;
use veloki::parse::{combinators, gin, Record};

fuzz_target!(|data: &[u8]| {
    let mut rec = Record::new();
    for parser in [gin::parse_access, gin::parse_debug, gin::parse_error_line] {
        rec.clear();
        let ok = parser(data, &mut rec);
        veloki_fuzz::check(data, &rec, ok);
    }
    let mut line = b"[GIN] 2025/09/13 - 10:15:30 |".to_vec();
    line.extend_from_slice(data);
    rec.clear();
    let ok = gin::parse_access(&line, &mut rec);
    veloki_fuzz::check(&line, &rec, ok);
    let _ = combinators::parse_go_duration(data);
});
