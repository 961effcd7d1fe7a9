//! Requests: splits a shard's share of a batch into requests within `loki.batch.max_streams`
//! and `loki.batch.max_request_bytes`, and encodes each one (protobuf + snappy, or JSON
//! + gzip/none; metadata sent, dropped or appended to the line).
//!
//! Splitting keeps each stream's entries in order: a stream cut across requests keeps its
//! earlier entries in the earlier request, and the requests of a part are sent one after the
//! other.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::encode;
use crate::batch::StreamSpan;
use crate::config::{Compression, Encoding, MetadataMode};

/// One stream's run of entries in a request.
#[derive(Clone, Debug)]
pub struct Piece {
    /// The stream's label string.
    pub labels: Arc<str>,
    /// Entry frames in the part's data.
    pub range: Range<usize>,
    /// Entries.
    pub entries: usize,
}

/// One request to send: pieces of streams.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The streams, in send order.
    pub pieces: Vec<Piece>,
    /// Entries in the request.
    pub entries: usize,
    /// Encoded bytes (uncompressed, including per-stream overhead).
    pub bytes: usize,
}

/// Per-stream overhead estimate: the stream's field headers plus its label string.
fn overhead(labels: &str) -> usize {
    labels.len() + 16
}

/// Cuts `spans` (over `data`) into requests of at most `max_streams` streams and
/// `max_bytes` encoded bytes (a single larger entry goes alone).
pub fn plan(data: &[u8], spans: &[StreamSpan], max_streams: usize, max_bytes: usize) -> Vec<Plan> {
    let max_streams = max_streams.max(1);
    let mut out = Vec::new();
    let mut cur = Plan::default();
    for s in spans {
        let oh = overhead(&s.labels);
        let len = s.end - s.start;
        if cur.pieces.len() < max_streams && cur.bytes + oh + len <= max_bytes {
            cur.pieces.push(Piece {
                labels: s.labels.clone(),
                range: s.start..s.end,
                entries: s.entries,
            });
            cur.bytes += oh + len;
            cur.entries += s.entries;
            continue;
        }
        // Entry by entry: extend this stream's piece while it fits, else start a request.
        let mut at = s.start;
        let mut open = false;
        for f in encode::frames(&data[s.start..s.end]) {
            let fl = f.len();
            if open && cur.bytes + fl <= max_bytes {
                if let Some(p) = cur.pieces.last_mut() {
                    p.range.end += fl;
                    p.entries += 1;
                }
                cur.bytes += fl;
                cur.entries += 1;
            } else {
                if !cur.pieces.is_empty()
                    && (cur.pieces.len() >= max_streams || cur.bytes + oh + fl > max_bytes)
                {
                    out.push(std::mem::take(&mut cur));
                }
                cur.pieces.push(Piece {
                    labels: s.labels.clone(),
                    range: at..at + fl,
                    entries: 1,
                });
                cur.bytes += oh + fl;
                cur.entries += 1;
                open = true;
            }
            at += fl;
        }
    }
    if !cur.pieces.is_empty() {
        out.push(cur);
    }
    out
}

/// The uncompressed protobuf `PushRequest` of a whole batch (for tests and tools).
pub fn protobuf_body(data: &[u8], spans: &[StreamSpan]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + spans.len() * 256);
    for s in spans {
        encode::put_stream(&mut out, &s.labels, std::iter::once(&data[s.start..s.end]));
    }
    out
}

/// An encoded request body and its headers.
#[derive(Clone, Debug)]
pub struct Body {
    /// The bytes to send.
    pub bytes: Bytes,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `Content-Encoding`, if any.
    pub content_encoding: Option<&'static str>,
}

/// Encodes requests; owns scratch buffers reused across requests.
pub struct Encoder {
    encoding: Encoding,
    compression: Compression,
    meta: MetadataMode,
    snappy: snap::raw::Encoder,
    buf: Vec<u8>,
    tmp: Vec<u8>,
    scratch: Vec<u8>,
    /// Snappy output scratch (worst-case size, reused); bodies are right-sized copies of it.
    zbuf: Vec<u8>,
}

