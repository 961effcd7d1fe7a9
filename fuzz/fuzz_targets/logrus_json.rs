#![no_main]
//! logrus JSON parser on arbitrary bytes (and the JSON-object unescaping of its values).

use libfuzzer_sys::fuzz_target;
use veloki::parse::{combinators, logrus_json, Record, ValueKind};

fuzz_target!(|data: &[u8]| {
    let mut rec = Record::new();
    let ok = logrus_json::parse(data, &mut rec);
    veloki_fuzz::check(data, &rec, ok);
    for kind in [
        ValueKind::Bare,
        ValueKind::GoQuoted,
        ValueKind::JsonString,
        ValueKind::JsonRaw,
    ] {
        let _ = combinators::unescape(data, kind);
    }
});
