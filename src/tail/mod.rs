//! Tail: follows pod-log files from their delivered position and hands out decoded entries.
//!
//! **In:** the files [`crate::discover`] finds. **Out:** entries ([`Entry`]) with the file offset
//! up to which everything before them is complete (`commit_offset`), in file order.
//! **Guarantees:**
//! * Identity: files are identified by dev+inode guarded by a fingerprint of their first bytes
//!   (extended before any entry past the old fingerprint is handed out, so a saved offset is
//!   always covered by its fingerprint); a file ignored once (a `.gz` already read through its
//!   plain original) is ignored only while its inode, ctime and size stay the same, so a reused
//!   inode is a new file.
//! * Rotation (rename + create, the kubelet's way): a renamed file is finished through the handle
//!   already open, and within one container older files are read before newer ones; a file
//!   deleted while open is read to its end and its unterminated tail shipped.
//! * Compression: a `.gz` whose plain original is still present, or which is being read through
//!   the plain original's handle, is left alone; a `.gz` of a file never finished is read from the
//!   saved offset, and one that was finished is skipped.
//! * Truncation (size below the offset, or first bytes no longer matching the fingerprint): the
//!   file is read again from the start, after the next rescan (newer files of its container
//!   wait). With copytruncate, the copy (a rotated sibling, or its `.gz`, starting with what was
//!   read) continues the old incarnation: same id, buffers, pending partial and pending acks,
//!   from the same offset, and copies are opened oldest first. Lines written between the copy
//!   and the truncation are in neither file and cannot be shipped by anyone. Without a copy the
//!   unterminated line is dropped (its rest went to the truncated file) and a pending CRI `P` is
//!   shipped after the partial timeout. Known limit: a file copytruncated before a single byte
//!   of it was read, written again and read without a rescan in between (polling mode only;
//!   a notification of the copy triggers a rescan) delivers the copy after the newer lines.
//! * A finished file is forgotten only when everything read from it was acknowledged (with
//!   [`TailOptions::wait_for_acks`]), so its `.gz` copy is never skipped too early.
//! * Limits: a physical line longer than the maximum is cut (counted); reading is budgeted per
//!   file per pass for fairness; buffers are bounded by the maximum line size.
//!
//! Scheduling: [`Tailer::poll`] reads every file; [`Tailer::wake`] + [`Tailer::poll_woken`] read
//! only the files a change notification named (and those not at their end yet).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flate2::read::GzDecoder;
use prometheus_client::metrics::counter::Counter;

use crate::checkpoint::Checkpoint;
use crate::config::{Route, StartAt};
use crate::decode::{self, partial::Joiner, partial::Push, Envelope};
use crate::discover::{self, FileKind, Filter, Found};
use crate::metrics::{self, Metrics};
use crate::model::{FileCtx, StreamKind};

pub mod fingerprint;
pub mod line_buffer;

use fingerprint::{Fingerprint, FINGERPRINT_BYTES};
use line_buffer::LineBuffer;

/// [`Follower::size`] before a rescan looked.
const UNSIZED: u64 = u64::MAX;

/// Fingerprints shorter than this do not identify a file by content alone.
const MIN_CONTENT_ID: u32 = 64;

/// One entry handed to the next stage.
#[derive(Debug)]
pub struct Entry<'a> {
    /// Timestamp (runtime's, else the previous entry's, else now), Unix nanoseconds.
    pub ts_ns: i64,
    /// stdout or stderr.
    pub stream: StreamKind,
    /// The content (envelope removed, partials joined).
    pub content: &'a [u8],
    /// True when the entry was cut to the maximum size.
    pub truncated: bool,
    /// Every byte of the file before this offset is in this entry or an earlier one.
    pub commit_offset: u64,
}

/// Receives entries.
pub trait EntrySink {
    /// One entry of file `file_id`.
    fn entry(&mut self, file_id: u32, ctx: &FileCtx, e: Entry<'_>);
}

/// Tailing settings.
#[derive(Clone, Debug)]
pub struct TailOptions {
    /// The pods directory.
    pub pods_dir: PathBuf,
    /// Namespace/container filter.
    pub filter: Filter,
    /// Longest entry.
    pub max_line_bytes: usize,
    /// Where files without a saved position start.
    pub start_at: StartAt,
    /// A dangling partial line is shipped after this long.
    pub partial_timeout: Duration,
    /// Bytes read per file per pass.
    pub read_budget: usize,
    /// True when entries are acknowledged through the checkpoint: a finished file is forgotten
    /// only once everything read from it was acknowledged. False (dry run, benchmarks): as soon
    /// as it is read.
    pub wait_for_acks: bool,
}

enum Source {
    Plain(File),
    Gz(Box<GzDecoder<File>>),
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(f) => f.read(buf),
            Source::Gz(g) => g.read(buf),
        }
    }
}

