//! `veloki gen`: writes a realistic kubelet-style pods tree for demos, benchmarks and tests.
//!
//! **In:** [`GenOptions`] (output directory, number of entries, seed, optional pacing and
//! rotation). **Out:** `<out>/<namespace>_<pod>_<uid>/<container>/0.log` files in CRI format,
//! a top-level `veloki-gen-manifest.json`, and the same facts as a [`GenSummary`].
//!
//! What the tree contains:
//! * `velero` namespace: the Velero server (logrus text, one Velero version per tree, chosen
//!   from the seed), two node-agent pods (PodVolumeBackup/Restore lines, zap and klog lines on
//!   older versions), and one pod per backup CronJob run of the Velero CLI (container
//!   `velero-backup`, capped at [`MAX_CLI_PODS`]).
//! * `velero-manager` namespace: the Gin app (v1.10 access lines, `Error #01:` continuations,
//!   Go `log` lines on stderr, rarely a Recovery block).
//! * `kube-system`: one CoreDNS pod, which a shipper must filter out by default.
//!
//! Guarantees:
//! * **Exact count:** exactly `lines` entries are written (a `P…F` run counts as one entry).
//! * **Complete lifecycles:** every backup and restore that starts also reaches the lines that
//!   decide its outcome (rules of `reference/velero-and-gin-log-formats.md` §1.6–1.7); the
//!   outcomes are listed in the manifest.
//! * **Deterministic:** the same options give a byte-identical tree (ChaCha8 seeded from
//!   `seed`, log time starting at `start_unix`), also with `rate` set (only wall-clock pacing
//!   changes). Timestamps strictly increase within each file.
//! * **Mix by entries** (roughly): 55 % Velero server, 10 % node-agent, 30 % Gin, 5 % other
//!   (CLI, Go `log`, klog, CoreDNS).

mod out;
mod text;
mod velero;
mod web;

use std::collections::{HashSet, VecDeque};
use std::io::{self, Write};
use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use out::{Stream, Tree};
use text::Rec;
use velero::{BackupRt, RestoreRt, S};

/// 2026-04-10T02:00:00Z, the default log time of the first entry.
pub const DEFAULT_START_UNIX: i64 = 1_775_786_400;
/// Default number of entries.
pub const DEFAULT_LINES: u64 = 10_000;
/// Name of the manifest written at the top of the tree (not a pod directory).
pub const MANIFEST_NAME: &str = "veloki-gen-manifest.json";
/// At most this many CronJob (Velero CLI) pods are created per tree.
pub const MAX_CLI_PODS: usize = 48;
/// Velero minor versions the generator can imitate (1.11 … 1.18).
pub const VELERO_MINORS: std::ops::RangeInclusive<u32> = 11..=18;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Root of the pods tree to write (created if missing).
    pub out: PathBuf,
    /// Total number of log entries to write across all files.
    pub lines: u64,
    /// Seed: the same options and seed give byte-identical trees.
    pub seed: u64,
    /// Entries per second of wall-clock time. When set, entries are written in real time
    /// (flushed as they go) and log time advances by `1/rate` s per entry, so with
    /// `start_unix` = now the log timestamps track the wall clock.
    pub rate: Option<u64>,
    /// Rotate a container's `0.log` like the kubelet once it reaches this many bytes
    /// (`0.log.<YYYYMMDD-hhmmss>`, gzipped one rotation later, at most 5 files per container).
    pub rotate_bytes: Option<u64>,
    /// Log time (Unix seconds, UTC) of the first entry.
    pub start_unix: i64,
    /// Velero minor version to imitate (11 … 18); `None` picks one from the seed.
    pub velero_minor: Option<u32>,
}

impl GenOptions {
    /// Defaults: [`DEFAULT_LINES`] entries, seed 1, no pacing, no rotation,
    /// [`DEFAULT_START_UNIX`], Velero version from the seed.
    pub fn new(out: impl Into<PathBuf>) -> GenOptions {
        GenOptions {
            out: out.into(),
            lines: DEFAULT_LINES,
            seed: 1,
            rate: None,
            rotate_bytes: None,
            start_unix: DEFAULT_START_UNIX,
            velero_minor: None,
        }
    }
}

/// Final phase of a generated backup or restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Outcome {
    /// `Completed`.
    Completed,
    /// `PartiallyFailed`.
    PartiallyFailed,
    /// `Failed`.
    Failed,
    /// `FailedValidation` (backups only; visible through the CLI line).
    FailedValidation,
}

