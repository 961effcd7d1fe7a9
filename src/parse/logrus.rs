//! Velero/logrus `TextFormatter` lines (and logfmt lines of the same shape, e.g. Go `slog`).
//!
//! ```text
//! line   = ("time=" value SP)? "level=" value *(SP+ pair) *SP
//! pair   = logrus_key logrus_value          ; key runs to the next "=", may contain spaces
//! value  = quoted / bare0                   ; Go strconv.Quote, or non-space bytes (maybe empty)
//! ```
//!
//! `time`, `level` and `msg` go to the [`Record`] members (first occurrence each), everything
//! else to `fields` in line order. The line must carry a `level` key. Trailing spaces and bytes
//! after the last `key=value` that contain no `=` are tolerated and ignored.
//!
//! The TTY form (`INFO[0045] message   key=value`, normally with colour escapes) is recognised
//! too; it never occurs in a container but shows up in pasted logs.

use memchr::memmem;

use super::combinators::{ansi_sgr, logrus_key, logrus_value, span_of, Error};
use super::{Field, Format, Level, Record, Value, ValueKind, MAX_FIELDS};

/// Parses one line into `rec`; false if the line does not follow the grammar.
pub fn parse(line: &[u8], rec: &mut Record) -> bool {
    if line.starts_with(b"time=") || line.starts_with(b"level=") {
        let body = trim_end(line);
        if !pairs(line, body, rec) {
            return false;
        }
        rec.format = Format::LogrusText;
        true
    } else {
        parse_tty(line, rec)
    }
}

/// True when `line` starts like the logrus TTY form: `INFO[`, `WARN[`, … or a colour escape
/// followed by such a level.
pub fn looks_like_tty(line: &[u8]) -> bool {
    tty_level(skip_sgr(line)).is_some()
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\r' | b'\n' | b'\t'))
        .map_or(0, |p| p + 1);
    &b[..n]
}

fn skip_spaces(i: &[u8]) -> &[u8] {
    let n = i.iter().position(|&b| b != b' ').unwrap_or(i.len());
    &i[n..]
}

/// Reads `key=value` pairs from `i` into `rec`; returns whether a `level` key was seen.
fn pairs<'a>(line: &'a [u8], mut i: &'a [u8], rec: &mut Record) -> bool {
    let mut saw_level = false;
    loop {
        i = skip_spaces(i);
        if i.is_empty() {
            break;
        }
        // No `=` left: trailing text that is not a pair. Tolerated.
        let Ok((after_key, key)) = logrus_key::<Error>(i) else {
            break;
        };
        let Ok((rest, (raw, kind))) = logrus_value::<Error>(after_key) else {
            break;
        };
        i = rest;
        let value = Value {
            span: span_of(line, raw),
            kind,
        };
        match key {
            b"time" if rec.time.is_none() => rec.time = Some(value.span),
            b"level" if !saw_level => {
                saw_level = true;
                rec.level = Level::from_word(raw);
            }
            b"msg" if rec.msg.is_none() => rec.msg = Some(value),
            _ => {
                if rec.fields.len() >= MAX_FIELDS {
                    break;
                }
                rec.fields.push(Field {
                    key: span_of(line, key),
                    value,
                });
            }
        }
    }
    saw_level
}

fn skip_sgr(mut i: &[u8]) -> &[u8] {
    while let Ok((rest, _)) = ansi_sgr::<Error>(i) {
        i = rest;
    }
    i
}

/// `tty_level = 4*7UPPER` followed by `[` (after optional colour escapes).
fn tty_level(i: &[u8]) -> Option<(Level, &[u8])> {
    let n = i
        .iter()
        .take(8)
        .take_while(|b| b.is_ascii_uppercase())
        .count();
    let (word, rest) = i.split_at(n);
    let level = match word {
        b"TRAC" | b"TRACE" => Level::Trace,
        b"DEBU" | b"DEBUG" => Level::Debug,
        b"INFO" => Level::Info,
        b"WARN" | b"WARNING" => Level::Warning,
        b"ERRO" | b"ERROR" => Level::Error,
        b"FATA" | b"FATAL" => Level::Fatal,
        b"PANI" | b"PANIC" => Level::Panic,
        _ => return None,
    };
    let rest = skip_sgr(rest);
    rest.starts_with(b"[").then_some((level, rest))
}

