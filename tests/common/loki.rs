//! A Loki-contract server for tests: a real HTTP/1.1 server on `127.0.0.1` that
//! decodes `POST /loki/api/v1/push` the way Loki does and answers the way Loki does.
//!
//! What comes in: HTTP/1.1 requests (keep-alive, `Content-Length` or chunked bodies).
//! A push body is decoded independently of the code under test, with the wire types
//! defined in this file:
//! - `Content-Type` is required (missing or empty: 400 `mime: no media type`);
//!   `application/json` selects Loki's JSON push format, any other type protobuf;
//! - `Content-Encoding` `""`/`snappy` pass through, `gzip` and `deflate` are inflated,
//!   anything else is 400 `Content-Encoding "…" not supported`;
//! - a protobuf body is a snappy *raw block* of `logproto.PushRequest`; each stream's
//!   `labels` is parsed as a LogQL selector, every `line` must be UTF-8 (a line that is not
//!   fails the whole request with a 400 and a decode error, so tests notice it).
//!
//! What goes out: each request answered by the first matching content rule
//! ([`LokiServer::reply_when`], e.g. "429 for requests carrying stream A"), else the next
//! scripted [`Reply`] (or the default, [`Reply::Loki`]: behave like Loki, 204 on success);
//! absolute-form targets (a client talking to a forward proxy) are served like their path
//! ([`RecordedRequest::target`] keeps the URL). Every attempt is recorded
//! ([`LokiServer::requests`]), and the entries Loki would have stored
//! ([`LokiServer::accepted_entries`]). Entries are *accepted* only when the answer is a 2xx
//! other than 260 (Loki's "ingestion blocked" code drops the data), or for the valid part of
//! a partial-success 400 / stream-limit 429, exactly as Loki ingests them.
//!
//! Optional Loki validations ([`Limits`]) are off by default and switched per test.
//! Error bodies carry Loki's texts (see [`text`]) and end in `\n`, like Go's `http.Error`.
//!
//! Guarantees: the API is synchronous (usable from sync and async tests); a reply is
//! recorded *before* it is written, so a client that got an answer can assert on it at once;
//! dropping the server stops and joins every thread; counting entries is O(1) per entry.
//!
//! Usage from a test file:
//!
//! ```ignore
//! mod common;
//! use common::loki::{LokiServer, Reply};
//!
//! let loki = LokiServer::start();
//! loki.push_replies([Reply::rate_limited(Some(1)), Reply::status(204)]);
//! // … point the client under test at loki.url() …
//! assert!(loki.wait_for_entries(10, Duration::from_secs(5)));
//! assert_eq!(loki.push_requests().len(), 2);
//! ```
//!
//! The blocking calls (`wait_for_*`, `stop_listening`, …) block the calling thread: from a
//! `#[tokio::test]`, use `flavor = "multi_thread"` (or `spawn_blocking`) when the client
//! under test runs on the same runtime, or its connection tasks starve meanwhile.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------------
// Wire types: `logproto.PushRequest` (grafana/loki pkg/push/push.proto), defined here on
// purpose so the tests decode independently of veloki's own encoder.
// ---------------------------------------------------------------------------------------------

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// `repeated StreamAdapter streams = 1`.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
    /// `string format = 2`: set by Loki itself; clients leave it empty.
    #[prost(string, tag = "2")]
    pub format: String,
}

