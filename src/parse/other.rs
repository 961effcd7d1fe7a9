//! The other line shapes found next to Velero and Gin output: Go's standard `log`, klog, zap
//! console (development) lines, and Go runtime panic dumps.
//!
//! ```text
//! go_log = *ansi_sgr date " " time ["." 1*DIGIT] [" " msg]     ; 2023/12/30 21:05:01 message
//! klog   = ("I" / "W" / "E" / "F") mmdd " " time "." 1*DIGIT 1*SP tid " " file "]" [" "] msg
//! zap    = ts HTAB LEVEL [HTAB *(segment HTAB) msg [HTAB json_object]]
//! panic  = "panic: " … / "fatal error: " … / "goroutine " 1*DIGIT " [" … / "[signal " …
//!        / "created by " … / HTAB path ".go:" …
//! ```
//!
//! Go `log` lines get a level only when the message clearly states one (`[ERROR]`, `Warning:`,
//! `⚠️`, Gin's `[Recovery] … panic recovered`, …). Panic-dump lines stay [`Format::Plain`] with
//! [`UnparsedReason::GoPanic`], at level panic/fatal on the line that starts the dump.

use memchr::{memchr, memmem, memrchr};

use super::combinators::{ansi_sgr, span_of, Error};
use super::logrus_json::object_fields;
use super::{Format, Level, Record, UnparsedReason, Value, ValueKind};

/// Parses one line into `rec`; false if the line is none of the shapes above.
pub fn parse(line: &[u8], rec: &mut Record) -> bool {
    parse_go_log(line, rec)
        || parse_klog(line, rec)
        || parse_zap(line, rec)
        || parse_go_panic(line, rec)
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\r' | b'\n' | b'\t'))
        .map_or(0, |p| p + 1);
    &b[..n]
}

/// True when `b` starts with `pat`, where `D` in `pat` stands for any ASCII digit.
fn shape(b: &[u8], pat: &[u8]) -> bool {
    b.len() >= pat.len()
        && pat.iter().zip(b).all(|(&p, &c)| {
            if p == b'D' {
                c.is_ascii_digit()
            } else {
                p == c
            }
        })
}

fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

fn bare(line: &[u8], part: &[u8]) -> Value {
    Value {
        span: span_of(line, part),
        kind: ValueKind::Bare,
    }
}

/// Parses a Go standard `log` line (`LstdFlags`, optionally `Lmicroseconds`, optionally after a
/// colour escape as Gin's Recovery logger writes it).
pub fn parse_go_log(line: &[u8], rec: &mut Record) -> bool {
    let mut body = line;
    while let Ok((rest, _)) = ansi_sgr::<Error>(body) {
        body = rest;
    }
    if !shape(body, b"DDDD/DD/DD DD:DD:DD") {
        return false;
    }
    let mut end = 19;
    if body.get(end) == Some(&b'.') {
        let n = digits(&body[end + 1..]);
        if n == 0 {
            return false;
        }
        end += 1 + n;
    }
    let msg = match body.get(end) {
        None => &body[end..],
        Some(b' ') => trim_end(&body[end + 1..]),
        Some(_) => return false,
    };
    rec.format = Format::GoLog;
    rec.time = Some(span_of(line, &body[..end]));
    rec.level = stated_level(msg);
    rec.msg = Some(bare(line, msg));
    true
}

