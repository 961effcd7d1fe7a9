//! Model-based test of tailing on real files: random sequences of what writers, the kubelet,
//! logrotate and crashes do to pod-log files, checked against a model of what must be delivered.
//!
//! The library is driven in-process: a [`Tailer`] over a temporary pods tree, and a sink that
//! records entries, groups them into "batches" acknowledged to the [`Checkpoint`] (late, in random
//! order, or never when a crash comes first), and saves the positions file when told to.
//!
//! Operations (two containers, CRI lines of 64+ bytes):
//! * write complete lines (stdout or stderr), or a long line as CRI `P` … `F`;
//! * a physical partial write (bytes without `\n`) finished by a later operation;
//! * kubelet rotation: gzip every plain rotated file (`.gz.tmp`, rename, delete the plain copy;
//!   sometimes the deletion comes only later: compression in progress), rename `0.log` to
//!   `0.log.<stamp>`, create a new `0.log`;
//! * copytruncate: copy `0.log` to `0.log.<stamp>`, maybe write lines, truncate `0.log`;
//! * delete the oldest rotated file (only once all its lines were delivered: the kubelet deletes
//!   only files beyond its limit; deleting unread data is loss by nature, not veloki's);
//! * tailer steps: rescan + read, read only (no rescan), a notification for the live file;
//! * seal a batch, acknowledge some batches, save the positions;
//! * restart: graceful (everything acknowledged, positions saved) or crash (pending acks and
//!   everything since the last save lost), then a new tailer from the positions file.
//!
//! The model: every line is delivered, with exactly its content; within one tailer lifetime each
//! line at most once and in the order lines were completed per container; a line delivered again
//! after a restart must not have been covered by the positions file the restart loaded (the
//! unacknowledged window: after a crash, what was not saved; after any restart, lines behind a
//! dangling CRI `P` whose `F` was not written yet, since a position cannot skip them).
//!
//! What copytruncate loses by nature, and the model excludes: lines written to the original
//! after the copy was made and before the truncation are in neither file once it is truncated;
//! no reader can ship them unless it happened to read them in that window. After a copytruncate
//! the next read starts with a rescan, as the reader does when the copy's creation is notified
//! (a read without one could deliver the copy after newer lines of a file it never saw a byte of;
//! nothing is lost either way).
//!
//! `VELOKI_MODEL_CASES` (default 150) and `VELOKI_MODEL_SEED` (run one case) control the run;
//! `VELOKI_MODEL_TRACE=1` prints operations and deliveries as they happen.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veloki::checkpoint::{self, Checkpoint, PositionsFile};
use veloki::config::{default_routes, StartAt};
use veloki::discover::Filter;
use veloki::metrics::Metrics;
use veloki::model::FileCtx;
use veloki::tail::{Entry, EntrySink, TailOptions, Tailer};

const CONTAINERS: [(&str, &str); 2] = [
    ("velero_velero-5d8f7c9b6-abcde_u-1", "velero"),
    ("velero_node-agent-x7k2p_u-2", "node-agent"),
];

/// One physical file's content lineage: the bytes, where each line ends, and the inodes that
/// held them (live file, renamed rotation, copytruncate copy, `.gz`).
struct Lineage {
    content: Vec<u8>,
    /// (line id, offset just past the line's last physical line).
    ends: Vec<(u64, u64)>,
    inodes: Vec<(u64, u64)>,
}

struct Rotated {
    path: PathBuf,
    lineage: usize,
    gz: bool,
}

struct Ctr {
    dir: PathBuf,
    live: usize,
    rotated: VecDeque<Rotated>,
    /// A physical line written in part: the bytes still to write, and its id.
    partial: Option<(Vec<u8>, u64)>,
    /// A CRI `P` written, its `F` not yet: (id, content so far).
    pending_p: Option<(u64, String)>,
    /// A `.gz` made, its plain original not deleted yet.
    compressing: Option<PathBuf>,
}

#[derive(Default)]
struct Sink {
    /// (container, id) in delivery order, this tailer lifetime.
    got: Vec<(usize, u64)>,
    /// Open batch: file → highest commit offset.
    open: HashMap<u32, u64>,
    /// Content each id must have (filled by the model before delivery).
    expect: Arc<Mutex<HashMap<u64, String>>>,
    errors: Vec<String>,
}

