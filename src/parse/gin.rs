//! Gin lines: access lines of every `defaultLogFormatter` layout (v1.1 → v1.12+), `[GIN-debug]`
//! lines and the `Error #NN:` / `     Meta:` lines Gin appends after an access line.
//!
//! ```text
//! access  = "[GIN]" *SP time "|" blanks status blanks "|" blanks latency blanks "|"
//!           ip "|" blanks method blanks path
//! time    = 1*(OCTET - "|")                     ; "2006/01/02 - 15:04:05 ", trimmed
//! status  = 1*DIGIT                             ; %3d
//! latency = go_duration                         ; %13v (≤ v1.11) or %8v (v1.12+), never truncated
//! ip      = *(OCTET - "|")                      ; %15s, trimmed; IPv6, empty or any header value
//! method  = token1                              ; %-7s, 8-letter methods overflow
//! path    = quoted / *OCTET                     ; %#v (Go-quoted) since v1.6, raw before
//! blanks  = *(SP / ansi_sgr)                    ; colour escapes sit inside the cells
//! ```
//!
//! Splitting on `|` rather than on column widths makes every layout one grammar: the latency
//! cell is 13 or 8 runes wide but overflows, and the IP cell overflows for IPv6. The path is
//! split at its first `?` into path and query (Go's quoting never escapes `?`).

use nom::bytes::complete::{tag, take_till, take_till1};

use super::combinators::{
    blanks, digits1, expected, parse_go_duration, quoted, spaces0, span_of, token1, Error, IResult,
};
use super::{Format, GinAccess, Level, Record, Value, ValueKind};

/// Parses a `[GIN]` access line.
pub fn parse_access(line: &[u8], rec: &mut Record) -> bool {
    match access(line) {
        Ok(a) => {
            rec.format = Format::GinAccess;
            rec.time = Some(a.time);
            rec.gin = Some(a);
            true
        }
        Err(_) => false,
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    let b = &b[start..];
    let end = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\r' | b'\n' | b'\t'))
        .map_or(0, |p| p + 1);
    &b[..end]
}

/// `cell_end = blanks "|"`
fn cell_end(i: &[u8]) -> IResult<'_, ()> {
    let (i, _) = blanks(i)?;
    let (i, _) = tag("|")(i)?;
    Ok((i, ()))
}

fn access(line: &[u8]) -> Result<GinAccess, nom::Err<Error<'_>>> {
    let (i, _) = tag("[GIN]")(line)?;
    let (i, _) = spaces0(i)?;
    let (i, time_cell) = take_till1(|b| b == b'|')(i)?;
    let time = trim(time_cell);
    if time.is_empty() {
        return expected(i, "timestamp").map(|(_, a)| a);
    }
    let (i, _) = tag("|")(i)?;

    let (i, _) = blanks(i)?;
    let (i, status_digits) = digits1(i)?;
    let status = match std::str::from_utf8(status_digits)
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
    {
        Some(s) => s,
        None => return expected(status_digits, "status code").map(|(_, a)| a),
    };
    let (i, ()) = cell_end(i)?;

    let (i, _) = blanks(i)?;
    let (i, latency) = token1(i)?;
    let Some(latency_seconds) = parse_go_duration(latency) else {
        return expected(latency, "Go duration").map(|(_, a)| a);
    };
    let (i, ()) = cell_end(i)?;

    let (i, ip_cell) = take_till(|b| b == b'|')(i)?;
    let client_ip = trim(ip_cell);
    let (i, _) = tag("|")(i)?;

    let (i, _) = blanks(i)?;
    let (i, method) = token1(i)?;
    let (i, _) = blanks(i)?;

    let rest = trim(i);
    let (path_raw, kind) = match quoted::<Error>(rest) {
        Ok(([], inner)) => (inner, ValueKind::GoQuoted),
        _ => (rest, ValueKind::Bare),
    };
    let (path_part, query_part) = match memchr::memchr(b'?', path_raw) {
        Some(q) => (&path_raw[..q], Some(&path_raw[q + 1..])),
        None => (path_raw, None),
    };
    let value = |part: &[u8]| Value {
        span: span_of(line, part),
        kind,
    };
    Ok(GinAccess {
        time: span_of(line, time),
        status,
        latency_seconds,
        latency: span_of(line, latency),
        client_ip: span_of(line, client_ip),
        method: span_of(line, method),
        path: value(path_part),
        query: query_part.map(value),
    })
}