/// The level a free-text message states about itself, if it clearly does.
fn stated_level(msg: &[u8]) -> Option<Level> {
    const TABLE: &[(&[u8], Level)] = &[
        (b"[ERROR]", Level::Error),
        (b"[ERR]", Level::Error),
        (b"ERROR:", Level::Error),
        (b"ERROR ", Level::Error),
        (b"Error:", Level::Error),
        (b"error:", Level::Error),
        ("❌".as_bytes(), Level::Error),
        (b"[Recovery]", Level::Error),
        (b"http: panic serving", Level::Error),
        (b"[WARN]", Level::Warning),
        (b"[WARNING]", Level::Warning),
        (b"WARN:", Level::Warning),
        (b"WARN ", Level::Warning),
        (b"WARNING:", Level::Warning),
        (b"Warning:", Level::Warning),
        (b"warning:", Level::Warning),
        ("⚠".as_bytes(), Level::Warning),
        (b"[INFO]", Level::Info),
        (b"[DEBUG]", Level::Debug),
        (b"panic:", Level::Panic),
        (b"fatal error:", Level::Fatal),
        (b"[FATAL]", Level::Fatal),
    ];
    TABLE
        .iter()
        .find(|(prefix, _)| msg.starts_with(prefix))
        .map(|(_, level)| *level)
}

/// Parses a klog line: `I0926 07:11:01.968901       1 request.go:665] message`.
pub fn parse_klog(line: &[u8], rec: &mut Record) -> bool {
    let level = match line.first() {
        Some(b'I') => Level::Info,
        Some(b'W') => Level::Warning,
        Some(b'E') => Level::Error,
        Some(b'F') => Level::Fatal,
        _ => return false,
    };
    if !shape(&line[1..], b"DDDD DD:DD:DD.") {
        return false;
    }
    let mut end = 15;
    let n = digits(&line[end..]);
    if n == 0 {
        return false;
    }
    end += n;
    let time = &line[1..end];
    let rest = &line[end..];
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    let rest = &rest[spaces..];
    let tid = digits(rest);
    if spaces == 0 || tid == 0 || rest.get(tid) != Some(&b' ') {
        return false;
    }
    let rest = &rest[tid + 1..];
    // `file.go:665]`: no spaces before the bracket.
    let Some(close) = rest.iter().position(|&b| b == b']' || b == b' ') else {
        return false;
    };
    if rest[close] != b']' || close == 0 {
        return false;
    }
    let msg = &rest[close + 1..];
    let msg = trim_end(msg.strip_prefix(b" ").unwrap_or(msg));
    rec.format = Format::Klog;
    rec.level = Some(level);
    rec.time = Some(span_of(line, time));
    rec.msg = Some(bare(line, msg));
    true
}

/// Parses a zap console line: `1.675757442435557e+09\tINFO\tlogger\tmessage\t{"k": "v"}` (or an
/// ISO-8601 timestamp). The message is the last segment before the optional JSON context, whose
/// members become fields.
pub fn parse_zap(line: &[u8], rec: &mut Record) -> bool {
    let Some(tab) = memchr(b'\t', line) else {
        return false;
    };
    let ts = &line[..tab];
    let ts_ok = ts.first().is_some_and(u8::is_ascii_digit)
        && ts.iter().all(|b| {
            b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b':' | b'T' | b'Z')
        });
    if !ts_ok {
        return false;
    }
    let rest = &line[tab + 1..];
    let level_end = memchr(b'\t', rest).unwrap_or(rest.len());
    let Some(level) = Level::from_word(trim_end(&rest[..level_end])) else {
        return false;
    };
    rec.format = Format::Zap;
    rec.level = Some(level);
    rec.time = Some(span_of(line, ts));
    let Some(after_level) = rest.get(level_end + 1..) else {
        return true;
    };
    let mut region = trim_end(after_level);
    if let Some(t) = memrchr(b'\t', region) {
        let last = &region[t + 1..];
        if last.first() == Some(&b'{') && object_fields(line, last, rec) {
            region = &region[..t];
        }
    }
    let msg = match memrchr(b'\t', region) {
        Some(t) => &region[t + 1..],
        None => region,
    };
    rec.msg = Some(bare(line, msg));
    true
}