struct Follower {
    id: u32,
    ctx: Arc<FileCtx>,
    path: PathBuf,
    kind: FileKind,
    group: String,
    stamp: Option<String>,
    source: Source,
    dev: u64,
    ino: u64,
    fp: Fingerprint,
    /// File offset of the first byte not yet returned as (part of) a line.
    offset: u64,
    /// Size at the last rescan ([`UNSIZED`] before the first).
    size: u64,
    lb: LineBuffer,
    joiner: Joiner,
    envelope: Option<Envelope>,
    last_ts: i64,
    eof: bool,
    seen: bool,
    gone: bool,
    done: bool,
    /// A change notification named this file since it was last read.
    woken: bool,
    /// Restarted after a truncation: not read before the next rescan (which opens any newer
    /// copy first, keeping the order).
    hold: bool,
    lines_read: Counter,
    bytes_read: Counter,
}

/// What [`Tailer::open`] made of a file.
enum Opened {
    Follow(Box<Follower>),
    /// Never read it (already read elsewhere or finished).
    Ignore,
    /// Not now (a copy whose original is still being read).
    Later,
}

/// Most truncated incarnations kept for a copy that may still turn up.
const MAX_RETIRED: usize = 64;

/// ctime (s, ns) and size: an ignored file is the same file while these stay the same.
type Stamp = (i64, i64, u64);

/// Follows every matching file.
pub struct Tailer {
    opts: TailOptions,
    routes: Vec<Route>,
    checkpoint: Arc<Mutex<Checkpoint>>,
    metrics: Arc<Metrics>,
    files: Vec<Follower>,
    by_key: HashMap<(u64, u64), usize>,
    by_path: HashMap<PathBuf, usize>,
    ignored: HashMap<(u64, u64), Stamp>,
    /// Truncated files' old incarnations whose copy was not found at the truncation: a copy (or
    /// its `.gz`) found later continues them; kept (at most [`MAX_RETIRED`]) after their acks.
    retired: Vec<Follower>,
    next_id: u32,
    scanned_once: bool,
    rescan_wanted: bool,
    expired: Vec<decode::partial::Joined>,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn stamp_of(m: &std::fs::Metadata) -> Stamp {
    (m.ctime(), m.ctime_nsec(), m.len())
}

fn lock(cp: &Mutex<Checkpoint>) -> std::sync::MutexGuard<'_, Checkpoint> {
    cp.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tailer {
    /// A tailer; call [`Tailer::rescan`] to find files.
    pub fn new(
        opts: TailOptions,
        routes: Vec<Route>,
        checkpoint: Arc<Mutex<Checkpoint>>,
        metrics: Arc<Metrics>,
    ) -> Tailer {
        Tailer {
            opts,
            routes,
            checkpoint,
            metrics,
            files: Vec::new(),
            by_key: HashMap::new(),
            by_path: HashMap::new(),
            ignored: HashMap::new(),
            retired: Vec::new(),
            next_id: 1,
            scanned_once: false,
            rescan_wanted: false,
            expired: Vec::new(),
        }
    }

    /// Files being followed.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Checkpoint> {
        lock(&self.checkpoint)
    }

    fn ctx_for(&self, f: &Found) -> Arc<FileCtx> {
        let mut ctx = FileCtx::routed(&self.routes, &f.namespace, &f.pod, &f.container);
        ctx.line_counters = Some(self.metrics.line_counters(&f.namespace, &f.container));
        Arc::new(ctx)
    }

