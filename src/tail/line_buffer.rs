//! A block line buffer: one `Vec`, two indices, memchr for line ends, and only the partial tail is
//! moved when the buffer rolls (ripgrep's design).
//!
//! Invariants: `start <= end <= buf.len()`; bytes `start..end` are read but not yet returned;
//! a physical line longer than `max_line` is returned cut to `max_line` (flagged) and the rest of
//! it, up to its newline, is skipped (counted in the consumed length, so offsets stay exact).

use std::io::{self, Read};

/// Bytes read per `read` call.
pub const BLOCK: usize = 64 * 1024;

/// A line found in the buffer: its position and how many file bytes it accounts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    /// Start of the line's bytes in [`LineBuffer::bytes`].
    pub start: usize,
    /// End of the line's bytes (the `\n`, or the cut point).
    pub end: usize,
    /// File bytes consumed: the line, its newline and any skipped over-long remainder before it.
    pub consumed: u64,
    /// True when the line was longer than the maximum and was cut.
    pub truncated: bool,
}

/// The buffer.
#[derive(Debug)]
pub struct LineBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_line: usize,
    /// Bytes skipped (over-long remainder) not yet reported in a `consumed`.
    skipped: u64,
    discarding: bool,
}

impl LineBuffer {
    /// A buffer that cuts physical lines at `max_line` bytes.
    pub fn new(max_line: usize) -> LineBuffer {
        LineBuffer {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max_line: max_line.max(16),
            skipped: 0,
            discarding: false,
        }
    }

    /// The underlying bytes (slice a [`Line`] out of it).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes buffered but not returned as lines.
    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Drops everything buffered (truncation, reopen).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.skipped = 0;
        self.discarding = false;
    }

    /// Frees the buffer when nothing is pending (an idle file keeps no 64 KiB block).
    pub fn release(&mut self) {
        if self.start == self.end && !self.discarding {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        }
    }

    /// Moves the unreturned tail to the front and reads one block. Returns bytes read (0 = EOF).
    pub fn fill<R: Read + ?Sized>(&mut self, r: &mut R) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = self.end + BLOCK;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let n = loop {
            match r.read(&mut self.buf[self.end..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.end += n;
        Ok(n)
    }

    /// The next complete line, if one is buffered.
    pub fn next_line(&mut self) -> Option<Line> {
        loop {
            let window = &self.buf[self.start..self.end];
            match memchr::memchr(b'\n', window) {
                Some(i) if self.discarding => {
                    self.skipped += i as u64 + 1;
                    self.start += i + 1;
                    self.discarding = false;
                    continue;
                }
                Some(i) => {
                    let line_len = i;
                    let start = self.start;
                    self.start += i + 1;
                    let consumed = line_len as u64 + 1 + std::mem::take(&mut self.skipped);
                    if line_len > self.max_line {
                        return Some(Line {
                            start,
                            end: start + self.max_line,
                            consumed,
                            truncated: true,
                        });
                    }
                    return Some(Line {
                        start,
                        end: start + line_len,
                        consumed,
                        truncated: false,
                    });
                }
                None if self.discarding => {
                    self.skipped += window.len() as u64;
                    self.start = self.end;
                    return None;
                }
                None if window.len() > self.max_line => {
                    // Cut an over-long line now so the buffer stays bounded.
                    let start = self.start;
                    self.start += self.max_line;
                    self.discarding = true;
                    let consumed = self.max_line as u64 + std::mem::take(&mut self.skipped);
                    return Some(Line {
                        start,
                        end: start + self.max_line,
                        consumed,
                        truncated: true,
                    });
                }
                None => return None,
            }
        }
    }

    /// Takes the unterminated tail (when a file is finished); `None` if nothing is buffered.
    pub fn take_rest(&mut self) -> Option<Line> {
        if self.discarding {
            let skipped = (self.end - self.start) as u64 + std::mem::take(&mut self.skipped);
            self.start = self.end;
            self.discarding = false;
            // Report the skipped bytes as an empty, consumed-only line.
            return (skipped > 0).then_some(Line {
                start: self.start,
                end: self.start,
                consumed: skipped,
                truncated: true,
            });
        }
        if self.start == self.end {
            return None;
        }
        let start = self.start;
        let len = (self.end - self.start).min(self.max_line);
        let consumed = (self.end - self.start) as u64 + std::mem::take(&mut self.skipped);
        self.start = self.end;
        Some(Line {
            start,
            end: start + len,
            consumed,
            truncated: len < consumed as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Got = (Vec<(Vec<u8>, u64, bool)>, Option<Vec<u8>>);

    fn lines(input: &[u8], max: usize) -> Got {
        // A reader that returns 3 bytes at a time exercises rolling.
        struct Slow<'a>(&'a [u8]);
        impl Read for Slow<'_> {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(3).min(b.len());
                b[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut lb = LineBuffer::new(max);
        let mut r = Slow(input);
        let mut out = Vec::new();
        loop {
            while let Some(l) = lb.next_line() {
                out.push((lb.bytes()[l.start..l.end].to_vec(), l.consumed, l.truncated));
            }
            if lb.fill(&mut r).unwrap() == 0 {
                break;
            }
        }
        let rest = lb.take_rest().map(|l| lb.bytes()[l.start..l.end].to_vec());
        (out, rest)
    }

    #[test]
    fn splits_and_keeps_offsets_exact() {
        let (ls, rest) = lines(b"ab\n\ncdef\ngh", 100);
        assert_eq!(
            ls,
            vec![
                (b"ab".to_vec(), 3, false),
                (b"".to_vec(), 1, false),
                (b"cdef".to_vec(), 5, false)
            ]
        );
        assert_eq!(rest, Some(b"gh".to_vec()));
    }

    #[test]
    fn over_long_lines_are_cut_and_counted() {
        let input = b"0123456789abcdefghijXYZ\nok\n";
        let (ls, _) = lines(input, 16);
        assert_eq!(ls[0].0, b"0123456789abcdef".to_vec());
        assert!(ls[0].2);
        assert_eq!(ls[1].0, b"ok".to_vec());
        let total: u64 = ls.iter().map(|l| l.1).sum();
        assert_eq!(total, input.len() as u64);
    }
}
