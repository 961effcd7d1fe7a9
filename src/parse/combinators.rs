//! Shared parsing pieces: small named nom combinators over `&[u8]`, veloki's parse error and
//! `IResult` alias, and value unescaping (Go `strconv.Quote` and JSON rules).
//!
//! Every combinator is a *complete* parser (end of input is an error, never `Incomplete`) and
//! runs in time linear in what it consumes. The leaf combinators are generic over the nom error
//! type so tests can use `nom::error::VerboseError`; production code uses [`Error`], which is two
//! words and never allocates.

use std::borrow::Cow;

use memchr::{memchr, memchr2};
use nom::bytes::complete::{tag, take_till, take_till1, take_while, take_while1};
use nom::error::{ErrorKind as NomKind, ParseError};
use nom::Err as NomErr;

use super::{Span, ValueKind};

/// Why a combinator rejected its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A nom built-in combinator failed.
    Nom(NomKind),
    /// A specific byte was expected.
    Char(char),
    /// A named grammar element was expected.
    Expected(&'static str),
}

/// veloki's parse error: where parsing stopped and what was expected there. Never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error<'a> {
    /// The input at the point of failure.
    pub input: &'a [u8],
    /// What went wrong.
    pub kind: ErrorKind,
}

impl<'a> ParseError<&'a [u8]> for Error<'a> {
    fn from_error_kind(input: &'a [u8], kind: NomKind) -> Self {
        Error {
            input,
            kind: ErrorKind::Nom(kind),
        }
    }

    fn append(_input: &'a [u8], _kind: NomKind, other: Self) -> Self {
        // Keep the innermost (first) error: it is the most precise.
        other
    }

    fn from_char(input: &'a [u8], c: char) -> Self {
        Error {
            input,
            kind: ErrorKind::Char(c),
        }
    }
}

/// The crate-local nom result: byte input, veloki's [`Error`].
pub type IResult<'a, O> = nom::IResult<&'a [u8], O, Error<'a>>;

/// Builds a recoverable error naming the grammar element that was expected.
pub fn expected<'a, O>(input: &'a [u8], what: &'static str) -> IResult<'a, O> {
    Err(NomErr::Error(Error {
        input,
        kind: ErrorKind::Expected(what),
    }))
}

/// Byte offset of `rest` inside `line` (`rest` must be a sub-slice of `line`; 0 otherwise).
#[inline]
pub fn offset(line: &[u8], rest: &[u8]) -> usize {
    (rest.as_ptr() as usize).saturating_sub(line.as_ptr() as usize)
}

/// The [`Span`] that `part` (a sub-slice of `line`) covers.
#[inline]
pub fn span_of(line: &[u8], part: &[u8]) -> Span {
    let start = offset(line, part);
    Span::new(start, start + part.len())
}

/// `sp = " "`
pub fn sp<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], &'a [u8], E> {
    tag(" ")(i)
}

/// `spaces0 = *" "`
pub fn spaces0<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], &'a [u8], E> {
    take_while(|b| b == b' ')(i)
}

/// `ansi_sgr = ESC "[" *(DIGIT / ";") "m"` (a terminal colour escape such as `\x1b[97;42m`).
pub fn ansi_sgr<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], &'a [u8], E> {
    let (rest, _) = tag(b"\x1b[".as_slice())(i)?;
    let (rest, _) = take_while(|b: u8| b.is_ascii_digit() || b == b';')(rest)?;
    let (rest, _) = tag("m")(rest)?;
    Ok((rest, &i[..i.len() - rest.len()]))
}

/// `blanks = *(" " / ansi_sgr)`: spaces and colour escapes, skipped without copying.
pub fn blanks<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], &'a [u8], E> {
    let mut rest = i;
    loop {
        match rest.first() {
            Some(b' ') => rest = &rest[1..],
            Some(0x1b) => match ansi_sgr::<E>(rest) {
                Ok((r, _)) => rest = r,
                Err(_) => break,
            },
            _ => break,
        }
    }
    Ok((rest, &i[..i.len() - rest.len()]))
}