    /// Looks for new, renamed and deleted files.
    pub fn rescan(&mut self) -> io::Result<()> {
        let found = discover::scan(&self.opts.pods_dir, &self.opts.filter)?;
        self.refresh_fingerprints();
        for f in self.files.iter_mut() {
            f.seen = false;
        }
        // A `.gz` next to its plain original is the kubelet's compression in progress (`.gz`
        // renamed into place, plain copy not deleted yet): the plain file is the one read.
        let plain_rotated: HashSet<&Path> = found
            .iter()
            .filter(|f| f.kind == FileKind::Rotated)
            .map(|f| f.path.as_path())
            .collect();
        let mut still_ignored = HashSet::new();
        for fd in &found {
            let meta = match std::fs::metadata(&fd.path) {
                Ok(m) => m,
                Err(_) => continue,
            };
            let key = (meta.dev(), meta.ino());
            if let Some(&i) = self.by_key.get(&key) {
                let f = &mut self.files[i];
                f.seen = true;
                f.path = fd.path.clone();
                f.kind = fd.kind;
                f.stamp = fd.stamp.clone();
                continue;
            }
            let stamp = stamp_of(&meta);
            if self.ignored.get(&key) == Some(&stamp) {
                still_ignored.insert(key);
                continue;
            }
            if fd.kind == FileKind::RotatedGz
                && plain_rotated.contains(fd.path.with_extension("").as_path())
            {
                continue;
            }
            match self.open(fd, key, meta.len()) {
                Ok(Opened::Follow(f)) => {
                    self.by_key.insert(key, self.files.len());
                    self.files.push(*f);
                }
                Ok(Opened::Ignore) => {
                    self.ignored.insert(key, stamp);
                    still_ignored.insert(key);
                }
                Ok(Opened::Later) => {}
                Err(e) => tracing::warn!(path = %fd.path.display(), "cannot open log file: {e}"),
            }
        }
        // Forget ignored files that are gone: their inode may be reused by a new file.
        self.ignored.retain(|k, _| still_ignored.contains(k));
        for f in self.files.iter_mut() {
            if !f.seen {
                f.gone = true;
            }
            f.hold = false;
        }
        self.rescan_wanted = false;
        if !self.scanned_once {
            self.scanned_once = true;
            self.lock().drop_unclaimed();
        }
        self.reindex();
        self.refresh_identity_and_lag();
        Ok(())
    }

