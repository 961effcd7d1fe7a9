//! Tail: follows pod-log files from their delivered position and hands out decoded entries.
//!
//! **In:** the files [`crate::discover`] finds. **Out:** entries ([`Entry`]) with the file offset
//! up to which everything before them is complete (`commit_offset`), in file order.
//! **Guarantees:** files are identified by dev+inode guarded by a fingerprint of their first
//! bytes; a renamed (rotated) file is finished through the handle already open, and within one
//! container older files are read before newer ones; a file deleted while open is read to its end
//! and its unterminated tail shipped; a `.gz` rotation of a file never finished is read from the
//! saved offset, and one that was finished is skipped; truncation (size < offset) restarts the
//! file; a physical line longer than the maximum is cut (counted); reading is budgeted per file
//! per pass for fairness.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flate2::read::GzDecoder;
use prometheus_client::metrics::counter::Counter;

use crate::checkpoint::Checkpoint;
use crate::config::{Route, StartAt};
use crate::decode::{self, partial::Joiner, partial::Push, Envelope};
use crate::discover::{self, FileKind, Filter, Found};
use crate::enrich::{FileCtx, StreamKind};
use crate::metrics::{self, Metrics};

pub mod fingerprint;
pub mod line_buffer;

use fingerprint::{Fingerprint, FINGERPRINT_BYTES};
use line_buffer::LineBuffer;

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
    lb: LineBuffer,
    joiner: Joiner,
    envelope: Option<Envelope>,
    last_ts: i64,
    eof: bool,
    seen: bool,
    gone: bool,
    done: bool,
    lines_read: Counter,
    bytes_read: Counter,
}