/// `tty = [sgr] LEVEL [sgr] "[" stamp "]" SP msg *(SP [sgr] key [sgr] "=" value)`
fn parse_tty(line: &[u8], rec: &mut Record) -> bool {
    let coloured = line.first() == Some(&0x1b);
    let Some((level, rest)) = tty_level(skip_sgr(line)) else {
        return false;
    };
    let Some(close) = memchr::memchr(b']', rest) else {
        return false;
    };
    let stamp = &rest[1..close];
    // `[0045]` is seconds since start, not a time; `[2024-…]` is a full timestamp.
    if !stamp.iter().all(u8::is_ascii_digit) {
        rec.time = Some(span_of(line, stamp));
    }
    let body = trim_end(&rest[close + 1..]);
    let body = body.strip_prefix(b" ").unwrap_or(body);
    rec.level = Some(level);
    rec.format = Format::LogrusText;
    if coloured {
        let msg_end = memmem::find(body, b" \x1b[").unwrap_or(body.len());
        set_msg(line, &body[..msg_end], rec);
        coloured_pairs(line, &body[msg_end..], rec);
    } else {
        let start = first_pair_start(body);
        set_msg(line, &body[..start], rec);
        pairs(line, &body[start..], rec);
    }
    true
}

fn set_msg(line: &[u8], msg: &[u8], rec: &mut Record) {
    let msg = trim_end(msg);
    if !msg.is_empty() {
        rec.msg = Some(Value {
            span: span_of(line, msg),
            kind: ValueKind::Bare,
        });
    }
}

/// Pairs written as ` \x1b[36mkey\x1b[0m=value`: the key is whatever sits between the escapes.
fn coloured_pairs<'a>(line: &'a [u8], mut i: &'a [u8], rec: &mut Record) {
    loop {
        i = skip_spaces(i);
        let Ok((rest, _)) = ansi_sgr::<Error>(i) else {
            break;
        };
        let Some(k) = memchr::memchr(0x1b, rest) else {
            break;
        };
        let key = &rest[..k];
        let after = skip_sgr(&rest[k..]);
        let Some(after) = after.strip_prefix(b"=") else {
            break;
        };
        let Ok((rest, (raw, kind))) = logrus_value::<Error>(after) else {
            break;
        };
        if rec.fields.len() >= MAX_FIELDS {
            break;
        }
        rec.fields.push(Field {
            key: span_of(line, key),
            value: Value {
                span: span_of(line, raw),
                kind,
            },
        });
        i = rest;
    }
}