impl Outcome {
    /// The Velero phase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "Completed",
            Outcome::PartiallyFailed => "PartiallyFailed",
            Outcome::Failed => "Failed",
            Outcome::FailedValidation => "FailedValidation",
        }
    }
}

/// Classified reason of a failure or partial failure (the `reason` enum of the design).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonClass {
    /// Backup storage location unavailable or unreachable.
    StorageUnavailable,
    /// Access denied, bad or missing credentials.
    Credentials,
    /// Rate limiting by the object store or API.
    Throttled,
    /// A timeout or deadline.
    Timeout,
    /// `backup already exists in object storage`.
    AlreadyExists,
    /// A pod volume (file-system) backup failed.
    PodVolume,
    /// A volume snapshot failed.
    Snapshot,
    /// A plugin crashed or failed.
    Plugin,
    /// Validation failed (FailedValidation).
    Validation,
    /// Anything else.
    Other,
}

/// One file of the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GenFile {
    /// Path relative to the tree root, `/`-separated.
    pub path: String,
    /// Namespace (from the pod directory name).
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// Number of log entries in the file (a `P…F` run counts once).
    pub entries: u64,
    /// Uncompressed size in bytes.
    pub bytes: u64,
    /// Whether the file is gzip-compressed (`….gz`).
    pub compressed: bool,
}

/// One backup and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GenBackup {
    /// Backup name.
    pub name: String,
    /// Namespace of the Backup object (`velero`).
    pub namespace: String,
    /// Velero Schedule that created it, if any.
    pub schedule: Option<String>,
    /// `schedule`, `cli` (a CronJob running `velero backup create --wait`) or `manual`.
    pub created_by: String,
    /// Final phase.
    pub outcome: Outcome,
    /// Why it failed or partially failed; `None` when Completed.
    pub reason_class: Option<ReasonClass>,
    /// The failure reason (`backup failed` `error=` value), the first item error of a partial
    /// failure, or the (unlogged) validation error.
    pub error: Option<String>,
}

/// One restore and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GenRestore {
    /// Restore name.
    pub name: String,
    /// Namespace of the Restore object (`velero`).
    pub namespace: String,
    /// Backup it restores from.
    pub backup: String,
    /// Final phase (`Completed` or `PartiallyFailed`).
    pub outcome: Outcome,
    /// Reason class when PartiallyFailed.
    pub reason_class: Option<ReasonClass>,
}

/// What was generated; also written as `veloki-gen-manifest.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GenSummary {
    /// The seed used.
    pub seed: u64,
    /// Entries written (equals the requested `lines`).
    pub lines: u64,
    /// Bytes written (before compression).
    pub bytes: u64,
    /// Velero version the server and node-agent lines imitate, e.g. `v1.15.2`.
    pub velero_version: String,
    /// Log time of the first entry (Unix seconds).
    pub start_unix: i64,
    /// Log time of the last entry (Unix seconds, floor).
    pub end_unix: i64,
    /// Files present at the end, sorted by path.
    pub files: Vec<GenFile>,
    /// Rotated files the kubelet rotation deleted (beyond 5 files per container).
    pub removed_files: Vec<GenFile>,
    /// Every backup, in creation order.
    pub backups: Vec<GenBackup>,
    /// Every restore, in creation order.
    pub restores: Vec<GenRestore>,
}

/// Writes the tree and its manifest.
///
/// Errors: I/O errors, or `InvalidInput` for a `velero_minor` outside [`VELERO_MINORS`].
pub fn generate(opts: &GenOptions) -> io::Result<GenSummary> {
    if let Some(m) = opts.velero_minor {
        if !VELERO_MINORS.contains(&m) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("velero_minor {m} is not in 11..=18"),
            ));
        }
    }
    std::fs::create_dir_all(&opts.out)?;
    let mut g = Gen::new(opts)?;
    g.run()?;
    let summary = g.finish(opts)?;
    let path = opts.out.join(MANIFEST_NAME);
    let mut w = io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(&mut w, &summary).map_err(io::Error::other)?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(summary)
}

// Track weights (by pick, roughly by entries).
const W_BACKUP: f64 = 0.55;
const W_RESTORE: f64 = 0.05;
const W_BG: f64 = 0.05;
const W_GIN: f64 = 0.30;

