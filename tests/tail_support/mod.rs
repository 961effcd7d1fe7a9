//! Shared by the tailing tests that run the real binary: a writer that appends CRI lines and
//! rotates like the kubelet, and helpers to start `veloki run` and read its resources.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The pod directory the writer writes into (namespace `velero`, container `velero`).
pub const POD_DIR: &str = "velero_velero-7d9f8c6b5-x2x9k_0b9d2c4e-1111-2222-3333-444455556666";

/// The Loki line of line `i` starts with this (the rest is padding).
pub fn line_key(i: u64) -> String {
    format!("tail-test line {i:07}")
}

/// Where each line of one physical file's content ends, and the inodes that held it (the file,
/// then its `.gz`).
#[derive(Clone, Debug, Default)]
pub struct Lineage {
    pub inodes: Vec<(u64, u64)>,
    /// (line number, offset just past it).
    pub ends: Vec<(u64, u64)>,
}

/// What the writer did so far.
#[derive(Debug, Default)]
pub struct Written {
    pub lineages: Vec<Lineage>,
    pub rotations: u32,
}

/// A kubelet-like writer: appends `lines` CRI lines at `rate` lines/s to `0.log` and, when it
/// reached `rotate_bytes`, gzips the plain rotated file (`.gz.tmp`, rename, delete the plain
/// copy), renames `0.log` to `0.log.<stamp>` and creates a new `0.log`. Rotated files are kept
/// (the kubelet deletes beyond 5 files; deleting unread data would be loss by nature).
pub struct Writer {
    pub written: Arc<Mutex<Written>>,
    pub lines_done: Arc<AtomicU64>,
    pub stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

fn key(p: &Path) -> (u64, u64) {
    let m = fs::metadata(p).unwrap();
    (m.dev(), m.ino())
}

fn gzip(src: &Path) -> PathBuf {
    let gz = PathBuf::from(format!("{}.gz", src.display()));
    let tmp = PathBuf::from(format!("{}.gz.tmp", src.display()));
    let mut enc =
        flate2::write::GzEncoder::new(File::create(&tmp).unwrap(), flate2::Compression::fast());
    enc.write_all(&fs::read(src).unwrap()).unwrap();
    enc.finish().unwrap();
    fs::rename(&tmp, &gz).unwrap();
    fs::remove_file(src).unwrap();
    gz
}

fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    veloki::timefmt::format_rfc3339_nanos(d.as_nanos() as i64)
}

impl Writer {
    pub fn start(pods: &Path, lines: u64, rate: u64, rotate_bytes: u64) -> Writer {
        let dir = pods.join(POD_DIR).join("velero");
        fs::create_dir_all(&dir).unwrap();
        let written = Arc::new(Mutex::new(Written::default()));
        let lines_done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (w, n, s) = (written.clone(), lines_done.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let live = dir.join("0.log");
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&live)
                .unwrap();
            w.lock().unwrap().lineages.push(Lineage {
                inodes: vec![key(&live)],
                ends: Vec::new(),
            });
            let mut size = 0u64;
            let mut plain_rotated: Option<(PathBuf, usize)> = None;
            let mut stamp = 0u32;
            let started = Instant::now();
            let chunk = (rate / 50).clamp(1, 2000);
            let mut buf = String::new();
            let mut i = 0u64;
            while i < lines && !s.load(Ordering::Relaxed) {
                buf.clear();
                let mut ends = Vec::new();
                for _ in 0..chunk.min(lines - i) {
                    let ts = rfc3339_now();
                    let before = buf.len();
                    buf.push_str(&format!(
                        "{ts} stdout F {} {}\n",
                        line_key(i),
                        "x".repeat(40 + (i % 40) as usize)
                    ));
                    size += (buf.len() - before) as u64;
                    ends.push((i, size));
                    i += 1;
                }
                file.write_all(buf.as_bytes()).unwrap();
                {
                    let mut wr = w.lock().unwrap();
                    wr.lineages.last_mut().unwrap().ends.extend(ends);
                }
                n.store(i, Ordering::Relaxed);
                if size >= rotate_bytes {
                    // The kubelet: compress the previous rotation, rename, reopen.
                    if let Some((p, idx)) = plain_rotated.take() {
                        let gz = gzip(&p);
                        w.lock().unwrap().lineages[idx].inodes.push(key(&gz));
                    }
                    stamp += 1;
                    let to = dir.join(format!(
                        "0.log.20260410-{:02}{:02}{:02}",
                        2 + stamp / 3600,
                        stamp / 60 % 60,
                        stamp % 60
                    ));
                    fs::rename(&live, &to).unwrap();
                    file = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&live)
                        .unwrap();
                    let mut wr = w.lock().unwrap();
                    plain_rotated = Some((to, wr.lineages.len() - 1));
                    wr.lineages.push(Lineage {
                        inodes: vec![key(&live)],
                        ends: Vec::new(),
                    });
                    wr.rotations += 1;
                    size = 0;
                }
                let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        });
        Writer {
            written,
            lines_done,
            stop,
            handle: Some(handle),
        }
    }

    pub fn done(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    pub fn join(&mut self) {
        if let Some(h) = self.handle.take() {
            h.join().expect("writer thread");
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The pipeline file for the tests: the production one, with a short retry backoff so a
/// recovered Loki is retried within seconds, and positions written every `sync`.
pub fn config(dir: &Path, sync: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/velero.yaml");
    let text = fs::read_to_string(src).unwrap();
    assert!(text.contains("max_backoff: 5m") && text.contains("sync_interval: 5s"));
    let text = text
        .replace("max_backoff: 5m", "max_backoff: 2s")
        .replace("sync_interval: 5s", &format!("sync_interval: {sync}"));
    let p = dir.join("pipeline.yaml");
    fs::write(&p, text).unwrap();
    p
}

/// Starts `veloki run` (stderr appended to `log`).
pub fn spawn_veloki(
    config: &Path,
    pods: &Path,
    loki_url: &str,
    positions: &Path,
    log: &Path,
) -> Child {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_veloki"))
        .args(["run", "--config"])
        .arg(config)
        .arg("--pods-dir")
        .arg(pods)
        .args(["--loki-url", loki_url])
        .arg("--positions")
        .arg(positions)
        .args(["--listen", "127.0.0.1:0"])
        .env("VELOKI_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start veloki")
}

/// Sends SIGTERM and waits (at most `timeout`, then SIGKILL).
pub fn stop_gracefully(child: &mut Child, timeout: Duration) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The line number in a Loki line written by [`Writer`].
pub fn line_number(line: &str) -> Option<u64> {
    line.strip_prefix("tail-test line ")?.get(..7)?.parse().ok()
}
