//! Text helpers for the generator: UTC civil time in the layouts the sources use, Go's
//! `Duration.String()`, Go's `strconv.Quote`, and a logrus `TextFormatter` record builder.
//!
//! Everything writes into caller-owned buffers so a line costs no allocation.

use std::fmt::Write as _;

/// One nanosecond-resolution UTC instant, broken down.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tm {
    pub y: i64,
    pub mo: u32,
    pub d: u32,
    pub h: u32,
    pub mi: u32,
    pub s: u32,
    pub ns: u32,
}

impl Tm {
    /// Breaks Unix nanoseconds into civil UTC fields (proleptic Gregorian).
    pub fn from_unix_ns(t: i64) -> Tm {
        let secs = t.div_euclid(1_000_000_000);
        let ns = t.rem_euclid(1_000_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let mo = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(mo <= 2);
        Tm {
            y,
            mo,
            d,
            h: sod / 3600,
            mi: sod / 60 % 60,
            s: sod % 60,
            ns,
        }
    }
}

/// Go `time.RFC3339Nano` in UTC: fraction without trailing zeros, none at all when zero.
pub(crate) fn rfc3339_nano(out: &mut String, t: i64) {
    let tm = Tm::from_unix_ns(t);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        tm.y, tm.mo, tm.d, tm.h, tm.mi, tm.s
    );
    if tm.ns != 0 {
        let mut frac = tm.ns;
        let mut digits = 9;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        let _ = write!(out, ".{frac:0digits$}");
    }
    out.push('Z');
}

/// Go `time.RFC3339` in UTC (`2026-04-10T02:00:00Z`), as logrus prints `time=`.
pub(crate) fn rfc3339(out: &mut String, t: i64) {
    let tm = Tm::from_unix_ns(t);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        tm.y, tm.mo, tm.d, tm.h, tm.mi, tm.s
    );
}

/// Gin's `2006/01/02 - 15:04:05`.
pub(crate) fn gin_time(out: &mut String, t: i64) {
    let tm = Tm::from_unix_ns(t);
    let _ = write!(
        out,
        "{:04}/{:02}/{:02} - {:02}:{:02}:{:02}",
        tm.y, tm.mo, tm.d, tm.h, tm.mi, tm.s
    );
}

/// Go `log.LstdFlags` prefix without the trailing space: `2006/01/02 15:04:05`.
pub(crate) fn golog_time(out: &mut String, t: i64) {
    let tm = Tm::from_unix_ns(t);
    let _ = write!(
        out,
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        tm.y, tm.mo, tm.d, tm.h, tm.mi, tm.s
    );
}

/// `15:04:05`.
pub(crate) fn hms(out: &mut String, t: i64) {
    let tm = Tm::from_unix_ns(t);
    let _ = write!(out, "{:02}:{:02}:{:02}", tm.h, tm.mi, tm.s);
}

/// `20060102150405`, the timestamp suffix of schedule-created backups.
pub(crate) fn name_stamp(out: &mut String, t: i64) {
    let tm = Tm::from_unix_ns(t);
    let _ = write!(
        out,
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        tm.y, tm.mo, tm.d, tm.h, tm.mi, tm.s
    );
}

/// `20060102-150405`, the kubelet's rotated-file suffix.
pub(crate) fn rotate_stamp(out: &mut String, t: i64) {
    let tm = Tm::from_unix_ns(t);
    let _ = write!(
        out,
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        tm.y, tm.mo, tm.d, tm.h, tm.mi, tm.s
    );
}

/// klog header time: `0102 15:04:05.000000`.
pub(crate) fn klog_time(out: &mut String, t: i64) {
    let tm = Tm::from_unix_ns(t);
    let _ = write!(
        out,
        "{:02}{:02} {:02}:{:02}:{:02}.{:06}",
        tm.mo,
        tm.d,
        tm.h,
        tm.mi,
        tm.s,
        tm.ns / 1000
    );
}

/// Go `time.Time.String()` of a UTC time at second precision: `2026-05-10 02:00:14 +0000 UTC`.
pub(crate) fn go_time_string(out: &mut String, t: i64) {
    let tm = Tm::from_unix_ns(t);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
        tm.y, tm.mo, tm.d, tm.h, tm.mi, tm.s
    );
}

/// Writes `v / 10^prec` with the fraction's trailing zeros trimmed (Go's `fmtFrac`/`fmtInt`).
fn frac(out: &mut String, v: u64, prec: u32) {
    let p = 10u64.pow(prec);
    let int = v / p;
    let mut f = v % p;
    let _ = write!(out, "{int}");
    if f != 0 {
        let mut digits = prec as usize;
        while f % 10 == 0 {
            f /= 10;
            digits -= 1;
        }
        let _ = write!(out, ".{f:0digits$}");
    }
}