/// Files of the fixed pods.
pub(crate) struct Files {
    pub server: usize,
    pub na: [usize; 2],
    pub gin: usize,
    pub core: usize,
}

/// The generator's state: randomness, clock, output and the scripts in flight.
pub(crate) struct Gen {
    pub rng: ChaCha8Rng,
    pub tree: Tree,
    pub files: Files,
    /// Log time (Unix ns) of the last entry.
    pub now: i64,
    step_ns: Option<i64>,
    pub rec: Rec,
    pub buf: String,
    pub tmp: String,
    pub minor: u32,
    pub version: String,
    pub commit: String,
    pub backups: Vec<BackupRt>,
    pub restores: Vec<RestoreRt>,
    pub restorable: Vec<u32>,
    pub names: HashSet<String>,
    pub backup_q: VecDeque<S>,
    pub restore_q: VecDeque<S>,
    pub bg_q: VecDeque<S>,
    /// Entries committed by queued scripts (including deferred steps not yet queued).
    pub pending: u64,
    target: u64,
    pub deck: Vec<Outcome>,
    pub rdeck: Vec<Outcome>,
    pub cli_pods: usize,
    pub manual_n: u32,
    pub long_done: bool,
    pub bsl_bad: u32,
    pub gc_name: String,
    pub plugin_pid: u32,
    pub last_cli_minute: i64,
    pub na_pods: [String; 2],
    pub last_heartbeat: i64,
}

impl Gen {
    fn new(opts: &GenOptions) -> io::Result<Gen> {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let minor = match opts.velero_minor {
            Some(m) => m,
            None => [11, 12, 13, 14, 15, 15, 16, 17, 18][rng.gen_range(0..9)],
        };
        let patch = [1, 4, 2, 1, 2, 1, 1, 0][(minor - 11) as usize];
        let version = format!("v1.{minor}.{patch}");
        let mut commit = String::with_capacity(40);
        for _ in 0..40 {
            commit.push(char::from(b"0123456789abcdef"[rng.gen_range(0..16)]));
        }
        let mut tree = Tree::new(&opts.out, opts.rotate_bytes, opts.rate);
        let mut pod = String::new();
        let mut uid = String::new();

        velero::pod_name(&mut rng, &mut pod, "velero", true);
        velero::uuid(&mut rng, &mut uid);
        let server = tree.add_file("velero", &pod, &uid, "velero")?;
        let mut na = [0; 2];
        let mut na_pods = [String::new(), String::new()];
        for (slot, name) in na.iter_mut().zip(na_pods.iter_mut()) {
            uid.clear();
            velero::pod_name(&mut rng, name, "node-agent", false);
            velero::uuid(&mut rng, &mut uid);
            *slot = tree.add_file("velero", name, &uid, "node-agent")?;
        }
        pod.clear();
        uid.clear();
        velero::pod_name(&mut rng, &mut pod, "velero-manager", true);
        velero::uuid(&mut rng, &mut uid);
        let gin = tree.add_file("velero-manager", &pod, &uid, "velero-manager")?;
        pod.clear();
        uid.clear();
        velero::pod_name(&mut rng, &mut pod, "coredns", true);
        velero::uuid(&mut rng, &mut uid);
        let core = tree.add_file("kube-system", &pod, &uid, "coredns")?;

        Ok(Gen {
            rng,
            tree,
            files: Files {
                server,
                na,
                gin,
                core,
            },
            now: opts.start_unix.saturating_mul(1_000_000_000),
            step_ns: opts
                .rate
                .filter(|&r| r > 0)
                .map(|r| (1_000_000_000 / r as i64).max(10_000)),
            rec: Rec::default(),
            buf: String::with_capacity(512),
            tmp: String::with_capacity(128),
            minor,
            version,
            commit,
            backups: Vec::new(),
            restores: Vec::new(),
            restorable: Vec::new(),
            names: HashSet::new(),
            backup_q: VecDeque::new(),
            restore_q: VecDeque::new(),
            bg_q: VecDeque::new(),
            pending: 0,
            target: opts.lines,
            deck: Vec::new(),
            rdeck: Vec::new(),
            cli_pods: 0,
            manual_n: 0,
            long_done: false,
            bsl_bad: 0,
            gc_name: String::new(),
            plugin_pid: 40 + (opts.seed % 50) as u32,
            last_cli_minute: 0,
            na_pods,
            last_heartbeat: i64::MIN / 2,
        })
    }

