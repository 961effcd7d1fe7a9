//! End-to-end throughput: the real `veloki` binary ships a generated pods tree to the
//! Loki-contract test server, and this harness reports lines/s, lines per CPU-second and
//! peak RSS of the `veloki` process (from `wait4` rusage).
//!
//! Steps:
//! 1. `veloki gen --out DIR --lines N --seed S` into `target/veloki-e2e/lines-N-seed-S/`
//!    (generated once in a temporary directory and renamed into place; reused afterwards
//!    unless `--regen` / `VELOKI_E2E_REGEN=1`);
//! 2. start `LokiServer` (counts only, no limits), spawn
//!    `veloki run --config pipelines/velero.yaml --pods-dir DIR --loki-url URL
//!    --positions FILE --listen 127.0.0.1:0 --once`, reap it with `wait4`;
//! 3. compare the records Loki received with the manifest's entries for the shipped
//!    namespaces (`velero`, `velero-manager`); any difference (or a failed run) exits 1.
//!    A record is one generated entry: veloki keeps multi-line records (a Gin access line
//!    with its `Error #NN:` line, a panic dump) in one Loki entry, which counts once per line.
//!
//! Output: a human-readable summary and one JSON line (`{"bench":"veloki_e2e",…}`).
//! "lines" in the rates means the entries of the shipped namespaces: the lines veloki reads,
//! parses and pushes.
//!
//! Modes: `cargo bench --bench e2e` (cargo passes `--bench`) runs `VELOKI_E2E_LINES` lines
//! (default 1,000,000); without `--bench` (`cargo test --benches`) it runs 2,000 lines so
//! the test suite stays fast. Options: `--lines N`, `--seed S` (or `VELOKI_E2E_SEED`,
//! default 42), `--regen`; unknown arguments are ignored. `VELOKI_E2E_BIN` runs another
//! binary with the same CLI; `VELOKI_E2E_TIMEOUT_SECS` bounds the run (default 600 s, or
//! 120 s for the quick run); `VELOKI_E2E_NAMESPACES` (comma-separated) overrides the
//! shipped namespaces.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::loki::LokiServer;

const DEFAULT_LINES: u64 = 1_000_000;
const QUICK_LINES: u64 = 2_000;
const DEFAULT_SEED: u64 = 42;
const MANIFEST: &str = "veloki-gen-manifest.json";

#[derive(Debug)]
struct Args {
    lines: u64,
    seed: u64,
    full: bool,
    regen: bool,
    timeout: Duration,
    namespaces: Vec<String>,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
}

fn parse_args(argv: &[String]) -> Args {
    let full = argv.iter().any(|a| a == "--bench");
    let mut lines = if full {
        env_u64("VELOKI_E2E_LINES").unwrap_or(DEFAULT_LINES)
    } else {
        QUICK_LINES
    };
    let mut seed = env_u64("VELOKI_E2E_SEED").unwrap_or(DEFAULT_SEED);
    let mut regen = std::env::var("VELOKI_E2E_REGEN").is_ok_and(|v| v == "1");
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        let value = |it: &mut std::slice::Iter<String>| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .and_then(|v| v.replace(['_', ','], "").parse::<u64>().ok())
        };
        match flag {
            "--lines" => lines = value(&mut it).unwrap_or(lines),
            "--seed" => seed = value(&mut it).unwrap_or(seed),
            "--regen" => regen = true,
            _ => {} // cargo's own flags (--bench, filters, …)
        }
    }
    let timeout = Duration::from_secs(env_u64("VELOKI_E2E_TIMEOUT_SECS").unwrap_or(if full {
        600
    } else {
        120
    }));
    let namespaces = std::env::var("VELOKI_E2E_NAMESPACES")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec!["velero".to_string(), "velero-manager".to_string()]);
    Args {
        lines,
        seed,
        full,
        regen,
        timeout,
        namespaces,
    }
}

/// `target/` of this build: the bench runs from `target/<profile>/deps/`.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|p| p.file_name().is_some_and(|n| n == "deps"))
                .and_then(|deps| deps.parent()?.parent().map(Path::to_path_buf))
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn veloki_bin() -> PathBuf {
    std::env::var_os("VELOKI_E2E_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_veloki")))
}

/// What `veloki gen` promised: expected entries and bytes for the shipped namespaces.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    lines_generated: u64,
    files: usize,
    entries: u64,
    bytes: u64,
    by_namespace: BTreeMap<String, u64>,
}

