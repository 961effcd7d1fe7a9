//! Checkpoint: which bytes of which file Loki has accepted, saved crash-safely.
//!
//! **In:** file registrations from the tailer, "batch N carries file F up to offset O" from the
//! batcher, and Loki's answers from the pusher. **Out:** the positions file.
//! **Guarantees:** a file's saved offset never passes an entry Loki has not answered for (2xx or a
//! permanent, counted rejection); the file is written to a temporary name, fsynced and renamed, so
//! a crash leaves either the old or the new version; a corrupt or unreadable file is reported and
//! treated as empty, never a crash.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::enrich::outcome::TrackerState;
use crate::tail::fingerprint::Fingerprint;

pub mod acks;

use acks::AckQueue;

/// Version of the positions file format.
pub const FORMAT_VERSION: u32 = 1;

/// One file's saved position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPos {
    /// Path when last seen (informational; identity is dev+inode+fingerprint).
    pub path: String,
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Checksum of the first bytes.
    pub fingerprint: Fingerprint,
    /// Delivered offset (decompressed bytes for `.gz`).
    pub offset: u64,
    /// True once the file was read to its end and it was rotated or deleted (a `.gz` copy of it
    /// is then recognised by fingerprint and skipped).
    #[serde(default)]
    pub finished: bool,
}

/// The positions file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PositionsFile {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// Files.
    pub files: Vec<SavedPos>,
    /// Outcome-tracker state, so a restart remembers backups in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracker: Option<TrackerState>,
}

#[derive(Debug)]
struct FileRec {
    pos: SavedPos,
    acks: AckQueue,
    size: u64,
}

/// The live checkpoint state shared by the tailer (registrations), the batcher (expectations)
/// and the pusher (acks).
#[derive(Debug, Default)]
pub struct Checkpoint {
    files: HashMap<u32, FileRec>,
    loaded: Vec<SavedPos>,
    /// Finished files remembered so their `.gz` copies are not read twice.
    finished: Vec<SavedPos>,
    tracker: Option<TrackerState>,
    dirty: bool,
}

/// Most finished-file fingerprints remembered.
const MAX_FINISHED: usize = 4096;

