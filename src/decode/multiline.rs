//! Multi-line grouping: keeps entries that belong together as one entry, where the lines arrive
//! together.
//!
//! * a Gin access line and the `Error #NN: …` / `     Meta: …` lines Gin writes after it;
//! * a Go runtime panic dump (`panic: …` or `fatal error: …`, `goroutine N [running]:`, frames,
//!   `\t/path/file.go:line +0x…`, `[signal …]`, `exit status …`);
//! * Gin's Recovery block (`… [Recovery] … panic recovered:` up to its closing colour reset).
//!
//! At most one entry per file is held. It is released when a line of the same file does not
//! continue it, when the read pass ends (nothing more has arrived), or at a size/line cap. So
//! grouping never delays a line past the pass that read it, and offsets stay in file order.

use std::collections::HashMap;

use crate::model::{FileCtx, StreamKind};

/// Most lines in one grouped entry.
pub const MAX_LINES: usize = 1000;

/// What kind of block an entry starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// A Gin access line (continued by `Error #NN:` / `Meta:` lines).
    GinAccess,
    /// A Go runtime panic or fatal error dump.
    GoPanic,
    /// Gin's Recovery middleware block.
    GinRecovery,
}

/// The block an entry starts, if any.
pub fn starts_block(content: &[u8]) -> Option<BlockKind> {
    if content.starts_with(b"[GIN] ") {
        Some(BlockKind::GinAccess)
    } else if content.starts_with(b"panic: ")
        || content.starts_with(b"fatal error: ")
        || (content.starts_with(b"goroutine ") && content.get(10).is_some_and(u8::is_ascii_digit))
    {
        Some(BlockKind::GoPanic)
    } else if memchr::memmem::find(content, b"[Recovery] ").is_some()
        && memchr::memmem::find(content, b"panic recovered").is_some()
    {
        Some(BlockKind::GinRecovery)
    } else {
        None
    }
}

/// A Go stack frame line: `pkg.Func(args)` / `pkg.(*T).Method(…)`, no space before `(`.
fn is_frame(l: &[u8]) -> bool {
    match memchr::memchr(b'(', l) {
        Some(p) if p > 0 => !l[..p].contains(&b' ') && (l.ends_with(b")") || l.ends_with(b"...)")),
        _ => false,
    }
}

/// True when `content` continues a block of this kind.
pub fn continues(kind: BlockKind, content: &[u8]) -> bool {
    match kind {
        BlockKind::GinAccess => {
            (content.starts_with(b"Error #")
                && content
                    .get(7..9)
                    .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
                && content.get(9) == Some(&b':'))
                || content.starts_with(b"     Meta: ")
        }
        BlockKind::GoPanic => {
            content.is_empty()
                || content.starts_with(b"\t")
                || content.starts_with(b"goroutine ")
                || content.starts_with(b"[signal ")
                || content.starts_with(b"panic: ")
                || content.starts_with(b"created by ")
                || content.starts_with(b"exit status ")
                || content.starts_with(b"[recovered]")
                || is_frame(content)
        }
        BlockKind::GinRecovery => !content.starts_with(b"[GIN] "),
    }
}

/// A held (possibly grouped) entry.
#[derive(Debug)]
pub struct Held {
    /// File it came from.
    pub file_id: u32,
    /// The file's context.
    pub ctx: FileCtx,
    /// Timestamp of the first line.
    pub ts_ns: i64,
    /// Stream.
    pub stream: StreamKind,
    /// Lines joined with `\n`.
    pub content: Vec<u8>,
    /// Commit offset of the last line in it.
    pub commit_offset: u64,
    /// True when any part was truncated.
    pub truncated: bool,
    kind: BlockKind,
    lines: usize,
    closed: bool,
}

/// What [`Grouper::offer`] did.
#[derive(Debug, Default)]
pub struct Offer {
    /// A held entry released by this line (process it first).
    pub released: Option<Held>,
    /// True when this line was taken (appended or held); false: process it now.
    pub taken: bool,
}

/// The per-pipeline grouping state.
#[derive(Debug)]
pub struct Grouper {
    held: HashMap<u32, Held>,
    max_bytes: usize,
}

impl Grouper {
    /// A grouper whose grouped entries stay within `max_bytes`.
    pub fn new(max_bytes: usize) -> Grouper {
        Grouper {
            held: HashMap::new(),
            max_bytes,
        }
    }

