//! Change notifications: `veloki run --dry-run` picks up a new pod's file within a second and an
//! appended line at once (inotify, not the 2 s safety rescan); with `sources.inotify: false` it
//! polls and still picks both up.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(pods: &Path, config: Option<&Path>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veloki"));
    cmd.arg("run");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .args(["--dry-run", "--listen", "127.0.0.1:0", "--pods-dir"])
        .arg(pods)
        .env("VELOKI_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    Run { child, lines }
}

/// Waits for an output line containing `needle`; returns how long it took.
fn wait_for(run: &Run, needle: &str, since: Instant, timeout: Duration) -> Duration {
    loop {
        let left = timeout.saturating_sub(since.elapsed());
        match run.lines.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return since.elapsed(),
            Ok(_) => {}
            Err(_) => panic!("{needle:?} not shipped within {timeout:?}"),
        }
    }
}

fn cri(msg: &str) -> String {
    format!("2026-04-10T02:00:00.000000001Z stdout F {msg}\n")
}

fn new_pod_then_append(pods: &Path, run: &Run, limit: Duration) -> (Duration, Duration) {
    // Let the first scan happen.
    std::thread::sleep(Duration::from_millis(700));
    let t = Instant::now();
    let dir = pods.join("velero_velero-new-pod_uid-42/velero");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("0.log"), cri("hello from a new pod")).unwrap();
    let new_file = wait_for(run, "hello from a new pod", t, limit);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("0.log"))
        .unwrap();
    f.write_all(cri("an appended line").as_bytes()).unwrap();
    let appended = wait_for(run, "an appended line", t, limit);
    (new_file, appended)
}

#[test]
fn notifications_pick_up_new_pods_and_writes_at_once() {
    let d = tempfile::tempdir().unwrap();
    let pods = d.path().join("pods");
    std::fs::create_dir_all(&pods).unwrap();
    let run = start(&pods, None);
    let (new_file, appended) = new_pod_then_append(&pods, &run, Duration::from_secs(1));
    eprintln!(
        "inotify: new pod's file shipped after {new_file:?}, appended line after {appended:?}"
    );
    // Well below the 2 s safety rescan: it was the notification.
    assert!(appended < Duration::from_millis(900), "{appended:?}");
}

#[test]
fn without_notifications_it_polls() {
    let d = tempfile::tempdir().unwrap();
    let pods = d.path().join("pods");
    std::fs::create_dir_all(&pods).unwrap();
    let cfg = d.path().join("pipeline.yaml");
    std::fs::write(&cfg, "sources:\n  inotify: false\n  poll_interval: 100ms\n").unwrap();
    let run = start(&pods, Some(&cfg));
    let (new_file, appended) = new_pod_then_append(&pods, &run, Duration::from_secs(3));
    eprintln!(
        "polling: new pod's file shipped after {new_file:?}, appended line after {appended:?}"
    );
}