    /// Oldest data first within a container (gone files are older than anything present), then
    /// the lookup maps.
    fn reindex(&mut self) {
        self.files.sort_by(|a, b| {
            let rank = |f: &Follower| match (f.gone, f.kind) {
                (true, _) => 0,
                (_, FileKind::RotatedGz | FileKind::Rotated) => 1,
                (_, FileKind::Live) => 2,
            };
            (&a.group, rank(a), &a.stamp, a.id).cmp(&(&b.group, rank(b), &b.stamp, b.id))
        });
        self.by_key = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| ((f.dev, f.ino), i))
            .collect();
        self.by_path = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.clone(), i))
            .collect();
        self.metrics.files_watched.set(self.files.len() as i64);
    }

    /// Extends the fingerprints of files shorter than [`FINGERPRINT_BYTES`] over what they hold
    /// now (also what was not read yet), so a `.gz` or copy of a file is recognised as such even
    /// when nothing was read from it before it was renamed.
    fn refresh_fingerprints(&mut self) {
        let mut cp = lock(&self.checkpoint);
        for f in self.files.iter_mut() {
            f.size = match &f.source {
                Source::Plain(file) => file.metadata().map_or(f.offset, |m| m.len()),
                Source::Gz(_) => f.offset + f.lb.pending() as u64,
            };
            if f.fp.len as usize >= FINGERPRINT_BYTES || f.size <= f.fp.len as u64 {
                continue;
            }
            if let Source::Plain(file) = &f.source {
                let mut head = [0u8; FINGERPRINT_BYTES];
                if let Ok(n) = read_at(file, &mut head, 0) {
                    if n > f.fp.len as usize && f.fp.matches_head(&head[..n]) {
                        f.fp = Fingerprint::of(&head[..n]);
                        cp.set_fingerprint(f.id, f.fp);
                    }
                }
            }
        }
    }

    fn refresh_identity_and_lag(&mut self) {
        type Key = (Arc<str>, Arc<str>, Arc<str>);
        let mut lag: HashMap<Key, u64> = HashMap::new();
        let mut cp = lock(&self.checkpoint);
        for f in self.files.iter_mut() {
            if f.size == UNSIZED {
                // Opened in this rescan: not sized by `refresh_fingerprints`.
                f.size = match &f.source {
                    Source::Plain(file) => file.metadata().map_or(f.offset, |m| m.len()),
                    Source::Gz(_) => f.offset + f.lb.pending() as u64,
                };
            }
            cp.update(f.id, &f.path, f.fp, f.size);
            *lag.entry((
                f.ctx.namespace.clone(),
                f.ctx.pod.clone(),
                f.ctx.container.clone(),
            ))
            .or_default() += cp.lag(f.id);
        }
        drop(cp);
        for ((ns, pod, container), v) in lag {
            self.metrics
                .file_lag
                .get_or_create(&metrics::FileLabels {
                    namespace: ns.to_string(),
                    pod: pod.to_string(),
                    container: container.to_string(),
                })
                .set(v as i64);
        }
    }

    /// True when `head` (a rotated file's first bytes) is what a followed file in `dir` starts
    /// with: a copy of data being read (copytruncate in progress, or a manual copy).
    fn copy_of_followed(&self, dir: Option<&Path>, head: &[u8]) -> bool {
        self.files.iter().any(|f| {
            matches!(f.source, Source::Plain(_))
                && f.path.parent() == dir
                && ((f.fp.len >= MIN_CONTENT_ID && f.fp.matches_head(head))
                    || continues(f.fp, f.offset + f.lb.pending() as u64, head))
        })
    }

    /// True when a followed plain file in `dir` shrank or no longer starts with its
    /// fingerprinted bytes (a truncation not handled yet).
    fn truncated_in(&self, dir: Option<&Path>) -> bool {
        self.files
            .iter()
            .any(|f| f.path.parent() == dir && looks_truncated(f))
    }

    /// The retired incarnation (truncated, copy not found then) a late-found copy continues.
    fn take_retired(&mut self, head: &[u8]) -> Option<Follower> {
        let i = self
            .retired
            .iter()
            .position(|r| continues(r.fp, r.offset, head))?;
        Some(self.retired.swap_remove(i))
    }

    fn open(&mut self, fd: &Found, key: (u64, u64), size: u64) -> io::Result<Opened> {
        let mut file = File::open(&fd.path)?;
        let mut retired = None;
        let (source, head, offset) = if fd.kind == FileKind::RotatedGz {
            let mut gz = GzDecoder::new(file.try_clone()?);
            let head = Fingerprint::read_head(&mut gz, FINGERPRINT_BYTES)?;
            let read_elsewhere = self
                .files
                .iter()
                .find(|f| f.fp.len >= MIN_CONTENT_ID && f.fp.matches_head(&head));
            match read_elsewhere {
                // Its plain original is being read through the open handle.
                Some(f) if !looks_truncated(f) => return Ok(Opened::Ignore),
                // The original was truncated since (copytruncate, then compressed): handled
                // first; the `.gz` then continues what was read.
                Some(_) => return Ok(Opened::Later),
                // A truncation not handled yet in this directory may make an older copy
                // continue first: keep the order.
                None if self.truncated_in(fd.path.parent()) => return Ok(Opened::Later),
                None => {}
            }
            let offset = if let Some(r) = self.take_retired(&head) {
                let off = r.offset;
                retired = Some(r);
                off
            } else {
                match self.lock().resume_by_content(&head, true) {
                    Some((_, true)) => return Ok(Opened::Ignore),
                    Some((off, false)) => off,
                    None => 0,
                }
            };
            // The head was read through a clone sharing the file offset: start over.
            file.seek(SeekFrom::Start(0))?;
            let mut gz = GzDecoder::new(file);
            io::copy(&mut (&mut gz).take(offset), &mut io::sink())?;
            (Source::Gz(Box::new(gz)), head, offset)
        } else {
            let head = Fingerprint::read_head(&mut file, FINGERPRINT_BYTES)?;
            let mut resume = self
                .lock()
                .resume(key.0, key.1, &head)
                .map(|off| (off, false));
            if resume.is_none()
                && fd.kind == FileKind::Rotated
                && head.len() >= MIN_CONTENT_ID as usize
            {
                // A rotated file unknown by inode is a copy (a rename keeps the inode). Its
                // original's truncation is handled first (the copy may continue it, and older
                // copies are read before newer ones).
                if self.copy_of_followed(fd.path.parent(), &head)
                    || self.truncated_in(fd.path.parent())
                {
                    return Ok(Opened::Later);
                }
                if let Some(r) = self.take_retired(&head) {
                    // The copy of a file whose truncation was seen first: it continues the old
                    // incarnation after what was read.
                    if r.offset >= size && !r.joiner.is_pending() {
                        self.retired.push(r);
                        return Ok(Opened::Ignore);
                    }
                    resume = Some((r.offset, false));
                    retired = Some(r);
                } else {
                    resume = self.lock().resume_by_content(&head, false);
                    if resume.is_some_and(|(off, finished)| finished && off >= size) {
                        return Ok(Opened::Ignore);
                    }
                }
            }
            let offset = match resume {
                Some((off, _)) if off <= size => off,
                Some(_) => 0, // truncated while we were away
                None if self.lock().was_empty(key.0, key.1) => 0,
                None => match self.opts.start_at {
                    StartAt::Beginning => 0,
                    StartAt::End => size,
                },
            };
            file.seek(SeekFrom::Start(offset))?;
            (Source::Plain(file), head, offset)
        };
        if let Some(mut r) = retired {
            // Same id: its pending acks (or, once answered and forgotten, a new record at the
            // same offset) now belong to this file.
            let mut cp = self.lock();
            if cp.committed(r.id).is_some() {
                cp.rebind(r.id, &fd.path, key.0, key.1);
            } else {
                cp.register(r.id, &fd.path, key.0, key.1, r.fp, r.offset);
            }
            drop(cp);
            r.source = source;
            r.path = fd.path.clone();
            r.kind = fd.kind;
            r.stamp = fd.stamp.clone();
            r.dev = key.0;
            r.ino = key.1;
            r.seen = true;
            r.gone = false;
            r.done = false;
            r.eof = false;
            r.hold = false;
            return Ok(Opened::Follow(Box::new(r)));
        }
        let fp = Fingerprint::of(&head);
        let id = self.next_id;
        self.next_id += 1;
        self.lock().register(id, &fd.path, key.0, key.1, fp, offset);
        Ok(Opened::Follow(Box::new(
            self.follower(fd, id, source, key, fp, offset),
        )))
    }

    fn follower(
        &self,
        fd: &Found,
        id: u32,
        source: Source,
        key: (u64, u64),
        fp: Fingerprint,
        offset: u64,
    ) -> Follower {
        let ns = metrics::NamespaceLabel {
            namespace: fd.namespace.clone(),
        };
        Follower {
            id,
            lines_read: self.metrics.read_lines.get_or_create(&ns).clone(),
            bytes_read: self.metrics.read_bytes.get_or_create(&ns).clone(),
            ctx: self.ctx_for(fd),
            path: fd.path.clone(),
            kind: fd.kind,
            group: format!(
                "{}_{}_{}/{}/{:010}",
                fd.namespace, fd.pod, fd.uid, fd.container, fd.restart
            ),
            stamp: fd.stamp.clone(),
            source,
            dev: key.0,
            ino: key.1,
            fp,
            offset,
            size: UNSIZED,
            lb: LineBuffer::new(self.opts.max_line_bytes + 1024),
            joiner: Joiner::default(),
            envelope: None,
            last_ts: 0,
            eof: false,
            seen: true,
            gone: false,
            done: false,
            woken: false,
            hold: false,
        }
    }

    /// Notes that `path` changed (a notification); returns false when no followed file has this
    /// path (a new file: rescan).
    pub fn wake(&mut self, path: &Path) -> bool {
        match self.by_path.get(path) {
            Some(&i) => {
                self.files[i].woken = true;
                true
            }
            None => false,
        }
    }

    /// Reads what is new in every file, up to the budget per file. Returns the bytes read.
    pub fn poll(&mut self, sink: &mut dyn EntrySink) -> u64 {
        self.poll_some(sink, false)
    }

    /// Reads what is new in the files named by [`Tailer::wake`] and in those not read to their end
    /// yet. Returns the bytes read.
    pub fn poll_woken(&mut self, sink: &mut dyn EntrySink) -> u64 {
        self.poll_some(sink, true)
    }

    fn poll_some(&mut self, sink: &mut dyn EntrySink, only_woken: bool) -> u64 {
        let mut total = 0u64;
        let mut blocked: Option<String> = None;
        let Tailer {
            opts,
            metrics,
            checkpoint: cp,
            files,
            ..
        } = self;
        let mut truncated_files = Vec::new();
        for (i, f) in files.iter_mut().enumerate() {
            if f.done {
                continue;
            }
            if blocked.as_deref() == Some(f.group.as_str()) {
                continue;
            }
            if f.hold {
                // Restarted after a truncation: newer files of its container wait with it.
                blocked = Some(f.group.clone());
                continue;
            }
            if only_woken && f.eof && !f.woken {
                continue;
            }
            f.woken = false;
            match read_follower(f, opts, metrics, cp, sink) {
                Ok(n) => total += n,
                Err(ReadError::Truncated) => {
                    truncated_files.push(i);
                    blocked = Some(f.group.clone());
                    continue;
                }
                Err(ReadError::Io(e)) => {
                    tracing::warn!(path = %f.path.display(), "read failed: {e}");
                    f.eof = true;
                }
            }
            if !f.eof {
                blocked = Some(f.group.clone());
            }
        }
        if !truncated_files.is_empty() {
            // Highest index first: restarting may append a follower, never remove one.
            for &i in truncated_files.iter().rev() {
                self.restart_truncated(i, sink);
            }
            self.reindex();
        }
        total
    }

    /// The copy a copytruncate made of follower `i`: a rotated sibling not followed or ignored
    /// that continues what the follower read (the oldest one).
    fn find_copy(&self, i: usize) -> Option<(Found, File, std::fs::Metadata)> {
        let f = &self.files[i];
        let have = f.offset + f.lb.pending() as u64;
        if have == 0 {
            return None; // nothing read: any copy is opened from its start by the next rescan
        }
        let mut best: Option<(Found, File, std::fs::Metadata)> = None;
        for e in std::fs::read_dir(f.path.parent()?).ok()?.flatten() {
            let Some(fd) = Found::from_path(&e.path()) else {
                continue;
            };
            if fd.kind != FileKind::Rotated || !f.group.ends_with(&format!("/{:010}", fd.restart)) {
                continue;
            }
            let Ok(mut file) = File::open(&fd.path) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            let key = (meta.dev(), meta.ino());
            if self.by_key.contains_key(&key) || self.ignored.get(&key) == Some(&stamp_of(&meta)) {
                continue;
            }
            let Ok(head) = Fingerprint::read_head(&mut file, f.fp.len as usize) else {
                continue;
            };
            if continues(f.fp, have, &head) && best.as_ref().is_none_or(|b| b.0.stamp > fd.stamp) {
                best = Some((fd, file, meta));
            }
        }
        best
    }

    /// Follower `i` was truncated: the copytruncate copy (if any) continues it (same id,
    /// buffers and pending acks), else it is retired until a copy turns up, its pending acks are
    /// answered and its dangling partial (if any) is shipped; the file itself is read again from
    /// the start, after the next rescan.
    fn restart_truncated(&mut self, i: usize, sink: &mut dyn EntrySink) {
        let copy = self.find_copy(i);
        let metrics = self.metrics.clone();
        let max_line = self.opts.max_line_bytes;
        let f = &mut self.files[i];
        let Source::Plain(orig) = &f.source else {
            return;
        };
        // A clone shares the file offset: the restarted incarnation seeks to 0 (the old one is
        // never read through it again).
        let orig = match orig
            .try_clone()
            .and_then(|mut c| c.seek(SeekFrom::Start(0)).map(|_| c))
        {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(path = %f.path.display(), "cannot restart a truncated file: {e}");
                return;
            }
        };
        tracing::info!(path = %f.path.display(), copy = copy.is_some(), "file was truncated; reading it again from the start");
        let mut head = [0u8; FINGERPRINT_BYTES];
        let n = read_at(&orig, &mut head, 0).unwrap_or(0);
        let fp = Fingerprint::of(&head[..n]);
        let id = self.next_id;
        self.next_id += 1;
        let restarted = Follower {
            id,
            ctx: f.ctx.clone(),
            path: f.path.clone(),
            kind: f.kind,
            group: f.group.clone(),
            stamp: f.stamp.clone(),
            source: Source::Plain(orig),
            dev: f.dev,
            ino: f.ino,
            fp,
            offset: 0,
            size: UNSIZED,
            lb: LineBuffer::new(max_line + 1024),
            joiner: Joiner::default(),
            envelope: f.envelope,
            last_ts: f.last_ts,
            eof: false,
            seen: true,
            gone: false,
            done: false,
            woken: false,
            hold: true,
            lines_read: f.lines_read.clone(),
            bytes_read: f.bytes_read.clone(),
        };
        let mut cp = lock(&self.checkpoint);
        cp.register(id, &restarted.path, f.dev, f.ino, fp, 0);
        let have = f.offset + f.lb.pending() as u64;
        match copy {
            Some((fd, file, meta)) => {
                cp.rebind(f.id, &fd.path, meta.dev(), meta.ino());
                if meta.len() >= have && (&file).seek(SeekFrom::Start(have)).is_ok() {
                    // The copy holds everything not read yet: read on from there.
                    f.eof = false;
                } else {
                    // Everything in the copy was read already (and bytes written after the
                    // copy): done, its position bound to the copy.
                    flush_joined(f, &metrics, sink);
                    f.lb.clear();
                    f.done = true;
                    f.eof = true;
                }
                f.source = Source::Plain(file);
                f.path = fd.path;
                f.kind = fd.kind;
                f.stamp = fd.stamp;
                f.dev = meta.dev();
                f.ino = meta.ino();
                f.gone = false;
                drop(cp);
                self.files.push(restarted);
            }
            None => {
                drop(cp);
                // An unterminated line is not shipped: its start is in a copy if one turns up,
                // its rest was written after the truncation.
                f.lb.clear();
                let old = std::mem::replace(&mut self.files[i], restarted);
                self.retired.push(old);
                if self.retired.len() > MAX_RETIRED {
                    let gone = self.retired.remove(0);
                    lock(&self.checkpoint).forget(gone.id, true);
                }
            }
        }
        self.rescan_wanted = true;
    }

    /// Ships partial lines pending longer than the timeout.
    pub fn flush_partials(&mut self, sink: &mut dyn EntrySink) {
        for f in self.files.iter_mut().chain(self.retired.iter_mut()) {
            if !f.joiner.is_pending() {
                continue;
            }
            self.expired.clear();
            f.joiner
                .take_expired(self.opts.partial_timeout, &mut self.expired);
            for j in self.expired.drain(..) {
                let commit = f.joiner.pending_start().unwrap_or(f.offset).min(f.offset);
                emit_joined(f, &j, commit, false, &self.metrics, sink);
            }
        }
    }

    /// How long until [`Tailer::flush_partials`] has something to ship (`None`: nothing pending).
    pub fn next_partial_flush(&self) -> Option<Duration> {
        self.files
            .iter()
            .chain(self.retired.iter())
            .filter_map(|f| f.joiner.oldest_since())
            .min()
            .map(|since| self.opts.partial_timeout.saturating_sub(since.elapsed()))
    }

    /// True when a truncated file was restarted and waits for a rescan before it is read.
    pub fn wants_rescan(&self) -> bool {
        self.rescan_wanted
    }

    /// True when every file is at its end (nothing more to read right now).
    pub fn idle(&self) -> bool {
        self.files.iter().all(|f| f.eof || f.done)
    }

    /// Forgets files that are gone, read to their end and fully delivered (everything read from
    /// them acknowledged, including entries still in an open batch when this is checked).
    pub fn reap(&mut self) {
        let wait = self.opts.wait_for_acks;
        let mut cp = lock(&self.checkpoint);
        let delivered = |cp: &Checkpoint, id: u32, end: u64| {
            !wait || (cp.outstanding(id) == 0 && cp.committed(id).is_none_or(|c| c >= end))
        };
        for r in &self.retired {
            if !r.joiner.is_pending()
                && cp.committed(r.id).is_some()
                && delivered(&cp, r.id, r.offset)
            {
                // Remembered as finished (a copy found after a restart resumes where it ended);
                // the follower itself stays for a copy found later in this run.
                cp.forget(r.id, true);
            }
        }
        let before = self.files.len();
        self.files.retain(|f| {
            if f.done && delivered(&cp, f.id, f.offset) {
                cp.forget(f.id, true);
                false
            } else {
                true
            }
        });
        drop(cp);
        if self.files.len() != before {
            self.reindex();
        }
    }
}

