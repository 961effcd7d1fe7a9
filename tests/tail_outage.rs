//! A Loki outage with a writer that keeps appending: the loopback Loki-contract server refuses
//! connections for 60 s, then answers 503 for 10 s, then behaves like Loki again. Meanwhile the
//! kubelet-like writer appends CRI lines and rotates (with gzip of the previous rotation).
//!
//! Checks: veloki's resident memory (VmRSS, sampled every 250 ms) stays under 64 MiB throughout
//! (backpressure: the reader blocks on the 4-batch channel; nothing else grows), nothing is lost,
//! and the backlog drains once Loki is back (every line received).

mod common;
mod tail_support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::loki::{LokiServer, Reply};
use tail_support::{config, line_number, rss_kib, spawn_veloki, stop_gracefully, Writer};

const RATE: u64 = 2_000;
const REFUSE: Duration = Duration::from_secs(60);
const ANSWER_503: Duration = Duration::from_secs(10);
const RSS_LIMIT_KIB: u64 = 64 * 1024;

#[test]
fn loki_outage_keeps_memory_bounded_loses_nothing_and_drains_after() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let positions = dir.path().join("positions.json");
    let log = dir.path().join("veloki.log");
    let cfg = config(dir.path(), "5s");
    let loki = LokiServer::start();
    // Written during 3 s of normal operation, the outage and 2 s after.
    let lines = RATE * (3 + REFUSE.as_secs() + ANSWER_503.as_secs() + 2);
    let mut writer = Writer::start(&pods, lines, RATE, 4 << 20);
    let mut child = spawn_veloki(&cfg, &pods, &loki.url(), &positions, &log);
    let pid = child.id();
    let mut peak = 0u64;
    let mut sample = |peak: &mut u64| {
        if let Some(r) = rss_kib(pid) {
            *peak = (*peak).max(r);
        }
    };
    let sleep_sampling = |d: Duration, peak: &mut u64, sample: &mut dyn FnMut(&mut u64)| {
        let until = Instant::now() + d;
        while Instant::now() < until {
            sample(peak);
            std::thread::sleep(Duration::from_millis(250));
        }
    };

    sleep_sampling(Duration::from_secs(3), &mut peak, &mut sample);
    assert!(loki.entry_count() > 0, "veloki ships before the outage");
    // Outage: connections refused, then (the port listening again by itself) 503s.
    loki.set_default(Reply::status(503));
    loki.refuse_for(REFUSE);
    let during = loki.entry_count();
    sleep_sampling(REFUSE + ANSWER_503, &mut peak, &mut sample);
    assert_eq!(
        loki.entry_count(),
        during,
        "nothing is accepted during the outage"
    );
    let backlog = writer
        .lines_done
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(during as u64);
    loki.set_default(Reply::Loki);
    let recovered = Instant::now();

    // The backlog drains: every line arrives.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = HashSet::new();
    while Instant::now() < deadline {
        sample(&mut peak);
        if writer.done() {
            got = loki
                .accepted_lines()
                .iter()
                .filter_map(|l| line_number(l))
                .collect::<HashSet<u64>>();
            if got.len() as u64 == lines {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let drained_in = recovered.elapsed();
    writer.join();
    let rotations = writer.written.lock().unwrap().rotations;
    stop_gracefully(&mut child, Duration::from_secs(25));
    let missing: Vec<u64> = (0..lines).filter(|i| !got.contains(i)).collect();
    eprintln!(
        "outage test: {lines} lines, {rotations} rotations, backlog at recovery {backlog} lines, \
         drained in {drained_in:?}, peak RSS {:.1} MiB, {} duplicates, {:?}",
        peak as f64 / 1024.0,
        loki.duplicate_count(),
        started.elapsed()
    );
    assert!(
        missing.is_empty(),
        "{} lines never reached Loki, first {:?}; veloki log in {}",
        missing.len(),
        &missing[..missing.len().min(20)],
        dir.keep().display()
    );
    assert!(rotations >= 2, "the writer rotated {rotations} times");
    assert!(
        peak < RSS_LIMIT_KIB,
        "veloki's RSS peaked at {peak} KiB (limit {RSS_LIMIT_KIB} KiB)"
    );
}
