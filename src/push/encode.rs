//! Encoding: entries → `logproto.PushRequest` protobuf → snappy raw block, without building
//! message structs or a `String` per entry.
//!
//! Each entry is written once, already framed as `StreamAdapter.entries` (field 2), into its
//! stream's buffer; a request is the concatenation of `streams` (field 1) around those buffers.

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

/// Appends a length-delimited field header.
fn put_len_field(out: &mut Vec<u8>, tag: u32, len: usize) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
}

fn len_field_size(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + encoded_len_varint(len as u64) + len
}

fn timestamp_len(ts_ns: i64) -> usize {
    let secs = ts_ns.div_euclid(1_000_000_000);
    let nanos = ts_ns.rem_euclid(1_000_000_000);
    let mut n = 0;
    if secs != 0 {
        n += 1 + encoded_len_varint(secs as u64);
    }
    if nanos != 0 {
        n += 1 + encoded_len_varint(nanos as u64);
    }
    n
}

/// Appends one `EntryAdapter` framed as field 2 of `StreamAdapter`.
pub fn put_entry<'k, 'v>(
    out: &mut Vec<u8>,
    ts_ns: i64,
    line: &[u8],
    metadata: impl Iterator<Item = (&'k str, &'v str)> + Clone,
) {
    let ts_len = timestamp_len(ts_ns);
    let meta_len: usize = metadata
        .clone()
        .map(|(k, v)| len_field_size(3, len_field_size(1, k.len()) + len_field_size(2, v.len())))
        .sum();
    let body = len_field_size(1, ts_len) + len_field_size(2, line.len()) + meta_len;
    put_len_field(out, 2, body);
    put_len_field(out, 1, ts_len);
    let secs = ts_ns.div_euclid(1_000_000_000);
    let nanos = ts_ns.rem_euclid(1_000_000_000);
    if secs != 0 {
        encode_key(1, WireType::Varint, out);
        encode_varint(secs as u64, out);
    }
    if nanos != 0 {
        encode_key(2, WireType::Varint, out);
        encode_varint(nanos as u64, out);
    }
    put_len_field(out, 2, line.len());
    out.extend_from_slice(line);
    for (k, v) in metadata {
        put_len_field(
            out,
            3,
            len_field_size(1, k.len()) + len_field_size(2, v.len()),
        );
        put_len_field(out, 1, k.len());
        out.extend_from_slice(k.as_bytes());
        put_len_field(out, 2, v.len());
        out.extend_from_slice(v.as_bytes());
    }
}

/// Appends one `StreamAdapter` (field 1 of `PushRequest`) whose entries are already framed.
pub fn put_stream<'e>(
    out: &mut Vec<u8>,
    labels: &str,
    entries: impl Iterator<Item = &'e [u8]> + Clone,
) {
    let entries_len: usize = entries.clone().map(<[u8]>::len).sum();
    put_len_field(out, 1, len_field_size(1, labels.len()) + entries_len);
    put_len_field(out, 1, labels.len());
    out.extend_from_slice(labels.as_bytes());
    for e in entries {
        out.extend_from_slice(e);
    }
}

/// Appends `value` Go-escaped for a LogQL label string (`\` → `\\`, `"` → `\"`, newline → `\n`).
pub fn push_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

/// Renders `{a="x", b="y"}` from pairs already sorted by name.
pub fn label_string<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = String::with_capacity(256);
    s.push('{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(k);
        s.push_str("=\"");
        push_label_value(&mut s, v);
        s.push('"');
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::proto::PushRequest;
    use prost::Message;

    #[test]
    fn hand_encoding_decodes_with_prost() {
        let mut e1 = Vec::new();
        put_entry(
            &mut e1,
            1_775_786_400_123_456_789,
            b"line one \xc2\xb5",
            [("backup", "velero/x"), ("stream", "stdout")].into_iter(),
        );
        let mut e2 = Vec::new();
        put_entry(&mut e2, 1_775_786_401_000_000_000, b"", std::iter::empty());
        let mut body = Vec::new();
        let labels = label_string([("a", "x\"y\\z\n"), ("b", "2")].into_iter());
        put_stream(
            &mut body,
            &labels,
            [e1.as_slice(), e2.as_slice()].into_iter(),
        );
        let req = PushRequest::decode(body.as_slice()).unwrap();
        assert_eq!(req.streams.len(), 1);
        let s = &req.streams[0];
        assert_eq!(s.labels, r#"{a="x\"y\\z\n", b="2"}"#);
        assert_eq!(s.entries.len(), 2);
        let t = s.entries[0].timestamp.unwrap();
        assert_eq!((t.seconds, t.nanos), (1_775_786_400, 123_456_789));
        assert_eq!(s.entries[0].line, "line one µ");
        assert_eq!(s.entries[0].structured_metadata[0].name, "backup");
        assert_eq!(s.entries[0].structured_metadata[0].value, "velero/x");
        assert_eq!(s.entries[1].line, "");
        assert_eq!(s.entries[1].timestamp.unwrap().nanos, 0);
    }
}