enum ReadError {
    Truncated,
    Io(io::Error),
}

fn read_at(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    file.read_at(buf, off)
}

/// True when a file whose first `have` bytes were read (fingerprinted as `fp`) continues as the
/// file starting with `head`: the fingerprint matches and identifies it (64 bytes or more, or
/// everything that was read).
fn continues(fp: Fingerprint, have: u64, head: &[u8]) -> bool {
    have > 0 && (fp.len >= MIN_CONTENT_ID || fp.len as u64 >= have) && fp.matches_head(head)
}

/// True when a followed plain file shrank below what was read or no longer starts with its
/// fingerprinted bytes (a truncation not handled yet).
fn looks_truncated(f: &Follower) -> bool {
    match &f.source {
        Source::Plain(file) if !f.gone => {
            let have = f.offset + f.lb.pending() as u64;
            file.metadata().is_ok_and(|m| m.len() < have) || !same_head(file, f.fp)
        }
        _ => false,
    }
}

/// True when the file still starts with the fingerprinted bytes.
fn same_head(file: &File, fp: Fingerprint) -> bool {
    if fp.len == 0 {
        return true;
    }
    let mut head = [0u8; FINGERPRINT_BYTES];
    let want = &mut head[..fp.len as usize];
    match read_at(file, want, 0) {
        Ok(n) => fp.matches_head(&want[..n]),
        Err(_) => true, // unknown: the size check still applies
    }
}

