//! Joins partial entries (CRI `P` … `F`, docker lines without `\n`) per (file, stream).
//!
//! Bounded: a joined entry never exceeds `max_bytes` (the rest is dropped and the entry marked
//! truncated); a dangling partial older than the flush timeout is emitted as is.

use std::time::{Duration, Instant};

use crate::model::StreamKind;

/// A joined (or single) entry ready for parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    /// Timestamp of the first part.
    pub ts_ns: i64,
    /// Stream.
    pub stream: StreamKind,
    /// Content.
    pub content: Vec<u8>,
    /// True when parts beyond `max_bytes` were dropped.
    pub truncated: bool,
    /// File offset where the first part started.
    pub start_offset: u64,
}

#[derive(Debug)]
struct Pending {
    joined: Joined,
    since: Instant,
}

/// Per-file joiner; one slot per stream.
#[derive(Debug, Default)]
pub struct Joiner {
    slots: [Option<Pending>; 2],
}

fn slot(s: StreamKind) -> usize {
    match s {
        StreamKind::Stdout => 0,
        StreamKind::Stderr => 1,
    }
}

/// What [`Joiner::push`] did with a part.
#[derive(Debug, PartialEq, Eq)]
pub enum Push {
    /// The part is held until its final part arrives.
    Held,
    /// The final part completed an entry (joined content returned).
    Complete(Joined),
    /// No partial was pending: the caller uses the line's own content.
    Single,
}

impl Joiner {
    /// Offers one decoded part. `start_offset` is where its physical line starts in the file.
    pub fn push(
        &mut self,
        ts_ns: i64,
        stream: StreamKind,
        partial: bool,
        content: &[u8],
        start_offset: u64,
        max_bytes: usize,
    ) -> Push {
        let s = &mut self.slots[slot(stream)];
        if s.is_none() && !partial {
            return Push::Single;
        }
        let p = s.get_or_insert_with(|| Pending {
            joined: Joined {
                ts_ns,
                stream,
                content: Vec::new(),
                truncated: false,
                start_offset,
            },
            since: Instant::now(),
        });
        let room = max_bytes.saturating_sub(p.joined.content.len());
        if content.len() > room {
            p.joined.content.extend_from_slice(&content[..room]);
            p.joined.truncated = true;
        } else {
            p.joined.content.extend_from_slice(content);
        }
        if partial {
            Push::Held
        } else {
            match s.take() {
                Some(p) => Push::Complete(p.joined),
                None => Push::Single,
            }
        }
    }

    /// The file offset before which everything is complete (the earliest pending start).
    pub fn pending_start(&self) -> Option<u64> {
        self.slots
            .iter()
            .flatten()
            .map(|p| p.joined.start_offset)
            .min()
    }

    /// When the oldest pending partial started waiting (for scheduling the next flush).
    pub fn oldest_since(&self) -> Option<Instant> {
        self.slots.iter().flatten().map(|p| p.since).min()
    }

    /// True when a partial is pending.
    pub fn is_pending(&self) -> bool {
        self.slots.iter().any(Option::is_some)
    }

    /// Takes partials pending longer than `timeout` (all of them with `Duration::ZERO`).
    pub fn take_expired(&mut self, timeout: Duration, out: &mut Vec<Joined>) {
        for s in self.slots.iter_mut() {
            if s.as_ref().is_some_and(|p| p.since.elapsed() >= timeout) {
                if let Some(p) = s.take() {
                    out.push(p.joined);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_per_stream_with_cap() {
        let mut j = Joiner::default();
        assert_eq!(j.push(1, StreamKind::Stdout, true, b"ab", 0, 5), Push::Held);
        assert_eq!(
            j.push(2, StreamKind::Stderr, false, b"err", 10, 5),
            Push::Single
        );
        assert_eq!(j.pending_start(), Some(0));
        assert_eq!(
            j.push(3, StreamKind::Stdout, true, b"cd", 20, 5),
            Push::Held
        );
        match j.push(4, StreamKind::Stdout, false, b"efg", 30, 5) {
            Push::Complete(x) => {
                assert_eq!(x.content, b"abcde");
                assert!(x.truncated);
                assert_eq!(x.ts_ns, 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(j.pending_start(), None);
        j.push(5, StreamKind::Stderr, true, b"dangling", 40, 100);
        let mut out = Vec::new();
        j.take_expired(Duration::ZERO, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].content, b"dangling");
    }
}
