//! Parse: one decoded log line in, one [`Record`] out.
//!
//! **In:** the content of one log entry (the CRI/docker envelope already removed), as bytes that may
//! be invalid UTF-8, plus a [`Hint`] from the route that says which parser to try first.
//! **Out:** a [`Record`] whose fields are *spans* into the line: no copy, no allocation per line
//! (the record's `fields` vector is reused between lines).
//! **Guarantees:** [`parse_into`] never fails and never panics: anything it does not recognise is
//! [`Format::Plain`] with an [`UnparsedReason`] from a closed set, and the line is still shipped.
//!
//! Formats: Velero logrus text and JSON, Gin access/debug/error lines, the Velero CLI output of
//! backup CronJobs, Go `log`, klog and zap console lines (see the README's parser table).

use std::borrow::Cow;

pub mod cli;
pub mod combinators;
pub mod gin;
pub mod logrus;
pub mod logrus_json;
pub mod other;

/// The most fields a [`Record`] keeps for one line. The record is reused, so this also bounds the
/// memory it retains; fields past the cap are dropped (the raw line is still shipped whole).
pub const MAX_FIELDS: usize = 256;

/// A byte range `start..end` into the line a [`Record`] was parsed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// Builds a span from `usize` offsets (lines are capped far below 4 GiB).
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The bytes this span covers in `line` (empty if the span does not fit the line).
    pub fn get<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        line.get(self.start as usize..self.end as usize)
            .unwrap_or(&[])
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    /// True when the span covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a value's bytes are written in the line, which decides how to unescape them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Written as is (logrus bare value, Gin path before 1.6, CLI name).
    Bare,
    /// Go `strconv.Quote` content without the surrounding quotes (`\"`, `\\`, `\n`, `\xNN`, `\uNNNN`).
    GoQuoted,
    /// JSON string content without the surrounding quotes (`\"`, `\u003c`, …).
    JsonString,
    /// A JSON number, bool, null, array or object, verbatim.
    JsonRaw,
}

/// A value inside a line: where it is and how it is escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    /// The value's bytes, without surrounding quotes.
    pub span: Span,
    /// How those bytes are escaped.
    pub kind: ValueKind,
}

impl Value {
    /// The raw (still escaped) bytes.
    pub fn raw<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        self.span.get(line)
    }

    /// The unescaped text. Borrows when nothing needs unescaping; invalid UTF-8 becomes U+FFFD.
    /// A JSON object of the shape `{"Namespace":"ns","Name":"n"}` (a Go `types.NamespacedName`)
    /// is rendered as `ns/n`, the way the text format writes it.
    pub fn text<'a>(&self, line: &'a [u8]) -> Cow<'a, str> {
        combinators::unescape(self.raw(line), self.kind)
    }
}

/// One `key=value` (or JSON member) of a structured line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The key as written (logrus keys are never escaped and may contain spaces).
    pub key: Span,
    /// The value.
    pub value: Value,
}

/// Which parser recognised the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Velero/logrus `TextFormatter`: `time="…" level=… msg=… k=v …`.
    LogrusText,
    /// Velero/logrus `JSONFormatter` (`--log-format=json`).
    LogrusJson,
    /// A Gin access line `[GIN] date | status | latency | ip | METHOD "path"`.
    GinAccess,
    /// A Gin `Error #NN: …` or `     Meta: …` continuation line.
    GinError,
    /// A `[GIN-debug] …` line (routes, listening, `[WARNING]`, `[ERROR]`).
    GinDebug,
    /// Velero CLI output of a backup CronJob (`Backup request "…" submitted successfully.`, …).
    VeleroCli,
    /// Go standard library `log` line: `2006/01/02 15:04:05 message`.
    GoLog,
    /// klog: `I0926 07:11:01.968901       1 file.go:665] message`.
    Klog,
    /// zap console (development) line: `<ts>\tINFO\t<logger>\t<msg>\t{json}`.
    Zap,
    /// Not recognised: shipped as is, counted by [`UnparsedReason`].
    Plain,
}

impl Format {
    /// Stable lower-case name used in `veloki parse` output and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::LogrusText => "logrus",
            Format::LogrusJson => "logrus_json",
            Format::GinAccess => "gin",
            Format::GinError => "gin_error",
            Format::GinDebug => "gin_debug",
            Format::VeleroCli => "velero_cli",
            Format::GoLog => "go_log",
            Format::Klog => "klog",
            Format::Zap => "zap",
            Format::Plain => "plain",
        }
    }
}