impl Encoder {
    /// An encoder for this format. With [`MetadataMode::Drop`] protobuf frames are sent as
    /// they are: the batcher already left the metadata out (`BatchOptions::structured_metadata`
    /// is `false` then).
    pub fn new(encoding: Encoding, compression: Compression, meta: MetadataMode) -> Encoder {
        Encoder {
            encoding,
            compression,
            meta,
            snappy: snap::raw::Encoder::new(),
            buf: Vec::new(),
            tmp: Vec::new(),
            scratch: Vec::new(),
            zbuf: Vec::new(),
        }
    }

    /// Encodes one request over `data`.
    pub fn encode(&mut self, data: &[u8], plan: &Plan) -> Body {
        self.buf.clear();
        match self.encoding {
            Encoding::Protobuf => {
                for p in &plan.pieces {
                    let frames = &data[p.range.clone()];
                    if self.meta == MetadataMode::AppendToLine {
                        self.tmp.clear();
                        for f in encode::frames(frames) {
                            if let Some(e) = encode::EntryView::decode(f) {
                                encode::put_entry_meta_in_line(
                                    &mut self.tmp,
                                    &mut self.scratch,
                                    &e,
                                );
                            }
                        }
                        encode::put_stream(
                            &mut self.buf,
                            &p.labels,
                            std::iter::once(&self.tmp[..]),
                        );
                    } else {
                        encode::put_stream(&mut self.buf, &p.labels, std::iter::once(frames));
                    }
                }
            }
            Encoding::Json => {
                self.buf.extend_from_slice(b"{\"streams\":[");
                for (i, p) in plan.pieces.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    self.buf.extend_from_slice(b"{\"stream\":");
                    encode::put_json_labels(&mut self.buf, &p.labels);
                    self.buf.extend_from_slice(b",\"values\":[");
                    for (j, f) in encode::frames(&data[p.range.clone()]).enumerate() {
                        let Some(e) = encode::EntryView::decode(f) else {
                            continue;
                        };
                        if j > 0 {
                            self.buf.push(b',');
                        }
                        if self.meta == MetadataMode::AppendToLine && !e.meta.is_empty() {
                            self.scratch.clear();
                            self.scratch.extend_from_slice(e.line);
                            for (k, v) in &e.meta {
                                self.scratch.push(b' ');
                                self.scratch.extend_from_slice(k);
                                self.scratch.push(b'=');
                                encode::push_logfmt_value(&mut self.scratch, v);
                            }
                            let line = std::mem::take(&mut self.scratch);
                            let e2 = encode::EntryView {
                                ts_ns: e.ts_ns,
                                line: &line,
                                meta: Vec::new(),
                            };
                            encode::put_json_value(&mut self.buf, &e2, false);
                            self.scratch = line;
                        } else {
                            encode::put_json_value(
                                &mut self.buf,
                                &e,
                                self.meta == MetadataMode::Send,
                            );
                        }
                    }
                    self.buf.extend_from_slice(b"]}");
                }
                self.buf.extend_from_slice(b"]}");
            }
        }
        let content_type = match self.encoding {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        };
        match self.compression {
            Compression::Snappy => {
                // Compress into the reused worst-case buffer and keep only a right-sized copy:
                // a body lives as long as its request is in flight or retried.
                let need = snap::raw::max_compress_len(self.buf.len());
                if self.zbuf.len() < need {
                    self.zbuf.resize(need, 0);
                }
                let n = self.snappy.compress(&self.buf, &mut self.zbuf).unwrap_or(0);
                Body {
                    bytes: Bytes::copy_from_slice(&self.zbuf[..n]),
                    content_type,
                    content_encoding: None,
                }
            }
            Compression::Gzip => {
                use std::io::Write as _;
                let mut gz = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.buf.len() / 4 + 64),
                    flate2::Compression::fast(),
                );
                let out = gz
                    .write_all(&self.buf)
                    .and_then(|()| gz.finish())
                    .unwrap_or_default();
                Body {
                    bytes: Bytes::from(out),
                    content_type,
                    content_encoding: Some("gzip"),
                }
            }
            Compression::None => Body {
                bytes: Bytes::copy_from_slice(&self.buf),
                content_type,
                content_encoding: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::proto::PushRequest;
    use prost::Message;

    fn part(streams: &[(&str, usize, usize)]) -> (Vec<u8>, Vec<StreamSpan>) {
        // (labels, entries, line length)
        let mut data = Vec::new();
        let mut spans = Vec::new();
        for (labels, n, len) in streams {
            let start = data.len();
            for i in 0..*n {
                let line = format!("{labels}-{i:04}-{}", "x".repeat(*len));
                encode::put_entry(
                    &mut data,
                    1_000 + i as i64,
                    line.as_bytes(),
                    [("k", "v w")].into_iter(),
                );
            }
            spans.push(StreamSpan {
                labels: Arc::from(*labels),
                start,
                end: data.len(),
                entries: *n,
                files: Vec::new(),
            });
        }
        (data, spans)
    }

    fn decode(body: &Body) -> PushRequest {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body.bytes)
            .unwrap();
        PushRequest::decode(raw.as_slice()).unwrap()
    }

    #[test]
    fn splits_by_streams_and_bytes_keeping_order() {
        let (data, spans) = part(&[
            ("{a=\"1\"}", 50, 100),
            ("{a=\"2\"}", 3, 10),
            ("{a=\"3\"}", 1, 5000),
        ]);
        let plans = plan(&data, &spans, 2, 2048);
        let mut enc = Encoder::new(Encoding::Protobuf, Compression::Snappy, MetadataMode::Send);
        let mut seen: Vec<(String, String)> = Vec::new();
        for p in &plans {
            assert!(p.pieces.len() <= 2);
            assert!(p.bytes <= 2048 || p.entries == 1, "{p:?}");
            let req = decode(&enc.encode(&data, p));
            assert_eq!(req.streams.len(), p.pieces.len());
            for s in req.streams {
                for e in s.entries {
                    seen.push((s.labels.clone(), e.line));
                }
            }
        }
        assert_eq!(plans.iter().map(|p| p.entries).sum::<usize>(), 54);
        assert_eq!(seen.len(), 54);
        let a1: Vec<&String> = seen
            .iter()
            .filter(|(l, _)| l == "{a=\"1\"}")
            .map(|(_, x)| x)
            .collect();
        let mut sorted = a1.clone();
        sorted.sort();
        assert_eq!(a1, sorted);
        // Unsplit when the limits allow.
        assert_eq!(plan(&data, &spans, 10, 1 << 20).len(), 1);
    }

    #[test]
    fn json_and_append_to_line() {
        let (data, spans) = part(&[("{a=\"1\", b=\"q\\\"\"}", 2, 3)]);
        let p = &plan(&data, &spans, 10, 1 << 20)[0];
        let mut enc = Encoder::new(Encoding::Json, Compression::None, MetadataMode::Send);
        let b = enc.encode(&data, p);
        assert_eq!(b.content_type, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&b.bytes).unwrap();
        assert_eq!(v["streams"][0]["stream"]["b"], "q\"");
        assert_eq!(v["streams"][0]["values"][1][2]["k"], "v w");
        let mut enc = Encoder::new(
            Encoding::Json,
            Compression::Gzip,
            MetadataMode::AppendToLine,
        );
        let b = enc.encode(&data, p);
        assert_eq!(b.content_encoding, Some("gzip"));
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&b.bytes[..]), &mut raw)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert!(v["streams"][0]["values"][0][1]
            .as_str()
            .unwrap()
            .ends_with(" k=\"v w\""));
        assert!(v["streams"][0]["values"][0].get(2).is_none());
        let mut enc = Encoder::new(
            Encoding::Protobuf,
            Compression::Snappy,
            MetadataMode::AppendToLine,
        );
        let req = decode(&enc.encode(&data, p));
        assert!(req.streams[0].entries[0].line.ends_with(" k=\"v w\""));
        assert!(req.streams[0].entries[0].structured_metadata.is_empty());
    }
}