/// `logproto.StreamAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// `string labels = 1`: LogQL selector text, e.g. `{namespace="velero"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// `repeated EntryAdapter entries = 2`.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// `uint64 hash = 3`: internal to Loki; clients leave 0.
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`. `line` is `bytes` here (same wire type as `string`) so the
/// server can report invalid UTF-8 itself instead of failing inside prost.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// `google.protobuf.Timestamp timestamp = 1`.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// `string line = 2`.
    #[prost(bytes = "vec", tag = "2")]
    pub line: Vec<u8>,
    /// `repeated LabelPairAdapter structuredMetadata = 3`.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
    /// `repeated LabelPairAdapter parsed = 4`: query responses only; clients must not send it.
    #[prost(message, repeated, tag = "4")]
    pub parsed: Vec<LabelPairAdapter>,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    /// `string name = 1`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `string value = 2`.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    /// `int64 seconds = 1`.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// `int32 nanos = 2`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// Splits nanoseconds since the Unix epoch into seconds + nanos (nanos always ≥ 0).
    pub fn from_nanos(ts_nanos: i128) -> Self {
        Timestamp {
            seconds: ts_nanos.div_euclid(1_000_000_000) as i64,
            nanos: ts_nanos.rem_euclid(1_000_000_000) as i32,
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn to_nanos(self) -> i128 {
        self.seconds as i128 * 1_000_000_000 + self.nanos as i128
    }
}

impl EntryAdapter {
    /// An entry at `ts_nanos` (since the Unix epoch) without metadata.
    pub fn new(ts_nanos: i128, line: impl Into<String>) -> Self {
        EntryAdapter {
            timestamp: Some(Timestamp::from_nanos(ts_nanos)),
            line: line.into().into_bytes(),
            structured_metadata: Vec::new(),
            parsed: Vec::new(),
        }
    }

    /// Adds structured metadata pairs.
    pub fn with_metadata(mut self, pairs: &[(&str, &str)]) -> Self {
        self.structured_metadata
            .extend(pairs.iter().map(|(n, v)| LabelPairAdapter {
                name: n.to_string(),
                value: v.to_string(),
            }));
        self
    }
}

impl StreamAdapter {
    /// A stream with this label text (sent verbatim) and entries.
    pub fn new(labels: impl Into<String>, entries: Vec<EntryAdapter>) -> Self {
        StreamAdapter {
            labels: labels.into(),
            entries,
            hash: 0,
        }
    }
}

/// Encodes streams as Loki expects a protobuf push body: `PushRequest` → snappy raw block.
pub fn encode_push(streams: impl IntoIterator<Item = StreamAdapter>) -> Vec<u8> {
    encode_push_request(&PushRequest {
        streams: streams.into_iter().collect(),
        format: String::new(),
    })
}

/// Encodes a whole `PushRequest` as protobuf compressed as a snappy raw block.
pub fn encode_push_request(req: &PushRequest) -> Vec<u8> {
    use prost::Message as _;
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy raw compression of an in-memory buffer cannot fail")
}

// ---------------------------------------------------------------------------------------------
// Decoded data
// ---------------------------------------------------------------------------------------------

/// One decoded log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Nanoseconds since the Unix epoch. A missing protobuf timestamp decodes as Go's zero
    /// time (`0001-01-01T00:00:00Z`), like Loki's non-nullable `stdtime` field.
    pub ts_nanos: i128,
    /// The line, decoded from bytes with `String::from_utf8`.
    pub line: String,
    /// Structured metadata, in wire order.
    pub metadata: Vec<(String, String)>,
}

/// One decoded stream of a push request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream {
    /// Parsed labels; empty when `labels` did not parse (see [`RecordedRequest::errors`]).
    pub labels: BTreeMap<String, String>,
    /// The label text exactly as sent (for JSON pushes: built from the `stream` object).
    pub raw_labels: String,
    /// Entries in wire order. Empty when the server keeps counts only
    /// ([`LokiServer::set_keep_entries`]).
    pub entries: Vec<Entry>,
}

/// An accepted entry together with its stream's labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabeledEntry {
    /// Parsed stream labels.
    pub labels: BTreeMap<String, String>,
    /// Stream label text as sent.
    pub raw_labels: String,
    /// Nanoseconds since the Unix epoch.
    pub ts_nanos: i128,
    /// The line.
    pub line: String,
    /// Structured metadata, in wire order.
    pub metadata: Vec<(String, String)>,
}

/// Go's zero `time.Time` in Unix nanoseconds (what Loki sees for a missing timestamp).
pub const GO_ZERO_TIME_NANOS: i128 = -62_135_596_800 * 1_000_000_000;

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

/// How the server answers one push request. Scripted replies are consumed one per push
/// request (requests to other paths do not consume them); when none is queued the default
/// is used ([`Reply::Loki`] unless changed with [`LokiServer::set_default`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Behave like Loki: decode, validate against the configured [`Limits`], ingest the
    /// valid part, answer 204 / 400 / 401 / 422 / 429 with Loki's texts.
    Loki,
    /// Answer with this status, body and extra headers. The body is still decoded: a body
    /// Loki could not parse gets Loki's 400 instead of a scripted 2xx. On a 2xx other than
    /// 260 every stream with valid labels is ingested whole ([`Limits`] are not applied).
    Status {
        /// HTTP status code.
        code: u16,
        /// Response body, sent verbatim.
        body: String,
        /// Extra response headers, e.g. `("Retry-After", "2")`.
        headers: Vec<(String, String)>,
    },
    /// Read the whole request, wait `delay`, then answer with `then`. If the client has hung
    /// up meanwhile (e.g. its timeout fired) nothing is ingested: [`Answer::ClientGone`].
    Slow {
        /// How long to wait before answering.
        delay: Duration,
        /// What to do after the wait.
        then: Box<Reply>,
    },
    /// Read about half of the body, then close the socket with `SO_LINGER` 0 (TCP RST).
    /// Nothing is ingested.
    Reset,
    /// Read the whole request, ingest it as [`Reply::Loki`] would, then RST without
    /// answering: Loki stored the data but the client never learns it (a lost ack).
    ResetAfterIngest,
    /// Read the whole request, send the first half of a 204 response head, then RST.
    /// Nothing is ingested.
    ResetMidResponse,
    /// Read the whole request, then close the connection (FIN) without answering.
    /// Nothing is ingested.
    Close,
}

impl Reply {
    /// A status with an empty body.
    pub fn status(code: u16) -> Reply {
        Reply::Status {
            code,
            body: String::new(),
            headers: Vec::new(),
        }
    }

    /// A status with a Loki-style error body: `text` + `\n`, `text/plain`.
    pub fn error(code: u16, text: impl AsRef<str>) -> Reply {
        Reply::Status {
            code,
            body: format!("{}\n", text.as_ref()),
            headers: vec![(
                "Content-Type".to_string(),
                "text/plain; charset=utf-8".to_string(),
            )],
        }
    }

    /// Adds a response header (only meaningful on [`Reply::Status`], or inside a `Slow`).
    pub fn with_header(self, name: &str, value: &str) -> Reply {
        match self {
            Reply::Status {
                code,
                body,
                mut headers,
            } => {
                headers.push((name.to_string(), value.to_string()));
                Reply::Status {
                    code,
                    body,
                    headers,
                }
            }
            Reply::Slow { delay, then } => Reply::Slow {
                delay,
                then: Box::new(then.with_header(name, value)),
            },
            other => other,
        }
    }

    /// Waits `delay`, then answers with `then`.
    pub fn slow(delay: Duration, then: Reply) -> Reply {
        Reply::Slow {
            delay,
            then: Box::new(then),
        }
    }

    /// 429 tenant ingestion-rate limit (Loki's text), optionally with `Retry-After: secs`.
    pub fn rate_limited(retry_after_secs: Option<u64>) -> Reply {
        let r = Reply::error(429, text::rate_limited("fake", 4_194_304, 1000, 5_000_000));
        match retry_after_secs {
            Some(s) => r.with_header("Retry-After", &s.to_string()),
            None => r,
        }
    }

    /// 260 "ingestion blocked" (a 2xx: not retried by clients, and the data is dropped).
    pub fn ingestion_blocked() -> Reply {
        Reply::error(
            260,
            text::ingestion_blocked("fake", "2030-01-01T00:00:00Z", 260),
        )
    }

    /// 401 `no org id` (what Loki's auth middleware says when `X-Scope-OrgID` is missing).
    pub fn no_org_id() -> Reply {
        Reply::error(401, text::NO_ORG_ID)
    }
}

/// A predicate over a request's decoded streams.
type StreamPredicate = Box<dyn Fn(&[Stream]) -> bool + Send>;

/// A content-based reply: see [`LokiServer::reply_when`].
struct Rule {
    pred: StreamPredicate,
    reply: Reply,
    remaining: Option<usize>,
}

/// What the server actually did with a request (recorded in [`RecordedRequest::answer`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP response was written.
    Status {
        /// Status code.
        code: u16,
        /// Body.
        body: String,
    },
    /// RST mid-body.
    Reset,
    /// Ingested, then RST before answering.
    ResetAfterIngest,
    /// Half a response head, then RST.
    ResetMidResponse,
    /// FIN without an answer.
    Close,
    /// A `Slow` reply found the client gone after the delay; nothing was written or ingested.
    ClientGone,
}

impl Answer {
    /// The status code, if a response was written.
    pub fn code(&self) -> Option<u16> {
        match self {
            Answer::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loki's texts
// ---------------------------------------------------------------------------------------------

/// Loki's error texts (`pkg/validation/validate.go`, `pkg/distributor`, `pkg/loghttp/push`),
/// without the trailing `\n` that the HTTP layer adds.
pub mod text {
    /// `MissingLabelsErrorMsg`.
    pub const MISSING_LABELS: &str = "error at least one label pair is required per stream";
    /// `MissingStreamsErrorMsg` (422 for a push without streams).
    pub const NO_VALID_STREAMS: &str = "error at least one valid stream is required for ingestion";
    /// The auth middleware's answer to a request without a tenant (401).
    pub const NO_ORG_ID: &str = "no org id";
    /// Go's `mime.ParseMediaType("")` error: a missing or empty `Content-Type` (400).
    pub const NO_MEDIA_TYPE: &str = "mime: no media type";

    /// `Error parsing labels '%s' with error: %s`.
    pub fn invalid_labels(labels: &str, err: &str) -> String {
        format!("Error parsing labels '{labels}' with error: {err}")
    }

    /// `Content-Encoding "%s" not supported`.
    pub fn content_encoding_not_supported(enc: &str) -> String {
        format!("Content-Encoding \"{enc}\" not supported")
    }

    /// `Max entry size '%d' bytes exceeded for stream '%s' while adding an entry with length '%d' bytes`.
    pub fn line_too_long(max: usize, stream: &str, len: usize) -> String {
        format!(
            "Max entry size '{max}' bytes exceeded for stream '{stream}' while adding an entry with length '{len}' bytes"
        )
    }

    /// `entry for stream '%s' has timestamp too old: %v, oldest acceptable timestamp is: %v`
    /// (times as RFC 3339, seconds, UTC).
    pub fn too_old(stream: &str, ts_nanos: i128, oldest_nanos: i128) -> String {
        format!(
            "entry for stream '{stream}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
            super::rfc3339_seconds(ts_nanos),
            super::rfc3339_seconds(oldest_nanos)
        )
    }

    /// `entry for stream '%s' has timestamp too new: %v`.
    pub fn too_new(stream: &str, ts_nanos: i128) -> String {
        format!(
            "entry for stream '{stream}' has timestamp too new: {}",
            super::rfc3339_seconds(ts_nanos)
        )
    }

    /// `entry for stream '%s' has %d label names; limit %d`.
    pub fn too_many_labels(stream: &str, n: usize, limit: usize) -> String {
        format!("entry for stream '{stream}' has {n} label names; limit {limit}")
    }

    /// `stream '%s' has duplicate label name: '%s'`.
    pub fn duplicate_label(stream: &str, name: &str) -> String {
        format!("stream '{stream}' has duplicate label name: '{name}'")
    }

    /// `Ingestion rate limit exceeded for user %s (limit: %d bytes/sec) while attempting to
    /// ingest '%d' lines totaling '%d' bytes, …` (429).
    pub fn rate_limited(user: &str, limit: u64, lines: u64, bytes: u64) -> String {
        format!(
            "Ingestion rate limit exceeded for user {user} (limit: {limit} bytes/sec) while attempting to ingest '{lines}' lines totaling '{bytes}' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased"
        )
    }

    /// `Per stream rate limit exceeded (limit: %s/sec) while attempting to ingest for stream
    /// '%s' totaling %s, …` (429).
    pub fn stream_rate_limited(limit: &str, stream: &str, total: &str) -> String {
        format!(
            "Per stream rate limit exceeded (limit: {limit}/sec) while attempting to ingest for stream '{stream}' totaling {total}, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased"
        )
    }

    /// `Maximum active stream limit exceeded when trying to create stream %s, …, user: '%s'` (429).
    pub fn stream_limit(stream: &str, user: &str) -> String {
        format!(
            "Maximum active stream limit exceeded when trying to create stream {stream}, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased, user: '{user}'"
        )
    }

    /// `ingestion blocked for user %s until '%s' with status code '%d'` (260 by default).
    pub fn ingestion_blocked(user: &str, until: &str, code: u16) -> String {
        format!("ingestion blocked for user {user} until '{until}' with status code '{code}'")
    }

    /// How Loki's `GroupedErrors` joins validation errors: identical texts are grouped; a
    /// group gets the `N errors like: ` prefix when it has more than one member or when there
    /// is more than one group; groups are joined with `; ` (first-seen order here; Go's map
    /// order is random).
    pub fn grouped(errors: &[String]) -> String {
        let mut groups: Vec<(&str, usize)> = Vec::new();
        for e in errors {
            match groups.iter_mut().find(|(t, _)| *t == e.as_str()) {
                Some(g) => g.1 += 1,
                None => groups.push((e.as_str(), 1)),
            }
        }
        let many = groups.len() > 1;
        let mut out = String::new();
        for (i, (t, n)) in groups.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            if many || *n > 1 {
                out.push_str(&format!("{n} errors like: "));
            }
            out.push_str(t);
        }
        out
    }
}