fn read_follower(
    f: &mut Follower,
    opts: &TailOptions,
    metrics: &Metrics,
    cp: &Mutex<Checkpoint>,
    sink: &mut dyn EntrySink,
) -> Result<u64, ReadError> {
    if let (Source::Plain(file), false) = (&f.source, f.gone) {
        // One fstat says whether anything is new; a file that shrank or no longer starts with its
        // fingerprinted bytes was truncated (possibly rewritten past our offset since), and is
        // never read on from a stale offset.
        let m = file.metadata().map_err(ReadError::Io)?;
        let have = f.offset + f.lb.pending() as u64;
        if m.len() < have {
            return Err(ReadError::Truncated);
        }
        if m.len() == have && f.eof {
            if m.nlink() == 0 {
                f.gone = true;
                finish_file(f, opts, metrics, sink);
                f.done = true;
            }
            return Ok(0);
        }
        if m.len() > have && !same_head(file, f.fp) {
            return Err(ReadError::Truncated);
        }
    }
    let mut read = 0u64;
    let mut lines = 0u64;
    let result = loop {
        while let Some(line) = f.lb.next_line() {
            process_line(f, line, opts, metrics, sink);
            lines += 1;
        }
        if read >= opts.read_budget as u64 {
            f.eof = false;
            break Ok(read);
        }
        match f.lb.fill(&mut f.source) {
            Ok(0) => {
                f.eof = true;
                if let Source::Plain(file) = &f.source {
                    if let Ok(m) = file.metadata() {
                        if m.len() < f.offset + f.lb.pending() as u64 {
                            break Err(ReadError::Truncated);
                        }
                        if m.nlink() == 0 {
                            f.gone = true;
                        }
                    }
                }
                if f.gone || matches!(f.source, Source::Gz(_)) {
                    lines += finish_file(f, opts, metrics, sink);
                    f.done = f.gone;
                }
                f.lb.release();
                break Ok(read);
            }
            Ok(n) => {
                read += n as u64;
                extend_fingerprint(f, cp);
            }
            Err(e) => break Err(ReadError::Io(e)),
        }
    };
    if lines > 0 {
        f.lines_read.inc_by(lines);
    }
    if read > 0 {
        f.bytes_read.inc_by(read);
    }
    result
}

