#![no_main]
//! logrus text (and TTY) parser on arbitrary bytes, then through the dispatcher.

use libfuzzer_sys::fuzz_target;
use veloki::parse::{logrus, parse_into, Hint, Record};

fuzz_target!(|data: &[u8]| {
    let mut rec = Record::new();
    let ok = logrus::parse(data, &mut rec);
    veloki_fuzz::check(data, &rec, ok);
    // Also as a line that the dispatcher sends to logrus.
    let mut line = b"time=\"2025-01-01T00:00:00Z\" level=info ".to_vec();
    line.extend_from_slice(data);
    parse_into(&line, Hint::Velero, &mut rec);
    veloki_fuzz::check(&line, &rec, true);
});
