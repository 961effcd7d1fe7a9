//! Tailing costs: idle CPU with many quiet files, and catch-up throughput of read + decode.
//!
//! (a) **Idle CPU:** a pods tree of 500 small files (100 pods x 5 containers); `veloki run
//!     --dry-run` (entries to a pipe the harness counts) reads them all, then the harness measures
//!     its CPU (utime + stime from `/proc/<pid>/stat`) while nothing is written: % of one core.
//!     Target: at most 0.5 %.
//! (b) **Catch-up:** an in-process [`Tailer`] over a `veloki gen` backlog with a sink that only
//!     counts (read, line cutting, CRI decode, partial joining; no parsing): entries per
//!     CPU-second of the reading thread (`getrusage(RUSAGE_THREAD)`). Target: at least 500,000.
//!
//! `cargo bench --bench tail` measures 20 s of idle and 1,000,000 lines (the generated tree is
//! kept in `target/veloki-bench-tail/`); without `--bench` (`cargo test --benches`) it runs a
//! quick version (2 s, 20,000 lines). Output: a summary and one JSON line per figure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use veloki::checkpoint::Checkpoint;
use veloki::config::{default_routes, StartAt};
use veloki::discover::Filter;
use veloki::metrics::Metrics;
use veloki::model::FileCtx;
use veloki::tail::{Entry, EntrySink, TailOptions, Tailer};

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// (a) Idle CPU (% of one core) and RSS (KiB) of `veloki run` over `files` quiet files,
/// measured for `measure`.
fn idle_cpu(files: usize, measure: Duration) -> (f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let per_file = 10;
    for i in 0..files {
        let pod = format!("velero_velero-{:04}-abcde_uid-{:04}", i / 5, i / 5);
        let d = pods.join(pod).join(format!("container-{}", i % 5));
        std::fs::create_dir_all(&d).unwrap();
        let mut text = String::new();
        for j in 0..per_file {
            text.push_str(&format!(
                "2026-04-10T02:00:{:02}.{:09}Z stdout F quiet file {i} line {j}\n",
                j, i
            ));
        }
        std::fs::write(d.join("0.log"), text).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_veloki"))
        .args(["run", "--dry-run", "--listen", "127.0.0.1:0", "--pods-dir"])
        .arg(&pods)
        .env("VELOKI_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start veloki");
    let pid = child.id();
    let out = child.stdout.take().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let reader = std::thread::spawn(move || {
        for _ in BufReader::new(out).lines() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let want = (files * per_file) as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.load(Ordering::Relaxed) < want {
        assert!(Instant::now() < deadline, "veloki did not catch up");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Settle (open batch flushed, first safety rescan), then measure.
    std::thread::sleep(Duration::from_secs(3));
    let t0 = cpu_ticks(pid);
    let w0 = Instant::now();
    std::thread::sleep(measure);
    let ticks = cpu_ticks(pid) - t0;
    let wall = w0.elapsed().as_secs_f64();
    let rss = rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    (100.0 * ticks as f64 / clock_ticks_per_sec() / wall, rss)
}

struct Count {
    entries: u64,
    bytes: u64,
}

impl EntrySink for Count {
    fn entry(&mut self, _file_id: u32, _ctx: &FileCtx, e: Entry<'_>) {
        self.entries += 1;
        self.bytes += e.content.len() as u64;
    }
}

fn thread_cpu() -> Duration {
    // SAFETY: rusage is plain old data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn backlog(lines: u64) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/veloki-bench-tail")
        .join(format!("lines-{lines}"));
    if !root.join(veloki::gen::MANIFEST_NAME).exists() {
        let tmp = root.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        veloki::gen::generate(&veloki::gen::GenOptions {
            lines,
            seed: 42,
            ..veloki::gen::GenOptions::new(&tmp)
        })
        .expect("veloki gen");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::rename(&tmp, &root).unwrap();
    }
    root
}

/// (b) Catch-up: (entries, bytes of files read, CPU time, wall time).
fn catch_up(lines: u64) -> (u64, u64, Duration, Duration) {
    let pods = backlog(lines);
    let opts = TailOptions {
        pods_dir: pods,
        filter: Filter {
            namespaces: vec!["velero".into(), "velero-manager".into()],
            containers: vec![],
        },
        max_line_bytes: 256 * 1024,
        start_at: StartAt::Beginning,
        partial_timeout: Duration::from_secs(5),
        read_budget: 1 << 20,
        wait_for_acks: false,
    };
    let cp = Arc::new(Mutex::new(Checkpoint::default()));
    let mut t = Tailer::new(opts, default_routes(), cp, Arc::new(Metrics::new()));
    let mut sink = Count {
        entries: 0,
        bytes: 0,
    };
    let (c0, w0) = (thread_cpu(), Instant::now());
    t.rescan().unwrap();
    let mut read = 0;
    loop {
        let n = t.poll(&mut sink);
        read += n;
        if n == 0 {
            break;
        }
    }
    (sink.entries, read, thread_cpu() - c0, w0.elapsed())
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (files, measure, lines) = if full {
        (500, Duration::from_secs(20), 1_000_000)
    } else {
        (500, Duration::from_secs(2), 20_000)
    };
    let (idle, rss) = idle_cpu(files, measure);
    println!(
        "idle: {files} quiet files, veloki run used {idle:.3} % of one core over {measure:?} \
         (target <= 0.5 %), RSS {:.1} MiB",
        rss as f64 / 1024.0
    );
    println!(
        "{{\"bench\":\"veloki_tail_idle\",\"files\":{files},\"seconds\":{},\"cpu_percent\":{idle:.4},\"rss_kib\":{rss}}}",
        measure.as_secs()
    );
    let (entries, bytes, cpu, wall) = catch_up(lines);
    let per_cpu_s = entries as f64 / cpu.as_secs_f64();
    println!(
        "catch-up: {entries} entries ({:.1} MiB) read + decoded in {cpu:?} CPU ({wall:?} wall): \
         {per_cpu_s:.0} entries per CPU-second, {:.0} MiB/s per core (target >= 500,000)",
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / (1 << 20) as f64 / cpu.as_secs_f64()
    );
    println!(
        "{{\"bench\":\"veloki_tail_catch_up\",\"entries\":{entries},\"bytes\":{bytes},\"cpu_s\":{:.4},\"entries_per_cpu_s\":{per_cpu_s:.0}}}",
        cpu.as_secs_f64()
    );
}