impl EntrySink for Sink {
    fn entry(&mut self, file_id: u32, ctx: &FileCtx, e: Entry<'_>) {
        let c = CONTAINERS
            .iter()
            .position(|(_, name)| **name == *ctx.container)
            .expect("a model container");
        let text = String::from_utf8_lossy(e.content).into_owned();
        let id = text
            .strip_prefix(&format!("c{c}i"))
            .and_then(|r| r.get(..7))
            .and_then(|d| d.parse::<u64>().ok());
        match id {
            Some(id) => {
                match self.expect.lock().unwrap().get(&id) {
                    Some(want) if *want == text => {}
                    want => self
                        .errors
                        .push(format!("line {id}: delivered {text:?}, written {want:?}")),
                }
                self.got.push((c, id));
            }
            None => self.errors.push(format!(
                "container {c}: a line that was never written: {text:?}"
            )),
        }
        let o = self.open.entry(file_id).or_insert(0);
        *o = (*o).max(e.commit_offset);
    }
}

struct Model {
    rng: ChaCha8Rng,
    seed: u64,
    root: PathBuf,
    pods: PathBuf,
    positions: PathBuf,
    lineages: Vec<Lineage>,
    ctrs: Vec<Ctr>,
    next_id: u64,
    ts: u64,
    stamp: u32,
    /// Content of every completed line.
    expect: Arc<Mutex<HashMap<u64, String>>>,
    /// Completion order per container: id → rank.
    rank: HashMap<u64, (usize, u64)>,
    completed: Vec<u64>,
    /// Lines copytruncate lost by nature.
    lost: HashSet<u64>,
    /// Ids delivered in any lifetime so far.
    delivered: HashSet<u64>,
    /// Ids the positions loaded at the last restart covered.
    durable: HashSet<u64>,
    // The system under test.
    cp: Arc<Mutex<Checkpoint>>,
    tailer: Option<Tailer>,
    sink: Sink,
    seq: u64,
    pending: Vec<(u64, Vec<(u32, u64)>)>,
    lifetimes: u32,
    log: Vec<String>,
    /// A copytruncate made a file since the last rescan: the reader rescans before it reads
    /// (the copy's creation is notified).
    copied_since_scan: bool,
    /// This lifetime: entries checked, ids seen, last rank per container.
    checked: Vec<(usize, u64)>,
    life_seen: HashSet<u64>,
    life_last: Vec<u64>,
}

fn ino(p: &Path) -> (u64, u64) {
    let m = fs::metadata(p).unwrap();
    (m.dev(), m.ino())
}

impl Model {
    fn new(seed: u64) -> Model {
        let root = tempfile::tempdir().unwrap().keep();
        let pods = root.join("pods");
        let mut m = Model {
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            positions: root.join("positions.json"),
            root,
            pods: pods.clone(),
            lineages: Vec::new(),
            ctrs: Vec::new(),
            next_id: 1,
            ts: 1,
            stamp: 0,
            expect: Arc::default(),
            rank: HashMap::new(),
            completed: vec![0; CONTAINERS.len()],
            lost: HashSet::new(),
            delivered: HashSet::new(),
            durable: HashSet::new(),
            cp: Arc::default(),
            tailer: None,
            sink: Sink::default(),
            seq: 0,
            pending: Vec::new(),
            lifetimes: 0,
            log: Vec::new(),
            copied_since_scan: false,
            checked: Vec::new(),
            life_seen: HashSet::new(),
            life_last: vec![0; CONTAINERS.len()],
        };
        for (pod, ctr) in CONTAINERS {
            let dir = pods.join(pod).join(ctr);
            fs::create_dir_all(&dir).unwrap();
            let live = m.new_live(&dir);
            m.ctrs.push(Ctr {
                dir,
                live,
                rotated: VecDeque::new(),
                partial: None,
                pending_p: None,
                compressing: None,
            });
        }
        m.sink.expect = m.expect.clone();
        m.start_tailer();
        m
    }

    fn new_live(&mut self, dir: &Path) -> usize {
        let p = dir.join("0.log");
        fs::File::create(&p).unwrap();
        self.lineages.push(Lineage {
            content: Vec::new(),
            ends: Vec::new(),
            inodes: vec![ino(&p)],
        });
        self.lineages.len() - 1
    }