impl Checkpoint {
    /// Loads the positions file. A missing file is an empty checkpoint; a corrupt one is an empty
    /// checkpoint plus a warning message for the caller to log.
    pub fn load(path: &Path) -> (Checkpoint, Option<String>) {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (Checkpoint::default(), None)
            }
            Err(e) => {
                return (
                    Checkpoint::default(),
                    Some(format!(
                        "cannot read positions file {}: {e}",
                        path.display()
                    )),
                )
            }
        };
        match serde_json::from_slice::<PositionsFile>(&data) {
            Ok(p) if p.version == FORMAT_VERSION => {
                let (finished, loaded): (Vec<_>, Vec<_>) =
                    p.files.into_iter().partition(|f| f.finished);
                (
                    Checkpoint {
                        files: HashMap::new(),
                        loaded,
                        finished,
                        tracker: p.tracker,
                        dirty: false,
                    },
                    None,
                )
            }
            Ok(p) => (
                Checkpoint::default(),
                Some(format!(
                    "positions file {} has unsupported version {}; starting without positions",
                    path.display(),
                    p.version
                )),
            ),
            Err(e) => (
                Checkpoint::default(),
                Some(format!(
                    "positions file {} is corrupt ({e}); starting without positions",
                    path.display()
                )),
            ),
        }
    }

    /// Takes the saved tracker state (once).
    pub fn take_tracker(&mut self) -> Option<TrackerState> {
        self.tracker.take()
    }

    /// Stores tracker state to be saved with the positions.
    pub fn set_tracker(&mut self, t: TrackerState) {
        self.tracker = Some(t);
        self.dirty = true;
    }

    /// The saved offset of a file identified by dev+inode, guarded by its fingerprint (`head`
    /// is the file's first bytes). An empty fingerprint (saved while the file was empty)
    /// identifies nothing: a reused inode would match it; see `was_empty`.
    pub fn resume(&self, dev: u64, ino: u64, head: &[u8]) -> Option<u64> {
        self.loaded
            .iter()
            .find(|p| {
                p.dev == dev
                    && p.ino == ino
                    && p.fingerprint.len > 0
                    && p.fingerprint.matches_head(head)
            })
            .map(|p| p.offset)
    }

    /// The saved offset of a file that lost its inode identity (a `.gz` rotation, a copytruncate
    /// copy), matched by content alone: a saved position, a finished file, and with
    /// `include_followed` a file followed right now. Returns (offset, the file was finished).
    pub fn resume_by_content(&self, head: &[u8], include_followed: bool) -> Option<(u64, bool)> {
        let followed = self
            .files
            .values()
            .map(|f| &f.pos)
            .filter(|_| include_followed);
        self.loaded
            .iter()
            .chain(self.finished.iter())
            .chain(followed)
            .find(|p| p.fingerprint.len >= 64 && p.fingerprint.matches_head(head))
            .map(|p| (p.offset, p.finished))
    }

    /// True when this inode was saved while empty (so its file is read from the start even with
    /// `start_at: end`, unless its content identifies it as something else).
    pub fn was_empty(&self, dev: u64, ino: u64) -> bool {
        self.loaded
            .iter()
            .any(|p| p.dev == dev && p.ino == ino && p.fingerprint.len == 0)
    }

    /// Moves file `id` (its position and pending acks) to another inode: the tailer found the
    /// copy a copytruncate made of it and reads the rest from there.
    pub fn rebind(&mut self, id: u32, path: &Path, dev: u64, ino: u64) {
        if let Some(f) = self.files.get_mut(&id) {
            f.pos.path = path.display().to_string();
            f.pos.dev = dev;
            f.pos.ino = ino;
            self.dirty = true;
        }
    }

    /// Records a longer fingerprint of file `id` (read before entries past the old one are
    /// handed out, so a saved offset is always covered by its fingerprint).
    pub fn set_fingerprint(&mut self, id: u32, fp: Fingerprint) {
        if let Some(f) = self.files.get_mut(&id) {
            if f.pos.fingerprint != fp {
                f.pos.fingerprint = fp;
                self.dirty = true;
            }
        }
    }

    /// Starts tracking file `id` at `offset`.
    pub fn register(
        &mut self,
        id: u32,
        path: &Path,
        dev: u64,
        ino: u64,
        fp: Fingerprint,
        offset: u64,
    ) {
        self.files.insert(
            id,
            FileRec {
                pos: SavedPos {
                    path: path.display().to_string(),
                    dev,
                    ino,
                    fingerprint: fp,
                    offset,
                    finished: false,
                },
                acks: AckQueue::new(offset),
                size: offset,
            },
        );
        self.dirty = true;
    }

    /// Updates what is known about a file (new path after a rename, longer fingerprint, size).
    pub fn update(&mut self, id: u32, path: &Path, fp: Fingerprint, size: u64) {
        if let Some(f) = self.files.get_mut(&id) {
            let p = path.display().to_string();
            if f.pos.path != p || f.pos.fingerprint != fp {
                f.pos.path = p;
                f.pos.fingerprint = fp;
                self.dirty = true;
            }
            f.size = size;
        }
    }

    /// Batch `seq` carries entries of these files up to these offsets.
    pub fn expect(&mut self, seq: u64, files: &[(u32, u64)]) {
        for &(id, off) in files {
            if let Some(f) = self.files.get_mut(&id) {
                f.acks.expect(seq, off);
            }
        }
    }

    /// Loki answered for batch `seq` (accepted, or rejected for good and counted).
    pub fn ack(&mut self, seq: u64, files: &[(u32, u64)]) {
        for &(id, _) in files {
            if let Some(f) = self.files.get_mut(&id) {
                if f.acks.ack(seq) {
                    f.pos.offset = f.acks.committed();
                    self.dirty = true;
                }
            }
        }
    }

    /// The committed offset of a file.
    pub fn committed(&self, id: u32) -> Option<u64> {
        self.files.get(&id).map(|f| f.acks.committed())
    }

    /// Batches of this file still waiting for Loki.
    pub fn outstanding(&self, id: u32) -> usize {
        self.files.get(&id).map_or(0, |f| f.acks.outstanding())
    }

    /// Total undelivered bytes per file id (size − committed).
    pub fn lag(&self, id: u32) -> u64 {
        self.files
            .get(&id)
            .map_or(0, |f| f.size.saturating_sub(f.acks.committed()))
    }

    /// Stops tracking a file that is gone and fully delivered; remembers its fingerprint when it
    /// was finished (so its `.gz` copy is skipped).
    pub fn forget(&mut self, id: u32, finished: bool) {
        if let Some(mut f) = self.files.remove(&id) {
            if finished && f.pos.fingerprint.len >= 64 {
                f.pos.finished = true;
                f.pos.offset = f.acks.committed();
                self.finished.push(f.pos);
                if self.finished.len() > MAX_FINISHED {
                    let excess = self.finished.len() - MAX_FINISHED;
                    self.finished.drain(..excess);
                }
            }
            self.dirty = true;
        }
    }

    /// Drops loaded positions that no file claimed (called after the first full scan).
    pub fn drop_unclaimed(&mut self) {
        if !self.loaded.is_empty() {
            self.loaded.clear();
            self.dirty = true;
        }
    }

    /// True when something changed since the last [`Checkpoint::snapshot`].
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The content to save; clears the dirty flag.
    pub fn snapshot(&mut self) -> PositionsFile {
        self.dirty = false;
        let mut ids: Vec<&u32> = self.files.keys().collect();
        ids.sort();
        let mut files: Vec<SavedPos> = Vec::with_capacity(ids.len() + self.loaded.len());
        // Latest registration wins for the same inode (a truncated file re-registered).
        let mut seen = std::collections::HashSet::new();
        for id in ids.into_iter().rev() {
            let f = &self.files[id];
            if seen.insert((f.pos.dev, f.pos.ino)) {
                let mut p = f.pos.clone();
                p.offset = f.acks.committed();
                files.push(p);
            }
        }
        files.reverse();
        // Positions not yet claimed by a file survive until the first scan has run.
        files.extend(self.loaded.iter().cloned());
        files.extend(self.finished.iter().cloned());
        PositionsFile {
            version: FORMAT_VERSION,
            files,
            tracker: self.tracker.clone(),
        }
    }
}