    /// Advances the log clock for the next entry and returns its time (Unix ns).
    pub fn tick(&mut self) -> i64 {
        let d = match self.step_ns {
            Some(s) => s,
            None => {
                let r: f64 = self.rng.gen();
                if r < 0.6 {
                    self.rng.gen_range(1_000_000..150_000_000)
                } else if r < 0.95 {
                    self.rng.gen_range(150_000_000..800_000_000)
                } else {
                    self.rng.gen_range(800_000_000..4_000_000_000)
                }
            }
        };
        self.now += d;
        self.now
    }

    /// Writes `self.buf` as one entry.
    pub fn put(&mut self, file: usize, t: i64, stream: Stream) -> io::Result<()> {
        self.tree.write_entry(file, t, stream, self.buf.as_bytes())
    }

    fn remaining(&self) -> u64 {
        self.target - self.tree.entries
    }

    fn run(&mut self) -> io::Result<()> {
        self.startup()?;
        while self.tree.entries < self.target {
            let remaining = self.remaining();
            let r: f64 = self.rng.gen();
            let acted = if r < W_BACKUP {
                self.track_backup(remaining)?
            } else if r < W_BACKUP + W_RESTORE {
                self.track_restore(remaining)?
            } else if r < W_BACKUP + W_RESTORE + W_BG {
                self.track_bg(remaining)?
            } else if r < W_BACKUP + W_RESTORE + W_BG + W_GIN {
                self.gin_unit(remaining)?
            } else {
                self.other_unit(remaining)?
            };
            if !acted {
                if self.pending > 0 {
                    self.drain_one()?;
                } else {
                    self.gin_filler()?;
                }
            }
        }
        Ok(())
    }

    /// Emits one committed step from whichever queue has one.
    fn drain_one(&mut self) -> io::Result<()> {
        let s = self
            .backup_q
            .pop_front()
            .or_else(|| self.restore_q.pop_front())
            .or_else(|| self.bg_q.pop_front());
        match s {
            Some(s) => self.step(s),
            None => self.gin_filler(),
        }
    }

    fn track_backup(&mut self, remaining: u64) -> io::Result<bool> {
        if self.backup_q.is_empty() && !self.plan_backup(remaining) {
            return Ok(false);
        }
        match self.backup_q.pop_front() {
            Some(s) => self.step(s).map(|_| true),
            None => Ok(false),
        }
    }

    fn track_restore(&mut self, remaining: u64) -> io::Result<bool> {
        if self.restore_q.is_empty() && !self.plan_restore(remaining) {
            return Ok(false);
        }
        match self.restore_q.pop_front() {
            Some(s) => self.step(s).map(|_| true),
            None => Ok(false),
        }
    }

    fn track_bg(&mut self, remaining: u64) -> io::Result<bool> {
        if self.bg_q.is_empty() && !self.plan_bg(remaining) {
            return Ok(false);
        }
        match self.bg_q.pop_front() {
            Some(s) => self.step(s).map(|_| true),
            None => Ok(false),
        }
    }

    /// Emits one committed step.
    fn step(&mut self, s: S) -> io::Result<()> {
        self.pending = self.pending.saturating_sub(1);
        self.emit(s)
    }

    /// Accepts a planned script if it fits into what is left.
    pub fn fits(&self, n: u64, remaining: u64) -> bool {
        self.pending + n <= remaining
    }

    fn finish(self, opts: &GenOptions) -> io::Result<GenSummary> {
        let end_unix = self.now.div_euclid(1_000_000_000);
        let lines = self.tree.entries;
        let bytes = self.tree.bytes;
        let backups = self.backups.iter().map(|b| b.summary()).collect();
        let restores = self
            .restores
            .iter()
            .map(|r| GenRestore {
                name: r.name.clone(),
                namespace: "velero".to_string(),
                backup: self.backups[r.backup as usize].name.clone(),
                outcome: r.outcome,
                reason_class: r.reason,
            })
            .collect();
        let (files, removed_files) = self.tree.finish()?;
        Ok(GenSummary {
            seed: opts.seed,
            lines,
            bytes,
            velero_version: self.version,
            start_unix: opts.start_unix,
            end_unix,
            files,
            removed_files,
            backups,
            restores,
        })
    }
}
