//! Timestamps without a date library: RFC 3339 (with nanoseconds) to and from Unix nanoseconds.
//!
//! The hot path parses one CRI timestamp per line, so this is a hand-written, allocation-free
//! parser. It accepts `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)` and returns `None` on anything else.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Parses an RFC 3339 timestamp into Unix nanoseconds.
pub fn parse_rfc3339_nanos(b: &[u8]) -> Option<i64> {
    let y = digits(b, 0, 4)? as i64;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let mo = digits(b, 5, 2)?;
    let d = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T') | Some(b't') | Some(b' ')) {
        return None;
    }
    let h = digits(b, 11, 2)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let mi = digits(b, 14, 2)?;
    let s = digits(b, 17, 2)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 100_000_000i64;
        let start = i;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if scale > 0 {
                nanos += (c - b'0') as i64 * scale;
                scale /= 10;
            }
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_secs: i64 = match b.get(i)? {
        b'Z' | b'z' => {
            i += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let oh = digits(b, i + 1, 2)? as i64;
            if b.get(i + 3) != Some(&b':') {
                return None;
            }
            let om = digits(b, i + 4, 2)? as i64;
            i += 6;
            let o = oh * 3600 + om * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    if i != b.len() {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86400 + h as i64 * 3600 + mi as i64 * 60 + s as i64 - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Parses Gin's `2006/01/02 - 15:04:05` or Go log's `2006/01/02 15:04:05` (taken as UTC).
pub fn parse_slash_datetime_nanos(b: &[u8]) -> Option<i64> {
    let y = digits(b, 0, 4)? as i64;
    if b.get(4) != Some(&b'/') || b.get(7) != Some(&b'/') {
        return None;
    }
    let mo = digits(b, 5, 2)?;
    let d = digits(b, 8, 2)?;
    let rest = b.get(10..)?;
    let t = if rest.starts_with(b" - ") {
        rest.get(3..)?
    } else {
        rest.get(1..)?
    };
    let h = digits(t, 0, 2)?;
    let mi = digits(t, 3, 2)?;
    let s = digits(t, 6, 2)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86400 + h as i64 * 3600 + mi as i64 * 60 + s as i64;
    secs.checked_mul(1_000_000_000)
}

/// Formats Unix nanoseconds as RFC 3339 with nanoseconds in UTC (`2026-04-10T02:00:00.123456789Z`).
pub fn format_rfc3339_nanos(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        y,
        m,
        d,
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60,
        frac
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cri_and_logrus_times() {
        let t = parse_rfc3339_nanos(b"2026-04-10T02:00:00.123456789Z").unwrap();
        assert_eq!(t, 1_775_786_400_123_456_789);
        assert_eq!(
            parse_rfc3339_nanos(b"2026-04-10T02:00:00Z").unwrap(),
            1_775_786_400_000_000_000
        );
        assert_eq!(
            parse_rfc3339_nanos(b"2022-06-10T17:05:31+03:00").unwrap(),
            parse_rfc3339_nanos(b"2022-06-10T14:05:31Z").unwrap()
        );
        assert_eq!(
            parse_rfc3339_nanos(b"2026-04-10T02:00:00.5Z").unwrap(),
            1_775_786_400_500_000_000
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            &b""[..],
            b"2026-04-10",
            b"2026-13-10T02:00:00Z",
            b"2026-04-10T02:00:00",
            b"2026-04-10T02:00:00.Z",
            b"2026-04-10T02:00:00Zjunk",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_rfc3339_nanos(s), None, "{:?}", s);
        }
    }

    #[test]
    fn round_trips() {
        for ns in [0i64, 1_775_786_400_123_456_789, 951_782_400_000_000_001] {
            let s = format_rfc3339_nanos(ns);
            assert_eq!(parse_rfc3339_nanos(s.as_bytes()), Some(ns), "{s}");
        }
    }

    #[test]
    fn gin_and_go_log_times() {
        let a = parse_slash_datetime_nanos(b"2025/08/31 - 21:30:57").unwrap();
        let b = parse_slash_datetime_nanos(b"2025/08/31 21:30:57").unwrap();
        assert_eq!(a, b);
        assert_eq!(Some(a), parse_rfc3339_nanos(b"2025-08-31T21:30:57Z"));
    }
}