/// Formats Unix nanoseconds as Go's `time.RFC3339` in UTC (whole seconds, `Z`).
pub fn rfc3339_seconds(ts_nanos: i128) -> String {
    let secs = ts_nanos.div_euclid(1_000_000_000) as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian), valid far beyond any test's range.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

// ---------------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------------

/// Parses a push stream's label text the way Loki's `syntax.ParseLabels` accepts it:
/// `{name="value", …}` with names `[a-zA-Z_][a-zA-Z0-9_]*`, `=` only, values Go-quoted
/// (`"…"` with `\"`, `\\`, `\n`, `\t`, `\xHH`, `\uHHHH`, octal…, or raw `` `…` ``).
/// Pairs are returned in text order (duplicates kept, so the caller can report them).
/// Errors read like Loki's: `1:4: parse error: unterminated quoted string`.
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    LabelParser { s: text, pos: 0 }.parse()
}

struct LabelParser<'a> {
    s: &'a str,
    pos: usize,
}

impl LabelParser<'_> {
    fn err(&self, at: usize, msg: impl std::fmt::Display) -> String {
        let before = &self.s[..at.min(self.s.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{line}:{col}: parse error: {msg}")
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn unexpected(&self, expecting: &str) -> String {
        match self.peek() {
            None => self.err(
                self.pos,
                format!("syntax error: unexpected $end, expecting {expecting}"),
            ),
            Some(c) => self.err(
                self.pos,
                format!("syntax error: unexpected '{c}', expecting {expecting}"),
            ),
        }
    }

    /// Lexer pass: Loki lexes the whole text before parsing, so lexical errors
    /// (unterminated strings, stray characters) win over grammar errors.
    fn lex(&mut self) -> Result<(), String> {
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Ok(()),
                Some('"' | '`') => {
                    self.string()?;
                }
                Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                    self.name()?;
                }
                Some('{' | '}' | ',' | '=' | '!' | '~') => self.pos += 1,
                Some(c) => {
                    return Err(self.err(
                        self.pos,
                        format!("unexpected character inside braces: '{c}'"),
                    ))
                }
            }
        }
    }

    fn parse(mut self) -> Result<Vec<(String, String)>, String> {
        self.lex()?;
        self.pos = 0;
        let mut pairs = Vec::new();
        self.skip_ws();
        if self.peek() != Some('{') {
            return Err(self.unexpected("{"));
        }
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some('}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                let name = self.name()?;
                self.skip_ws();
                match self.peek() {
                    Some('=') => {
                        let rest = &self.s[self.pos + 1..];
                        if rest.starts_with('~') {
                            return Err(self.err(
                                self.pos,
                                "syntax error: unexpected =~, expecting = (only equality matchers are allowed)",
                            ));
                        }
                        self.pos += 1;
                    }
                    Some('!') => {
                        return Err(self.err(
                            self.pos,
                            "syntax error: unexpected !, expecting = (only equality matchers are allowed)",
                        ))
                    }
                    _ => return Err(self.unexpected("=")),
                }
                self.skip_ws();
                let value = self.string()?;
                pairs.push((name, value));
                self.skip_ws();
                match self.peek() {
                    Some(',') => {
                        self.pos += 1;
                        self.skip_ws();
                        // Loki's grammar allows a trailing comma before `}`.
                        if self.peek() == Some('}') {
                            self.pos += 1;
                            break;
                        }
                    }
                    Some('}') => {
                        self.pos += 1;
                        break;
                    }
                    None => return Err(self.unexpected("} or ,")),
                    Some(c) => {
                        return Err(self.err(
                            self.pos,
                            format!("unexpected character inside braces: '{c}'"),
                        ))
                    }
                }
            }
        }
        self.skip_ws();
        if self.pos != self.s.len() {
            return Err(self.unexpected("$end"));
        }
        Ok(pairs)
    }

    fn name(&mut self) -> Result<String, String> {
        let start = self.pos;
        match self.peek() {
            Some(c) if c == '_' || c.is_ascii_alphabetic() => self.pos += 1,
            None => return Err(self.unexpected("IDENTIFIER")),
            Some(c) => {
                return Err(self.err(
                    self.pos,
                    format!("unexpected character inside braces: '{c}'"),
                ))
            }
        }
        while let Some(c) = self.peek() {
            if c == '_' || c.is_ascii_alphanumeric() {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(self.s[start..self.pos].to_string())
    }

    fn string(&mut self) -> Result<String, String> {
        let start = self.pos;
        match self.peek() {
            Some('`') => {
                let body = &self.s[self.pos + 1..];
                match body.find('`') {
                    Some(end) => {
                        self.pos += end + 2;
                        Ok(body[..end].to_string())
                    }
                    None => Err(self.err(start, "unterminated raw string")),
                }
            }
            Some('"') => {
                self.pos += 1;
                let mut out: Vec<u8> = Vec::new();
                loop {
                    let Some(c) = self.peek() else {
                        return Err(self.err(start, "unterminated quoted string"));
                    };
                    self.pos += c.len_utf8();
                    match c {
                        '"' => break,
                        '\n' => return Err(self.err(start, "unterminated quoted string")),
                        '\\' => self.escape(start, &mut out)?,
                        c => {
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                }
                String::from_utf8(out)
                    .map_err(|_| self.err(start, "invalid UTF-8 in quoted string"))
            }
            _ => Err(self.unexpected("STRING")),
        }
    }

    fn hex(&mut self, start: usize, n: usize) -> Result<u32, String> {
        let digits = self.s.get(self.pos..self.pos + n).unwrap_or("");
        if digits.len() != n || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(self.err(start, "invalid char escape"));
        }
        self.pos += n;
        u32::from_str_radix(digits, 16).map_err(|_| self.err(start, "invalid char escape"))
    }

    fn escape(&mut self, start: usize, out: &mut Vec<u8>) -> Result<(), String> {
        let Some(c) = self.peek() else {
            return Err(self.err(start, "unterminated quoted string"));
        };
        self.pos += c.len_utf8();
        let byte = match c {
            'a' => 0x07,
            'b' => 0x08,
            'f' => 0x0c,
            'n' => b'\n',
            'r' => b'\r',
            't' => b'\t',
            'v' => 0x0b,
            '\\' => b'\\',
            '"' => b'"',
            'x' => self.hex(start, 2)? as u8,
            'u' | 'U' => {
                let v = self.hex(start, if c == 'u' { 4 } else { 8 })?;
                let ch = char::from_u32(v).ok_or_else(|| self.err(start, "invalid char escape"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            '0'..='7' => {
                let digits = self.s.get(self.pos - 1..self.pos + 2).unwrap_or("");
                if digits.len() != 3 || !digits.chars().all(|d| ('0'..='7').contains(&d)) {
                    return Err(self.err(start, "invalid char escape"));
                }
                let v = u32::from_str_radix(digits, 8)
                    .map_err(|_| self.err(start, "invalid char escape"))?;
                if v > 255 {
                    return Err(self.err(start, "invalid char escape"));
                }
                self.pos += 2;
                v as u8
            }
            _ => return Err(self.err(start, "invalid char escape")),
        };
        out.push(byte);
        Ok(())
    }
}

/// Go's `strconv.Quote` for label values (ASCII escapes; printable Unicode kept).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The label text Loki uses in its messages (Prometheus `labels.String()`): sorted by name,
/// `name="value"` with Go-quoted values, joined by `, `.
pub fn normalize_labels(labels: &BTreeMap<String, String>) -> String {
    let mut out = String::from("{");
    for (i, (n, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(n);
        out.push('=');
        out.push_str(&go_quote(v));
    }
    out.push('}');
    out
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// Optional Loki validations; all off by default. [`Limits::loki_defaults`] gives Loki 3.x's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `max_line_size` in bytes: longer lines are dropped with a partial-success 400.
    pub max_line_size: Option<usize>,
    /// `reject_old_samples_max_age`: older entries are dropped with a partial-success 400.
    pub reject_old_samples_max_age: Option<Duration>,
    /// `creation_grace_period`: entries further in the future are dropped (400).
    pub creation_grace_period: Option<Duration>,
    /// `max_label_names_per_series`: streams with more labels are dropped (400).
    pub max_label_names_per_series: Option<usize>,
    /// Maximum number of distinct streams ever accepted; a push creating more gets 429
    /// `Maximum active stream limit exceeded …` (the streams within the limit are ingested).
    pub max_streams: Option<usize>,
    /// Require `X-Scope-OrgID` (Loki with `auth_enabled: true`): missing → 401 `no org id`.
    pub require_tenant: bool,
}

impl Limits {
    /// Loki 3.x defaults: 256KB lines, 7 d old, 10 m new, 15 label names, 5000 streams.
    pub fn loki_defaults() -> Limits {
        Limits {
            max_line_size: Some(256 * 1024),
            reject_old_samples_max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            creation_grace_period: Some(Duration::from_secs(600)),
            max_label_names_per_series: Some(15),
            max_streams: Some(5000),
            require_tenant: false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recorded requests
// ---------------------------------------------------------------------------------------------

/// One HTTP request attempt as the server saw it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// 0-based order of arrival (all paths).
    pub seq: usize,
    /// Which TCP connection carried it (0-based in accept order): equal ids = keep-alive.
    pub conn_id: u64,
    /// When its head was read.
    pub received_at: Instant,
    /// `POST`, …
    pub method: String,
    /// Request target, e.g. `/loki/api/v1/push` (the path part of an absolute-form target).
    pub path: String,
    /// The request target as sent: an absolute URL (`http://host/…`) when the request came
    /// through a forward proxy, else the same as `path`.
    pub target: String,
    /// Headers with lower-cased names, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes received (after de-chunking, before decompression).
    pub body_len: usize,
    /// The raw body (empty when the server keeps counts only, or on `Reset`).
    pub body: Arc<Vec<u8>>,
    /// Decoded streams, or the request-level decode error (Loki's 400/422 text).
    pub decoded: Result<Vec<Arc<Stream>>, String>,
    /// Entries in the request (counted even when entries are not kept).
    pub entry_count: usize,
    /// Stream- and entry-level validation errors (the parts Loki dropped).
    pub errors: Vec<String>,
    /// Entries this request got ingested.
    pub accepted: usize,
    /// What the server did.
    pub answer: Answer,
}

impl RecordedRequest {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `X-Scope-OrgID`.
    pub fn tenant(&self) -> Option<&str> {
        self.header("x-scope-orgid")
    }

    /// `true` for `POST /loki/api/v1/push` (or the legacy `/api/prom/push`).
    pub fn is_push(&self) -> bool {
        self.method == "POST" && is_push_path(&self.path)
    }
}

fn is_push_path(path: &str) -> bool {
    let p = path.split('?').next().unwrap_or("");
    p == "/loki/api/v1/push" || p == "/api/prom/push"
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

struct AcceptedStream {
    stream: Arc<Stream>,
    count: usize,
    /// Physical records: an entry that holds several lines (`a\nb`) counts each.
    records: usize,
}

struct State {
    replies: VecDeque<Reply>,
    default: Reply,
    limits: Limits,
    keep_entries: bool,
    requests: Vec<RecordedRequest>,
    accepted: Vec<AcceptedStream>,
    known_streams: HashSet<String>,
    seen_entries: HashSet<u64>,
    duplicates: usize,
    want_listening: bool,
    rules: Vec<Rule>,
    resume_at: Option<Instant>,
    listening: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    entry_count: AtomicUsize,
    record_count: AtomicUsize,
    stop: AtomicBool,
    conns: Mutex<HashMap<u64, TcpStream>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not hide the state from the test.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close_all_conns(&self) {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for c in conns.values() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Sleeps up to `d`, returning early when the server stops.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= end {
                break;
            }
            thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }
}

/// The Loki-contract server. Starts listening on `127.0.0.1:0` in background threads;
/// dropping it stops and joins them.
pub struct LokiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept_thread: Option<JoinHandle<()>>,
}

impl LokiServer {
    /// Binds `127.0.0.1:0` and starts serving (default reply [`Reply::Loki`], no limits).
    pub fn start() -> LokiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        listener
            .set_nonblocking(true)
            .expect("set_nonblocking on listener");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                replies: VecDeque::new(),
                default: Reply::Loki,
                limits: Limits::default(),
                keep_entries: true,
                requests: Vec::new(),
                accepted: Vec::new(),
                known_streams: HashSet::new(),
                seen_entries: HashSet::new(),
                duplicates: 0,
                want_listening: true,
                rules: Vec::new(),
                resume_at: None,
                listening: true,
            }),
            changed: Condvar::new(),
            entry_count: AtomicUsize::new(0),
            record_count: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
        });
        let s = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name("loki-accept".into())
            .spawn(move || accept_loop(s, addr, Some(listener)))
            .expect("spawn accept thread");
        LokiServer {
            shared,
            addr,
            accept_thread: Some(accept_thread),
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash). Stays the same across refuse/resume.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/loki/api/v1/push`.
    pub fn push_url(&self) -> String {
        format!("{}/loki/api/v1/push", self.url())
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues scripted replies, consumed one per push request, in order.
    pub fn push_replies(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.lock().replies.extend(replies);
    }

    /// Sets the reply used when the queue is empty (initially [`Reply::Loki`]).
    pub fn set_default(&self, reply: Reply) {
        self.shared.lock().default = reply;
    }

    /// Answers push requests whose decoded streams satisfy `pred` with `reply`, at most
    /// `times` times (`None`: always). Rules are checked in the order they were added, before
    /// the scripted replies and the default (which a matching request does not consume). With
    /// any rule present the whole body is read first, so a [`Reply::Reset`] from any source
    /// resets after the body instead of mid-body. A request that does not decode is matched
    /// against an empty stream list.
    ///
    /// ```ignore
    /// // Throttle every request carrying stream `app="a"`, five times.
    /// loki.reply_when(|s| s.iter().any(|s| s.labels.get("app").is_some_and(|v| v == "a")),
    ///                 Reply::rate_limited(None), Some(5));
    /// ```
    pub fn reply_when(
        &self,
        pred: impl Fn(&[Stream]) -> bool + Send + 'static,
        reply: Reply,
        times: Option<usize>,
    ) {
        self.shared.lock().rules.push(Rule {
            pred: Box::new(pred),
            reply,
            remaining: times,
        });
    }

    /// Removes every [`LokiServer::reply_when`] rule.
    pub fn clear_rules(&self) {
        self.shared.lock().rules.clear();
    }

    /// Scripted replies not consumed yet.
    pub fn pending_replies(&self) -> usize {
        self.shared.lock().replies.len()
    }

    /// Replaces the Loki validations.
    pub fn set_limits(&self, limits: Limits) {
        self.shared.lock().limits = limits;
    }

    /// Shortcut: `max_line_size` only.
    pub fn set_max_line_size(&self, max: Option<usize>) {
        self.shared.lock().limits.max_line_size = max;
    }

    /// Keep decoded entries and bodies (default `true`). With `false` the server keeps
    /// counts, labels and duplicate detection only (for million-entry runs).
    pub fn set_keep_entries(&self, keep: bool) {
        self.shared.lock().keep_entries = keep;
    }

    /// Drops the listener (new connections are refused) and closes open connections;
    /// returns once the port is closed.
    pub fn stop_listening(&self) {
        self.set_listening(false, None);
    }

    /// Re-binds the same port; returns once it listens again.
    pub fn resume(&self) {
        self.set_listening(true, None);
    }

    /// Refuses connections for `d`, then listens again on the same port by itself.
    /// Returns once the port is closed.
    pub fn refuse_for(&self, d: Duration) {
        self.set_listening(false, Some(Instant::now() + d));
    }

    fn set_listening(&self, want: bool, resume_at: Option<Instant>) {
        let mut st = self.shared.lock();
        st.want_listening = want;
        st.resume_at = resume_at;
        let deadline = Instant::now() + Duration::from_secs(10);
        while st.listening != want {
            let now = Instant::now();
            assert!(
                now < deadline,
                "test Loki server: could not {} port {}",
                if want { "re-bind" } else { "close" },
                self.addr.port()
            );
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Every request attempt so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Push attempts only.
    pub fn push_requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.is_push())
            .cloned()
            .collect()
    }

    /// Number of request attempts so far (all paths).
    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// Request-level decode errors seen so far (bad snappy, protobuf, JSON, UTF-8, …).
    pub fn decode_errors(&self) -> Vec<String> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.is_push() && r.answer != Answer::Reset)
            .filter_map(|r| r.decoded.as_ref().err().cloned())
            .collect()
    }

    /// Accepted streams in ingestion order (one per accepted stream per request; the same
    /// labels can appear several times).
    pub fn accepted_streams(&self) -> Vec<Stream> {
        self.shared
            .lock()
            .accepted
            .iter()
            .map(|a| (*a.stream).clone())
            .collect()
    }

    /// Accepted entries with their labels, in ingestion order.
    pub fn accepted_entries(&self) -> Vec<LabeledEntry> {
        let st = self.shared.lock();
        let mut out = Vec::new();
        for a in &st.accepted {
            for e in &a.stream.entries {
                out.push(LabeledEntry {
                    labels: a.stream.labels.clone(),
                    raw_labels: a.stream.raw_labels.clone(),
                    ts_nanos: e.ts_nanos,
                    line: e.line.clone(),
                    metadata: e.metadata.clone(),
                });
            }
        }
        out
    }

    /// Accepted lines, in ingestion order.
    pub fn accepted_lines(&self) -> Vec<String> {
        let st = self.shared.lock();
        st.accepted
            .iter()
            .flat_map(|a| a.stream.entries.iter().map(|e| e.line.clone()))
            .collect()
    }

    /// Accepted entry count per value of label `name` (`""` when the stream lacks it).
    /// Works with or without kept entries.
    pub fn accepted_counts_by_label(&self, name: &str) -> BTreeMap<String, usize> {
        let st = self.shared.lock();
        let mut out = BTreeMap::new();
        for a in &st.accepted {
            let v = a.stream.labels.get(name).cloned().unwrap_or_default();
            *out.entry(v).or_insert(0) += a.count;
        }
        out
    }

    /// Physical records accepted: like [`LokiServer::entry_count`], but an entry holding several
    /// lines (a multi-line record the client kept together) counts once per line.
    pub fn record_count(&self) -> usize {
        self.shared.record_count.load(Ordering::SeqCst)
    }

    /// [`LokiServer::record_count`] per value of a label.
    pub fn accepted_records_by_label(&self, name: &str) -> BTreeMap<String, usize> {
        let st = self.shared.lock();
        let mut out = BTreeMap::new();
        for a in &st.accepted {
            let v = a.stream.labels.get(name).cloned().unwrap_or_default();
            *out.entry(v).or_insert(0) += a.records;
        }
        out
    }

    /// Number of accepted entries (O(1)).
    pub fn entry_count(&self) -> usize {
        self.shared.entry_count.load(Ordering::SeqCst)
    }

    /// Accepted entries that repeat an earlier accepted entry exactly (same labels,
    /// timestamp and line): what Loki would de-duplicate. At-least-once replays show up here.
    pub fn duplicate_count(&self) -> usize {
        self.shared.lock().duplicates
    }

    /// Waits until at least `n` entries are accepted; `false` on timeout.
    pub fn wait_for_entries(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(
            timeout,
            |s| s.entry_count.load(Ordering::SeqCst) >= n,
            |_| true,
        )
    }

    /// Waits until at least `n` requests (all paths) were recorded; `false` on timeout.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |_| true, |st| st.requests.len() >= n)
    }

    fn wait_until(
        &self,
        timeout: Duration,
        fast: impl Fn(&Shared) -> bool,
        cond: impl Fn(&State) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if fast(&self.shared) && cond(&st) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for LokiServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

fn bind_same_port(addr: SocketAddr) -> io::Result<TcpListener> {
    // std sets SO_REUSEADDR on Unix, so the port is reusable despite TIME_WAIT sockets.
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

fn accept_loop(shared: Arc<Shared>, addr: SocketAddr, mut listener: Option<TcpListener>) {
    let mut next_id: u64 = 0;
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        // Reconcile the listening state with what the test asked for.
        let want = {
            let mut st = shared.lock();
            if !st.want_listening && st.resume_at.is_some_and(|t| Instant::now() >= t) {
                st.want_listening = true;
                st.resume_at = None;
            }
            st.want_listening
        };
        if want && listener.is_none() {
            match bind_same_port(addr) {
                Ok(l) => listener = Some(l),
                Err(_) => {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
            }
        } else if !want && listener.is_some() {
            listener = None;
            shared.close_all_conns();
        }
        {
            let mut st = shared.lock();
            if st.listening != listener.is_some() {
                st.listening = listener.is_some();
                shared.changed.notify_all();
            }
        }
        let Some(l) = listener.as_ref() else {
            thread::sleep(Duration::from_millis(2));
            continue;
        };
        match l.accept() {
            Ok((stream, _)) => {
                let id = next_id;
                next_id += 1;
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                if let Ok(clone) = stream.try_clone() {
                    shared
                        .conns
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id, clone);
                }
                let s = Arc::clone(&shared);
                let h = thread::Builder::new()
                    .name(format!("loki-conn-{id}"))
                    .spawn(move || {
                        serve_conn(&s, stream, id);
                        s.conns
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&id);
                    })
                    .expect("spawn connection thread");
                workers.push(h);
                workers.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(_) => thread::sleep(Duration::from_millis(2)),
        }
    }
    drop(listener);
    shared.close_all_conns();
    for h in workers {
        let _ = h.join();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1
// ---------------------------------------------------------------------------------------------

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 256 * 1024 * 1024;

struct Head {
    method: String,
    path: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> io::Result<usize> {
        match self.header("content-length") {
            None => Ok(0),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length")),
        }
    }

    fn keep_alive(&self) -> bool {
        let conn = self
            .header("connection")
            .map(|v| v.to_ascii_lowercase())
            .unwrap_or_default();
        if self.version == "HTTP/1.0" {
            conn.contains("keep-alive")
        } else {
            !conn.contains("close")
        }
    }
}

fn read_line_limited<R: BufRead>(r: &mut R, budget: &mut usize) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(*budget as u64)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    *budget = budget.saturating_sub(n);
    if !buf.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "request head too long or truncated",
        ));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "non-UTF-8 request head"))
}