fn read_manifest(dir: &Path, namespaces: &[String]) -> Result<Expected, String> {
    let path = dir.join(MANIFEST);
    let text = fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_manifest(&text, dir, namespaces).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_manifest(text: &str, dir: &Path, namespaces: &[String]) -> Result<Expected, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let files = v
        .get("files")
        .and_then(|f| f.as_array())
        .ok_or("no \"files\" array")?;
    let mut exp = Expected {
        lines_generated: v
            .get("lines")
            .and_then(|l| l.as_u64())
            .ok_or("no \"lines\" number")?,
        ..Expected::default()
    };
    for f in files {
        let ns = f
            .get("namespace")
            .and_then(|n| n.as_str())
            .ok_or("a file without \"namespace\"")?;
        let entries = f
            .get("entries")
            .and_then(|n| n.as_u64())
            .ok_or("a file without \"entries\"")?;
        if !namespaces.iter().any(|n| n == ns) {
            continue;
        }
        exp.files += 1;
        exp.entries += entries;
        *exp.by_namespace.entry(ns.to_string()).or_insert(0) += entries;
        if let Some(p) = f.get("path").and_then(|p| p.as_str()) {
            let p = Path::new(p);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            };
            exp.bytes += fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok(exp)
}

/// Returns the cached tree for (lines, seed), generating it first when needed.
fn ensure_tree(bin: &Path, args: &Args) -> Result<PathBuf, String> {
    let root = target_dir().join("veloki-e2e");
    let mut name = format!("lines-{}-seed-{}", args.lines, args.seed);
    if let Some(other) = std::env::var_os("VELOKI_E2E_BIN") {
        // Another generator writes another tree: never share its cache with veloki's.
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        other.hash(&mut h);
        name.push_str(&format!("-bin-{:016x}", h.finish()));
    }
    let dir = root.join(name);
    if !args.regen && dir.join(MANIFEST).is_file() {
        eprintln!("e2e: reusing {}", dir.display());
        return Ok(dir);
    }
    fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".gen-")
        .tempdir_in(&root)
        .map_err(|e| format!("tempdir in {}: {e}", root.display()))?;
    let out = tmp.path().join("pods");
    eprintln!(
        "e2e: generating {} lines (seed {}) with {} gen …",
        args.lines,
        args.seed,
        bin.display()
    );
    let started = Instant::now();
    let status = Command::new(bin)
        .arg("gen")
        .arg("--out")
        .arg(&out)
        .args(["--lines", &args.lines.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("spawning {} gen: {e}", bin.display()))?;
    if !status.success() {
        return Err(format!("`veloki gen` failed: {status}"));
    }
    if !out.join(MANIFEST).is_file() {
        return Err(format!(
            "`veloki gen` exited 0 but wrote no {MANIFEST} in {}",
            out.display()
        ));
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("removing stale {}: {e}", dir.display()))?;
    }
    fs::rename(&out, &dir).map_err(|e| format!("moving the tree to {}: {e}", dir.display()))?;
    eprintln!("e2e: generated in {:.1} s", started.elapsed().as_secs_f64());
    Ok(dir)
}

/// Resource usage of a reaped child.
#[derive(Debug, Clone, Copy)]
struct Usage {
    exit_code: Option<i32>,
    signal: Option<i32>,
    wall: Duration,
    user_s: f64,
    sys_s: f64,
    maxrss_kib: i64,
}

