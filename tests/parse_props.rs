//! Property tests for the parse stage: render with the writers' own rules (logrus
//! `TextFormatter`, Gin `defaultLogFormatter`) → parse → the same values; and arbitrary bytes
//! never panic, never loop, and yield spans inside the line.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use veloki::parse::{parse_into, Format, Hint, Level, Record, MAX_FIELDS};

// -------------------------------------------------------------------------------------------
// Go rendering rules, re-implemented for the tests
// -------------------------------------------------------------------------------------------

/// Characters the generators draw from, chosen to hit every `strconv.Quote` branch.
const ALPHABET: &[char] = &[
    'a', 'b', 'Z', '0', '9', '-', '.', '_', '/', '@', '^', '+', ' ', '=', ':', '"', '\\', '\'',
    '?', '&', '%', '<', '>', '{', '}', '|', '\n', '\t', '\r', '\x07', '\x08', '\x0b', '\x0c', '\0',
    '\x1b', '\x7f', 'é', 'µ', '日', '😀', '\u{200b}', '\u{a0}', '\u{feff}',
];

/// Go `unicode.IsPrint` for [`ALPHABET`].
fn go_is_print(c: char) -> bool {
    match c {
        ' '..='~' => true,
        '\u{200b}' | '\u{a0}' | '\u{feff}' => false,
        c => !c.is_control(),
    }
}

/// Go `strconv.Quote` (what `%q` and `%#v` print for a string).
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// logrus `TextFormatter.needsQuoting` + `appendValue`.
fn logrus_value(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if plain {
        s.to_string()
    } else {
        go_quote(s)
    }
}

/// Go `time.Duration.String()`.
fn go_duration(nanos: u64) -> String {
    fn frac(v: u64, prec: u32) -> (String, u64) {
        let mut digits = String::new();
        let mut v = v;
        let mut print = false;
        for _ in 0..prec {
            let d = v % 10;
            print = print || d != 0;
            if print {
                digits.insert(0, char::from(b'0' + d as u8));
            }
            v /= 10;
        }
        if print {
            digits.insert(0, '.');
        }
        (digits, v)
    }
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        let (unit, prec) = if nanos < 1_000 {
            ("ns", 0)
        } else if nanos < 1_000_000 {
            ("\u{b5}s", 3)
        } else {
            ("ms", 6)
        };
        let (f, int) = frac(nanos, prec);
        return format!("{int}{f}{unit}");
    }
    let (f, secs) = frac(nanos, 9);
    let mut out = format!("{}{f}s", secs % 60);
    let mins = secs / 60;
    if mins > 0 {
        out = format!("{}m{out}", mins % 60);
        let hours = mins / 60;
        if hours > 0 {
            out = format!("{hours}h{out}");
        }
    }
    out
}

fn text_of(alphabet_idx: Vec<usize>) -> String {
    alphabet_idx
        .into_iter()
        .map(|i| ALPHABET[i % ALPHABET.len()])
        .collect()
}

fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<usize>(), 0..max).prop_map(text_of)
}

// -------------------------------------------------------------------------------------------
// logrus text round trip
// -------------------------------------------------------------------------------------------

const LEVELS: [(&str, Level); 7] = [
    ("trace", Level::Trace),
    ("debug", Level::Debug),
    ("info", Level::Info),
    ("warning", Level::Warning),
    ("error", Level::Error),
    ("fatal", Level::Fatal),
    ("panic", Level::Panic),
];

