//! Encoding: entries → `logproto.PushRequest` protobuf → snappy raw block, without building
//! message structs or a `String` per entry.
//!
//! Each entry is written once, already framed as `StreamAdapter.entries` (field 2), into its
//! stream's buffer; a request is the concatenation of `streams` (field 1) around those buffers.
//! The other request shapes (Loki's JSON push format, metadata appended to the line) are
//! transcoded from those frames ([`frames`], [`EntryView`]).

use prost::encoding::{decode_varint, encode_key, encode_varint, encoded_len_varint, WireType};

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

/// One protobuf field: a varint or a length-delimited payload.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Reads the next field of a message (only the varint and length-delimited wire types occur in
/// what [`put_entry`] writes).
fn next_field<'a>(b: &mut &'a [u8]) -> Option<(u32, Field<'a>)> {
    let key = decode_varint(b).ok()?;
    let tag = (key >> 3) as u32;
    match key & 7 {
        0 => Some((tag, Field::Varint(decode_varint(b).ok()?))),
        2 => {
            let n = usize::try_from(decode_varint(b).ok()?).ok()?;
            if n > b.len() {
                return None;
            }
            let (head, tail) = b.split_at(n);
            *b = tail;
            Some((tag, Field::Bytes(head)))
        }
        _ => None,
    }
}

/// The entry frames (each with its field header) of a run of [`put_entry`] output.
pub fn frames(mut span: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let before = span;
        let mut rest = span;
        match next_field(&mut rest) {
            Some((2, Field::Bytes(_))) => {
                span = rest;
                Some(&before[..before.len() - rest.len()])
            }
            _ => None,
        }
    })
}

/// A decoded entry frame, borrowing from it.
#[derive(Debug, Default)]
pub struct EntryView<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// The line.
    pub line: &'a [u8],
    /// Structured metadata pairs.
    pub meta: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> EntryView<'a> {
    /// Decodes a frame written by [`put_entry`] (`None` if it is not one).
    pub fn decode(frame: &'a [u8]) -> Option<EntryView<'a>> {
        let mut f = frame;
        let Some((2, Field::Bytes(mut body))) = next_field(&mut f) else {
            return None;
        };
        let mut e = EntryView::default();
        while !body.is_empty() {
            match next_field(&mut body)? {
                (1, Field::Bytes(mut ts)) => {
                    let (mut secs, mut nanos) = (0i64, 0i64);
                    while !ts.is_empty() {
                        match next_field(&mut ts)? {
                            (1, Field::Varint(v)) => secs = v as i64,
                            (2, Field::Varint(v)) => nanos = v as i64,
                            _ => {}
                        }
                    }
                    e.ts_ns = secs.saturating_mul(1_000_000_000).saturating_add(nanos);
                }
                (2, Field::Bytes(l)) => e.line = l,
                (3, Field::Bytes(mut p)) => {
                    let (mut k, mut v): (&[u8], &[u8]) = (b"", b"");
                    while !p.is_empty() {
                        match next_field(&mut p)? {
                            (1, Field::Bytes(x)) => k = x,
                            (2, Field::Bytes(x)) => v = x,
                            _ => {}
                        }
                    }
                    e.meta.push((k, v));
                }
                _ => {}
            }
        }
        Some(e)
    }
}

/// Re-frames an entry with its metadata appended to the line as ` key=value …` (logfmt
/// quoting) and no structured metadata (for Loki 2.x).
pub fn put_entry_meta_in_line(out: &mut Vec<u8>, scratch: &mut Vec<u8>, e: &EntryView<'_>) {
    scratch.clear();
    scratch.extend_from_slice(e.line);
    for (k, v) in &e.meta {
        scratch.push(b' ');
        scratch.extend_from_slice(k);
        scratch.push(b'=');
        push_logfmt_value(scratch, v);
    }
    put_entry(out, e.ts_ns, scratch, std::iter::empty());
}