/// `json_ws = *(SP / HTAB / CR / LF)`
pub fn json_ws<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], &'a [u8], E> {
    take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))(i)
}

/// `digits1 = 1*DIGIT`
pub fn digits1<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], &'a [u8], E> {
    take_while1(|b: u8| b.is_ascii_digit())(i)
}

/// `quoted = DQUOTE *(%x5C OCTET / (OCTET - DQUOTE - %x5C)) DQUOTE`, returning the content
/// between the quotes (still escaped). Serves Go `strconv.Quote` output and JSON strings alike.
pub fn quoted<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], &'a [u8], E> {
    let (body, _) = tag("\"")(i)?;
    let mut pos = 0;
    while let Some(k) = body.get(pos..).and_then(|rest| memchr2(b'"', b'\\', rest)) {
        let at = pos + k;
        if body.get(at) == Some(&b'"') {
            return Ok((&body[at + 1..], &body[..at]));
        }
        // A backslash escapes the next byte, whatever it is.
        pos = at + 2;
    }
    Err(NomErr::Error(E::from_error_kind(i, NomKind::Escaped)))
}

/// `bare0 = *(OCTET - SP)`: a possibly empty run of non-space bytes.
pub fn bare0<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], &'a [u8], E> {
    take_till(|b| b == b' ')(i)
}

/// `token1 = 1*(OCTET - SP - ESC - "|")`: a cell word (Gin status, latency, method).
pub fn token1<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], &'a [u8], E> {
    take_till1(|b| b == b' ' || b == 0x1b || b == b'|')(i)
}

/// `logrus_key = *(OCTET - "=") "="`: a logrus key runs to the next `=` (it may contain spaces).
pub fn logrus_key<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], &'a [u8], E> {
    match memchr(b'=', i) {
        Some(k) => Ok((&i[k + 1..], &i[..k])),
        None => Err(NomErr::Error(E::from_error_kind(i, NomKind::TakeUntil))),
    }
}

/// `logrus_value = quoted / bare0`: a Go-quoted string or a run of non-space bytes (maybe
/// empty). An unterminated quote is taken as a bare value, so this never fails.
pub fn logrus_value<'a, E: ParseError<&'a [u8]>>(
    i: &'a [u8],
) -> nom::IResult<&'a [u8], (&'a [u8], ValueKind), E> {
    if i.first() == Some(&b'"') {
        if let Ok((rest, inner)) = quoted::<E>(i) {
            return Ok((rest, (inner, ValueKind::GoQuoted)));
        }
    }
    let (rest, v) = bare0(i)?;
    Ok((rest, (v, ValueKind::Bare)))
}

/// `json_scalar = 1*(ALPHA / DIGIT / "." / "+" / "-")`: a number, `true`, `false` or `null`.
pub fn json_scalar<'a, E: ParseError<&'a [u8]>>(
    i: &'a [u8],
) -> nom::IResult<&'a [u8], &'a [u8], E> {
    take_while1(|b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))(i)
}

/// `json_nested = "{" … "}" / "[" … "]"`, skipped by bracket depth (string-aware, no recursion).
pub fn json_nested<'a, E: ParseError<&'a [u8]>>(
    i: &'a [u8],
) -> nom::IResult<&'a [u8], &'a [u8], E> {
    if !matches!(i.first(), Some(b'{') | Some(b'[')) {
        return Err(NomErr::Error(E::from_error_kind(i, NomKind::Char)));
    }
    let mut depth = 0usize;
    let mut pos = 0;
    while let Some(&b) = i.get(pos) {
        match b {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok((&i[pos + 1..], &i[..pos + 1]));
                }
            }
            b'"' => {
                let (rest, _) = quoted::<E>(&i[pos..])?;
                pos = i.len() - rest.len();
                continue;
            }
            _ => {}
        }
        pos += 1;
    }
    Err(NomErr::Error(E::from_error_kind(i, NomKind::TakeUntil)))
}