    fn start_tailer(&mut self) {
        let (cp, warn) = Checkpoint::load(&self.positions);
        assert!(warn.is_none(), "{warn:?}");
        self.cp = Arc::new(Mutex::new(cp));
        let opts = TailOptions {
            pods_dir: self.pods.clone(),
            filter: Filter {
                namespaces: vec!["velero".into()],
                containers: vec![],
            },
            max_line_bytes: 16 * 1024,
            start_at: StartAt::Beginning,
            partial_timeout: Duration::from_secs(3600),
            read_budget: if self.rng.gen_bool(0.5) { 1 } else { 1 << 20 },
            wait_for_acks: true,
        };
        self.tailer = Some(Tailer::new(
            opts,
            default_routes(),
            self.cp.clone(),
            Arc::new(Metrics::new()),
        ));
        self.sink.got.clear();
        self.sink.open.clear();
        self.seq = 0;
        self.pending.clear();
        self.lifetimes += 1;
    }

    fn next_ts(&mut self) -> String {
        self.ts += 1;
        format!("2026-04-10T02:00:00.{:09}Z", self.ts)
    }

    fn filler(&mut self, min: usize, max: usize) -> String {
        let n = self.rng.gen_range(min..max);
        (0..n)
            .map(|_| (b'a' + self.rng.gen_range(0..26u8)) as char)
            .collect()
    }

    /// Appends raw bytes to container `c`'s live file.
    fn append(&mut self, c: usize, bytes: &[u8]) {
        let p = self.ctrs[c].dir.join("0.log");
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(bytes).unwrap();
        self.lineages[self.ctrs[c].live]
            .content
            .extend_from_slice(bytes);
    }

