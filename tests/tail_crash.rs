//! SIGKILL at random times: a writer appends 200,000 CRI lines at a high rate while rotating like
//! the kubelet every 5 MiB (gzip of the previous rotation included); the real `veloki run` ships
//! them to the loopback Loki-contract server and is killed with SIGKILL at random times (at
//! least 10 times), restarted each time with the same positions file.
//!
//! At the end every line was received (by content: no line missing, none altered), and the
//! duplicates Loki received stay within the unacknowledged window: at each kill, the lines Loki
//! had accepted that the positions file on disk did not cover yet (only those can be sent again).
//!
//! Positions are written every second here (production: every 5 s), so that runs killed after
//! 0.7-3.5 s save some progress; the window is then about a second of lines per kill.
//!
//! `VELOKI_CRASH_SEED` replays the kill times of one run (the seed is printed).

mod common;
mod tail_support;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::loki::LokiServer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tail_support::{config, line_number, spawn_veloki, stop_gracefully, Writer, Written};
use veloki::checkpoint::PositionsFile;

const LINES: u64 = 200_000;
const RATE: u64 = 8_000;
const ROTATE_BYTES: u64 = 5 << 20;
const MIN_KILLS: u32 = 10;

/// Lines the positions file covers: per file content, the highest saved offset of an entry whose
/// inode held it and whose fingerprint matches its first bytes.
fn covered(positions: &Path, written: &Written, heads: &[Vec<u8>]) -> HashSet<u64> {
    let mut out = HashSet::new();
    let Ok(data) = std::fs::read(positions) else {
        return out;
    };
    let pf: PositionsFile = serde_json::from_slice(&data).expect("positions file parses");
    for (l, head) in written.lineages.iter().zip(heads) {
        let off = pf
            .files
            .iter()
            .filter(|p| l.inodes.contains(&(p.dev, p.ino)) && p.fingerprint.matches_head(head))
            .map(|p| p.offset)
            .max();
        if let Some(off) = off {
            out.extend(l.ends.iter().filter(|e| e.1 <= off).map(|e| e.0));
        }
    }
    out
}

/// First 1 KiB of each file content (read back from its last inode: the live file, the rotated
/// file or its `.gz`).
fn heads(pods: &Path, written: &Written) -> Vec<Vec<u8>> {
    use std::io::Read;
    let dir = pods.join(tail_support::POD_DIR).join("velero");
    let mut by_ino = std::collections::HashMap::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = e.metadata() {
            by_ino.insert((m.dev(), m.ino()), e.path());
        }
    }
    written
        .lineages
        .iter()
        .map(|l| {
            let mut head = Vec::new();
            for k in l.inodes.iter().rev() {
                let Some(p) = by_ino.get(k) else { continue };
                let Ok(f) = std::fs::File::open(p) else {
                    continue;
                };
                if p.extension().is_some_and(|x| x == "gz") {
                    let _ = flate2::read::GzDecoder::new(f)
                        .take(1024)
                        .read_to_end(&mut head);
                } else {
                    let _ = f.take(1024).read_to_end(&mut head);
                }
                break;
            }
            head
        })
        .collect()
}

fn accepted(loki: &LokiServer) -> (HashSet<u64>, usize) {
    let lines = loki.accepted_lines();
    let total = lines.len();
    let set = lines.iter().filter_map(|l| line_number(l)).collect();
    (set, total)
}

#[test]
fn sigkill_at_random_times_loses_nothing_and_duplicates_only_the_unsaved_window() {
    let started = Instant::now();
    let seed: u64 = std::env::var("VELOKI_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let positions = dir.path().join("positions.json");
    let log = dir.path().join("veloki.log");
    // Positions every second (production: 5 s): kills come every 0.7-3.5 s, and with 5 s nearly
    // every run would die before its first save, so every restart would resend everything.
    let cfg = config(dir.path(), "1s");
    let loki = LokiServer::start();
    let mut writer = Writer::start(&pods, LINES, RATE, ROTATE_BYTES);

    let mut kills = 0u32;
    let mut window = 0usize;
    let mut child = loop {
        let mut child = spawn_veloki(&cfg, &pods, &loki.url(), &positions, &log);
        std::thread::sleep(Duration::from_millis(rng.gen_range(700..3500)));
        if kills >= MIN_KILLS && writer.done() {
            break child;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        // A request fully received before the kill may still be ingested by the server: let it
        // settle, so the window below counts it.
        let mut seen = loki.request_count();
        loop {
            std::thread::sleep(Duration::from_millis(150));
            let now = loki.request_count();
            if now == seen {
                break;
            }
            seen = now;
        }
        // Only lines accepted but not yet covered by the positions on disk can come again.
        let (got, _) = accepted(&loki);
        let written = writer.written.lock().unwrap();
        let heads = heads(&pods, &written);
        let covered = covered(&positions, &written, &heads);
        drop(written);
        window += got.difference(&covered).count();
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "seed {seed}: taking too long"
        );
    };
    writer.join();

    // The last run ships the rest; then a graceful stop.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = HashSet::new();
    while Instant::now() < deadline {
        got = accepted(&loki).0;
        if got.len() as u64 == LINES {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop_gracefully(&mut child, Duration::from_secs(25));
    let (got_final, total) = accepted(&loki);
    got.extend(got_final);
    let missing: Vec<u64> = (0..LINES).filter(|i| !got.contains(i)).collect();
    let rotations = writer.written.lock().unwrap().rotations;
    let duplicates = loki.duplicate_count();
    eprintln!(
        "crash test (seed {seed}): {LINES} lines, {rotations} rotations, {kills} SIGKILLs, \
         {total} entries received, {duplicates} duplicates (unacknowledged window at the kills: \
         {window} lines), {:?}",
        started.elapsed()
    );
    assert!(
        missing.is_empty(),
        "seed {seed}: {} lines never reached Loki, first {:?}; veloki log in {}",
        missing.len(),
        &missing[..missing.len().min(20)],
        dir.keep().display()
    );
    assert!(kills >= MIN_KILLS);
    assert!(rotations >= 3, "the writer rotated {rotations} times");
    assert_eq!(
        total - duplicates,
        LINES as usize,
        "every entry is a written line"
    );
    assert!(
        duplicates <= window,
        "seed {seed}: {duplicates} duplicates, but only {window} lines were accepted and not \
         covered by the positions file at the kills"
    );
    let lines: Vec<String> = loki.accepted_lines();
    for l in lines.iter().take(1000) {
        let i = line_number(l).unwrap();
        assert_eq!(
            l.len(),
            tail_support::line_key(i).len() + 1 + 40 + (i % 40) as usize,
            "line {i} arrived altered: {l:?}"
        );
    }
}