/// Where the uncoloured TTY message ends: before the first ` key=` whose key is a plain word
/// (`[A-Za-z0-9_.-]+`). Linear: each look-back stops at the previous `=` or space.
fn first_pair_start(body: &[u8]) -> usize {
    let is_key = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    for eq in memchr::memchr_iter(b'=', body) {
        let head = &body[..eq];
        let start = head.iter().rposition(|&b| !is_key(b)).map_or(0, |p| p + 1);
        if start < eq && start > 0 && head.get(start - 1) == Some(&b' ') {
            return start;
        }
    }
    body.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `line` and renders (time, level, msg, fields) as unescaped strings.
    #[allow(clippy::type_complexity)]
    fn run(
        line: &str,
    ) -> Option<(
        Option<String>,
        Option<Level>,
        Option<String>,
        Vec<(String, String)>,
    )> {
        let l = line.as_bytes();
        let mut rec = Record::new();
        if !parse(l, &mut rec) {
            return None;
        }
        assert_eq!(rec.format, Format::LogrusText);
        let time = rec
            .time
            .map(|s| String::from_utf8_lossy(s.get(l)).into_owned());
        let msg = rec.msg.map(|m| m.text(l).into_owned());
        let fields = rec
            .fields
            .iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(f.key.get(l)).into_owned(),
                    f.value.text(l).into_owned(),
                )
            })
            .collect();
        Some((time, rec.level, msg, fields))
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// line, time, level, msg, fields
    type Case<'a> = (
        &'a str,
        &'a str,
        Level,
        Option<&'a str>,
        &'a [(&'a str, &'a str)],
    );

    #[test]
    fn real_lines() {
        let cases: &[Case] = &[
            (
                r#"time="2024-12-22T19:29:15Z" level=info msg="Setting up backup log" backup=velero/nginx-backup logSource="pkg/controller/backup_controller.go:605""#,
                "2024-12-22T19:29:15Z",
                Level::Info,
                Some("Setting up backup log"),
                &[("backup", "velero/nginx-backup"), ("logSource", "pkg/controller/backup_controller.go:605")],
            ),
            (
                r#"time="2021-09-28T13:54:58Z" level=debug msg=gcController.enqueueAllBackups controller=gc logSource="pkg/controller/gc_controller.go:91""#,
                "2021-09-28T13:54:58Z",
                Level::Debug,
                Some("gcController.enqueueAllBackups"),
                &[("controller", "gc"), ("logSource", "pkg/controller/gc_controller.go:91")],
            ),
            (
                r#"time="2023-02-27T09:43:37Z" level=info msg="Starting server" addr="{\"IP\":\"::\",\"Port\":8080,\"Zone\":\"\"}" kind=metrics logSource="/go/pkg/mod/github.com/bombsimon/logrusr/v3@v3.0.0/logrusr.go:108" path=/metrics"#,
                "2023-02-27T09:43:37Z",
                Level::Info,
                Some("Starting server"),
                &[
                    ("addr", r#"{"IP":"::","Port":8080,"Zone":""}"#),
                    ("kind", "metrics"),
                    ("logSource", "/go/pkg/mod/github.com/bombsimon/logrusr/v3@v3.0.0/logrusr.go:108"),
                    ("path", "/metrics"),
                ],
            ),
            (
                r#"time="2025-09-13T02:01:10Z" level=error msg="backup failed" backuprequest=velero/core-cl1-daily-backup-20250913020001 controller=backup error="rpc error: code = Unknown desc = AccessDenied: Access Denied\n\tstatus code: 403, request id: X" error.file="/go/src/github.com/vmware-tanzu/velero/pkg/persistence/object_store.go:289" error.function="github.com/vmware-tanzu/velero/pkg/persistence.(*objectBackupStore).PutBackup" logSource="pkg/controller/backup_controller.go:343""#,
                "2025-09-13T02:01:10Z",
                Level::Error,
                Some("backup failed"),
                &[
                    ("backuprequest", "velero/core-cl1-daily-backup-20250913020001"),
                    ("controller", "backup"),
                    ("error", "rpc error: code = Unknown desc = AccessDenied: Access Denied\n\tstatus code: 403, request id: X"),
                    ("error.file", "/go/src/github.com/vmware-tanzu/velero/pkg/persistence/object_store.go:289"),
                    ("error.function", "github.com/vmware-tanzu/velero/pkg/persistence.(*objectBackupStore).PutBackup"),
                    ("logSource", "pkg/controller/backup_controller.go:343"),
                ],
            ),
            (
                r#"time="2022-06-10T17:05:31+03:00" level=warning msg="BackupStorageLocation \"default\" is unavailable" controller=backup-storage-location"#,
                "2022-06-10T17:05:31+03:00",
                Level::Warning,
                Some(r#"BackupStorageLocation "default" is unavailable"#),
                &[("controller", "backup-storage-location")],
            ),
            (
                r#"time="2025-01-01T00:00:00Z" level=info msg="Processing item" backup=velero/b logSource="pkg/backup/backup.go:1" name=n namespace= progress= resource=pods"#,
                "2025-01-01T00:00:00Z",
                Level::Info,
                Some("Processing item"),
                &[("backup", "velero/b"), ("logSource", "pkg/backup/backup.go:1"), ("name", "n"), ("namespace", ""), ("progress", ""), ("resource", "pods")],
            ),
            (
                r#"time="2025-01-01T00:00:00Z" level=info msg="Starting workers" controller=backup controllerGroup=velero.io controllerKind=Backup logSource="x.go:1" worker count=1"#,
                "2025-01-01T00:00:00Z",
                Level::Info,
                Some("Starting workers"),
                &[("controller", "backup"), ("controllerGroup", "velero.io"), ("controllerKind", "Backup"), ("logSource", "x.go:1"), ("worker count", "1")],
            ),
            (
                r#"time="2025-01-01T00:00:00Z" level=info msg=x Operation ID=du-1 Source PVC=app/data backup operations for backup=velero/b pod UID=1234 pod name=p"#,
                "2025-01-01T00:00:00Z",
                Level::Info,
                Some("x"),
                &[("Operation ID", "du-1"), ("Source PVC", "app/data"), ("backup operations for backup", "velero/b"), ("pod UID", "1234"), ("pod name", "p")],
            ),
            // msg omitted (empty message), logrus_error, a renamed clashing field.
            (
                r#"time="2025-01-01T00:00:00Z" level=info logrus_error="can not add field \"x\"" fields.time=1 logSource="a.go:1""#,
                "2025-01-01T00:00:00Z",
                Level::Info,
                None,
                &[("logrus_error", r#"can not add field "x""#), ("fields.time", "1"), ("logSource", "a.go:1")],
            ),
            // Double escaping of JSON inside a value, quoted reconcileID.
            (
                r#"time="2025-01-01T00:00:00Z" level=info msg="Reconciling" BackupRepository="{\"name\":\"dfg\",\"namespace\":\"velero\"}" reconcileID="\"79527c48\"""#,
                "2025-01-01T00:00:00Z",
                Level::Info,
                Some("Reconciling"),
                &[("BackupRepository", r#"{"name":"dfg","namespace":"velero"}"#), ("reconcileID", "\"79527c48\"")],
            ),
            // Trailing spaces and CR are tolerated.
            (
                "time=\"2025-01-01T00:00:00Z\" level=info msg=done   \r",
                "2025-01-01T00:00:00Z",
                Level::Info,
                Some("done"),
                &[],
            ),
            // Non-ASCII kept raw, time.Time values quoted.
            (
                r#"time="2026-04-10T02:00:14Z" level=info msg="Backup:daily has expired" backup=velero/daily expiration="2026-04-10 02:00:14 +0000 UTC" note="café µs""#,
                "2026-04-10T02:00:14Z",
                Level::Info,
                Some("Backup:daily has expired"),
                &[("backup", "velero/daily"), ("expiration", "2026-04-10 02:00:14 +0000 UTC"), ("note", "café µs")],
            ),
        ];
        for (line, time, level, msg, fields) in cases {
            let got = run(line).unwrap_or_else(|| panic!("rejected: {line}"));
            assert_eq!(got.0.as_deref(), Some(*time), "{line}");
            assert_eq!(got.1, Some(*level), "{line}");
            assert_eq!(got.2.as_deref(), *msg, "{line}");
            assert_eq!(got.3, kv(fields), "{line}");
        }
    }

    #[test]
    fn slog_and_time_less_lines() {
        let got = run(r#"time=2024-05-01T10:00:00.000Z level=INFO source=routes.go:1 msg="Listening on [::]:11434""#).unwrap();
        assert_eq!(got.0.as_deref(), Some("2024-05-01T10:00:00.000Z"));
        assert_eq!(got.1, Some(Level::Info));
        assert_eq!(got.2.as_deref(), Some("Listening on [::]:11434"));
        assert_eq!(got.3, kv(&[("source", "routes.go:1")]));
        let got = run(r#"level=warning msg=hi"#).unwrap();
        assert_eq!((got.0, got.1), (None, Some(Level::Warning)));
    }

    #[test]
    fn malformed_and_lenient() {
        // No level: not logrus.
        assert!(run(r#"time="2025-01-01T00:00:00Z" msg=x"#).is_none());
        assert!(run(r#"time="2025-01-01T00:00:00Z""#).is_none());
        // Unknown level word: still logrus, level unknown.
        assert_eq!(run(r#"time="t" level=verbose msg=x"#).unwrap().1, None);
        // Trailing garbage without `=` is ignored; an unterminated quote is a bare value.
        let got = run(r#"time="t" level=info msg=x a=1 trailing words"#).unwrap();
        assert_eq!(got.3, kv(&[("a", "1")]));
        let got = run(r#"time="t" level=info msg="unterminated"#).unwrap();
        assert_eq!(got.2.as_deref(), Some("\"unterminated"));
        // Unterminated time quote: bare.
        assert!(run("time=\"2025 level=info").is_some());
    }

    #[test]
    fn field_count_is_bounded() {
        let mut line = String::from("time=\"t\" level=info msg=x");
        for i in 0..1000 {
            line.push_str(&format!(" k{i}=v"));
        }
        let mut rec = Record::new();
        assert!(parse(line.as_bytes(), &mut rec));
        assert_eq!(rec.fields.len(), MAX_FIELDS);
    }

    #[test]
    fn tty_form() {
        let got = run("DEBU[0045] Backup has not expired yet, skipping          backup=velero/b1 expiration=\"2026-01-01 00:00:00 +0000 UTC\" logSource=\"pkg/controller/gc_controller.go:135\"").unwrap();
        assert_eq!(got.0, None);
        assert_eq!(got.1, Some(Level::Debug));
        assert_eq!(
            got.2.as_deref(),
            Some("Backup has not expired yet, skipping")
        );
        assert_eq!(got.3[0], ("backup".into(), "velero/b1".into()));
        assert_eq!(got.3.len(), 3);

        let coloured = "\x1b[36mINFO\x1b[0m[0003] Starting Velero server v1.12.0                \x1b[36mlogSource\x1b[0m=\"pkg/cmd/server/server.go:1\" \x1b[36mworker count\x1b[0m=1";
        let got = run(coloured).unwrap();
        assert_eq!(got.1, Some(Level::Info));
        assert_eq!(got.2.as_deref(), Some("Starting Velero server v1.12.0"));
        assert_eq!(
            got.3,
            kv(&[
                ("logSource", "pkg/cmd/server/server.go:1"),
                ("worker count", "1")
            ])
        );

        let got = run("WARN[2024-01-02T03:04:05Z] careful").unwrap();
        assert_eq!(got.0.as_deref(), Some("2024-01-02T03:04:05Z"));
        assert_eq!(
            (got.1, got.2.as_deref()),
            (Some(Level::Warning), Some("careful"))
        );
        assert!(run("INFO something").is_none());
        assert!(run("INFO[").is_none());
        assert!(looks_like_tty(b"ERRO[0001] x"));
        assert!(!looks_like_tty(b"INFORMATION[1]"));
    }
}