/// Parses a `[GIN-debug]` line: the text after the prefix is the message; `[WARNING]` and
/// `[ERROR]` after the prefix set the level (and are not part of the message).
pub fn parse_debug(line: &[u8], rec: &mut Record) -> bool {
    let Some(rest) = line.strip_prefix(b"[GIN-debug]") else {
        return false;
    };
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let (level, msg) = if let Some(r) = rest.strip_prefix(b"[WARNING]") {
        (Level::Warning, r)
    } else if let Some(r) = rest.strip_prefix(b"[ERROR]") {
        (Level::Error, r)
    } else {
        (Level::Debug, rest)
    };
    let msg = trim(msg);
    rec.format = Format::GinDebug;
    rec.level = Some(level);
    rec.msg = Some(bare(line, msg));
    true
}

fn bare(line: &[u8], part: &[u8]) -> Value {
    Value {
        span: span_of(line, part),
        kind: ValueKind::Bare,
    }
}

/// Parses an `Error #NN: <err>` / `     Meta: <meta>` continuation line: level error, the text
/// after the prefix as the message.
pub fn parse_error_line(line: &[u8], rec: &mut Record) -> bool {
    let text = if let Some(rest) = line.strip_prefix(b"Error #") {
        let Ok((rest, _)) = digits1::<Error>(rest) else {
            return false;
        };
        match rest.strip_prefix(b":") {
            Some(r) => r,
            None => return false,
        }
    } else if line.first() == Some(&b' ') {
        match spaces0::<Error>(line)
            .ok()
            .and_then(|(r, _)| r.strip_prefix(b"Meta:"))
        {
            Some(r) => r,
            None => return false,
        }
    } else {
        return false;
    };
    rec.format = Format::GinError;
    rec.level = Some(Level::Error);
    rec.msg = Some(bare(line, trim(text)));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Want {
        time: &'static str,
        status: u16,
        latency: f64,
        ip: &'static str,
        method: &'static str,
        path: &'static str,
        query: Option<&'static str>,
        kind: ValueKind,
    }

    fn want(
        time: &'static str,
        status: u16,
        latency: f64,
        ip: &'static str,
        method: &'static str,
        path: &'static str,
        query: Option<&'static str>,
    ) -> Want {
        Want {
            time,
            status,
            latency,
            ip,
            method,
            path,
            query,
            kind: ValueKind::GoQuoted,
        }
    }

    fn cell(line: &[u8], span: crate::parse::Span) -> &[u8] {
        span.get(line)
    }

    fn check(line: &str, w: &Want) {
        let l = line.as_bytes();
        let mut rec = Record::new();
        assert!(parse_access(l, &mut rec), "rejected: {line:?}");
        assert_eq!(rec.format, Format::GinAccess);
        assert_eq!(rec.level, None);
        let g = rec.gin.unwrap();
        assert_eq!(rec.time, Some(g.time));
        assert_eq!(cell(l, g.time), w.time.as_bytes(), "{line:?}");
        assert_eq!(g.status, w.status, "{line:?}");
        assert!(
            (g.latency_seconds - w.latency).abs() <= w.latency * 1e-12,
            "{line:?}: {} != {}",
            g.latency_seconds,
            w.latency
        );
        assert_eq!(cell(l, g.client_ip), w.ip.as_bytes(), "{line:?}");
        assert_eq!(cell(l, g.method), w.method.as_bytes(), "{line:?}");
        assert_eq!(g.path.kind, w.kind, "{line:?}");
        assert_eq!(g.path.text(l), w.path, "{line:?}");
        assert_eq!(
            g.query.map(|q| q.text(l).into_owned()).as_deref(),
            w.query,
            "{line:?}"
        );
        if let Some(q) = g.query {
            assert_eq!(q.kind, w.kind);
        }
    }

    /// The byte-exact velero-manager lines (gin v1.10.1) of the reference, § 6.3.
    #[test]
    fn velero_manager_lines() {
        let t = "2025/09/13 - 10:15:30";
        let cases: Vec<(&str, Want)> = vec![
            ("[GIN] 2025/09/13 - 10:15:30 | 200 |      41.237\u{b5}s |        10.1.0.1 | GET      \"/api/v1/health\"", want(t, 200, 41.237e-6, "10.1.0.1", "GET", "/api/v1/health", None)),
            ("[GIN] 2025/09/13 - 10:15:30 | 200 |    2.513887ms |  10.100.102.110 | GET      \"/metrics\"", want(t, 200, 2.513887e-3, "10.100.102.110", "GET", "/metrics", None)),
            ("[GIN] 2025/09/13 - 10:15:30 | 401 |       18.22\u{b5}s |    192.168.1.25 | GET      \"/api/v1/backups\"", want(t, 401, 18.22e-6, "192.168.1.25", "GET", "/api/v1/backups", None)),
            ("[GIN] 2025/09/13 - 10:15:30 | 204 |         6.1\u{b5}s |    192.168.1.25 | OPTIONS  \"/api/v1/backups\"", want(t, 204, 6.1e-6, "192.168.1.25", "OPTIONS", "/api/v1/backups", None)),
            ("[GIN] 2025/09/13 - 10:15:30 | 201 |   48.911302ms |    192.168.1.25 | POST     \"/api/v1/backups\"", want(t, 201, 48.911302e-3, "192.168.1.25", "POST", "/api/v1/backups", None)),
            ("[GIN] 2025/09/13 - 10:15:30 | 500 |  1.203004551s |    192.168.1.25 | DELETE   \"/api/v1/backups/core-cl1-daily-backup-20250913020001\"", want(t, 500, 1.203004551, "192.168.1.25", "DELETE", "/api/v1/backups/core-cl1-daily-backup-20250913020001", None)),
            ("[GIN] 2025/09/13 - 10:15:30 | 302 |  312.845119ms |    192.168.1.25 | GET      \"/api/v1/auth/oidc/callback?state=Zm9vYmFy&code=2b1c7e0a-3f2d-4c55.9e1f\"", want(t, 302, 312.845119e-3, "192.168.1.25", "GET", "/api/v1/auth/oidc/callback", Some("state=Zm9vYmFy&code=2b1c7e0a-3f2d-4c55.9e1f"))),
            ("[GIN] 2025/09/13 - 10:15:30 | 200 |     402.113\u{b5}s |    192.168.1.25 | GET      \"/?token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VybmFtZSI6ImFsaWNlIn0.sig&auth=oidc&username=alice&role=admin\"", want(t, 200, 402.113e-6, "192.168.1.25", "GET", "/", Some("token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VybmFtZSI6ImFsaWNlIn0.sig&auth=oidc&username=alice&role=admin"))),
            ("[GIN] 2025/09/13 - 10:15:30 | 404 |      35.002\u{b5}s | fd00:10:244:1::1a2b | GET      \"/api/v1/backups/a b\\\"c/details\"", want(t, 404, 35.002e-6, "fd00:10:244:1::1a2b", "GET", "/api/v1/backups/a b\"c/details", None)),
            ("[GIN] 2025/09/13 - 10:15:30 | 408 | 30.004118734s |    192.168.1.25 | GET      \"/api/v1/backups/core-cl1-daily-backup-20250913020001/download\"", want(t, 408, 30.004118734, "192.168.1.25", "GET", "/api/v1/backups/core-cl1-daily-backup-20250913020001/download", None)),
            ("[GIN] 2025/09/13 - 10:15:30 | 200 |         1m15s |    192.168.1.25 | GET      \"/api/v1/backups/x/logs\"", want(t, 200, 75.0, "192.168.1.25", "GET", "/api/v1/backups/x/logs", None)),
            ("[GIN] 2025/09/13 - 10:15:30 | 200 |         950ns |             ::1 | GET      \"/static/js/main.a5ff1055.js\"", want(t, 200, 950e-9, "::1", "GET", "/static/js/main.a5ff1055.js", None)),
            ("[GIN] 2025/09/13 - 10:15:30 | 200 |            2s |    192.168.1.25 | GET      \"/api/v1/backups/x/download\"\n", want(t, 200, 2.0, "192.168.1.25", "GET", "/api/v1/backups/x/download", None)),
        ];
        for (line, w) in &cases {
            check(line, w);
        }
    }

    #[test]
    fn coloured_lines() {
        let t = "2025/09/13 - 10:15:30";
        check(
            "[GIN] 2025/09/13 - 10:15:30 |\x1b[97;42m 200 \x1b[0m|      41.237\u{b5}s |        10.1.0.1 |\x1b[97;44m GET     \x1b[0m \"/api/v1/health\"",
            &want(t, 200, 41.237e-6, "10.1.0.1", "GET", "/api/v1/health", None),
        );
        check(
            "[GIN] 2025/09/13 - 10:15:30 |\x1b[97;41m 500 \x1b[0m|  1.203004551s |    192.168.1.25 |\x1b[97;41m DELETE  \x1b[0m \"/api/v1/backups/x\"",
            &want(t, 500, 1.203004551, "192.168.1.25", "DELETE", "/api/v1/backups/x", None),
        );
        check(
            "[GIN] 2025/09/13 - 10:15:30 |\x1b[90;47m 204 \x1b[0m|         6.1\u{b5}s |    192.168.1.25 |\x1b[90;47m OPTIONS \x1b[0m \"/api/v1/backups\"",
            &want(t, 204, 6.1e-6, "192.168.1.25", "OPTIONS", "/api/v1/backups", None),
        );
        // v1.12+: the latency cell is coloured too.
        check(
            "[GIN] 2026/08/02 - 10:15:00 |\x1b[97;42m 200 \x1b[0m|\x1b[90;47m 97.514\u{b5}s \x1b[0m|       10.42.0.1 |\x1b[97;44m GET     \x1b[0m \"/healthz\"",
            &want("2026/08/02 - 10:15:00", 200, 97.514e-6, "10.42.0.1", "GET", "/healthz", None),
        );
        // v1.3 yellow, other-method reset colour.
        check(
            "[GIN] 2019/01/01 - 00:00:00 |\x1b[97;43m 404 \x1b[0m|      1.0ms |       127.0.0.1 |\x1b[0m PROPFIND\x1b[0m /dav",
            &Want { kind: ValueKind::Bare, ..want("2019/01/01 - 00:00:00", 404, 1e-3, "127.0.0.1", "PROPFIND", "/dav", None) },
        );
    }

    #[test]
    fn every_layout() {
        // v1.12+ (8-wide latency) and overflow, real.
        check(
            "[GIN] 2026/06/23 - 08:01:55 | 200 | 171.291\u{b5}s |             ::1 | GET      \"/\"",
            &want(
                "2026/06/23 - 08:01:55",
                200,
                171.291e-6,
                "::1",
                "GET",
                "/",
                None,
            ),
        );
        check(
            "[GIN] 2026/06/23 - 08:01:56 | 404 |    791ns |             ::1 | GET      \"/favicon.ico\"",
            &want("2026/06/23 - 08:01:56", 404, 791e-9, "::1", "GET", "/favicon.ico", None),
        );
        // v1.6–v1.11, real.
        check(
            "[GIN] 2024/02/08 - 16:35:46 | 200 |        34.3\u{b5}s |      172.17.0.1 | GET      \"/\"",
            &want("2024/02/08 - 16:35:46", 200, 34.3e-6, "172.17.0.1", "GET", "/", None),
        );
        // v1.3–v1.5, raw path, real.
        let raw = |w: Want| Want {
            kind: ValueKind::Bare,
            ..w
        };
        check(
            "[GIN] 2019/06/08 - 17:41:34 | 200 |     214.213\u{b5}s |             ::1 | GET      /hello",
            &raw(want("2019/06/08 - 17:41:34", 200, 214.213e-6, "::1", "GET", "/hello", None)),
        );
        check(
            "[GIN] 2019/06/08 - 17:41:34 | 200 | 1m15.123456789s |       10.0.0.1 | GET      /a b?x=\"y\"",
            &raw(want("2019/06/08 - 17:41:34", 200, 75.123456789, "10.0.0.1", "GET", "/a b", Some("x=\"y\""))),
        );
        // v1.1 (no IP padding, colour reset before the method) and v1.2.
        check(
            "[GIN] 2017/01/01 - 10:00:00 | 200 |      1.234ms | 10.0.0.1 |   GET     /path",
            &raw(want(
                "2017/01/01 - 10:00:00",
                200,
                1.234e-3,
                "10.0.0.1",
                "GET",
                "/path",
                None,
            )),
        );
        check(
            "[GIN] 2017/01/01 - 10:00:00 | 301 |   2h3m4.5s |        10.0.0.1 |   POST    /p?",
            &raw(want(
                "2017/01/01 - 10:00:00",
                301,
                7384.5,
                "10.0.0.1",
                "POST",
                "/p",
                Some(""),
            )),
        );
        // Long IPv6, empty IP, 8-letter method, us/μ spellings, quoted injection attempt, \t and \x escapes.
        check(
            "[GIN] 2025/01/01 - 00:00:00 | 200 |       1.5us | 2a02:810d:4b3f:e100:1c4f:89ff:fe31:bb2e | PROPFIND \"/dav/\"",
            &want("2025/01/01 - 00:00:00", 200, 1.5e-6, "2a02:810d:4b3f:e100:1c4f:89ff:fe31:bb2e", "PROPFIND", "/dav/", None),
        );
        check(
            "[GIN] 2025/01/01 - 00:00:00 | 200 |       1.5\u{3bc}s |                 | GET      \"/v0/admin/1'sHvusK<'\\\">DyNhdx\"",
            &want("2025/01/01 - 00:00:00", 200, 1.5e-6, "", "GET", "/v0/admin/1'sHvusK<'\">DyNhdx", None),
        );
        check(
            "[GIN] 2025/01/01 - 00:00:00 | 400 |         0s |        10.0.0.1 | GET      \"/a\\tb\\x1b[31m/caf\u{e9}?q=\\\"1\\\"&r=a|b\"",
            &want("2025/01/01 - 00:00:00", 400, 0.0, "10.0.0.1", "GET", "/a\tb\x1b[31m/caf\u{e9}", Some("q=\"1\"&r=a|b")),
        );
    }

    #[test]
    fn malformed_access_lines() {
        for line in [
            "[GIN]",
            "[GIN] 2025/01/01 - 00:00:00",
            "[GIN] 2025/01/01 - 00:00:00 | abc | 1ms | ip | GET \"/\"",
            "[GIN] 2025/01/01 - 00:00:00 | 200 | fast | ip | GET \"/\"",
            "[GIN] 2025/01/01 - 00:00:00 | 99999 | 1ms | ip | GET \"/\"",
            "[GIN] 2025/01/01 - 00:00:00 | 200 | 1ms | ip |",
            "[GIN] | 200 | 1ms | ip | GET /",
            "[GIN] 2025/01/01 - 00:00:00 | 200 | 1ms ip GET /",
        ] {
            let mut rec = Record::new();
            assert!(
                !parse_access(line.as_bytes(), &mut rec),
                "accepted {line:?}"
            );
        }
    }

    #[test]
    fn debug_lines() {
        let cases: &[(&str, Level, &str)] = &[
            ("[GIN-debug] GET    /products                 --> main.GetAll (3 handlers)", Level::Debug, "GET    /products                 --> main.GetAll (3 handlers)"),
            ("[GIN-debug] Listening and serving HTTP on :8080", Level::Debug, "Listening and serving HTTP on :8080"),
            ("[GIN-debug] [WARNING] Creating an Engine instance with the Logger and Recovery middleware already attached.", Level::Warning, "Creating an Engine instance with the Logger and Recovery middleware already attached."),
            ("[GIN-debug] [WARNING] Running in \"debug\" mode. Switch to \"release\" mode in production.", Level::Warning, "Running in \"debug\" mode. Switch to \"release\" mode in production."),
            ("[GIN-debug] [ERROR] listen tcp :8080: bind: address already in use", Level::Error, "listen tcp :8080: bind: address already in use"),
            ("[GIN-debug] Loaded HTML Templates (2): ", Level::Debug, "Loaded HTML Templates (2):"),
            ("[GIN-debug]", Level::Debug, ""),
        ];
        for (line, level, msg) in cases {
            let l = line.as_bytes();
            let mut rec = Record::new();
            assert!(parse_debug(l, &mut rec));
            assert_eq!(rec.format, Format::GinDebug);
            assert_eq!(rec.level, Some(*level), "{line}");
            assert_eq!(rec.msg.unwrap().text(l), *msg, "{line}");
        }
        assert!(!parse_debug(b"[GIN] x", &mut Record::new()));
    }

    #[test]
    fn error_lines() {
        let cases: &[(&str, &str)] = &[
            (
                "Error #01: write tcp 10.1.2.3:8080->192.168.1.25:53422: write: broken pipe",
                "write tcp 10.1.2.3:8080->192.168.1.25:53422: write: broken pipe",
            ),
            ("Error #01: rate limit exceded", "rate limit exceded"),
            (
                "Error #12: json: unsupported value: NaN",
                "json: unsupported value: NaN",
            ),
            ("     Meta: map[detail:x]", "map[detail:x]"),
        ];
        for (line, msg) in cases {
            let l = line.as_bytes();
            let mut rec = Record::new();
            assert!(parse_error_line(l, &mut rec), "{line}");
            assert_eq!(
                (rec.format, rec.level),
                (Format::GinError, Some(Level::Error))
            );
            assert_eq!(rec.msg.unwrap().text(l), *msg);
        }
        for line in [
            "Error #: x",
            "Error #01 x",
            "Error: x",
            "Meta: x",
            "   x",
            "",
        ] {
            assert!(
                !parse_error_line(line.as_bytes(), &mut Record::new()),
                "{line}"
            );
        }
    }
}