/// Recognises a line of a Go runtime panic / fatal-error dump.
pub fn parse_go_panic(line: &[u8], rec: &mut Record) -> bool {
    let text = trim_end(line);
    let level = if text.starts_with(b"panic: ") || text.starts_with(b"\tpanic: ") {
        Some(Level::Panic)
    } else if text.starts_with(b"fatal error: ") {
        Some(Level::Fatal)
    } else if is_goroutine_header(text)
        || text.starts_with(b"[signal ")
        || text.starts_with(b"created by ")
        || (text.first() == Some(&b'\t') && memmem::find(text, b".go:").is_some())
    {
        None
    } else {
        return false;
    };
    rec.format = Format::Plain;
    rec.unparsed = Some(UnparsedReason::GoPanic);
    rec.level = level;
    rec.msg = Some(bare(line, text));
    true
}

/// `"goroutine " 1*DIGIT " [" … "]:"`
fn is_goroutine_header(text: &[u8]) -> bool {
    let Some(rest) = text.strip_prefix(b"goroutine ") else {
        return false;
    };
    let n = digits(rest);
    n > 0 && rest[n..].starts_with(b" [") && text.ends_with(b"]:")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> Option<Record> {
        let mut rec = Record::new();
        parse(line.as_bytes(), &mut rec).then_some(rec)
    }

    fn msg(line: &str, rec: &Record) -> String {
        rec.msg.unwrap().text(line.as_bytes()).into_owned()
    }

    #[test]
    fn go_log_lines() {
        let cases: &[(&str, &str, Option<Level>, &str)] = &[
            ("2023/12/30 21:05:01 http: TLS handshake error from 10.0.0.1:5000: EOF", "2023/12/30 21:05:01", None, "http: TLS handshake error from 10.0.0.1:5000: EOF"),
            ("2025/09/13 10:00:00 🚀 Velero Manager starting on :8080", "2025/09/13 10:00:00", None, "🚀 Velero Manager starting on :8080"),
            ("2025/09/13 10:01:01 ⚠️  Failed to collect Velero metrics: the server could not find the requested resource", "2025/09/13 10:01:01", Some(Level::Warning), "⚠️  Failed to collect Velero metrics: the server could not find the requested resource"),
            ("2025/09/13 10:00:31 📈 Velero metrics updated at 10:00:31", "2025/09/13 10:00:31", None, "📈 Velero metrics updated at 10:00:31"),
            ("\x1b[31m2025/09/13 10:20:00 [Recovery] 2025/09/13 - 10:20:00 panic recovered:", "2025/09/13 10:20:00", Some(Level::Error), "[Recovery] 2025/09/13 - 10:20:00 panic recovered:"),
            ("2025/09/13 10:20:00.123456 [ERROR] boom", "2025/09/13 10:20:00.123456", Some(Level::Error), "[ERROR] boom"),
            ("2025/09/13 10:20:00 http: panic serving 10.0.0.1:1234: oops", "2025/09/13 10:20:00", Some(Level::Error), "http: panic serving 10.0.0.1:1234: oops"),
            ("2025/09/13 10:20:00", "2025/09/13 10:20:00", None, ""),
        ];
        for (line, time, level, text) in cases {
            let rec = run(line).unwrap_or_else(|| panic!("{line:?}"));
            assert_eq!(rec.format, Format::GoLog, "{line:?}");
            assert_eq!(rec.time.unwrap().get(line.as_bytes()), time.as_bytes());
            assert_eq!(rec.level, *level, "{line:?}");
            assert_eq!(msg(line, &rec), *text);
        }
        for line in [
            "2025/09/13 10:20:00x",
            "2025/09/13 10:20:00. x",
            "2025-09-13 10:20:00 x",
            "2025/09/13",
        ] {
            assert!(!parse_go_log(line.as_bytes(), &mut Record::new()), "{line}");
        }
    }

    #[test]
    fn klog_lines() {
        let line = "I0926 07:11:01.968901       1 request.go:665] Waited for 1.0s due to client-side throttling, not priority and fairness";
        let rec = run(line).unwrap();
        assert_eq!((rec.format, rec.level), (Format::Klog, Some(Level::Info)));
        assert_eq!(
            rec.time.unwrap().get(line.as_bytes()),
            b"0926 07:11:01.968901"
        );
        assert!(msg(line, &rec).starts_with("Waited for 1.0s"));
        for (line, level) in [
            (
                "W0926 07:11:01.968901 12 reflector.go:324] watch ended",
                Level::Warning,
            ),
            (
                "E1231 23:59:59.000001   7 leaderelection.go:1] error retrieving resource lock",
                Level::Error,
            ),
            ("F0101 00:00:00.000000   1 main.go:9] fatal", Level::Fatal),
        ] {
            let rec = run(line).unwrap();
            assert_eq!(
                (rec.format, rec.level),
                (Format::Klog, Some(level)),
                "{line}"
            );
        }
        for line in [
            "I0926 07:11:01 1 a.go:1] x",
            "I0926 07:11:01.9 a.go:1] x",
            "I0926 07:11:01.9 1 a b.go:1] x",
            "Info 07",
        ] {
            assert!(!parse_klog(line.as_bytes(), &mut Record::new()), "{line}");
        }
    }

    #[test]
    fn zap_lines() {
        let line = "1.675757442435557e+09\tINFO\tcontroller-runtime.metrics\tMetrics server is starting to listen\t{\"addr\": \":8080\"}";
        let rec = run(line).unwrap();
        let l = line.as_bytes();
        assert_eq!((rec.format, rec.level), (Format::Zap, Some(Level::Info)));
        assert_eq!(rec.time.unwrap().get(l), b"1.675757442435557e+09");
        assert_eq!(msg(line, &rec), "Metrics server is starting to listen");
        assert_eq!(rec.field(l, b"addr").unwrap().text(l), ":8080");

        let line = "2022-09-26T07:11:06.973Z\tERROR\tcontroller.podvolumebackup\tReconciler error\t{\"name\": \"pvb-1\", \"error\": \"boom \\\"x\\\"\", \"attempt\": 3}";
        let rec = run(line).unwrap();
        let l = line.as_bytes();
        assert_eq!(rec.level, Some(Level::Error));
        assert_eq!(msg(line, &rec), "Reconciler error");
        assert_eq!(rec.fields.len(), 3);
        assert_eq!(rec.field(l, b"error").unwrap().text(l), "boom \"x\"");

        let line = "2022-09-26T07:11:06.973Z\tDPANIC\tjust a message";
        let rec = run(line).unwrap();
        assert_eq!(
            (rec.level, msg(line, &rec).as_str()),
            (Some(Level::Fatal), "just a message")
        );
        // A message that looks like JSON but is not an object stays the message.
        let line = "1.6e+09\tWARN\tlog\t{not json";
        assert_eq!(msg(line, &run(line).unwrap()), "{not json");
        assert!(!parse_zap(b"abc\tINFO\tx", &mut Record::new()));
        assert!(!parse_zap(b"1.6e+09\tNOTICE\tx", &mut Record::new()));
    }

    #[test]
    fn go_panic_lines() {
        let cases: &[(&str, Option<Level>)] = &[
            ("panic: runtime error: invalid memory address or nil pointer dereference [recovered]", Some(Level::Panic)),
            ("\tpanic: runtime error: invalid memory address or nil pointer dereference", Some(Level::Panic)),
            ("fatal error: concurrent map writes", Some(Level::Fatal)),
            ("[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1d2f3a4]", None),
            ("goroutine 1234 [running]:", None),
            ("\t/go/src/github.com/vmware-tanzu/velero/pkg/repository/maintenance/maintenance.go:123 +0x1f4", None),
            ("created by sigs.k8s.io/controller-runtime/pkg/internal/controller.(*Controller).Start.func2 in goroutine 221", None),
        ];
        for (line, level) in cases {
            let rec = run(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(rec.format, Format::Plain);
            assert_eq!(rec.unparsed, Some(UnparsedReason::GoPanic));
            assert_eq!(rec.level, *level, "{line}");
        }
        for line in [
            "goroutine",
            "goroutine x [running]:",
            "panicky",
            "\tno frame here",
            "",
        ] {
            assert!(run(line).is_none(), "{line}");
        }
    }
}
