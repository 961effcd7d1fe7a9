#![no_main]
//! Velero CLI, Go log, klog, zap and panic-dump parsers on arbitrary bytes.

use libfuzzer_sys::fuzz_target;
use veloki::parse::{cli, other, Record};

fuzz_target!(|data: &[u8]| {
    let mut rec = Record::new();
    for parser in [
        cli::parse,
        other::parse_go_log,
        other::parse_klog,
        other::parse_zap,
        other::parse_go_panic,
    ] {
        rec.clear();
        let ok = parser(data, &mut rec);
        veloki_fuzz::check(data, &rec, ok);
    }
});