/// Follows every matching file.
pub struct Tailer {
    opts: TailOptions,
    routes: Vec<Route>,
    checkpoint: Arc<Mutex<Checkpoint>>,
    metrics: Arc<Metrics>,
    files: Vec<Follower>,
    by_key: HashMap<(u64, u64), usize>,
    ignored: HashSet<(u64, u64)>,
    next_id: u32,
    scanned_once: bool,
    expired: Vec<decode::partial::Joined>,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
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
            ignored: HashSet::new(),
            next_id: 1,
            scanned_once: false,
            expired: Vec::new(),
        }
    }

    /// Files being followed.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Checkpoint> {
        self.checkpoint.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ctx_for(&self, f: &Found) -> Arc<FileCtx> {
        let route = self
            .routes
            .iter()
            .find(|r| r.matches.matches(&f.namespace, &f.container));
        let mut ctx = FileCtx::new(
            &f.namespace,
            &f.pod,
            &f.container,
            route.map(|r| r.parser).unwrap_or_default(),
        );
        ctx.component = route.and_then(|r| r.component);
        Arc::new(ctx.with_counters(&self.metrics))
    }

    /// Looks for new, renamed and deleted files.
    pub fn rescan(&mut self) -> io::Result<()> {
        let found = discover::scan(&self.opts.pods_dir, &self.opts.filter)?;
        for f in self.files.iter_mut() {
            f.seen = false;
        }
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
            if self.ignored.contains(&key) {
                continue;
            }
            match self.open(fd, key, meta.len()) {
                Ok(Some(f)) => {
                    self.by_key.insert(key, self.files.len());
                    self.files.push(f);
                }
                Ok(None) => {
                    self.ignored.insert(key);
                }
                Err(e) => tracing::warn!(path = %fd.path.display(), "cannot open log file: {e}"),
            }
        }
        for f in self.files.iter_mut() {
            if !f.seen {
                f.gone = true;
            }
        }
        if !self.scanned_once {
            self.scanned_once = true;
            self.lock().drop_unclaimed();
        }
        // Oldest data first within a container; gone files are older than anything present.
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
        self.refresh_identity_and_lag();
        self.metrics.files_watched.set(self.files.len() as i64);
        Ok(())
    }

    fn refresh_identity_and_lag(&mut self) {
        type Key = (Arc<str>, Arc<str>, Arc<str>);
        let mut lag: HashMap<Key, u64> = HashMap::new();
        let mut cp = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        for f in self.files.iter_mut() {
            let size = match &f.source {
                Source::Plain(file) => file.metadata().map(|m| m.len()).unwrap_or(f.offset),
                Source::Gz(_) => f.offset + f.lb.pending() as u64,
            };
            if (f.fp.len as usize) < FINGERPRINT_BYTES && size > f.fp.len as u64 {
                if let Source::Plain(file) = &f.source {
                    let mut head = vec![0u8; FINGERPRINT_BYTES.min(size as usize)];
                    if read_at(file, &mut head, 0).is_ok() {
                        f.fp = Fingerprint::of(&head);
                    }
                }
            }
            cp.update(f.id, &f.path, f.fp, size);
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

    fn open(&mut self, fd: &Found, key: (u64, u64), size: u64) -> io::Result<Option<Follower>> {
        let mut file = File::open(&fd.path)?;
        let (source, head, offset) = if fd.kind == FileKind::RotatedGz {
            let mut gz = GzDecoder::new(file.try_clone()?);
            let head = Fingerprint::read_head(&mut gz, FINGERPRINT_BYTES)?;
            let known_live = self
                .files
                .iter()
                .any(|f| f.fp.len >= 64 && f.fp.matches_head(&head));
            if known_live {
                return Ok(None); // its plain copy is being read through the open handle
            }
            let resume = self.lock().resume(key.0, key.1, &head, true);
            let offset = match resume {
                Some((_, true)) => return Ok(None),
                Some((off, false)) => off,
                None => 0,
            };
            let mut gz = GzDecoder::new(file);
            io::copy(&mut (&mut gz).take(offset), &mut io::sink())?;
            (Source::Gz(Box::new(gz)), head, offset)
        } else {
            let head = Fingerprint::read_head(&mut file, FINGERPRINT_BYTES)?;
            let resume = self.lock().resume(key.0, key.1, &head, false);
            let offset = match resume {
                Some((off, _)) if off <= size => off,
                Some(_) => 0, // truncated while we were away
                None => match self.opts.start_at {
                    StartAt::Beginning => 0,
                    StartAt::End => size,
                },
            };
            file.seek(SeekFrom::Start(offset))?;
            (Source::Plain(file), head, offset)
        };
        let id = self.next_id;
        self.next_id += 1;
        let fp = Fingerprint::of(&head);
        self.lock().register(id, &fd.path, key.0, key.1, fp, offset);
        let ctx = self.ctx_for(fd);
        let ns = metrics::NamespaceLabel {
            namespace: fd.namespace.clone(),
        };
        Ok(Some(Follower {
            id,
            lines_read: self.metrics.read_lines.get_or_create(&ns).clone(),
            bytes_read: self.metrics.read_bytes.get_or_create(&ns).clone(),
            ctx,
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
            lb: LineBuffer::new(self.opts.max_line_bytes + 1024),
            joiner: Joiner::default(),
            envelope: None,
            last_ts: 0,
            eof: false,
            seen: true,
            gone: false,
            done: false,
        }))
    }

    /// Reads what is new, up to the budget per file. Returns the number of bytes read.
    pub fn poll(&mut self, sink: &mut dyn EntrySink) -> u64 {
        let mut total = 0u64;
        let mut blocked: Option<String> = None;
        let opts = self.opts.clone();
        let metrics = self.metrics.clone();
        let mut truncated_files = Vec::new();
        for (i, f) in self.files.iter_mut().enumerate() {
            if f.done {
                continue;
            }
            if blocked.as_deref() == Some(f.group.as_str()) {
                continue;
            }
            match read_follower(f, &opts, &metrics, sink) {
                Ok(n) => total += n,
                Err(ReadError::Truncated) => truncated_files.push(i),
                Err(ReadError::Io(e)) => {
                    tracing::warn!(path = %f.path.display(), "read failed: {e}");
                    f.eof = true;
                }
            }
            if !f.eof {
                blocked = Some(f.group.clone());
            }
        }
        for i in truncated_files {
            self.restart_truncated(i);
        }
        total
    }

    fn restart_truncated(&mut self, i: usize) {
        let f = &mut self.files[i];
        tracing::info!(path = %f.path.display(), "file was truncated; reading it again from the start");
        let old = f.id;
        let id = self.next_id;
        self.next_id += 1;
        f.id = id;
        f.offset = 0;
        f.lb.clear();
        f.joiner = Joiner::default();
        f.eof = false;
        if let Source::Plain(file) = &mut f.source {
            let _ = file.seek(SeekFrom::Start(0));
        }
        let (path, dev, ino, fp) = (f.path.clone(), f.dev, f.ino, f.fp);
        let mut cp = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        cp.register(id, &path, dev, ino, fp, 0);
        if cp.outstanding(old) == 0 {
            cp.forget(old, false);
        }
    }

    /// Ships partial lines pending longer than the timeout.
    pub fn flush_partials(&mut self, sink: &mut dyn EntrySink) {
        for f in self.files.iter_mut() {
            self.expired.clear();
            f.joiner
                .take_expired(self.opts.partial_timeout, &mut self.expired);
            for j in self.expired.drain(..) {
                let commit = f.joiner.pending_start().unwrap_or(f.offset).min(f.offset);
                emit_joined(f, &j, commit, &self.metrics, sink);
            }
        }
    }

    /// True when every file is at its end (nothing more to read right now).
    pub fn idle(&self) -> bool {
        self.files.iter().all(|f| f.eof || f.done)
    }

    /// Forgets files that are gone, read to their end and fully delivered.
    pub fn reap(&mut self) {
        let mut cp = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        let before = self.files.len();
        self.files.retain(|f| {
            if f.done && cp.outstanding(f.id) == 0 {
                cp.forget(f.id, true);
                false
            } else {
                true
            }
        });
        drop(cp);
        if self.files.len() != before {
            self.by_key = self
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| ((f.dev, f.ino), i))
                .collect();
            self.metrics.files_watched.set(self.files.len() as i64);
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

fn read_follower(
    f: &mut Follower,
    opts: &TailOptions,
    metrics: &Metrics,
    sink: &mut dyn EntrySink,
) -> Result<u64, ReadError> {
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
                let finished = f.gone || matches!(f.source, Source::Gz(_));
                if finished {
                    if let Some(line) = f.lb.take_rest() {
                        process_line(f, line, opts, metrics, sink);
                        lines += 1;
                    }
                    let mut left = Vec::new();
                    f.joiner.take_expired(Duration::ZERO, &mut left);
                    for j in left {
                        emit_joined(f, &j, f.offset, metrics, sink);
                    }
                    f.done = f.gone;
                }
                break Ok(read);
            }
            Ok(n) => read += n as u64,
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

/// Hands out a joined (or flushed partial) entry.
fn emit_joined(
    f: &Follower,
    j: &decode::partial::Joined,
    commit_offset: u64,
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
            truncated: j.truncated,
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
        Push::Complete(j) => {
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
                    truncated: j.truncated || line.truncated,
                    commit_offset: commit,
                },
            );
        }
    }
}