    /// Offers one entry of `file_id`.
    #[allow(clippy::too_many_arguments)]
    pub fn offer(
        &mut self,
        file_id: u32,
        ctx: &FileCtx,
        ts_ns: i64,
        stream: StreamKind,
        content: &[u8],
        commit_offset: u64,
        truncated: bool,
    ) -> Offer {
        let mut released = None;
        if let Some(h) = self.held.get_mut(&file_id) {
            if !h.closed
                && h.stream == stream
                && h.lines < MAX_LINES
                && h.content.len() + 1 + content.len() <= self.max_bytes
                && continues(h.kind, content)
            {
                h.content.push(b'\n');
                h.content.extend_from_slice(content);
                h.commit_offset = h.commit_offset.max(commit_offset);
                h.truncated |= truncated;
                h.lines += 1;
                if h.kind == BlockKind::GinRecovery && content.starts_with(b"\x1b[0m") {
                    h.closed = true;
                }
                return Offer {
                    released: None,
                    taken: true,
                };
            }
            released = self.held.remove(&file_id);
        }
        match starts_block(content) {
            Some(kind) if content.len() <= self.max_bytes => {
                self.held.insert(
                    file_id,
                    Held {
                        file_id,
                        ctx: ctx.clone(),
                        ts_ns,
                        stream,
                        content: content.to_vec(),
                        commit_offset,
                        truncated,
                        kind,
                        lines: 1,
                        closed: false,
                    },
                );
                Offer {
                    released,
                    taken: true,
                }
            }
            _ => Offer {
                released,
                taken: false,
            },
        }
    }

    /// Releases every held entry (end of a read pass, shutdown), in file order.
    pub fn release_all(&mut self) -> Vec<Held> {
        let mut v: Vec<Held> = self.held.drain().map(|(_, h)| h).collect();
        v.sort_by_key(|h| h.file_id);
        v
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Hint;

    fn offer(g: &mut Grouper, line: &str, off: u64) -> Offer {
        let ctx = FileCtx::new("velero-manager", "m", "c", Hint::Gin);
        g.offer(1, &ctx, 1, StreamKind::Stdout, line.as_bytes(), off, false)
    }

    #[test]
    fn gin_error_lines_join_their_access_line() {
        let mut g = Grouper::new(1 << 20);
        let a = r#"[GIN] 2026/02/26 - 19:01:53 | 503 |      20.707µs |      172.21.0.5 | POST     "/orders""#;
        assert!(offer(&mut g, a, 10).taken);
        assert!(offer(&mut g, "Error #01: rate limit exceded", 20).taken);
        assert!(offer(&mut g, "     Meta: map[x:1]", 30).taken);
        let next = offer(
            &mut g,
            "[GIN] 2026/02/26 - 19:01:54 | 200 | 1ms | ::1 | GET \"/\"",
            40,
        );
        let h = next.released.unwrap();
        assert_eq!(
            String::from_utf8(h.content).unwrap(),
            format!("{a}\nError #01: rate limit exceded\n     Meta: map[x:1]")
        );
        assert_eq!(h.commit_offset, 30);
        assert!(next.taken);
        assert_eq!(g.release_all().len(), 1);
        // A plain line is not held.
        let o = offer(&mut g, "2023/12/30 21:05:01 http: TLS handshake error", 50);
        assert!(!o.taken && o.released.is_none());
    }

    #[test]
    fn go_panic_dump_is_one_entry() {
        let mut g = Grouper::new(1 << 20);
        let dump = [
            "panic: runtime error: invalid memory address or nil pointer dereference [recovered]",
            "\tpanic: runtime error: invalid memory address or nil pointer dereference",
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1234]",
            "",
            "goroutine 1234 [running]:",
            "github.com/vmware-tanzu/velero/pkg/controller.(*backupReconciler).Reconcile(0xc000, {0x2, 0x3})",
            "\t/go/src/github.com/vmware-tanzu/velero/pkg/controller/backup_controller.go:200 +0x1d",
            "created by sigs.k8s.io/controller-runtime/pkg/internal/controller.(*Controller).Start.func2",
            "\t/go/pkg/mod/sigs.k8s.io/controller-runtime@v0.16.3/pkg/internal/controller/controller.go:223 +0x50e",
        ];
        for (i, l) in dump.iter().enumerate() {
            assert!(offer(&mut g, l, i as u64).taken, "{l}");
        }
        let o = offer(
            &mut g,
            r#"time="2026-04-10T02:00:00Z" level=info msg="Starting Velero server""#,
            99,
        );
        assert!(!o.taken);
        let h = o.released.unwrap();
        assert_eq!(String::from_utf8(h.content).unwrap(), dump.join("\n"));
    }

    #[test]
    fn caps_and_streams() {
        let mut g = Grouper::new(64);
        assert!(offer(&mut g, "panic: boom", 1).taken);
        // Another stream does not continue the block.
        let ctx = FileCtx::new("velero", "p", "c", Hint::Velero);
        let o = g.offer(1, &ctx, 1, StreamKind::Stderr, b"\tframe", 2, false);
        assert!(o.released.is_some() && !o.taken);
        assert!(offer(&mut g, "panic: boom", 3).taken);
        let o = offer(&mut g, &"\tx".repeat(40), 4);
        assert!(o.released.is_some(), "over the byte cap");
    }
}