/// The level a line states about itself, in logrus vocabulary (other formats are mapped onto it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// logrus `trace`.
    Trace,
    /// `debug`, klog/zap `DEBUG`.
    Debug,
    /// `info`, klog `I`, zap `INFO`.
    Info,
    /// `warning`/`warn`, klog `W`, zap `WARN`.
    Warning,
    /// `error`, klog `E`, zap `ERROR`.
    Error,
    /// `fatal`, klog `F`, zap `FATAL`/`DPANIC`.
    Fatal,
    /// `panic`, zap `PANIC`, a Go runtime panic.
    Panic,
}

impl Level {
    /// Parses a level word in any of the spellings the supported formats use (case-insensitive).
    pub fn from_word(w: &[u8]) -> Option<Level> {
        let mut buf = [0u8; 8];
        if w.is_empty() || w.len() > buf.len() {
            return None;
        }
        for (i, b) in w.iter().enumerate() {
            buf[i] = b.to_ascii_lowercase();
        }
        Some(match &buf[..w.len()] {
            b"trace" => Level::Trace,
            b"debug" | b"debu" => Level::Debug,
            b"info" => Level::Info,
            b"warning" | b"warn" => Level::Warning,
            b"error" | b"erro" => Level::Error,
            b"fatal" | b"fata" | b"dpanic" => Level::Fatal,
            b"panic" | b"pani" => Level::Panic,
            _ => return None,
        })
    }

    /// The logrus spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Fatal => "fatal",
            Level::Panic => "panic",
        }
    }
}

/// Why a line was not recognised. A closed set: it is a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnparsedReason {
    /// The line is empty or only white space.
    Empty,
    /// No parser claims the line.
    UnknownFormat,
    /// Starts like logrus text but does not follow its grammar.
    MalformedLogrus,
    /// Starts with `{` but is not a logrus JSON object.
    MalformedJson,
    /// Starts with `[GIN]` but is not an access line.
    MalformedGin,
    /// A line of a Go runtime panic or fatal-error dump (`panic: …`, `goroutine 1 [running]:`,
    /// a stack frame): recognised, but unstructured. The level is set where the line starts a
    /// panic or fatal error.
    GoPanic,
}

impl UnparsedReason {
    /// Every reason, for metric pre-registration and cardinality tests.
    pub const ALL: [UnparsedReason; 6] = [
        UnparsedReason::Empty,
        UnparsedReason::UnknownFormat,
        UnparsedReason::MalformedLogrus,
        UnparsedReason::MalformedJson,
        UnparsedReason::MalformedGin,
        UnparsedReason::GoPanic,
    ];

    /// Stable snake_case name (metric label value).
    pub fn as_str(&self) -> &'static str {
        match self {
            UnparsedReason::Empty => "empty",
            UnparsedReason::UnknownFormat => "unknown_format",
            UnparsedReason::MalformedLogrus => "malformed_logrus",
            UnparsedReason::MalformedJson => "malformed_json",
            UnparsedReason::MalformedGin => "malformed_gin",
            UnparsedReason::GoPanic => "go_panic",
        }
    }
}

/// The parsed cells of a Gin access line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GinAccess {
    /// The timestamp cell as written (`2025/08/31 - 21:30:57`, local time of the app).
    pub time: Span,
    /// HTTP status code.
    pub status: u16,
    /// Latency in seconds, parsed from the Go duration (`612ns` … `2h3m4.5s`).
    pub latency_seconds: f64,
    /// The latency cell as written (`1.409309ms`).
    pub latency: Span,
    /// Client IP as written (may be IPv6, empty, or any string a proxy header supplied).
    pub client_ip: Span,
    /// HTTP method.
    pub method: Span,
    /// The path without the query: Go-quoted content (Gin ≥ 1.6) or bare (older Gin).
    pub path: Value,
    /// The raw query after `?`, if any, escaped like `path`.
    pub query: Option<Value>,
}

/// What a Velero CLI line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CliEvent {
    /// `Backup request "<name>" submitted successfully.`
    BackupSubmitted {
        /// The backup name.
        name: Span,
    },
    /// `Backup completed with status: <Phase>. You may check … velero backup describe <name> …`
    BackupCompleted {
        /// The phase word (`Completed`, `PartiallyFailed`, `Failed`, `FailedValidation`).
        phase: Span,
        /// The backup name taken from the `velero backup describe <name>` hint, when present.
        name: Option<Span>,
    },
    /// `Restore request "<name>" submitted successfully.`
    RestoreSubmitted {
        /// The restore name.
        name: Span,
    },
    /// `Restore completed with status: <Phase>. You may check … velero restore describe <name> …`
    RestoreCompleted {
        /// The phase word (`Completed`, `PartiallyFailed`, `Failed`, `FailedValidation`).
        phase: Span,
        /// The restore name taken from the `velero restore describe <name>` hint, when present.
        name: Option<Span>,
    },
    /// `Waiting for backup to complete. …`, a line of waiting dots, or another informational line.
    Info,
    /// `An error occurred: …` (cobra) or `Error waiting: …`.
    Error,
}

