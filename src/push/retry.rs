//! The one place that decides what Loki's answer means, plus backoff with full jitter.

use std::time::Duration;

use rand::Rng;

/// What to do with a batch after Loki answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered (note 204 and 260 — a 260 means ingestion is blocked and counts as dropped).
    Success,
    /// 429, 5xx except 501, 401/403 (configuration problem: keep the data), timeouts and
    /// transport errors: retry with backoff.
    Retry,
    /// Other 4xx and 501: never retried (a 400 can be a partial success); drop and count.
    Reject,
}

/// Classifies an HTTP status.
pub fn classify(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Success,
        429 | 401 | 403 | 408 => Verdict::Retry,
        501 => Verdict::Reject,
        500..=599 => Verdict::Retry,
        _ => Verdict::Reject,
    }
}

/// Maps Loki's error body to a drop reason (label of `veloki_loki_dropped_entries_total`).
pub fn drop_reason(status: u16, body: &str) -> &'static str {
    let b = body;
    if b.contains("Max entry size") || b.contains("line too long") {
        "line_too_long"
    } else if b.contains("timestamp too old") || b.contains("too old") {
        "too_old"
    } else if b.contains("timestamp too new") {
        "too_new"
    } else if b.contains("too far behind") || b.contains("out of order") {
        "too_far_behind"
    } else if b.contains("Maximum active stream limit") {
        "stream_limit"
    } else if b.contains("rate limit") || status == 429 {
        "rate_limited"
    } else if b.contains("structured metadata") {
        "structured_metadata"
    } else if b.contains("Error parsing labels")
        || b.contains("label pair")
        || b.contains("label name")
        || b.contains("label value")
        || b.contains("label names")
        || b.contains("at least one label pair")
    {
        "invalid_labels"
    } else {
        "other"
    }
}

/// How many entries a rejection dropped: Loki's `N errors like:` / `total ignored: N out of M`
/// when present (capped at the batch), else the whole batch.
pub fn dropped_count(body: &str, batch_entries: usize) -> usize {
    let num_before = |marker: &str| -> Option<usize> {
        let i = body.find(marker)?;
        let head = body[..i].trim_end();
        let start = head
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |p| p + 1);
        head[start..].parse().ok()
    };
    let mut total: Option<usize> = None;
    // Ingester bodies: one "total ignored: N out of M" per stream.
    let mut rest = body;
    while let Some(i) = rest.find("total ignored: ") {
        let s = &rest[i + "total ignored: ".len()..];
        let n: String = s.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = n.parse::<usize>() {
            total = Some(total.unwrap_or(0) + n);
        }
        rest = s;
    }
    total
        .or_else(|| num_before(" errors like:"))
        .map_or(batch_entries, |n| n.min(batch_entries))
}