/// While a file is shorter than the fingerprint, extends the fingerprint over what was just read
/// (before any entry from it is handed out, so a saved offset is always covered).
fn extend_fingerprint(f: &mut Follower, cp: &Mutex<Checkpoint>) {
    if f.fp.len as usize >= FINGERPRINT_BYTES {
        return;
    }
    let Source::Plain(file) = &f.source else {
        return;
    };
    let have = (f.offset + f.lb.pending() as u64).min(FINGERPRINT_BYTES as u64) as usize;
    if have <= f.fp.len as usize {
        return;
    }
    let mut head = [0u8; FINGERPRINT_BYTES];
    if let Ok(n) = read_at(file, &mut head[..have], 0) {
        if n > f.fp.len as usize && f.fp.matches_head(&head[..n]) {
            f.fp = Fingerprint::of(&head[..n]);
            lock(cp).set_fingerprint(f.id, f.fp);
        }
    }
}

/// The file will not grow any more (deleted, compressed, truncated): ships its unterminated
/// tail and any dangling partial. Returns the physical lines processed.
fn finish_file(
    f: &mut Follower,
    opts: &TailOptions,
    metrics: &Metrics,
    sink: &mut dyn EntrySink,
) -> u64 {
    let mut lines = 0;
    if let Some(line) = f.lb.take_rest() {
        process_line(f, line, opts, metrics, sink);
        lines += 1;
    }
    flush_joined(f, metrics, sink);
    lines
}