pub use crate::model::Hint;

/// The result of parsing one line: spans into that line, nothing copied.
#[derive(Clone, Debug)]
pub struct Record {
    /// Which parser recognised the line.
    pub format: Format,
    /// The line's own level, when it states one.
    pub level: Option<Level>,
    /// The timestamp the line carries, as written.
    pub time: Option<Span>,
    /// The message (`msg`, zap/klog/log message, Gin debug text).
    pub msg: Option<Value>,
    /// Structured fields other than time/level/msg, in line order.
    pub fields: Vec<Field>,
    /// Gin access cells, for [`Format::GinAccess`].
    pub gin: Option<GinAccess>,
    /// CLI meaning, for [`Format::VeleroCli`].
    pub cli: Option<CliEvent>,
    /// Why the line was not recognised, for [`Format::Plain`].
    pub unparsed: Option<UnparsedReason>,
}

impl Default for Record {
    fn default() -> Self {
        Record::new()
    }
}

impl Record {
    /// An empty record; reuse it across lines with [`parse_into`].
    pub fn new() -> Record {
        Record {
            format: Format::Plain,
            level: None,
            time: None,
            msg: None,
            fields: Vec::with_capacity(16),
            gin: None,
            cli: None,
            unparsed: None,
        }
    }

    /// Resets every member, keeping the fields' capacity.
    pub fn clear(&mut self) {
        self.format = Format::Plain;
        self.level = None;
        self.time = None;
        self.msg = None;
        self.fields.clear();
        self.gin = None;
        self.cli = None;
        self.unparsed = None;
    }

    /// The first field whose key is exactly `key`.
    pub fn field(&self, line: &[u8], key: &[u8]) -> Option<Value> {
        self.fields
            .iter()
            .find(|f| f.key.get(line) == key)
            .map(|f| f.value)
    }
}

/// Parses `line` into `rec` (cleared first). Never fails, never panics; see the module docs.
pub fn parse_into(line: &[u8], hint: Hint, rec: &mut Record) {
    rec.clear();
    dispatch(line, hint, rec);
    if rec.format == Format::Plain && rec.unparsed.is_none() {
        rec.unparsed = Some(if line.iter().all(|b| b.is_ascii_whitespace()) {
            UnparsedReason::Empty
        } else {
            UnparsedReason::UnknownFormat
        });
    }
}

/// A parser entry point: fills `rec` and returns true, or returns false (`rec` may be dirty).
type Parser = fn(&[u8], &mut Record) -> bool;

/// Runs `parser`; on failure resets `rec` so the next parser starts clean.
fn attempt(parser: Parser, line: &[u8], rec: &mut Record) -> bool {
    if parser(line, rec) {
        true
    } else {
        rec.clear();
        false
    }
}

/// Runs `parser` on a line whose first bytes commit it to that format; on failure the line is
/// `Plain` with `reason`.
fn committed(parser: Parser, line: &[u8], rec: &mut Record, reason: UnparsedReason) {
    if !attempt(parser, line, rec) {
        rec.unparsed = Some(reason);
    }
}