/// How entries of a rejected request were dropped, by reason: Loki's answer names each kind
/// of error once with its count (`N errors like: …; M errors like: …`, or the ingester's
/// `total ignored: N out of M`). Entry-level errors (line too long, too old/new, too far
/// behind, metadata too large) drop N entries; stream-level ones (labels, metadata disallowed)
/// drop the whole streams they name. Anything else — a 413, another 4xx, an unreadable 400 —
/// dropped the whole request. The counts never exceed `entries`.
pub fn drop_breakdown(
    status: u16,
    body: &str,
    streams: &[(&str, usize)],
    entries: usize,
) -> Vec<(&'static str, usize)> {
    let whole = vec![(drop_reason(status, body), entries)];
    if status != 400 {
        return whole;
    }
    if body.contains("total ignored: ") {
        return vec![(drop_reason(status, body), dropped_count(body, entries))];
    }
    // Split "N errors like: A; M errors like: B" into groups.
    let mut groups: Vec<(usize, &str)> = Vec::new();
    let mut rest = body.trim_end();
    loop {
        let (n, text) = match rest.find(" errors like: ") {
            Some(i) if !rest[..i].is_empty() && rest[..i].bytes().all(|b| b.is_ascii_digit()) => (
                rest[..i].parse().unwrap_or(1),
                &rest[i + " errors like: ".len()..],
            ),
            _ => (1, rest),
        };
        // The next group starts at "; <digits> errors like: ".
        let mut cut = None;
        let mut from = 0;
        while let Some(j) = text[from..].find("; ") {
            let at = from + j;
            let after = &text[at + 2..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && after[digits..].starts_with(" errors like: ") {
                cut = Some(at);
                break;
            }
            from = at + 2;
        }
        match cut {
            Some(at) => {
                groups.push((n, &text[..at]));
                rest = &text[at + 2..];
            }
            None => {
                groups.push((n, text));
                break;
            }
        }
    }
    let avg = if streams.is_empty() {
        1
    } else {
        (entries / streams.len()).max(1)
    };
    let mut out: Vec<(&'static str, usize)> = Vec::new();
    let mut total = 0usize;
    for (n, text) in groups {
        let reason = drop_reason(status, text);
        let count = match reason {
            "line_too_long" | "too_old" | "too_new" | "too_far_behind" => n,
            "structured_metadata" if !text.contains("disallowed") => n,
            "invalid_labels" | "structured_metadata" => {
                let named: Vec<usize> = streams
                    .iter()
                    .filter(|(l, _)| text.contains(l))
                    .map(|(_, c)| *c)
                    .collect();
                named.iter().sum::<usize>() + n.saturating_sub(named.len()) * avg
            }
            _ => return whole,
        };
        let count = count.min(entries - total);
        total += count;
        match out.iter_mut().find(|(r, _)| *r == reason) {
            Some(e) => e.1 += count,
            None => out.push((reason, count)),
        }
    }
    out
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Exponential backoff with full jitter: attempt n waits uniformly in `[min/2, min(max, min·2ⁿ)]`
/// (the floor keeps a burst of failures from retrying at once).
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff between `min` and `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// Retries so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The next delay; a server's `Retry-After` wins (capped at `max`).
    pub fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        let cap = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt += 1;
        if let Some(ra) = retry_after {
            return ra.min(self.max);
        }
        let floor = self.min.as_millis() as u64 / 2;
        let ceil = (cap.as_millis() as u64).max(floor);
        Duration::from_millis(rand::thread_rng().gen_range(floor..=ceil))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_statuses() {
        assert_eq!(classify(204), Verdict::Success);
        assert_eq!(classify(260), Verdict::Success);
        assert_eq!(classify(429), Verdict::Retry);
        assert_eq!(classify(503), Verdict::Retry);
        assert_eq!(classify(501), Verdict::Reject);
        assert_eq!(classify(400), Verdict::Reject);
        assert_eq!(classify(413), Verdict::Reject);
        assert_eq!(classify(401), Verdict::Retry);
    }

    #[test]
    fn reasons_and_counts() {
        let b = "2 errors like: Max entry size '262144' bytes exceeded for stream '{a=\"b\"}' while adding an entry with length '300000' bytes";
        assert_eq!(drop_reason(400, b), "line_too_long");
        assert_eq!(dropped_count(b, 10), 2);
        let b = "entry with timestamp 2025-08-01 16:43:38.854444845 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2025-08-01T16:43:38Z, oldest acceptable timestamp is: 2025-08-03T10:18:03Z',\nuser 'fake', total ignored: 3 out of 10 for stream: {foo=\"bar\"}";
        assert_eq!(drop_reason(400, b), "too_far_behind");
        assert_eq!(dropped_count(b, 10), 3);
        assert_eq!(
            drop_reason(400, "entry for stream '{a=\"b\"}' has timestamp too old: x"),
            "too_old"
        );
        assert_eq!(
            drop_reason(400, "Error parsing labels '{a' with error: x"),
            "invalid_labels"
        );
        assert_eq!(dropped_count("weird", 7), 7);
    }

    #[test]
    fn breakdowns() {
        let streams = [("{a=\"1\"}", 4), ("{a=\"2\"}", 6)];
        let b = "2 errors like: Max entry size '10' bytes exceeded for stream '{a=\"1\"}' while adding an entry with length '20' bytes; 1 errors like: entry for stream '{a=\"2\"}' has timestamp too new: 2030-01-01T00:00:00Z\n";
        assert_eq!(
            drop_breakdown(400, b, &streams, 10),
            vec![("line_too_long", 2), ("too_new", 1)]
        );
        let b = "stream '{a=\"2\"}' has duplicate label name: 'a'\n";
        assert_eq!(
            drop_breakdown(400, b, &streams, 10),
            vec![("invalid_labels", 6)]
        );
        let b = "entry for stream '{a=\"1\"}' has 16 label names; limit 15";
        assert_eq!(
            drop_breakdown(400, b, &streams, 10),
            vec![("invalid_labels", 4)]
        );
        assert_eq!(
            drop_breakdown(413, "too big", &streams, 10),
            vec![("other", 10)]
        );
        assert_eq!(
            drop_breakdown(400, "proto: bad", &streams, 10),
            vec![("other", 10)]
        );
        let b = "entry for stream '{a=\"1\"}' has timestamp too old: x, oldest acceptable timestamp is: y";
        assert_eq!(drop_breakdown(400, b, &streams, 10), vec![("too_old", 1)]);
    }

    #[test]
    fn backoff_is_bounded() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
        for _ in 0..30 {
            assert!(b.next(None) <= Duration::from_secs(5));
        }
        assert_eq!(
            b.next(Some(Duration::from_secs(60))),
            Duration::from_secs(5)
        );
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
    }
}
