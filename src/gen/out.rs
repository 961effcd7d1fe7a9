//! The kubelet side of the generator: one CRI file per container, `P`/`F` splitting at
//! containerd's 16 KiB, kubelet-style rotation and optional real-time pacing.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::text;
use super::GenFile;

/// containerd's default `max_container_log_line_size`: longer lines become `P` parts.
pub(crate) const CRI_SPLIT: usize = 16 * 1024;
/// The kubelet's default `containerLogMaxFiles` (the live file included).
pub(crate) const MAX_FILES: usize = 5;
/// The kubelet checks sizes every 10 s (`logMonitorPeriod`); rotation cannot be more frequent.
const MONITOR_PERIOD_NS: i64 = 10_000_000_000;

/// Which stream an entry was written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

struct Rotated {
    name: String,
    entries: u64,
    bytes: u64,
    gz: bool,
}

struct FileOut {
    /// `<ns>_<pod>_<uid>/<container>`, relative to the root.
    dir_rel: String,
    namespace: String,
    pod: String,
    container: String,
    w: Option<BufWriter<File>>,
    entries: u64,
    bytes: u64,
    last_rotate_ns: i64,
    rotated: VecDeque<Rotated>,
}

/// Writes every container file of the tree.
pub(crate) struct Tree {
    root: PathBuf,
    files: Vec<FileOut>,
    rotate_bytes: Option<u64>,
    removed: Vec<GenFile>,
    ts: String,
    /// Entries written so far (a `P…F` run counts once).
    pub entries: u64,
    /// Bytes written so far (before compression).
    pub bytes: u64,
    rate: Option<(u64, Instant)>,
}

impl Tree {
    /// A tree rooted at `root` (which must exist).
    pub fn new(root: &Path, rotate_bytes: Option<u64>, rate: Option<u64>) -> Tree {
        Tree {
            root: root.to_path_buf(),
            files: Vec::new(),
            rotate_bytes: rotate_bytes.filter(|&b| b > 0),
            removed: Vec::new(),
            ts: String::with_capacity(40),
            entries: 0,
            bytes: 0,
            rate: rate.filter(|&r| r > 0).map(|r| (r, Instant::now())),
        }
    }

    /// Creates `<ns>_<pod>_<uid>/<container>/0.log` and returns its handle.
    pub fn add_file(
        &mut self,
        namespace: &str,
        pod: &str,
        uid: &str,
        container: &str,
    ) -> io::Result<usize> {
        let dir_rel = format!("{namespace}_{pod}_{uid}/{container}");
        let dir = self.root.join(&dir_rel);
        fs::create_dir_all(&dir)?;
        let w = BufWriter::with_capacity(64 * 1024, File::create(dir.join("0.log"))?);
        self.files.push(FileOut {
            dir_rel,
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            container: container.to_string(),
            w: Some(w),
            entries: 0,
            bytes: 0,
            last_rotate_ns: i64::MIN / 2,
            rotated: VecDeque::new(),
        });
        Ok(self.files.len() - 1)
    }

    /// Writes one entry at time `t` (Unix ns). Content longer than [`CRI_SPLIT`] is written as
    /// `P` parts plus a final `F` part, one microsecond apart. `content` must not contain `\n`.
    pub fn write_entry(
        &mut self,
        idx: usize,
        t: i64,
        stream: Stream,
        content: &[u8],
    ) -> io::Result<()> {
        let f = &mut self.files[idx];
        let w = match f.w.as_mut() {
            Some(w) => w,
            None => {
                let path = self.root.join(&f.dir_rel).join("0.log");
                let file = fs::OpenOptions::new().append(true).open(path)?;
                f.w.insert(BufWriter::with_capacity(64 * 1024, file))
            }
        };
        let mut written = 0u64;
        let mut rest = content;
        let mut part = 0i64;
        loop {
            let (chunk, tag) = if rest.len() > CRI_SPLIT {
                (&rest[..CRI_SPLIT], "P")
            } else {
                (rest, "F")
            };
            self.ts.clear();
            text::rfc3339_nano(&mut self.ts, t + part * 1_000);
            w.write_all(self.ts.as_bytes())?;
            w.write_all(b" ")?;
            w.write_all(stream.as_str().as_bytes())?;
            w.write_all(b" ")?;
            w.write_all(tag.as_bytes())?;
            w.write_all(b" ")?;
            w.write_all(chunk)?;
            w.write_all(b"\n")?;
            written += (self.ts.len() + stream.as_str().len() + 5 + chunk.len()) as u64;
            rest = &rest[chunk.len()..];
            part += 1;
            if tag == "F" {
                break;
            }
        }
        f.entries += 1;
        f.bytes += written;
        self.entries += 1;
        self.bytes += written;
        if let Some(limit) = self.rotate_bytes {
            if f.bytes >= limit && t - f.last_rotate_ns >= MONITOR_PERIOD_NS {
                self.rotate(idx, t)?;
            }
        }
        if let Some((rate, start)) = self.rate {
            self.pace(rate, start)?;
        }
        Ok(())
    }