/// Go `time.Duration.String()` for a non-negative duration.
pub(crate) fn go_duration(out: &mut String, d: u64) {
    if d == 0 {
        out.push_str("0s");
    } else if d < 1_000 {
        let _ = write!(out, "{d}ns");
    } else if d < 1_000_000 {
        frac(out, d, 3);
        out.push_str("µs");
    } else if d < 1_000_000_000 {
        frac(out, d, 6);
        out.push_str("ms");
    } else {
        let h = d / 3_600_000_000_000;
        let m = d / 60_000_000_000 % 60;
        let s = d % 60_000_000_000;
        if h > 0 {
            let _ = write!(out, "{h}h");
        }
        if h > 0 || m > 0 {
            let _ = write!(out, "{m}m");
        }
        frac(out, s, 9);
        out.push('s');
    }
}

/// Go `strconv.Quote` (what `%q` and `%#v` of a string print), for valid UTF-8 input.
pub(crate) fn go_quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// logrus `needsQuoting`: true iff a character is outside `[A-Za-z0-9-._/@^+]`.
fn needs_quoting(s: &str) -> bool {
    s.bytes().any(|b| {
        !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'/' | b'@' | b'^' | b'+'))
    })
}

/// Writes a logrus text value: bare if possible (also when empty), else Go-quoted.
fn logrus_value(out: &mut String, v: &str) {
    if needs_quoting(v) {
        go_quote(out, v);
    } else {
        out.push_str(v);
    }
}

/// A logrus entry under construction: message plus fields, rendered with sorted keys.
///
/// Values are written into one shared buffer; the record is reused for every line.
#[derive(Default)]
pub(crate) struct Rec {
    /// The message (`msg=`); omitted from the line when empty.
    pub msg: String,
    fields: Vec<(&'static str, usize, usize)>,
    vals: String,
}

impl Rec {
    /// Starts a new entry.
    pub fn begin(&mut self) -> &mut Self {
        self.msg.clear();
        self.fields.clear();
        self.vals.clear();
        self
    }

    /// Sets the message from format arguments.
    pub fn msg(&mut self, args: std::fmt::Arguments<'_>) -> &mut Self {
        let _ = self.msg.write_fmt(args);
        self
    }

    /// Sets the message from a string.
    pub fn m(&mut self, s: &str) -> &mut Self {
        self.msg.push_str(s);
        self
    }

    /// Adds a field from format arguments.
    pub fn f(&mut self, k: &'static str, args: std::fmt::Arguments<'_>) -> &mut Self {
        let start = self.vals.len();
        let _ = self.vals.write_fmt(args);
        self.fields.push((k, start, self.vals.len()));
        self
    }

    /// Adds a string field.
    pub fn s(&mut self, k: &'static str, v: &str) -> &mut Self {
        let start = self.vals.len();
        self.vals.push_str(v);
        self.fields.push((k, start, self.vals.len()));
        self
    }

    /// Renders the logrus `TextFormatter` line (no newline) for time `t` (Unix ns).
    pub fn text(&mut self, out: &mut String, t: i64, level: &str) {
        out.push_str("time=\"");
        rfc3339(out, t);
        out.push_str("\" level=");
        out.push_str(level);
        if !self.msg.is_empty() {
            out.push_str(" msg=");
            logrus_value(out, &self.msg);
        }
        self.fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for &(k, a, b) in &self.fields {
            out.push(' ');
            out.push_str(k);
            out.push('=');
            logrus_value(out, &self.vals[a..b]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_and_layouts() {
        let t = 1_775_786_400_000_000_000; // 2026-04-10T02:00:00Z
        let mut s = String::new();
        rfc3339_nano(&mut s, t);
        assert_eq!(s, "2026-04-10T02:00:00Z");
        s.clear();
        rfc3339_nano(&mut s, t + 120_000_000);
        assert_eq!(s, "2026-04-10T02:00:00.12Z");
        s.clear();
        gin_time(&mut s, t + 86_400_000_000_000 * 300);
        assert_eq!(s, "2027/02/04 - 02:00:00");
        s.clear();
        go_time_string(&mut s, t + 14_000_000_000);
        assert_eq!(s, "2026-04-10 02:00:14 +0000 UTC");
    }

    #[test]
    fn durations_like_go() {
        let cases: &[(u64, &str)] = &[
            (950, "950ns"),
            (41_237, "41.237µs"),
            (6_100, "6.1µs"),
            (2_513_887, "2.513887ms"),
            (1_203_004_551, "1.203004551s"),
            (2_000_000_000, "2s"),
            (75_000_000_000, "1m15s"),
            (60_000_000_000, "1m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
        ];
        for &(d, want) in cases {
            let mut s = String::new();
            go_duration(&mut s, d);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn logrus_sorting_and_quoting() {
        let mut r = Rec::default();
        r.begin()
            .m("Setting up backup log")
            .s("logSource", "pkg/controller/backup_controller.go:605")
            .s("backup", "velero/nginx-backup")
            .s("progress", "")
            .s("worker count", "1")
            .s("error", "a \"b\"\n\tc");
        let mut out = String::new();
        r.text(&mut out, 1_734_895_755_000_000_000, "info");
        assert_eq!(
            out,
            "time=\"2024-12-22T19:29:15Z\" level=info msg=\"Setting up backup log\" \
             backup=velero/nginx-backup error=\"a \\\"b\\\"\\n\\tc\" \
             logSource=\"pkg/controller/backup_controller.go:605\" progress= worker count=1"
        );
    }
}
