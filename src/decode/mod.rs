//! Decode: removes the container runtime's envelope from each physical line.
//!
//! **In:** one physical line of a pod-log file (without its `\n`). **Out:** the entry's
//! timestamp, stream, partial flag and content ([`Decoded`]). **Guarantees:** a line that is
//! neither CRI nor docker json-file is still returned (as [`Envelope::Raw`] content with the
//! previous timestamp), never dropped; CRI content is borrowed, docker content is borrowed unless
//! it has JSON escapes. Partial entries are joined by [`partial::Joiner`].

use std::borrow::Cow;

use serde::Deserialize;

use crate::model::StreamKind;
use crate::timefmt::parse_rfc3339_nanos;

pub mod multiline;
pub mod partial;

/// Which envelope a line had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// CRI: `<ts> <stream> <P|F>[:tags] <content>`.
    Cri,
    /// docker json-file: `{"log":…,"stream":…,"time":…}`.
    Docker,
    /// Neither: the whole line is the content.
    Raw,
}

/// One decoded physical line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Timestamp in Unix nanoseconds (`None` for raw lines).
    pub ts_ns: Option<i64>,
    /// stdout or stderr.
    pub stream: StreamKind,
    /// True for a partial (`P`, or docker `log` without a trailing newline).
    pub partial: bool,
    /// The content.
    pub content: Cow<'a, [u8]>,
    /// Which envelope was found.
    pub envelope: Envelope,
}

/// Decodes a CRI line; `None` if it is not one.
pub fn cri(line: &[u8]) -> Option<Decoded<'_>> {
    let sp1 = memchr::memchr(b' ', line)?;
    let ts = parse_rfc3339_nanos(&line[..sp1])?;
    let rest = &line[sp1 + 1..];
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b"stdout ") {
        (StreamKind::Stdout, r)
    } else if let Some(r) = rest.strip_prefix(b"stderr ") {
        (StreamKind::Stderr, r)
    } else {
        return None;
    };
    let tag_end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    let tag = &rest[..tag_end];
    // The tag is `P` or `F`, optionally followed by `:`-separated extras.
    let partial = match tag.first() {
        Some(b'P') => true,
        Some(b'F') => false,
        _ => return None,
    };
    if tag.len() > 1 && tag[1] != b':' {
        return None;
    }
    let content = rest.get(tag_end + 1..).unwrap_or(&[]);
    Some(Decoded {
        ts_ns: Some(ts),
        stream,
        partial,
        content: Cow::Borrowed(content),
        envelope: Envelope::Cri,
    })
}

#[derive(Deserialize)]
struct DockerLine<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow, default)]
    stream: Cow<'a, str>,
    #[serde(borrow, default)]
    time: Cow<'a, str>,
}

/// Decodes a docker json-file line; `None` if it is not one.
pub fn docker(line: &[u8]) -> Option<Decoded<'_>> {
    if line.first() != Some(&b'{') {
        return None;
    }
    let d: DockerLine = serde_json::from_slice(line).ok()?;
    let stream = if d.stream == "stderr" {
        StreamKind::Stderr
    } else {
        StreamKind::Stdout
    };
    let ts = parse_rfc3339_nanos(d.time.as_bytes());
    let (content, partial) = match d.log {
        Cow::Borrowed(s) => match s.strip_suffix('\n') {
            Some(s) => (Cow::Borrowed(s.as_bytes()), false),
            None => (Cow::Borrowed(s.as_bytes()), true),
        },
        Cow::Owned(mut s) => {
            let partial = !s.ends_with('\n');
            if !partial {
                s.pop();
            }
            (Cow::Owned(s.into_bytes()), partial)
        }
    };
    Some(Decoded {
        ts_ns: ts,
        stream,
        partial,
        content,
        envelope: Envelope::Docker,
    })
}

/// Decodes a line of a file whose envelope was sniffed as `hint` (the other one is tried next,
/// then raw).
pub fn decode(line: &[u8], hint: Envelope) -> Decoded<'_> {
    let first = match hint {
        Envelope::Docker => docker(line).or_else(|| cri(line)),
        _ => cri(line).or_else(|| docker(line)),
    };
    first.unwrap_or(Decoded {
        ts_ns: None,
        stream: StreamKind::Stdout,
        partial: false,
        content: Cow::Borrowed(line),
        envelope: Envelope::Raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines() {
        let d = cri(b"2026-04-10T02:00:00.123456789Z stdout F hello world").unwrap();
        assert_eq!(d.stream, StreamKind::Stdout);
        assert!(!d.partial);
        assert_eq!(&*d.content, b"hello world");
        let d = cri(b"2026-04-10T02:00:00.1Z stderr P part").unwrap();
        assert!(d.partial);
        assert_eq!(d.stream, StreamKind::Stderr);
        let d = cri(b"2026-04-10T02:00:00.1Z stdout F").unwrap();
        assert_eq!(&*d.content, b"");
        let d = cri(b"2026-04-10T02:00:00.1Z stdout F:x y").unwrap();
        assert_eq!(&*d.content, b"y");
        assert!(cri(b"garbage line").is_none());
        assert!(cri(b"2026-04-10T02:00:00.1Z stdin F x").is_none());
    }

    #[test]
    fn docker_lines() {
        let d =
            docker(br#"{"log":"hello \"q\"\n","stream":"stderr","time":"2026-04-10T02:00:00.5Z"}"#)
                .unwrap();
        assert_eq!(&*d.content, br#"hello "q""#);
        assert!(!d.partial);
        assert_eq!(d.stream, StreamKind::Stderr);
        let d =
            docker(br#"{"log":"part","stream":"stdout","time":"2026-04-10T02:00:00.5Z"}"#).unwrap();
        assert!(d.partial);
        assert!(matches!(d.content, Cow::Borrowed(_)));
    }

    #[test]
    fn raw_fallback_keeps_the_line() {
        let d = decode(b"\xff\xfe not a log", Envelope::Cri);
        assert_eq!(d.envelope, Envelope::Raw);
        assert_eq!(&*d.content, b"\xff\xfe not a log");
    }
}