/// Ships the partial entries (CRI `P` without its `F`) a file left pending.
fn flush_joined(f: &mut Follower, metrics: &Metrics, sink: &mut dyn EntrySink) {
    let mut left = Vec::new();
    f.joiner.take_expired(Duration::ZERO, &mut left);
    for j in left {
        emit_joined(f, &j, f.offset, false, metrics, sink);
    }
}

/// Hands out a joined (or flushed partial) entry; `cut` says its last physical line was cut.
fn emit_joined(
    f: &Follower,
    j: &decode::partial::Joined,
    commit_offset: u64,
    cut: bool,
    metrics: &Metrics,
    sink: &mut dyn EntrySink,
) {
    if j.truncated {
        metrics.truncated.inc();
    }
    sink.entry(
        f.id,
        &f.ctx,
        Entry {
            ts_ns: j.ts_ns,
            stream: j.stream,
            content: &j.content,
            truncated: j.truncated || cut,
            commit_offset,
        },
    );
}

fn process_line(
    f: &mut Follower,
    line: line_buffer::Line,
    opts: &TailOptions,
    metrics: &Metrics,
    sink: &mut dyn EntrySink,
) {
    let start_off = f.offset;
    f.offset += line.consumed;
    let bytes = &f.lb.bytes()[line.start..line.end];
    if line.truncated {
        metrics.truncated.inc();
    }
    let env = *f.envelope.get_or_insert(if bytes.first() == Some(&b'{') {
        Envelope::Docker
    } else {
        Envelope::Cri
    });
    let d = decode::decode(bytes, env);
    let ts = match d.ts_ns {
        Some(t) => t,
        None if f.last_ts != 0 => f.last_ts,
        None => now_ns(),
    };
    f.last_ts = ts;
    let pushed = f.joiner.push(
        ts,
        d.stream,
        d.partial,
        &d.content,
        start_off,
        opts.max_line_bytes,
    );
    let commit = f.joiner.pending_start().unwrap_or(f.offset).min(f.offset);
    match pushed {
        Push::Held => {}
        Push::Single => {
            let content: &[u8] = &d.content;
            let (content, cut) = if content.len() > opts.max_line_bytes {
                metrics.truncated.inc();
                (&content[..opts.max_line_bytes], true)
            } else {
                (content, line.truncated)
            };
            sink.entry(
                f.id,
                &f.ctx,
                Entry {
                    ts_ns: ts,
                    stream: d.stream,
                    content,
                    truncated: cut,
                    commit_offset: commit,
                },
            );
        }
        Push::Complete(j) => emit_joined(f, &j, commit, line.truncated, metrics, sink),
    }
}