/// `json_value = quoted / json_nested / json_scalar`, returning the span to keep and its kind
/// (string content without quotes, or the raw text of anything else).
pub fn json_value<'a, E: ParseError<&'a [u8]>>(
    i: &'a [u8],
) -> nom::IResult<&'a [u8], (&'a [u8], ValueKind), E> {
    match i.first() {
        Some(b'"') => {
            let (rest, s) = quoted(i)?;
            Ok((rest, (s, ValueKind::JsonString)))
        }
        Some(b'{') | Some(b'[') => {
            let (rest, s) = json_nested(i)?;
            Ok((rest, (s, ValueKind::JsonRaw)))
        }
        _ => {
            let (rest, s) = json_scalar(i)?;
            Ok((rest, (s, ValueKind::JsonRaw)))
        }
    }
}

/// `json_object = "{" ws [member *(ws "," ws member)] ws "}"` with `member = quoted ws ":" ws
/// json_value`. Calls `on_member(key, value, kind)` for each member in order (key still
/// escaped, string values without their quotes) and returns what follows the closing brace.
pub fn json_object<'a, F>(i: &'a [u8], mut on_member: F) -> IResult<'a, ()>
where
    F: FnMut(&'a [u8], &'a [u8], ValueKind),
{
    let (mut rest, _) = tag("{")(i)?;
    rest = json_ws::<Error>(rest)?.0;
    if let Some(r) = rest.strip_prefix(b"}") {
        return Ok((r, ()));
    }
    loop {
        let (r, key) = quoted(rest)?;
        let (r, _) = json_ws(r)?;
        let (r, _) = tag(":")(r)?;
        let (r, _) = json_ws(r)?;
        let (r, (value, kind)) = json_value(r)?;
        on_member(key, value, kind);
        let (r, _) = json_ws(r)?;
        match r.first() {
            Some(b',') => rest = json_ws::<Error>(&r[1..])?.0,
            Some(b'}') => return Ok((&r[1..], ())),
            _ => return expected(r, "',' or '}'"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Go durations
// ---------------------------------------------------------------------------------------------

/// `decimal = 1*DIGIT ["." *DIGIT] / "." 1*DIGIT`, as an `f64` (exact for ≤ 15 significant digits).
pub fn decimal<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], f64, E> {
    let (rest, int) = take_while(|b: u8| b.is_ascii_digit())(i)?;
    let (rest, frac) = match rest.strip_prefix(b".") {
        Some(r) => take_while(|b: u8| b.is_ascii_digit())(r)?,
        None => (rest, &rest[..0]),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(NomErr::Error(E::from_error_kind(i, NomKind::Digit)));
    }
    // Mantissa of the first 19 digits over (or times) a power of ten: one correctly rounded
    // operation, so `4.709180529` is the nearest f64, not an accumulation of errors.
    let mut mantissa: u64 = 0;
    let mut used = 0;
    let mut exp: i32 = 0;
    for &d in int {
        if used < 19 {
            mantissa = mantissa * 10 + u64::from(d - b'0');
            used += 1;
        } else {
            exp = exp.saturating_add(1);
        }
    }
    for &d in frac {
        if used < 19 {
            mantissa = mantissa * 10 + u64::from(d - b'0');
            used += 1;
            exp -= 1;
        }
    }
    let value = if exp >= 0 {
        mantissa as f64 * 10f64.powi(exp)
    } else {
        mantissa as f64 / 10f64.powi(-exp)
    };
    Ok((rest, value))
}

/// `duration_unit = "ns" / "us" / "µs" / "μs" / "ms" / "s" / "m" / "h"`, as seconds per unit.
pub fn duration_unit<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], f64, E> {
    const UNITS: [(&[u8], f64); 8] = [
        (b"ns", 1e-9),
        (b"us", 1e-6),
        ("\u{b5}s".as_bytes(), 1e-6),
        ("\u{3bc}s".as_bytes(), 1e-6),
        (b"ms", 1e-3),
        (b"s", 1.0),
        (b"m", 60.0),
        (b"h", 3600.0),
    ];
    for (unit, secs) in UNITS {
        if let Some(rest) = i.strip_prefix(unit) {
            return Ok((rest, secs));
        }
    }
    Err(NomErr::Error(E::from_error_kind(i, NomKind::Tag)))
}

/// `go_duration = ["-" / "+"] ("0" / 1*(decimal duration_unit))`: Go `time.Duration.String()`
/// output (`612ns`, `34.3µs`, `1.4ms`, `4.709180529s`, `1m15s`, `2h3m4.5s`), in seconds.
pub fn go_duration<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> nom::IResult<&'a [u8], f64, E> {
    let (rest, sign) = match i.first() {
        Some(b'-') => (&i[1..], -1.0),
        Some(b'+') => (&i[1..], 1.0),
        _ => (i, 1.0),
    };
    let total = nom::multi::fold_many1(
        nom::sequence::pair(decimal, duration_unit),
        || 0.0,
        |acc, (v, unit)| acc + v * unit,
    )(rest);
    match total {
        Ok((rest, total)) => Ok((rest, sign * total)),
        // Go writes a zero duration as `0s`, but `time.ParseDuration` also accepts a bare `0`.
        Err(e) => match rest.strip_prefix(b"0") {
            Some(r) => Ok((r, 0.0)),
            None => Err(e),
        },
    }
}

/// The longest `time.Duration` Go can represent (2^63 - 1 ns), in seconds.
pub const MAX_GO_DURATION_SECS: f64 = 9.223_372_036_854_776e9;

/// Parses a whole Go duration cell (`34.3µs`) into seconds; `None` unless the entire input
/// matches and fits a Go `time.Duration` (so the result is always finite).
pub fn parse_go_duration(cell: &[u8]) -> Option<f64> {
    match go_duration::<Error>(cell) {
        Ok(([], secs)) if secs.abs() <= MAX_GO_DURATION_SECS => Some(secs),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Unescaping
// ---------------------------------------------------------------------------------------------

/// Unescapes `raw` according to `kind`; borrows when nothing needs unescaping.
///
/// * [`ValueKind::Bare`]: as is.
/// * [`ValueKind::GoQuoted`]: Go `strconv.Quote` escapes (`\"` `\\` `\n` `\t` `\r` `\a` `\b`
///   `\f` `\v` `\xNN` `\NNN` `\uNNNN` `\UNNNNNNNN`); a malformed escape is kept verbatim.
/// * [`ValueKind::JsonString`]: JSON escapes, including UTF-16 surrogate pairs (a lone
///   surrogate becomes U+FFFD).
/// * [`ValueKind::JsonRaw`]: verbatim, except that `{"Namespace":"ns","Name":"n"}` (a Go
///   `types.NamespacedName`) renders as `ns/n`, the way the text format writes it.
///
/// Invalid UTF-8 (in the line or produced by `\xNN`) becomes U+FFFD.
pub fn unescape(raw: &[u8], kind: ValueKind) -> Cow<'_, str> {
    match kind {
        ValueKind::Bare => String::from_utf8_lossy(raw),
        ValueKind::GoQuoted if memchr(b'\\', raw).is_some() => {
            Cow::Owned(bytes_to_string(unescape_go(raw)))
        }
        ValueKind::JsonString if memchr(b'\\', raw).is_some() => {
            Cow::Owned(bytes_to_string(unescape_json(raw)))
        }
        ValueKind::GoQuoted | ValueKind::JsonString => String::from_utf8_lossy(raw),
        ValueKind::JsonRaw => match namespaced_name(raw) {
            Some((ns, name)) => {
                let mut s = String::with_capacity(ns.len() + name.len() + 1);
                s.push_str(&unescape(ns, ValueKind::JsonString));
                s.push('/');
                s.push_str(&unescape(name, ValueKind::JsonString));
                Cow::Owned(s)
            }
            None => String::from_utf8_lossy(raw),
        },
    }
}

fn bytes_to_string(v: Vec<u8>) -> String {
    match String::from_utf8(v) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    let mut v: u32 = 0;
    for &d in digits {
        v = v.checked_mul(16)? + (d as char).to_digit(16)?;
    }
    Some(v)
}

fn push_char(out: &mut Vec<u8>, c: u32) {
    let c = char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Go `strconv.Unquote` rules for the body of a double-quoted string.
fn unescape_go(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let Some(k) = memchr(b'\\', &raw[i..]) else {
            out.extend_from_slice(&raw[i..]);
            break;
        };
        out.extend_from_slice(&raw[i..i + k]);
        i += k;
        let rest = &raw[i + 1..];
        let simple = match rest.first() {
            Some(b'a') => Some(0x07),
            Some(b'b') => Some(0x08),
            Some(b'f') => Some(0x0c),
            Some(b'n') => Some(b'\n'),
            Some(b'r') => Some(b'\r'),
            Some(b't') => Some(b'\t'),
            Some(b'v') => Some(0x0b),
            Some(b'\\') => Some(b'\\'),
            Some(b'"') => Some(b'"'),
            Some(b'\'') => Some(b'\''),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            i += 2;
            continue;
        }
        let fixed = |n: usize| rest.get(1..1 + n).and_then(hex_value);
        match rest.first() {
            Some(b'x') => {
                if let Some(v) = fixed(2) {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
            Some(b'u') => {
                if let Some(v) = fixed(4) {
                    push_char(&mut out, v);
                    i += 6;
                    continue;
                }
            }
            Some(b'U') => {
                if let Some(v) = fixed(8) {
                    push_char(&mut out, v);
                    i += 10;
                    continue;
                }
            }
            Some(b'0'..=b'7') => {
                let oct = rest
                    .get(..3)
                    .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
                if let Some(d) = oct {
                    let v = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                    if v <= 0xff {
                        out.push(v as u8);
                        i += 4;
                        continue;
                    }
                }
            }
            _ => {}
        }
        // Not a valid escape: keep the backslash; the next byte is copied as ordinary text.
        out.push(b'\\');
        i += 1;
    }
    out
}

/// JSON string escapes, with UTF-16 surrogate pairs.
fn unescape_json(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let Some(k) = memchr(b'\\', &raw[i..]) else {
            out.extend_from_slice(&raw[i..]);
            break;
        };
        out.extend_from_slice(&raw[i..i + k]);
        i += k;
        let rest = &raw[i + 1..];
        let simple = match rest.first() {
            Some(b'"') => Some(b'"'),
            Some(b'\\') => Some(b'\\'),
            Some(b'/') => Some(b'/'),
            Some(b'b') => Some(0x08),
            Some(b'f') => Some(0x0c),
            Some(b'n') => Some(b'\n'),
            Some(b'r') => Some(b'\r'),
            Some(b't') => Some(b'\t'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            i += 2;
            continue;
        }
        if rest.first() == Some(&b'u') {
            if let Some(hi) = rest.get(1..5).and_then(hex_value) {
                if (0xd800..0xdc00).contains(&hi) {
                    // High surrogate: pair it with a following `\uDC00`..`\uDFFF`.
                    let lo = rest
                        .get(5..7)
                        .filter(|p| *p == b"\\u")
                        .and_then(|_| rest.get(7..11))
                        .and_then(hex_value)
                        .filter(|lo| (0xdc00..0xe000).contains(lo));
                    match lo {
                        Some(lo) => {
                            push_char(&mut out, 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
                            i += 12;
                        }
                        None => {
                            push_char(&mut out, 0xfffd);
                            i += 6;
                        }
                    }
                } else {
                    // A lone low surrogate is not a char: push_char turns it into U+FFFD.
                    push_char(&mut out, hi);
                    i += 6;
                }
                continue;
            }
        }
        out.push(b'\\');
        i += 1;
    }
    out
}

/// Recognises `{"Namespace":"ns","Name":"n"}` (either order, any JSON white space) and returns
/// the two raw string bodies.
fn namespaced_name(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut ns = None;
    let mut name = None;
    let mut members = 0;
    let mut only_strings = true;
    let (rest, ()) = json_object(raw, |k, v, kind| {
        members += 1;
        only_strings &= kind == ValueKind::JsonString;
        match k {
            b"Namespace" => ns = Some(v),
            b"Name" => name = Some(v),
            _ => {}
        }
    })
    .ok()?;
    if members != 2 || !only_strings || !json_ws::<Error>(rest).ok()?.0.is_empty() {
        return None;
    }
    Some((ns?, name?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nom::error::VerboseError;

    fn go(s: &str) -> String {
        unescape(s.as_bytes(), ValueKind::GoQuoted).into_owned()
    }

    fn json(s: &str) -> String {
        unescape(s.as_bytes(), ValueKind::JsonString).into_owned()
    }

    #[test]
    fn go_unescape_table() {
        let cases: &[(&str, &str)] = &[
            (r#"plain"#, "plain"),
            (r#"a \"b\" c"#, "a \"b\" c"),
            (r#"back\\slash"#, "back\\slash"),
            (
                r#"AccessDenied\n\tstatus code: 403"#,
                "AccessDenied\n\tstatus code: 403",
            ),
            (r#"\r\a\b\f\v"#, "\r\x07\x08\x0c\x0b"),
            (r#"\x1b[0m"#, "\x1b[0m"),
            (r#"\xc3\xa9"#, "é"),
            (r#"\xff"#, "\u{fffd}"),
            (r#"\u00e9 \u200b"#, "é \u{200b}"),
            (r#"\U0001F600"#, "😀"),
            (r#"\101\060"#, "A0"),
            (r#"\q"#, "\\q"),
            (r#"\x4"#, "\\x4"),
            (r#"trailing\"#, "trailing\\"),
            (r#"\UFFFFFFFF"#, "\u{fffd}"),
            ("café µ", "café µ"),
        ];
        for (raw, want) in cases {
            assert_eq!(go(raw), *want, "raw {raw:?}");
        }
    }

    #[test]
    fn unescape_borrows_without_escapes() {
        assert!(matches!(
            unescape(b"no escapes here", ValueKind::GoQuoted),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            unescape(b"no escapes", ValueKind::JsonString),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            unescape(b"a\\b", ValueKind::Bare),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            unescape(b"bad \xff utf8", ValueKind::Bare),
            "bad \u{fffd} utf8"
        );
    }

    #[test]
    fn json_unescape_table() {
        let cases: &[(&str, &str)] = &[
            (
                r#"Excluding namespaces: \u003cnone\u003e"#,
                "Excluding namespaces: <none>",
            ),
            (r#"a \u0026 b"#, "a & b"),
            (r#"\"q\" \\ \/ \b\f\n\r\t"#, "\"q\" \\ / \x08\x0c\n\r\t"),
            (r#"\ud83d\ude00"#, "😀"),
            (r#"\ud83d x"#, "\u{fffd} x"),
            (r#"\ude00"#, "\u{fffd}"),
            (r#"\ud83d\u0041"#, "\u{fffd}A"),
            (r#"\u00"#, "\\u00"),
            (r#"\x"#, "\\x"),
        ];
        for (raw, want) in cases {
            assert_eq!(json(raw), *want, "raw {raw:?}");
        }
    }

    #[test]
    fn json_raw_namespaced_name() {
        let raw = |s: &str| unescape(s.as_bytes(), ValueKind::JsonRaw).into_owned();
        assert_eq!(raw(r#"{"Namespace":"velero","Name":"x"}"#), "velero/x");
        assert_eq!(raw(r#"{ "Name": "x", "Namespace": "velero" }"#), "velero/x");
        assert_eq!(raw(r#"{"Namespace":"","Name":"x"}"#), "/x");
        assert_eq!(
            raw(r#"{"Namespace":"a","Name":"b","X":1}"#),
            r#"{"Namespace":"a","Name":"b","X":1}"#
        );
        assert_eq!(
            raw(r#"{"Namespace":"a","Name":1}"#),
            r#"{"Namespace":"a","Name":1}"#
        );
        assert_eq!(raw("87"), "87");
        assert_eq!(raw("[1,2]"), "[1,2]");
    }

    #[test]
    fn quoted_finds_the_closing_quote() {
        let r: nom::IResult<&[u8], &[u8], VerboseError<&[u8]>> = quoted(br#""a \"b\" \\" rest"#);
        assert_eq!(r.unwrap(), (&b" rest"[..], &br#"a \"b\" \\"#[..]));
        assert!(quoted::<Error>(br#""unterminated \""#).is_err());
        assert!(quoted::<Error>(br#""ends in backslash\"#).is_err());
        assert!(quoted::<Error>(b"no quote").is_err());
    }

    #[test]
    fn durations() {
        let cases: &[(&str, f64)] = &[
            ("612ns", 612e-9),
            ("34.3µs", 34.3e-6),
            ("34.3us", 34.3e-6),
            ("34.3\u{3bc}s", 34.3e-6),
            ("1.4ms", 1.4e-3),
            ("4.709180529s", 4.709180529),
            ("1m15s", 75.0),
            ("1m0s", 60.0),
            ("2h3m4.5s", 7384.5),
            ("0s", 0.0),
            ("0", 0.0),
            ("2s", 2.0),
            ("30.004118734s", 30.004118734),
            ("-1.5s", -1.5),
            (".5s", 0.5),
            ("2540400h10m10.000000000s", 2540400.0 * 3600.0 + 610.0),
        ];
        for (cell, want) in cases {
            let got = parse_go_duration(cell.as_bytes()).unwrap_or(f64::NAN);
            assert!(
                (got - want).abs() <= want.abs() * 1e-12,
                "{cell}: {got} != {want}"
            );
        }
        let huge = format!("{}h", "9".repeat(400));
        for bad in [
            "", "s", "1", "1x", "ms", "1.s.", "µs", "1 s", "12", ".", "2562048h", &huge,
        ] {
            assert_eq!(parse_go_duration(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn blanks_skip_colour_escapes() {
        let (rest, _) = blanks::<Error>(b" \x1b[97;42m 200 \x1b[0m|").unwrap();
        assert_eq!(rest, b"200 \x1b[0m|");
        let (rest, _) = blanks::<Error>(b"\x1b[9x").unwrap();
        assert_eq!(rest, b"\x1b[9x");
    }

    #[test]
    fn json_object_members() {
        let mut seen = Vec::new();
        let (rest, ()) = json_object(
            br#"{"a": 1, "b" : "x\"y", "c":{"d":[1,"]"]}, "e":null} tail"#,
            |k, v, kind| seen.push((k.to_vec(), v.to_vec(), kind)),
        )
        .unwrap();
        assert_eq!(rest, b" tail");
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[1].1, br#"x\"y"#);
        assert_eq!(seen[2].1, br#"{"d":[1,"]"]}"#);
        assert_eq!(seen[2].2, ValueKind::JsonRaw);
        assert!(json_object(br#"{"a":1"#, |_, _, _| ()).is_err());
        assert!(json_object(br#"{"a" 1}"#, |_, _, _| ()).is_err());
        assert!(json_object(br#"{"a":{"b":1}"#, |_, _, _| ()).is_err());
    }
}