fn logrus_key() -> impl Strategy<Value = String> {
    // Keys are never quoted, may contain spaces (`worker count`) but not `=` or `"`, and
    // logrus renames the built-in ones (`fields.msg`).
    "[A-Za-z][A-Za-z0-9 ._-]{0,14}".prop_filter("built-in key", |k| {
        !matches!(k.as_str(), "time" | "level" | "msg")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn logrus_text_round_trip(
        secs in 0u32..86_400,
        level in 0usize..LEVELS.len(),
        msg in any_text(40),
        fields in prop::collection::vec((logrus_key(), any_text(30)), 0..12),
    ) {
        let (lname, lvl) = LEVELS[level];
        let time = format!("2025-09-13T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60);
        let mut line = format!("time=\"{time}\" level={lname}");
        if !msg.is_empty() {
            line.push_str(" msg=");
            line.push_str(&logrus_value(&msg));
        }
        for (k, v) in &fields {
            line.push(' ');
            line.push_str(k);
            line.push('=');
            line.push_str(&logrus_value(v));
        }
        let l = line.as_bytes();
        let mut rec = Record::new();
        parse_into(l, Hint::Velero, &mut rec);
        prop_assert_eq!(rec.format, Format::LogrusText, "{}", line);
        prop_assert_eq!(rec.time.map(|s| s.get(l)), Some(time.as_bytes()));
        prop_assert_eq!(rec.level, Some(lvl));
        prop_assert_eq!(rec.msg.map(|m| m.text(l).into_owned()), (!msg.is_empty()).then(|| msg.clone()));
        let got: Vec<(String, String)> = rec
            .fields
            .iter()
            .map(|f| (String::from_utf8_lossy(f.key.get(l)).into_owned(), f.value.text(l).into_owned()))
            .collect();
        prop_assert_eq!(got, fields, "{}", line);
    }
}

// -------------------------------------------------------------------------------------------
// Gin round trip
// -------------------------------------------------------------------------------------------

fn status_colour(status: u16) -> &'static str {
    match status {
        100..=199 | 300..=399 => "\x1b[90;47m",
        200..=299 => "\x1b[97;42m",
        400..=499 => "\x1b[90;43m",
        _ => "\x1b[97;41m",
    }
}

fn method_colour(method: &str) -> &'static str {
    match method {
        "GET" => "\x1b[97;44m",
        "POST" => "\x1b[97;46m",
        "PUT" => "\x1b[90;43m",
        "DELETE" => "\x1b[97;41m",
        "PATCH" => "\x1b[97;42m",
        "HEAD" => "\x1b[97;45m",
        "OPTIONS" => "\x1b[90;47m",
        _ => "\x1b[0m",
    }
}

fn latency_colour(nanos: u64) -> &'static str {
    match nanos {
        n if n < 100_000_000 => "\x1b[90;47m",
        n if n < 200_000_000 => "\x1b[97;42m",
        n if n < 300_000_000 => "\x1b[97;46m",
        n if n < 500_000_000 => "\x1b[97;44m",
        n if n < 1_000_000_000 => "\x1b[90;43m",
        n if n < 2_000_000_000 => "\x1b[97;45m",
        _ => "\x1b[97;41m",
    }
}

#[derive(Debug)]
struct GinLine {
    time: String,
    status: u16,
    nanos: u64,
    ip: String,
    method: String,
    path: String,
    query: String,
}