/// The path of a request target: an absolute-form target (`http://host:port/path`, what
/// clients send to a forward proxy) becomes `/path`.
fn origin_form(target: &str) -> &str {
    match target.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            rest.find('/').map_or("/", |i| &rest[i..])
        }
        _ => target,
    }
}

/// Reads a request head; `Ok(None)` on a clean EOF between requests.
fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<Head>> {
    let mut budget = MAX_HEAD;
    let request_line = loop {
        match read_line_limited(r, &mut budget)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    };
    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line_limited(r, &mut budget)? else {
            return Err(io::ErrorKind::UnexpectedEof.into());
        };
        if line.is_empty() {
            break;
        }
        let Some((n, v)) = line.split_once(':') else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad header line",
            ));
        };
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(Some(Head {
        method: method.to_string(),
        path: origin_form(path).to_string(),
        target: path.to_string(),
        version: version.to_string(),
        headers,
    }))
}

fn read_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut budget = MAX_HEAD;
        let line = read_line_limited(r, &mut budget)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers until the empty line.
            loop {
                let l = read_line_limited(r, &mut budget)?.ok_or(io::ErrorKind::UnexpectedEof)?;
                if l.is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "missing CRLF after chunk",
            ));
        }
    }
}

fn read_body<R: BufRead>(r: &mut R, head: &Head) -> io::Result<Vec<u8>> {
    if head.chunked() {
        return read_chunked(r);
    }
    let len = head.content_length()?;
    if len > MAX_BODY {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(body)
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn response_bytes(code: u16, body: &str, headers: &[(String, String)], close: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {code} {}\r\n", reason(code));
    let has = |n: &str| headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
    if !body.is_empty() && !has("content-type") {
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        out.push_str("X-Content-Type-Options: nosniff\r\n");
    }
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    // 1xx/204/304 carry no body and no Content-Length.
    let bodyless = code == 204 || code == 304 || (100..200).contains(&code);
    if !bodyless {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !bodyless {
        bytes.extend_from_slice(body.as_bytes());
    }
    bytes
}

fn set_linger_zero(s: &TcpStream) {
    use std::os::unix::io::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid fd owned by `s`, and a pointer to a properly sized `linger`.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Aborts the connection with a TCP RST: `SO_LINGER` 0, then the last descriptor closes
/// when the connection thread returns (the registry's clone is removed here).
fn reset(shared: &Shared, s: &TcpStream, id: u64) {
    set_linger_zero(s);
    shared
        .conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
}

/// `true` when the peer has closed (or reset) the connection.
fn client_gone(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut b = [0u8; 1];
    let gone = match s.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    let _ = s.set_nonblocking(false);
    gone
}

/// Unwraps `Slow` layers into a total delay and the final action.
fn flatten(reply: Reply) -> (Duration, Reply) {
    let mut delay = Duration::ZERO;
    let mut r = reply;
    while let Reply::Slow { delay: d, then } = r {
        delay += d;
        r = *then;
    }
    (delay, r)
}

fn serve_conn(shared: &Shared, stream: TcpStream, id: u64) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut writer = stream;
    while !shared.stop.load(Ordering::SeqCst) {
        let head = match read_head(&mut reader) {
            Ok(Some(h)) => h,
            Ok(None) | Err(_) => return,
        };
        let received_at = Instant::now();
        let keep_alive = head.keep_alive();
        if head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            let _ = writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }

        let push = head.method == "POST" && is_push_path(&head.path);
        let by_content = push && !shared.lock().rules.is_empty();
        let (mut delay, mut action) = if by_content {
            (Duration::ZERO, Reply::Loki)
        } else if push {
            let mut st = shared.lock();
            let r = match st.replies.pop_front() {
                Some(r) => r,
                None => st.default.clone(),
            };
            flatten(r)
        } else {
            (Duration::ZERO, Reply::Loki)
        };

        if push && !by_content && action == Reply::Reset {
            // Read about half of the body, then RST.
            let want = if head.chunked() {
                1
            } else {
                head.content_length().unwrap_or(0) / 2
            };
            let mut sink = vec![0u8; want];
            let _ = reader.read_exact(&mut sink);
            shared.sleep(delay);
            record(
                shared,
                Pending::new(&head, id, received_at, want, Answer::Reset),
            );
            reset(shared, &writer, id);
            return;
        }

        let body = match read_body(&mut reader, &head) {
            Ok(b) => b,
            Err(_) => {
                let bytes =
                    response_bytes(413, "request body unreadable or too large\n", &[], true);
                let _ = writer.write_all(&bytes);
                return;
            }
        };

        if by_content {
            let streams: Vec<Stream> = decode_request(&head, &body)
                .map(|(s, _)| s.into_iter().map(RawStream::into_stream).collect())
                .unwrap_or_default();
            let reply = {
                let mut st = shared.lock();
                let hit = st
                    .rules
                    .iter_mut()
                    .find(|r| r.remaining.is_none_or(|n| n > 0) && (r.pred)(&streams));
                match hit {
                    Some(r) => {
                        if let Some(n) = r.remaining.as_mut() {
                            *n -= 1;
                        }
                        r.reply.clone()
                    }
                    None => match st.replies.pop_front() {
                        Some(r) => r,
                        None => st.default.clone(),
                    },
                }
            };
            (delay, action) = flatten(reply);
            if action == Reply::Reset {
                shared.sleep(delay);
                record(
                    shared,
                    Pending::new(&head, id, received_at, body.len(), Answer::Reset),
                );
                reset(shared, &writer, id);
                return;
            }
        }

        if !push {
            let (code, text) = match (head.method.as_str(), head.path.as_str()) {
                ("GET", "/ready") => (200, "ready\n"),
                (_, p) if is_push_path(p) => (405, "method not allowed\n"),
                _ => (404, "404 page not found\n"),
            };
            let mut p = Pending::new(
                &head,
                id,
                received_at,
                body.len(),
                Answer::Status {
                    code,
                    body: text.to_string(),
                },
            );
            p.decoded = Err("not a push request".to_string());
            record(shared, p);
            if writer
                .write_all(&response_bytes(code, text, &[], !keep_alive))
                .is_err()
                || !keep_alive
            {
                return;
            }
            continue;
        }

        shared.sleep(delay);
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        if !delay.is_zero() && client_gone(&writer) {
            let mut p = Pending::new(&head, id, received_at, body.len(), Answer::ClientGone);
            p.decoded = decode_request(&head, &body)
                .map(|(s, _)| s.into_iter().map(|r| Arc::new(r.into_stream())).collect());
            record(shared, p);
            return;
        }

        let outcome = handle_push(shared, &head, id, received_at, body, &action);
        match action {
            Reply::ResetAfterIngest | Reply::ResetMidResponse => {
                if action == Reply::ResetMidResponse {
                    let full = response_bytes(204, "", &[], false);
                    let _ = writer.write_all(&full[..full.len() / 2]);
                    let _ = writer.flush();
                }
                reset(shared, &writer, id);
                return;
            }
            Reply::Close => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            _ => {}
        }
        let (code, body, headers) = outcome;
        if writer
            .write_all(&response_bytes(code, &body, &headers, !keep_alive))
            .is_err()
            || !keep_alive
        {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Push decoding
// ---------------------------------------------------------------------------------------------

/// A stream as decoded from the wire, before label validation.
struct RawStream {
    raw_labels: String,
    entries: Vec<Entry>,
}

impl RawStream {
    fn into_stream(self) -> Stream {
        let labels = parse_labels(&self.raw_labels)
            .map(|v| v.into_iter().collect())
            .unwrap_or_default();
        Stream {
            labels,
            raw_labels: self.raw_labels,
            entries: self.entries,
        }
    }
}

/// Decodes a push body. `Err` is `(status, Loki text)` for request-level failures.
fn decode_request(head: &Head, body: &[u8]) -> Result<(Vec<RawStream>, bool), String> {
    decode_request_coded(head, body).map_err(|(_, t)| t)
}

fn decode_request_coded(head: &Head, body: &[u8]) -> Result<(Vec<RawStream>, bool), (u16, String)> {
    let bad = |t: String| (400u16, t);
    let ct = head.header("content-type").unwrap_or("");
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media.is_empty() {
        return Err(bad(text::NO_MEDIA_TYPE.to_string()));
    }
    let enc = head.header("content-encoding").unwrap_or("").trim();
    let inflated: Vec<u8>;
    let body: &[u8] = match enc.to_ascii_lowercase().as_str() {
        "" | "snappy" => body,
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .map_err(|e| bad(format!("gzip: {e}")))?;
            inflated = out;
            &inflated
        }
        "deflate" => {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(body)
                .read_to_end(&mut out)
                .map_err(|e| bad(format!("flate: {e}")))?;
            inflated = out;
            &inflated
        }
        _ => return Err(bad(text::content_encoding_not_supported(enc))),
    };
    if media == "application/json" {
        return decode_json(body).map(|s| (s, true)).map_err(bad);
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| bad(format!("snappy: corrupt input ({e})")))?;
    use prost::Message as _;
    let req = PushRequest::decode(raw.as_slice()).map_err(|e| bad(format!("proto: {e}")))?;
    let mut streams = Vec::with_capacity(req.streams.len());
    for s in req.streams {
        let mut entries = Vec::with_capacity(s.entries.len());
        for (i, e) in s.entries.into_iter().enumerate() {
            let line = String::from_utf8(e.line).map_err(|err| {
                bad(format!(
                    "test Loki server: line of entry {i} in stream '{}' is not valid UTF-8: {err}",
                    s.labels
                ))
            })?;
            entries.push(Entry {
                ts_nanos: e.timestamp.map_or(GO_ZERO_TIME_NANOS, Timestamp::to_nanos),
                line,
                metadata: e
                    .structured_metadata
                    .into_iter()
                    .map(|p| (p.name, p.value))
                    .collect(),
            });
        }
        streams.push(RawStream {
            raw_labels: s.labels,
            entries,
        });
    }
    Ok((streams, false))
}

/// Loki's JSON push: `{"streams":[{"stream":{…},"values":[["<ns>","line",{meta}]]}]}`.
fn decode_json(body: &[u8]) -> Result<Vec<RawStream>, String> {
    use serde_json::Value;
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("loghttp.PushRequest: {e}"))?;
    let Some(streams) = v.get("streams").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(streams.len());
    for s in streams {
        let labels = s.get("stream").and_then(Value::as_object);
        let mut map = BTreeMap::new();
        if let Some(obj) = labels {
            for (k, v) in obj {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("loghttp.PushRequest: label {k} is not a string"))?;
                map.insert(k.clone(), v.to_string());
            }
        }
        let raw_labels = normalize_labels(&map);
        let mut entries = Vec::new();
        for val in s
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let arr = val
                .as_array()
                .ok_or("loghttp.PushRequest: value is not an array")?;
            let ts: i128 = arr
                .first()
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok())
                .ok_or("loghttp.PushRequest: timestamp must be a string of Unix nanoseconds")?;
            let line = arr
                .get(1)
                .and_then(Value::as_str)
                .ok_or("loghttp.PushRequest: line must be a string")?
                .to_string();
            let mut metadata = Vec::new();
            if let Some(m) = arr.get(2) {
                let obj = m
                    .as_object()
                    .ok_or("loghttp.PushRequest: structured metadata must be an object")?;
                for (k, v) in obj {
                    let v = v
                        .as_str()
                        .ok_or("loghttp.PushRequest: structured metadata values must be strings")?;
                    metadata.push((k.clone(), v.to_string()));
                }
            }
            entries.push(Entry {
                ts_nanos: ts,
                line,
                metadata,
            });
        }
        out.push(RawStream {
            raw_labels,
            entries,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Ingestion
// ---------------------------------------------------------------------------------------------

struct Pending {
    method: String,
    path: String,
    target: String,
    headers: Vec<(String, String)>,
    conn_id: u64,
    received_at: Instant,
    body_len: usize,
    body: Arc<Vec<u8>>,
    decoded: Result<Vec<Arc<Stream>>, String>,
    entry_count: usize,
    errors: Vec<String>,
    accepted: usize,
    answer: Answer,
}

impl Pending {
    fn new(
        head: &Head,
        conn_id: u64,
        received_at: Instant,
        body_len: usize,
        answer: Answer,
    ) -> Self {
        Pending {
            method: head.method.clone(),
            path: head.path.clone(),
            target: head.target.clone(),
            headers: head.headers.clone(),
            conn_id,
            received_at,
            body_len,
            body: Arc::new(Vec::new()),
            decoded: Err("connection reset before the body was read".to_string()),
            entry_count: 0,
            errors: Vec::new(),
            accepted: 0,
            answer,
        }
    }
}

fn record(shared: &Shared, p: Pending) {
    let mut st = shared.lock();
    record_locked(shared, &mut st, p);
}

fn record_locked(shared: &Shared, st: &mut State, p: Pending) {
    let seq = st.requests.len();
    let entry_count = match &p.decoded {
        Ok(s) if p.entry_count == 0 => s.iter().map(|s| s.entries.len()).sum(),
        _ => p.entry_count,
    };
    st.requests.push(RecordedRequest {
        seq,
        conn_id: p.conn_id,
        received_at: p.received_at,
        method: p.method,
        path: p.path,
        target: p.target,
        headers: p.headers,
        body_len: p.body_len,
        body: p.body,
        decoded: p.decoded,
        entry_count,
        errors: p.errors,
        accepted: p.accepted,
        answer: p.answer,
    });
    shared.changed.notify_all();
}

/// A stream after validation: which entries Loki keeps.
struct Validated {
    stream: Stream,
    normalized: String,
    valid: bool,
    keep: Vec<bool>,
    kept: usize,
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

fn validate(
    raw: Vec<RawStream>,
    limits: &Limits,
    apply_limits: bool,
) -> (Vec<Validated>, Vec<String>) {
    let mut errors = Vec::new();
    let now = now_nanos();
    let mut out = Vec::with_capacity(raw.len());
    for rs in raw {
        let parsed = parse_labels(&rs.raw_labels);
        let mut stream = Stream {
            labels: BTreeMap::new(),
            raw_labels: rs.raw_labels,
            entries: rs.entries,
        };
        let n = stream.entries.len();
        let mut v = Validated {
            normalized: String::new(),
            valid: false,
            keep: Vec::new(),
            kept: 0,
            stream: Stream {
                labels: BTreeMap::new(),
                raw_labels: String::new(),
                entries: Vec::new(),
            },
        };
        let pairs = match parsed {
            Err(e) => {
                errors.push(text::invalid_labels(&stream.raw_labels, &e));
                v.stream = stream;
                out.push(v);
                continue;
            }
            Ok(p) => p,
        };
        let mut dup = None;
        for (k, val) in &pairs {
            if stream.labels.insert(k.clone(), val.clone()).is_some() && dup.is_none() {
                dup = Some(k.clone());
            }
        }
        let normalized = normalize_labels(&stream.labels);
        let stream_err = if pairs.is_empty() {
            Some(text::MISSING_LABELS.to_string())
        } else if let Some(d) = dup {
            Some(text::duplicate_label(&normalized, &d))
        } else {
            limits
                .max_label_names_per_series
                .filter(|&max| apply_limits && stream.labels.len() > max)
                .map(|max| text::too_many_labels(&normalized, stream.labels.len(), max))
        };
        if let Some(e) = stream_err {
            errors.push(e);
            v.stream = stream;
            v.normalized = normalized;
            out.push(v);
            continue;
        }
        let mut keep = vec![true; n];
        if apply_limits {
            let oldest = limits
                .reject_old_samples_max_age
                .map(|d| now - d.as_nanos() as i128);
            let newest = limits
                .creation_grace_period
                .map(|d| now + d.as_nanos() as i128);
            for (i, e) in stream.entries.iter().enumerate() {
                let err = if let Some(o) = oldest.filter(|o| e.ts_nanos < *o) {
                    Some(text::too_old(&normalized, e.ts_nanos, o))
                } else if newest.is_some_and(|nw| e.ts_nanos > nw) {
                    Some(text::too_new(&normalized, e.ts_nanos))
                } else {
                    limits
                        .max_line_size
                        .filter(|&max| max != 0 && e.line.len() > max)
                        .map(|max| text::line_too_long(max, &normalized, e.line.len()))
                };
                if let Some(err) = err {
                    errors.push(err);
                    keep[i] = false;
                }
            }
        }
        v.kept = keep.iter().filter(|k| **k).count();
        v.keep = keep;
        v.valid = true;
        v.stream = stream;
        v.normalized = normalized;
        out.push(v);
    }
    (out, errors)
}

fn entry_hash(normalized: &str, e: &Entry) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    normalized.hash(&mut h);
    e.ts_nanos.hash(&mut h);
    e.line.hash(&mut h);
    h.finish()
}

/// Decodes, validates and ingests one push; records it; returns the HTTP answer to give
/// (ignored by the reset/close actions).
fn handle_push(
    shared: &Shared,
    head: &Head,
    conn_id: u64,
    received_at: Instant,
    body: Vec<u8>,
    action: &Reply,
) -> (u16, String, Vec<(String, String)>) {
    let (limits, keep_entries) = {
        let st = shared.lock();
        (st.limits.clone(), st.keep_entries)
    };
    let body_len = body.len();
    let decoded = decode_request_coded(head, &body);
    let mut p = Pending::new(head, conn_id, received_at, body_len, Answer::Close);
    if keep_entries {
        p.body = Arc::new(body);
    }
    let tenant = head
        .header("x-scope-orgid")
        .filter(|t| !t.is_empty())
        .unwrap_or("fake")
        .to_string();

    let ingest_now = matches!(action, Reply::Loki | Reply::ResetAfterIngest)
        || matches!(action, Reply::Status { code, .. } if (200..300).contains(code) && *code != 260);
    let loki_mode = matches!(action, Reply::Loki | Reply::ResetAfterIngest);

    let raw = match decoded {
        Err((code, t)) => {
            p.decoded = Err(t.clone());
            let reply = match action {
                Reply::Status { code: c, .. } if !(200..300).contains(c) => status_of(action),
                _ => (code, format!("{t}\n"), Vec::new()),
            };
            p.answer = answer_for(action, &reply);
            record(shared, p);
            return reply;
        }
        Ok((raw, _json)) => raw,
    };

    // Loki-mode request-level checks.
    if loki_mode {
        let err = if limits.require_tenant && head.header("x-scope-orgid").is_none_or(str::is_empty)
        {
            Some((401u16, text::NO_ORG_ID.to_string()))
        } else if raw.is_empty() {
            Some((422u16, text::NO_VALID_STREAMS.to_string()))
        } else {
            None
        };
        if let Some((code, t)) = err {
            p.decoded = Ok(raw.into_iter().map(|r| Arc::new(r.into_stream())).collect());
            let reply = (code, format!("{t}\n"), Vec::new());
            p.answer = answer_for(action, &reply);
            record(shared, p);
            return reply;
        }
    }

    let (validated, errors) = validate(raw, &limits, loki_mode);
    p.errors = errors;

    let mut st = shared.lock();
    let mut stream_limit_err: Option<String> = None;
    let mut accepted_total = 0usize;
    let mut records_total = 0usize;
    let mut decoded_streams = Vec::with_capacity(validated.len());
    for mut v in validated {
        let total = v.stream.entries.len();
        p.entry_count += total;
        let ingest = ingest_now && v.valid && v.kept > 0;
        let mut accepted_stream = None;
        if ingest {
            if loki_mode && !st.known_streams.contains(&v.normalized) {
                if let Some(max) = limits.max_streams {
                    if st.known_streams.len() >= max {
                        stream_limit_err
                            .get_or_insert_with(|| text::stream_limit(&v.normalized, &tenant));
                        let s = Arc::new(strip(v.stream, keep_entries));
                        decoded_streams.push(s);
                        continue;
                    }
                }
            }
            st.known_streams.insert(v.normalized.clone());
            for (i, e) in v.stream.entries.iter().enumerate() {
                if v.keep[i] && !st.seen_entries.insert(entry_hash(&v.normalized, e)) {
                    st.duplicates += 1;
                }
            }
            accepted_total += v.kept;
            let records: usize = v
                .stream
                .entries
                .iter()
                .zip(&v.keep)
                .filter(|(_, k)| **k)
                .map(|(e, _)| 1 + e.line.matches('\n').count())
                .sum();
            records_total += records;
            if v.kept == total {
                let s = Arc::new(strip(v.stream, keep_entries));
                accepted_stream = Some((Arc::clone(&s), v.kept, records));
                decoded_streams.push(s);
            } else {
                let kept: Vec<Entry> = v
                    .stream
                    .entries
                    .iter()
                    .zip(&v.keep)
                    .filter(|(_, k)| **k)
                    .map(|(e, _)| e.clone())
                    .collect();
                let part = Stream {
                    labels: v.stream.labels.clone(),
                    raw_labels: v.stream.raw_labels.clone(),
                    entries: if keep_entries { kept } else { Vec::new() },
                };
                accepted_stream = Some((Arc::new(part), v.kept, records));
                v.stream = strip(v.stream, keep_entries);
                decoded_streams.push(Arc::new(v.stream));
            }
        } else {
            decoded_streams.push(Arc::new(strip(v.stream, keep_entries)));
        }
        if let Some((stream, count, records)) = accepted_stream {
            st.accepted.push(AcceptedStream {
                stream,
                count,
                records,
            });
        }
    }
    p.decoded = Ok(decoded_streams);
    p.accepted = accepted_total;
    shared
        .entry_count
        .fetch_add(accepted_total, Ordering::SeqCst);
    shared
        .record_count
        .fetch_add(records_total, Ordering::SeqCst);

    let reply = if loki_mode {
        if let Some(t) = stream_limit_err {
            (429, format!("{t}\n"), Vec::new())
        } else if !p.errors.is_empty() {
            (400, format!("{}\n", text::grouped(&p.errors)), Vec::new())
        } else {
            (204, String::new(), Vec::new())
        }
    } else {
        status_of(action)
    };
    p.answer = answer_for(action, &reply);
    record_locked(shared, &mut st, p);
    reply
}

fn strip(mut s: Stream, keep_entries: bool) -> Stream {
    if !keep_entries {
        s.entries = Vec::new();
    }
    s
}

fn status_of(action: &Reply) -> (u16, String, Vec<(String, String)>) {
    match action {
        Reply::Status {
            code,
            body,
            headers,
        } => (*code, body.clone(), headers.clone()),
        _ => (204, String::new(), Vec::new()),
    }
}

fn answer_for(action: &Reply, reply: &(u16, String, Vec<(String, String)>)) -> Answer {
    match action {
        Reply::ResetAfterIngest => Answer::ResetAfterIngest,
        Reply::ResetMidResponse => Answer::ResetMidResponse,
        Reply::Close => Answer::Close,
        Reply::Reset => Answer::Reset,
        _ => Answer::Status {
            code: reply.0,
            body: reply.1.clone(),
        },
    }
}