/// Writes the positions file crash-safely: temporary file, fsync, rename, fsync of the directory.
pub fn save(path: &Path, p: &PositionsFile) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("positions")
    ));
    let data = serde_json::to_vec_pretty(p).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&data)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_and_corrupt_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/positions.json");
        let mut c = Checkpoint::default();
        let fp = Fingerprint::of(b"hello world");
        c.register(1, Path::new("/p/0.log"), 7, 42, fp, 0);
        c.expect(1, &[(1, 100)]);
        c.expect(2, &[(1, 250)]);
        c.ack(2, &[(1, 250)]);
        assert_eq!(c.committed(1), Some(0));
        c.ack(1, &[(1, 100)]);
        assert_eq!(c.committed(1), Some(250));
        save(&path, &c.snapshot()).unwrap();
        let (c2, warn) = Checkpoint::load(&path);
        assert!(warn.is_none());
        assert_eq!(c2.resume(7, 42, b"hello world and more"), Some(250));
        assert_eq!(c2.resume(7, 42, b"other content"), None);
        std::fs::write(&path, b"{not json").unwrap();
        let (c3, warn) = Checkpoint::load(&path);
        assert!(warn.unwrap().contains("corrupt"));
        assert_eq!(c3.resume(7, 42, b"hello world"), None);
    }
}