fn dispatch(line: &[u8], hint: Hint, rec: &mut Record) {
    if hint == Hint::None {
        return;
    }
    // A CronJob pod prints only CLI output: try it first there.
    if hint == Hint::VeleroCli && attempt(cli::parse, line, rec) {
        return;
    }
    // Sniff by the first bytes. The shapes are disjoint, so the hint only decides the order of
    // the free-text fallbacks below.
    match line.first().copied().unwrap_or(b' ') {
        b't' if line.starts_with(b"time=") => {
            committed(logrus::parse, line, rec, UnparsedReason::MalformedLogrus)
        }
        b'l' if line.starts_with(b"level=") => {
            committed(logrus::parse, line, rec, UnparsedReason::MalformedLogrus)
        }
        b'{' => committed(logrus_json::parse, line, rec, UnparsedReason::MalformedJson),
        b'[' if line.starts_with(b"[GIN]") => {
            committed(gin::parse_access, line, rec, UnparsedReason::MalformedGin)
        }
        b'[' if line.starts_with(b"[GIN-debug]") => {
            attempt(gin::parse_debug, line, rec);
        }
        b'A'..=b'Z' | 0x1b if logrus::looks_like_tty(line) && attempt(logrus::parse, line, rec) => {
        }
        _ => {
            let order: &[Parser] = match hint {
                Hint::Gin => &[
                    gin::parse_error_line,
                    other::parse_go_log,
                    other::parse,
                    cli::parse,
                ],
                _ => &[gin::parse_error_line, cli::parse, other::parse],
            };
            let _ = order.iter().any(|p| attempt(*p, line, rec));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str, hint: Hint) -> Record {
        let mut rec = Record::new();
        parse_into(line.as_bytes(), hint, &mut rec);
        rec
    }

    #[test]
    fn dispatch_table() {
        use Format::*;
        let cases: &[(&str, Hint, Format, Option<UnparsedReason>)] = &[
            ("time=\"2025-01-01T00:00:00Z\" level=info msg=x", Hint::Auto, LogrusText, None),
            ("level=info msg=x", Hint::Velero, LogrusText, None),
            ("time=\"2025-01-01T00:00:00Z\" msg=no-level", Hint::Auto, Plain, Some(UnparsedReason::MalformedLogrus)),
            ("INFO[0001] hello   k=v", Hint::Auto, LogrusText, None),
            ("\x1b[36mINFO\x1b[0m[0001] hello", Hint::Velero, LogrusText, None),
            ("{\"level\":\"info\",\"msg\":\"x\",\"time\":\"t\"}", Hint::Auto, LogrusJson, None),
            ("{not json", Hint::Velero, Plain, Some(UnparsedReason::MalformedJson)),
            ("[GIN] 2025/09/13 - 10:15:30 | 200 |      41.237\u{b5}s |        10.1.0.1 | GET      \"/api/v1/health\"", Hint::Gin, GinAccess, None),
            ("[GIN] garbage", Hint::Auto, Plain, Some(UnparsedReason::MalformedGin)),
            ("[GIN-debug] Listening and serving HTTP on :8080", Hint::Gin, GinDebug, None),
            ("Error #01: rate limit exceded", Hint::Gin, GinError, None),
            ("     Meta: x", Hint::Auto, GinError, None),
            ("Backup request \"b\" submitted successfully.", Hint::VeleroCli, VeleroCli, None),
            ("Backup request \"b\" submitted successfully.", Hint::Auto, VeleroCli, None),
            ("..........", Hint::VeleroCli, VeleroCli, None),
            ("2025/09/13 10:00:00 OIDC authentication disabled", Hint::Gin, GoLog, None),
            ("2025/09/13 10:00:00 OIDC authentication disabled", Hint::VeleroCli, GoLog, None),
            ("\x1b[31m2025/09/13 10:20:00 [Recovery] 2025/09/13 - 10:20:00 panic recovered:", Hint::Gin, GoLog, None),
            ("I0926 07:11:01.968901       1 request.go:665] Waited", Hint::Velero, Klog, None),
            ("1.675757442435557e+09\tINFO\tsetup\tstarting manager", Hint::Auto, Zap, None),
            ("panic: boom", Hint::Auto, Plain, Some(UnparsedReason::GoPanic)),
            ("Warning: Failed to save default admin user: x", Hint::Gin, Plain, Some(UnparsedReason::UnknownFormat)),
            ("INFORMATION only", Hint::Auto, Plain, Some(UnparsedReason::UnknownFormat)),
            ("", Hint::Auto, Plain, Some(UnparsedReason::Empty)),
            ("  \t ", Hint::Gin, Plain, Some(UnparsedReason::Empty)),
            ("time=\"2025-01-01T00:00:00Z\" level=info msg=x", Hint::None, Plain, Some(UnparsedReason::UnknownFormat)),
        ];
        for (line, hint, format, reason) in cases {
            let rec = parsed(line, *hint);
            assert_eq!(rec.format, *format, "{line:?} {hint:?}");
            assert_eq!(rec.unparsed, *reason, "{line:?} {hint:?}");
            if rec.format == Plain && rec.unparsed != Some(UnparsedReason::GoPanic) {
                assert_eq!(
                    (rec.level, rec.msg, rec.fields.len()),
                    (None, None, 0),
                    "{line:?}"
                );
            }
        }
    }

    #[test]
    fn failed_parsers_leave_no_trace() {
        // Logrus fills fields before discovering there is no level: they must be cleared.
        let rec = parsed("time=\"t\" a=1 b=2 c=3", Hint::Auto);
        assert_eq!(rec.unparsed, Some(UnparsedReason::MalformedLogrus));
        assert!(rec.fields.is_empty() && rec.time.is_none());
        // A reused record carries nothing over.
        let mut rec = Record::new();
        parse_into(b"{\"level\":\"info\",\"a\":1}", Hint::Auto, &mut rec);
        assert_eq!(rec.fields.len(), 1);
        parse_into(b"[GIN] x", Hint::Auto, &mut rec);
        assert!(rec.fields.is_empty() && rec.level.is_none() && rec.gin.is_none());
    }

    #[test]
    fn reasons_are_closed_and_named() {
        let names: Vec<&str> = UnparsedReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "empty",
                "unknown_format",
                "malformed_logrus",
                "malformed_json",
                "malformed_gin",
                "go_panic"
            ]
        );
    }
}