    /// Sleeps so that `entries` never runs ahead of `rate` per second; flushes before sleeping.
    fn pace(&mut self, rate: u64, start: Instant) -> io::Result<()> {
        let due = Duration::from_nanos(self.entries.saturating_mul(1_000_000_000) / rate);
        let elapsed = start.elapsed();
        if due > elapsed + Duration::from_millis(2) {
            self.flush_all()?;
            std::thread::sleep(due - elapsed);
        } else if due + Duration::from_millis(200) < elapsed {
            // Behind schedule (slow disk): still make progress visible.
            self.flush_all()?;
        }
        Ok(())
    }

    fn flush_all(&mut self) -> io::Result<()> {
        for f in &mut self.files {
            if let Some(w) = f.w.as_mut() {
                w.flush()?;
            }
        }
        Ok(())
    }

    /// Flushes and closes a file whose container has exited (it is reopened if written again).
    pub fn close_file(&mut self, idx: usize) -> io::Result<()> {
        if let Some(mut w) = self.files[idx].w.take() {
            w.flush()?;
        }
        Ok(())
    }

    /// Rotates like the kubelet: compress the uncompressed rotated file, drop the oldest beyond
    /// [`MAX_FILES`]` - 2`, rename `0.log` to `0.log.<YYYYMMDD-hhmmss>` and reopen.
    fn rotate(&mut self, idx: usize, t: i64) -> io::Result<()> {
        let root = self.root.clone();
        let f = &mut self.files[idx];
        let dir = root.join(&f.dir_rel);
        let mut stamp = String::new();
        text::rotate_stamp(&mut stamp, t);
        let new_name = format!("0.log.{stamp}");
        if dir.join(&new_name).exists() || dir.join(format!("{new_name}.gz")).exists() {
            return Ok(());
        }
        if let Some(mut w) = f.w.take() {
            w.flush()?;
        }
        for r in f.rotated.iter_mut().filter(|r| !r.gz) {
            let plain = dir.join(&r.name);
            let gz_name = format!("{}.gz", r.name);
            let tmp = dir.join(format!("{gz_name}.tmp"));
            {
                let mut enc =
                    GzEncoder::new(BufWriter::new(File::create(&tmp)?), Compression::default());
                io::copy(&mut File::open(&plain)?, &mut enc)?;
                enc.finish()?.flush()?;
            }
            fs::rename(&tmp, dir.join(&gz_name))?;
            fs::remove_file(&plain)?;
            r.name = gz_name;
            r.gz = true;
        }
        while f.rotated.len() > MAX_FILES - 2 {
            if let Some(old) = f.rotated.pop_front() {
                fs::remove_file(dir.join(&old.name))?;
                self.removed.push(GenFile {
                    path: format!("{}/{}", f.dir_rel, old.name),
                    namespace: f.namespace.clone(),
                    pod: f.pod.clone(),
                    container: f.container.clone(),
                    entries: old.entries,
                    bytes: old.bytes,
                    compressed: old.gz,
                });
            }
        }
        fs::rename(dir.join("0.log"), dir.join(&new_name))?;
        f.rotated.push_back(Rotated {
            name: new_name,
            entries: f.entries,
            bytes: f.bytes,
            gz: false,
        });
        f.entries = 0;
        f.bytes = 0;
        f.last_rotate_ns = t;
        f.w = Some(BufWriter::with_capacity(
            64 * 1024,
            File::create(dir.join("0.log"))?,
        ));
        Ok(())
    }

    /// Flushes everything; returns the files present (sorted by path) and the ones rotation
    /// deleted.
    pub fn finish(mut self) -> io::Result<(Vec<GenFile>, Vec<GenFile>)> {
        self.flush_all()?;
        let mut files = Vec::new();
        for f in &self.files {
            let mk = |name: &str, entries, bytes, compressed| GenFile {
                path: format!("{}/{}", f.dir_rel, name),
                namespace: f.namespace.clone(),
                pod: f.pod.clone(),
                container: f.container.clone(),
                entries,
                bytes,
                compressed,
            };
            for r in &f.rotated {
                files.push(mk(&r.name, r.entries, r.bytes, r.gz));
            }
            files.push(mk("0.log", f.entries, f.bytes, false));
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((files, self.removed))
    }
}