impl GinLine {
    fn full_path(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// v1.6–v1.11: `"[GIN] %v |%s %3d %s| %13v | %15s |%s %-7s %s %#v\n%s"`
    fn render_v1_10(&self, colour: bool) -> String {
        let (sc, mc, reset) = if colour {
            (
                status_colour(self.status),
                method_colour(&self.method),
                "\x1b[0m",
            )
        } else {
            ("", "", "")
        };
        format!(
            "[GIN] {} |{sc} {:3} {reset}| {:>13} | {:>15} |{mc} {:<7} {reset} {}\n",
            self.time,
            self.status,
            go_duration(self.nanos),
            self.ip,
            self.method,
            go_quote(&self.full_path()),
        )
    }

    /// v1.12+: `"[GIN] %v |%s %3d %s|%s %8v %s| %15s |%s %-7s %s %#v\n%s"`
    fn render_v1_12(&self, colour: bool) -> String {
        let (sc, lc, mc, reset) = if colour {
            (
                status_colour(self.status),
                latency_colour(self.nanos),
                method_colour(&self.method),
                "\x1b[0m",
            )
        } else {
            ("", "", "", "")
        };
        format!(
            "[GIN] {} |{sc} {:3} {reset}|{lc} {:>8} {reset}| {:>15} |{mc} {:<7} {reset} {}\n",
            self.time,
            self.status,
            go_duration(self.nanos),
            self.ip,
            self.method,
            go_quote(&self.full_path()),
        )
    }
}

fn gin_line() -> impl Strategy<Value = GinLine> {
    (
        (
            0u32..86_400,
            100u16..1000,
            prop_oneof![0u64..2_000, 0u64..10_000_000_000, 0u64..20_000_000_000_000],
        ),
        prop_oneof![
            "",
            "::1",
            "10\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
            "[0-9a-f:.]{0,39}"
        ],
        prop_oneof![
            Just("GET".to_string()),
            Just("POST".to_string()),
            Just("OPTIONS".to_string()),
            Just("PROPFIND".to_string()),
            "[A-Z]{1,8}"
        ],
        any_text(30).prop_map(|p| p.replace('?', "")),
        any_text(30),
    )
        .prop_map(|((secs, status, nanos), ip, method, path, query)| GinLine {
            time: format!(
                "2025/09/13 - {:02}:{:02}:{:02}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            ),
            status,
            nanos,
            ip,
            method,
            path,
            query,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn gin_round_trip(g in gin_line(), v1_12 in any::<bool>(), colour in any::<bool>()) {
        let line = if v1_12 { g.render_v1_12(colour) } else { g.render_v1_10(colour) };
        let l = line.as_bytes();
        let mut rec = Record::new();
        parse_into(l, Hint::Gin, &mut rec);
        prop_assert_eq!(rec.format, Format::GinAccess, "{:?}", line);
        prop_assert_eq!(rec.level, None);
        let a = rec.gin.unwrap();
        prop_assert_eq!(a.time.get(l), g.time.as_bytes());
        prop_assert_eq!(a.status, g.status);
        let want = g.nanos as f64 / 1e9;
        prop_assert!((a.latency_seconds - want).abs() <= want * 1e-12, "{} vs {}", a.latency_seconds, want);
        prop_assert_eq!(a.client_ip.get(l), g.ip.as_bytes());
        prop_assert_eq!(a.method.get(l), g.method.as_bytes());
        prop_assert_eq!(a.path.text(l), g.path.as_str(), "{:?}", line);
        let query = a.query.map(|q| q.text(l).into_owned());
        prop_assert_eq!(query, (!g.query.is_empty()).then(|| g.query.clone()));
    }
}

// -------------------------------------------------------------------------------------------
// Never panics, always returns, spans stay inside the line
// -------------------------------------------------------------------------------------------

const HINTS: [Hint; 5] = [
    Hint::Auto,
    Hint::Velero,
    Hint::Gin,
    Hint::VeleroCli,
    Hint::None,
];

/// Parses `line` with every hint and touches every span and unescaped value.
fn exercise(line: &[u8], rec: &mut Record) {
    let len = line.len() as u32;
    for hint in HINTS {
        parse_into(line, hint, rec);
        assert!(rec.format != Format::Plain || rec.unparsed.is_some());
        assert!(rec.fields.len() <= MAX_FIELDS);
        let mut spans = vec![];
        spans.extend(rec.time);
        if let Some(m) = rec.msg {
            spans.push(m.span);
            let _ = m.text(line);
        }
        for f in &rec.fields {
            spans.push(f.key);
            spans.push(f.value.span);
            let _ = f.value.text(line);
        }
        if let Some(g) = rec.gin {
            spans.extend([g.time, g.latency, g.client_ip, g.method, g.path.span]);
            let _ = g.path.text(line);
            if let Some(q) = g.query {
                spans.push(q.span);
                let _ = q.text(line);
            }
        }
        for s in spans {
            assert!(
                s.start <= s.end && s.end <= len,
                "span {s:?} outside a {len}-byte line"
            );
        }
    }
}

/// Real-shaped seeds that the mutation strategy perturbs.
const SEEDS: &[&str] = &[
    r#"time="2025-09-13T02:01:10Z" level=error msg="backup failed" backuprequest=velero/b controller=backup error="rpc error: \"x\"\n\tstatus" error.file="/go/src/x.go:289" logSource="pkg/controller/backup_controller.go:343" worker count=1 progress="#,
    r#"{"backup":{"Namespace":"velero","Name":"x"},"error.message":"a \u003cb\u003e","id":87,"level":"info","msg":"Getting backup","time":"2025-01-27T19:52:56Z"}"#,
    "[GIN] 2025/09/13 - 10:15:30 |\x1b[97;42m 200 \x1b[0m|      41.237\u{b5}s | fd00:10:244:1::1a2b |\x1b[97;44m GET     \x1b[0m \"/api/v1/backups/a b\\\"c?x=1\"",
    "[GIN-debug] [WARNING] Running in \"debug\" mode.",
    "Error #01: write: broken pipe",
    "..........Backup completed with status: Completed. You may check for more information using the commands `velero backup describe b` and `velero backup logs b`.",
    "I0926 07:11:01.968901       1 request.go:665] Waited",
    "1.675757442435557e+09\tINFO\tsetup\tstarting\t{\"addr\": \":8080\"}",
    "\x1b[36mINFO\x1b[0m[0003] Starting   \x1b[36mk\x1b[0m=v",
    "\x1b[31m2025/09/13 10:20:00 [Recovery] panic recovered:",
];

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        0..SEEDS.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8),
    )
        .prop_map(|(seed, edits)| {
            let mut b = SEEDS[seed].as_bytes().to_vec();
            for (at, byte, op) in edits {
                if b.is_empty() {
                    b.push(byte);
                    continue;
                }
                let i = at.index(b.len());
                match op {
                    0 => b[i] = byte,
                    1 => b.insert(i, byte),
                    _ => b.truncate(i),
                }
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn arbitrary_bytes_never_panic(line in prop::collection::vec(any::<u8>(), 0..400)) {
        exercise(&line, &mut Record::new());
    }

    #[test]
    fn mutated_real_lines_never_panic(line in mutated()) {
        exercise(&line, &mut Record::new());
    }

    #[test]
    fn prefixed_garbage_never_panics(
        prefix in prop::sample::select(vec!["time=", "level=", "{", "[GIN] ", "[GIN-debug]", "Error #", "     Meta:", "INFO[", "\x1b[", "Backup ", "2025/01/01 00:00:00", "I0101 00:00:00.", "1.0\tINFO\t", "panic: ", "goroutine "]),
        tail in prop::collection::vec(prop::sample::select(b" =\"\\|[]{}:,.?\x1b\t\n0a\xb5\xc2\x00m;".to_vec()), 0..200),
    ) {
        let mut line = prefix.as_bytes().to_vec();
        line.extend(tail);
        exercise(&line, &mut Record::new());
    }
}

/// One-mebibyte lines of every adversarial shape finish quickly (linear time, no recursion).
#[test]
fn one_mebibyte_lines() {
    const MIB: usize = 1 << 20;
    fn rep(prefix: impl AsRef<[u8]>, unit: impl AsRef<[u8]>) -> Vec<u8> {
        let mut s = prefix.as_ref().to_vec();
        while s.len() < MIB {
            s.extend_from_slice(unit.as_ref());
        }
        s
    }
    let mut lines: Vec<Vec<u8>> = vec![
        rep("time=\"2025-01-01T00:00:00Z\" level=info msg=x", " k=v"),
        rep("time=\"2025-01-01T00:00:00Z\" level=info msg=\"", "\\\"ab"),
        rep("time=\"2025-01-01T00:00:00Z\" level=info msg=", "a=b="),
        rep("time=\"", "\\"),
        rep("time=", "a b c "),
        rep("{", "["),
        rep("{\"a\":", "{\"b\":"),
        rep("{\"k\":\"", "\\u00e9"),
        rep("{", "\"a\":1,"),
        rep(
            "[GIN] 2025/09/13 - 10:15:30 | 200 | 1ms | ::1 | GET      \"/",
            "a\\\"",
        ),
        rep("[GIN] ", "|"),
        rep("[GIN] x | ", "\x1b[1;2;3"),
        rep("[GIN-debug] ", "x"),
        rep("Error #", "0"),
        rep("     Meta: ", " "),
        rep("INFO[0001] ", "x="),
        rep("\x1b[36mINFO\x1b[0m[0001] m", " \x1b[36mk\x1b[0m=v"),
        rep("", "."),
        rep("Backup completed with status: ", "Completed"),
        rep("2025/01/01 00:00:00 ", "\0"),
        rep("1.0\tINFO\t", "\t{"),
        rep("goroutine ", "1"),
        rep("", "\x1b["),
        rep("", b"\xff\xfe"),
    ];
    lines.push(vec![0u8; MIB]);
    let mut rec = Record::new();
    for line in &lines {
        let started = Instant::now();
        exercise(line, &mut rec);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "{:?}… took {took:?}",
            String::from_utf8_lossy(&line[..40])
        );
    }
}
