//! SIGTERM while Loki is down: veloki stops within Kubernetes' default grace period (30 s), saves
//! only what Loki accepted, and a later run delivers the rest — nothing lost.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::loki::LokiServer;

#[test]
fn sigterm_during_an_outage_is_prompt_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pods/velero_velero-abc_u1/velero/0.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(&log).unwrap();
    for i in 0..5_000u32 {
        writeln!(
            f,
            "2026-04-10T02:00:{:02}.{:09}Z stdout F time=\"2026-04-10T02:00:00Z\" level=info msg=\"line {i}\"",
            i / 1000,
            i
        )
        .unwrap();
    }
    drop(f);
    let positions = dir.path().join("positions.json");
    let loki = LokiServer::start();
    loki.stop_listening();
    let run = |once: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_veloki"));
        c.args(["run", "--config"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/velero.yaml"))
            .arg("--pods-dir")
            .arg(dir.path().join("pods"))
            .arg("--positions")
            .arg(&positions)
            .args(["--loki-url", &loki.url(), "--listen", "127.0.0.1:0"])
            .env_remove("VELOKI_LOKI_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if once {
            c.arg("--once");
        }
        c
    };
    let mut child = run(false).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let t0 = Instant::now();
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(28),
            "veloki ignored SIGTERM for 28 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = t0.elapsed();
    assert!(status.success(), "daemon exit after SIGTERM: {status}");
    assert!(took < Duration::from_secs(25), "shutdown took {took:?}");
    assert_eq!(loki.entry_count(), 0);

    // Nothing was acknowledged, so nothing may be recorded as delivered.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&positions).expect("positions written")).unwrap();
    for f in saved["files"].as_array().unwrap() {
        assert_eq!(f["offset"].as_u64(), Some(0), "{f}");
    }

    loki.resume();
    let out = run(true).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(loki.wait_for_entries(5_000, Duration::from_secs(10)));
    assert_eq!(loki.entry_count(), 5_000);
    assert_eq!(loki.duplicate_count(), 0);
}