/// Appends a logfmt value: bare when it has no space, `"`, `=` or control character and is not
/// empty; otherwise double-quoted with `\`, `\"`, `\n`, `\r`, `\t` escapes.
pub fn push_logfmt_value(out: &mut Vec<u8>, v: &[u8]) {
    let bare = !v.is_empty()
        && v.iter()
            .all(|&b| b > b' ' && b != b'"' && b != b'=' && b != 0x7f);
    if bare {
        out.extend_from_slice(v);
        return;
    }
    out.push(b'"');
    for &b in v {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

/// Appends `s` as a JSON string (quotes included). `s` is UTF-8 (lines are made valid before
/// batching).
pub fn push_json_str(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Appends one JSON push value: `["<ns>","<line>"]`, or `["<ns>","<line>",{metadata}]`.
pub fn put_json_value(out: &mut Vec<u8>, e: &EntryView<'_>, with_meta: bool) {
    out.extend_from_slice(b"[\"");
    out.extend_from_slice(e.ts_ns.to_string().as_bytes());
    out.extend_from_slice(b"\",");
    push_json_str(out, e.line);
    if with_meta && !e.meta.is_empty() {
        out.extend_from_slice(b",{");
        for (i, (k, v)) in e.meta.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(out, k);
            out.push(b':');
            push_json_str(out, v);
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// The inverse of [`label_string`]: splits a rendered `{a="x", b="y"}` label string back into pairs (unescaping values).
pub fn label_pairs(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let body = s.trim().trim_start_matches('{').trim_end_matches('}');
    let mut chars = body.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(' ') | Some(',')) {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.next().is_none() || chars.next() != Some('"') {
            break;
        }
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some('t') => val.push('\t'),
                    Some('r') => val.push('\r'),
                    Some(o) => val.push(o),
                    None => break,
                },
                '"' => break,
                c => val.push(c),
            }
        }
        out.push((name, val));
    }
    out
}

/// Appends a label string (`{a="x", b="y"}`, Go-escaped values) as a JSON object.
pub fn put_json_labels(out: &mut Vec<u8>, label_string: &str) {
    out.push(b'{');
    for (i, (name, val)) in label_pairs(label_string).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_str(out, name.as_bytes());
        out.push(b':');
        push_json_str(out, val.as_bytes());
    }
    out.push(b'}');
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

    #[test]
    fn frames_decode_and_transcode() {
        let mut span = Vec::new();
        put_entry(
            &mut span,
            1_775_786_400_123_456_789,
            b"a \"quoted\"\tline",
            [("backup", "velero/x y"), ("stream", "stdout")].into_iter(),
        );
        put_entry(&mut span, 5, b"", std::iter::empty());
        let fr: Vec<&[u8]> = frames(&span).collect();
        assert_eq!(fr.len(), 2);
        assert_eq!(fr.iter().map(|f| f.len()).sum::<usize>(), span.len());
        let e = EntryView::decode(fr[0]).unwrap();
        assert_eq!(e.ts_ns, 1_775_786_400_123_456_789);
        assert_eq!(e.line, b"a \"quoted\"\tline");
        assert_eq!(e.meta.len(), 2);
        let mut out = Vec::new();
        put_json_value(&mut out, &e, true);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0], "1775786400123456789");
        assert_eq!(v[1], "a \"quoted\"\tline");
        assert_eq!(v[2]["backup"], "velero/x y");
        let (mut re, mut scratch) = (Vec::new(), Vec::new());
        put_entry_meta_in_line(&mut re, &mut scratch, &e);
        let e2 = EntryView::decode(&re).unwrap();
        assert_eq!(
            e2.line,
            b"a \"quoted\"\tline backup=\"velero/x y\" stream=stdout"
        );
        assert!(e2.meta.is_empty());
        assert_eq!(EntryView::decode(fr[1]).unwrap().ts_ns, 5);
        let mut l = Vec::new();
        put_json_labels(&mut l, r#"{a="x\"y\\z\n", b="2"}"#);
        let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["a"], "x\"y\\z\n");
        assert_eq!(v["b"], "2");
    }
}