    /// A line is complete (its last physical line is in the live file).
    fn complete(&mut self, c: usize, id: u64, content: String) {
        let l = &mut self.lineages[self.ctrs[c].live];
        l.ends.push((id, l.content.len() as u64));
        self.expect.lock().unwrap().insert(id, content);
        self.completed[c] += 1;
        self.rank.insert(id, (c, self.completed[c]));
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn write_lines(&mut self, c: usize, n: usize) {
        self.finish_partial(c);
        for _ in 0..n {
            let id = self.new_id();
            let content = format!("c{c}i{id:07} {}", self.filler(24, 90));
            let stream = if self.rng.gen_bool(0.25) {
                "stderr"
            } else {
                "stdout"
            };
            if stream == "stdout" && self.ctrs[c].pending_p.is_some() {
                // The runtime finishes the partial line of stdout first.
                self.finish_p(c);
            }
            let line = format!("{} {stream} F {content}\n", self.next_ts());
            self.append(c, line.as_bytes());
            self.complete(c, id, content);
        }
    }

    fn start_p(&mut self, c: usize) {
        self.finish_partial(c);
        self.finish_p(c);
        let id = self.new_id();
        let part = format!("c{c}i{id:07} {}", self.filler(24, 60));
        let line = format!("{} stdout P {part}\n", self.next_ts());
        self.append(c, line.as_bytes());
        self.ctrs[c].pending_p = Some((id, part));
    }

    fn finish_p(&mut self, c: usize) {
        if let Some((id, mut content)) = self.ctrs[c].pending_p.take() {
            let rest = self.filler(30, 60);
            let line = format!("{} stdout F {rest}\n", self.next_ts());
            self.append(c, line.as_bytes());
            content.push_str(&rest);
            self.complete(c, id, content);
        }
    }

    fn start_partial(&mut self, c: usize) {
        self.finish_partial(c);
        let id = self.new_id();
        let content = format!("c{c}i{id:07} {}", self.filler(24, 90));
        if self.ctrs[c].pending_p.is_some() {
            self.finish_p(c);
        }
        let line = format!("{} stderr F {content}\n", self.next_ts());
        let cut = self.rng.gen_range(1..line.len() - 1);
        self.append(c, &line.as_bytes()[..cut]);
        self.ctrs[c].partial = Some((line.as_bytes()[cut..].to_vec(), id));
        self.expect.lock().unwrap().insert(id, content);
    }

    fn finish_partial(&mut self, c: usize) {
        if let Some((rest, id)) = self.ctrs[c].partial.take() {
            self.append(c, &rest);
            let content = self.expect.lock().unwrap()[&id].clone();
            self.complete(c, id, content);
        }
    }

    fn next_stamp(&mut self) -> String {
        self.stamp += 1;
        format!(
            "20260410-{:02}{:02}{:02}",
            2 + self.stamp / 3600,
            self.stamp / 60 % 60,
            self.stamp % 60
        )
    }

    /// Rotation needs a live file with a complete line (the kubelet rotates at 10 MiB).
    fn rotatable(&self, c: usize) -> bool {
        self.lineages[self.ctrs[c].live].content.len() >= 64
    }

    fn finish_compression(&mut self, c: usize) {
        if let Some(p) = self.ctrs[c].compressing.take() {
            fs::remove_file(p).unwrap();
        }
    }

    /// The kubelet: gzip the plain rotated files, rename `0.log`, create a new one.
    fn rotate(&mut self, c: usize) {
        self.finish_partial(c);
        self.finish_p(c);
        self.finish_compression(c);
        let dir = self.ctrs[c].dir.clone();
        let plain: Vec<usize> = (0..self.ctrs[c].rotated.len())
            .filter(|&i| !self.ctrs[c].rotated[i].gz)
            .collect();
        for i in plain {
            let (path, lineage) = {
                let r = &self.ctrs[c].rotated[i];
                (r.path.clone(), r.lineage)
            };
            let gz = PathBuf::from(format!("{}.gz", path.display()));
            let tmp = PathBuf::from(format!("{}.gz.tmp", path.display()));
            let mut enc =
                flate2::write::GzEncoder::new(fs::File::create(&tmp).unwrap(), Default::default());
            enc.write_all(&fs::read(&path).unwrap()).unwrap();
            enc.finish().unwrap();
            fs::rename(&tmp, &gz).unwrap();
            self.lineages[lineage].inodes.push(ino(&gz));
            if self.rng.gen_bool(0.3) && self.ctrs[c].compressing.is_none() {
                self.ctrs[c].compressing = Some(path);
            } else {
                fs::remove_file(&path).unwrap();
            }
            let r = &mut self.ctrs[c].rotated[i];
            r.path = gz;
            r.gz = true;
        }
        let to = dir.join(format!("0.log.{}", self.next_stamp()));
        fs::rename(dir.join("0.log"), &to).unwrap();
        let old = self.ctrs[c].live;
        self.ctrs[c].rotated.push_back(Rotated {
            path: to,
            lineage: old,
            gz: false,
        });
        self.ctrs[c].live = self.new_live(&dir);
        self.note(format!("rotate c{c}"));
    }

    /// logrotate's copytruncate, with `between` lines written after the copy (lost by nature).
    fn copytruncate(&mut self, c: usize, between: usize) {
        self.finish_partial(c);
        self.finish_p(c);
        let dir = self.ctrs[c].dir.clone();
        let live = dir.join("0.log");
        let to = dir.join(format!("0.log.{}", self.next_stamp()));
        fs::copy(&live, &to).unwrap();
        let old = self.ctrs[c].live;
        self.lineages[old].inodes.push(ino(&to));
        self.ctrs[c].rotated.push_back(Rotated {
            path: to,
            lineage: old,
            gz: false,
        });
        // Lines written between the copy and the truncation: in the original only.
        let mut f = OpenOptions::new().append(true).open(&live).unwrap();
        for _ in 0..between {
            let id = self.new_id();
            let content = format!("c{c}i{id:07} {}", self.filler(24, 60));
            let line = format!("{} stdout F {content}\n", self.next_ts());
            f.write_all(line.as_bytes()).unwrap();
            self.lost.insert(id);
        }
        f.set_len(0).unwrap();
        drop(f);
        self.lineages.push(Lineage {
            content: Vec::new(),
            ends: Vec::new(),
            inodes: vec![ino(&live)],
        });
        self.ctrs[c].live = self.lineages.len() - 1;
        self.copied_since_scan = true;
        self.note(format!("copytruncate c{c} between={between}"));
    }

    fn delete_oldest(&mut self, c: usize) {
        let Some(r) = self.ctrs[c].rotated.front() else {
            return;
        };
        let all_delivered = self.lineages[r.lineage]
            .ends
            .iter()
            .all(|(id, _)| self.delivered.contains(id) || self.lost.contains(id));
        if all_delivered {
            let r = self.ctrs[c].rotated.pop_front().unwrap();
            fs::remove_file(&r.path).unwrap();
            self.note(format!("delete {}", r.path.display()));
        }
    }

    fn tailer(&mut self) -> &mut Tailer {
        self.tailer.as_mut().unwrap()
    }

    fn drain_reads(&mut self, rescan: bool) {
        let mut rescan = rescan || std::mem::take(&mut self.copied_since_scan);
        let t = self.tailer.as_mut().unwrap();
        for _ in 0..10 {
            if rescan {
                t.rescan().unwrap();
            }
            for _ in 0..10_000 {
                if t.poll(&mut self.sink) == 0 {
                    break;
                }
            }
            // Like the reader loop: a restarted (truncated) file asks for a rescan.
            if !t.wants_rescan() {
                break;
            }
            rescan = true;
        }
        t.flush_partials(&mut self.sink);
        self.check_got();
        self.tailer().reap();
    }

    fn wake_live(&mut self, c: usize) {
        if self.copied_since_scan {
            return self.drain_reads(true);
        }
        let p = self.ctrs[c].dir.join("0.log");
        let t = self.tailer.as_mut().unwrap();
        t.wake(&p);
        for _ in 0..10_000 {
            if t.poll_woken(&mut self.sink) == 0 {
                break;
            }
        }
        self.check_got();
    }

    /// Checks what this lifetime delivered so far.
    fn check_got(&mut self) {
        if let Some(e) = self.sink.errors.first() {
            self.fail(e.clone());
        }
        let got = std::mem::take(&mut self.sink.got);
        if !got.is_empty() {
            self.note(format!("delivered {got:?}"));
        }
        for &(c, id) in &got {
            if !self.life_seen.insert(id) {
                self.fail(format!("line {id} delivered twice in one lifetime"));
            }
            let (rc, r) = self.rank[&id];
            assert_eq!(rc, c);
            if r <= self.life_last[c] {
                self.fail(format!(
                    "line {id} (rank {r}) after rank {} in container {c}",
                    self.life_last[c]
                ));
            }
            self.life_last[c] = r;
            if self.delivered.contains(&id) && self.durable.contains(&id) {
                self.fail(format!(
                    "line {id} delivered again although the loaded positions covered it"
                ));
            }
        }
        for &(_, id) in &got {
            self.delivered.insert(id);
        }
        self.checked.extend(got);
    }

    /// Records an operation (printed as it happens with `VELOKI_MODEL_TRACE=1`).
    fn note(&mut self, s: String) {
        if std::env::var_os("VELOKI_MODEL_TRACE").is_some() {
            eprintln!("{s}");
        }
        self.log.push(s);
    }

    fn fail(&self, msg: String) -> ! {
        let mut where_ = String::new();
        for (i, l) in self.lineages.iter().enumerate() {
            let ids: Vec<u64> = l.ends.iter().map(|e| e.0).collect();
            where_.push_str(&format!(
                "\n  lineage {i} inodes {:?} ids {ids:?}",
                l.inodes
            ));
        }
        for c in &self.ctrs {
            for e in fs::read_dir(&c.dir).unwrap().flatten() {
                let m = e.metadata().unwrap();
                where_.push_str(&format!(
                    "\n  {} ino {} size {}",
                    e.path().display(),
                    m.ino(),
                    m.len()
                ));
            }
        }
        panic!(
            "seed {} (files in {}): {msg}{where_}\nlast operations:\n  {}",
            self.seed,
            self.root.display(),
            self.log[self.log.len().saturating_sub(60)..].join("\n  ")
        );
    }

    fn seal(&mut self) {
        if self.sink.open.is_empty() {
            return;
        }
        self.seq += 1;
        let acks: Vec<(u32, u64)> = self.sink.open.drain().collect();
        self.cp.lock().unwrap().expect(self.seq, &acks);
        self.pending.push((self.seq, acks));
    }

    fn ack_some(&mut self, all: bool) {
        self.seal();
        let mut keep = Vec::new();
        let mut acked = Vec::new();
        for b in self.pending.drain(..) {
            if all || self.rng.gen_bool(0.6) {
                acked.push(b);
            } else {
                keep.push(b);
            }
        }
        // Loki answers out of order.
        for i in (1..acked.len()).rev() {
            let j = self.rng.gen_range(0..=i);
            acked.swap(i, j);
        }
        for (seq, acks) in acked {
            self.cp.lock().unwrap().ack(seq, &acks);
        }
        self.pending = keep;
    }

    fn save(&mut self) {
        let snap = self.cp.lock().unwrap().snapshot();
        checkpoint::save(&self.positions, &snap).unwrap();
    }

    /// Lines the positions file covers: per lineage, the highest saved offset of an entry whose
    /// inode held it and whose fingerprint matches its content.
    fn covered(&self) -> HashSet<u64> {
        let mut out = HashSet::new();
        let Ok(data) = fs::read(&self.positions) else {
            return out;
        };
        let pf: PositionsFile = serde_json::from_slice(&data).unwrap();
        for l in &self.lineages {
            let off = pf
                .files
                .iter()
                .filter(|p| {
                    l.inodes.contains(&(p.dev, p.ino)) && p.fingerprint.matches_head(&l.content)
                })
                .map(|p| p.offset)
                .max();
            if let Some(off) = off {
                out.extend(l.ends.iter().filter(|e| e.1 <= off).map(|e| e.0));
            }
        }
        out
    }

    fn restart(&mut self, crash: bool) {
        self.check_got();
        if !crash {
            self.ack_some(true);
            self.tailer().reap();
            self.save();
        }
        self.tailer = None;
        self.durable = self.covered();
        self.checked.clear();
        self.life_seen.clear();
        self.life_last = vec![0; CONTAINERS.len()];
        self.start_tailer();
        self.note(format!("restart crash={crash}"));
    }

    fn step(&mut self) {
        let c = self.rng.gen_range(0..CONTAINERS.len());
        let op = self.rng.gen_range(0..100);
        let name = match op {
            0..=19 => {
                let n = self.rng.gen_range(1..6);
                self.write_lines(c, n);
                format!("write {n} lines c{c}")
            }
            20..=23 => {
                self.start_p(c);
                format!("write P c{c}")
            }
            24..=27 => {
                self.start_partial(c);
                format!("partial write c{c}")
            }
            28..=30 => {
                self.finish_partial(c);
                format!("finish partial c{c}")
            }
            31..=37 if self.rotatable(c) => {
                self.rotate(c);
                return;
            }
            38..=40 if self.rotatable(c) => {
                let between = if self.rng.gen_bool(0.5) {
                    0
                } else {
                    self.rng.gen_range(1..3)
                };
                self.copytruncate(c, between);
                return;
            }
            41..=43 => {
                self.delete_oldest(c);
                return;
            }
            44..=45 => {
                self.finish_compression(c);
                format!("finish compression c{c}")
            }
            46..=60 => {
                self.drain_reads(true);
                "rescan+read".into()
            }
            61..=66 => {
                self.drain_reads(false);
                "read".into()
            }
            67..=71 => {
                self.wake_live(c);
                format!("wake live c{c}")
            }
            72..=76 => {
                self.seal();
                "seal".into()
            }
            77..=84 => {
                self.ack_some(false);
                "ack some".into()
            }
            85..=90 => {
                self.save();
                "save".into()
            }
            91..=94 => {
                self.restart(false);
                return;
            }
            95..=98 => {
                self.restart(true);
                return;
            }
            _ => {
                self.write_lines(c, 1);
                format!("write 1 line c{c}")
            }
        };
        self.note(name);
    }

    /// Writers finish, everything is read and acknowledged; every line must have arrived; a
    /// graceful restart then must deliver nothing again.
    fn finish(&mut self) {
        for c in 0..CONTAINERS.len() {
            self.finish_partial(c);
            self.finish_p(c);
        }
        for _ in 0..3 {
            self.drain_reads(true);
            self.ack_some(true);
            self.tailer().reap();
        }
        let missing: Vec<u64> = self
            .rank
            .keys()
            .filter(|id| !self.delivered.contains(id) && !self.lost.contains(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            self.fail(format!(
                "{} lines never delivered: {missing:?}",
                missing.len()
            ));
        }
        self.restart(false);
        self.drain_reads(true);
        if !self.checked.is_empty() {
            let again: Vec<u64> = self.checked.iter().map(|x| x.1).collect();
            self.fail(format!(
                "after a graceful restart with everything acknowledged, delivered again: {again:?}"
            ));
        }
    }
}

#[test]
fn random_operations_lose_nothing_and_duplicate_only_unacknowledged_lines() {
    let started = std::time::Instant::now();
    let cases: u64 = std::env::var("VELOKI_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let seeds: Vec<u64> = match std::env::var("VELOKI_MODEL_SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => (0..cases).map(|i| 0x5eed_0000 + i).collect(),
    };
    let (mut lines, mut restarts, mut lost) = (0usize, 0u32, 0usize);
    for seed in seeds {
        let mut m = Model::new(seed);
        let ops = m.rng.gen_range(20..120);
        for _ in 0..ops {
            m.step();
        }
        m.finish();
        lines += m.rank.len();
        restarts += m.lifetimes - 1;
        lost += m.lost.len();
        let _ = fs::remove_dir_all(&m.root);
    }
    eprintln!(
        "model: {lines} lines, {restarts} restarts, {lost} lost to copytruncate by nature, {:?}",
        started.elapsed()
    );
}