fn timeval_secs(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

/// Reaps `pid` with `wait4` (polling with `WNOHANG` so a hung child can be killed after
/// `timeout`), returning its exit status and rusage.
fn wait_with_rusage(pid: libc::pid_t, started: Instant, timeout: Duration) -> io::Result<Usage> {
    let mut killed = false;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain old data; zeroed is a valid value for wait4 to fill.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if killed { 0 } else { libc::WNOHANG };
        // SAFETY: pid is our own unreaped child; the pointers are valid for the call.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
        if r == pid {
            let wall = started.elapsed();
            if killed {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("killed after {} s", timeout.as_secs()),
                ));
            }
            return Ok(Usage {
                exit_code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
                signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
                wall,
                user_s: timeval_secs(ru.ru_utime),
                sys_s: timeval_secs(ru.ru_stime),
                maxrss_kib: ru.ru_maxrss,
            });
        }
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if started.elapsed() > timeout && !killed {
            // SAFETY: signalling our own child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
            continue;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The last `max` bytes of a log file, for failure reports.
fn tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[derive(Debug)]
struct Report {
    args_lines: u64,
    seed: u64,
    mode: &'static str,
    expected: Expected,
    received: u64,
    received_by_namespace: BTreeMap<String, usize>,
    duplicates: usize,
    requests: usize,
    non_2xx: usize,
    usage: Usage,
    stderr_tail: String,
}

impl Report {
    fn ok(&self) -> bool {
        self.received == self.expected.entries && self.usage.exit_code == Some(0)
    }

    fn print(&self) {
        let wall = self.usage.wall.as_secs_f64();
        let cpu = self.usage.user_s + self.usage.sys_s;
        let lines = self.expected.entries as f64;
        let mib = self.expected.bytes as f64 / (1024.0 * 1024.0);
        let per = |x: f64, d: f64| if d > 0.0 { x / d } else { 0.0 };
        let rss_mib = self.usage.maxrss_kib as f64 / 1024.0;
        println!(
            "veloki e2e ({}): {} lines generated (seed {}), {} lines in {} files of {} ({:.1} MiB) to ship",
            self.mode,
            self.expected.lines_generated,
            self.seed,
            self.expected.entries,
            self.expected.files,
            self.expected.by_namespace.keys().cloned().collect::<Vec<_>>().join(" + "),
            mib
        );
        println!("  wall           {wall:.3} s");
        println!(
            "  throughput     {:.0} lines/s (wall), {:.1} MiB/s",
            per(lines, wall),
            per(mib, wall)
        );
        println!(
            "  cpu            {cpu:.3} s (user {:.3} + sys {:.3})",
            self.usage.user_s, self.usage.sys_s
        );
        println!(
            "  efficiency     {:.0} lines per CPU-second, {:.1} MiB per CPU-second",
            per(lines, cpu),
            per(mib, cpu)
        );
        println!("  peak RSS       {rss_mib:.1} MiB");
        println!(
            "  loki           {} received / {} expected, {} duplicates, {} requests ({} not 2xx)",
            self.received, self.expected.entries, self.duplicates, self.requests, self.non_2xx
        );
        for (ns, want) in &self.expected.by_namespace {
            let got = self.received_by_namespace.get(ns).copied().unwrap_or(0);
            if got as u64 != *want {
                println!("  namespace {ns}: {got} received / {want} expected");
            }
        }
        let json = serde_json::json!({
            "bench": "veloki_e2e",
            "mode": self.mode,
            "seed": self.seed,
            "lines_generated": self.expected.lines_generated,
            "lines": self.expected.entries,
            "bytes": self.expected.bytes,
            "wall_s": wall,
            "lines_per_s": per(lines, wall),
            "mib_per_s": per(mib, wall),
            "cpu_s": cpu,
            "user_s": self.usage.user_s,
            "sys_s": self.usage.sys_s,
            "lines_per_cpu_s": per(lines, cpu),
            "mib_per_cpu_s": per(mib, cpu),
            "peak_rss_mib": rss_mib,
            "entries_expected": self.expected.entries,
            "entries_received": self.received,
            "duplicates": self.duplicates,
            "requests": self.requests,
            "requests_not_2xx": self.non_2xx,
            "exit_code": self.usage.exit_code,
            "ok": self.ok(),
        });
        println!("{json}");
    }
}

fn run(args: &Args) -> Result<Report, String> {
    let bin = veloki_bin();
    let tree = ensure_tree(&bin, args)?;
    let expected = read_manifest(&tree, &args.namespaces)?;

    let server = LokiServer::start();
    server.set_keep_entries(false);
    let work = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let positions = work.path().join("positions.json");
    let stdout_path = work.path().join("veloki.stdout");
    let stderr_path = work.path().join("veloki.stderr");
    let open = |p: &Path| fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/velero.yaml");

    let started = Instant::now();
    let child = Command::new(&bin)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--pods-dir")
        .arg(&tree)
        .args(["--loki-url", &server.url()])
        .arg("--positions")
        .arg(&positions)
        .args(["--listen", "127.0.0.1:0", "--once"])
        .stdin(Stdio::null())
        .stdout(open(&stdout_path)?)
        .stderr(open(&stderr_path)?)
        .spawn()
        .map_err(|e| format!("spawning {} run: {e}", bin.display()))?;
    let pid = child.id() as libc::pid_t;
    let usage = wait_with_rusage(pid, started, args.timeout).map_err(|e| {
        format!(
            "`veloki run --once` did not finish: {e}\n--- stderr (tail) ---\n{}",
            tail(&stderr_path, 4096)
        )
    })?;
    // Reaped by wait4 above; `Child` must not wait again.
    drop(child);

    if usage.exit_code != Some(0) {
        return Err(format!(
            "`veloki run --once` failed (exit {:?}, signal {:?})\n--- stderr (tail) ---\n{}",
            usage.exit_code,
            usage.signal,
            tail(&stderr_path, 4096)
        ));
    }

    let pushes = server.push_requests();
    Ok(Report {
        args_lines: args.lines,
        seed: args.seed,
        mode: if args.full { "bench" } else { "quick" },
        received: server.record_count() as u64,
        received_by_namespace: server.accepted_records_by_label("namespace"),
        duplicates: server.duplicate_count(),
        requests: pushes.len(),
        non_2xx: pushes
            .iter()
            .filter(|r| !r.answer.code().is_some_and(|c| (200..300).contains(&c)))
            .count(),
        expected,
        usage,
        stderr_tail: tail(&stderr_path, 4096),
    })
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = parse_args(&argv);
    match run(&args) {
        Ok(report) => {
            report.print();
            if !report.ok() {
                eprintln!(
                    "e2e: FAILED: Loki received {} entries, expected {} (lines requested: {})",
                    report.received, report.expected.entries, report.args_lines
                );
                eprintln!("--- veloki stderr (tail) ---\n{}", report.stderr_tail);
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("e2e: FAILED: {e}");
            std::process::exit(1);
        }
    }
}
