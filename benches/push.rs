//! The Loki client's throughput.
//!
//! 1. **encode**: per-entry cost of what the client adds to a line on one core: framing into the
//!    batch (`Batcher::add`), sealing, cutting requests (`request::plan`) and encoding +
//!    snappy (`request::Encoder`), for 250-byte lines (velero-like text, and a trivially
//!    compressible one). Reported as entries/s.
//! 2. **backlog**: a backlog pushed through the real `Pusher` (default config: 4 shards) to the
//!    loopback Loki-contract server (counts only): a producer thread batches and sends like the
//!    reader; the pusher runs on a current-thread runtime so its CPU is that thread's. Reported:
//!    entries/s, requests, CPU seconds of the pusher thread / producer thread / whole process
//!    (which includes the test server decoding every request).
//!
//! `cargo bench --bench push` (cargo passes `--bench`): 2,000,000 entries for encode and
//! `VELOKI_PUSH_LINES` (default 1,000,000) for the backlog. Without `--bench`
//! (`cargo test --benches`) a quick run of 20,000 each so the test suite stays fast. The last
//! line is JSON (`{"bench":"veloki_push",…}`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::loki::LokiServer;
use tokio::sync::mpsc;
use veloki::batch::{Batch, BatchOptions, Batcher};
use veloki::checkpoint::Checkpoint;
use veloki::config::{self, Compression, Encoding, MetadataMode};
use veloki::metrics::Metrics;
use veloki::model::labels::{Component, LineLabels, Operation, Priority, Severity};
use veloki::model::{FileCtx, Metadata};
use veloki::parse::Hint;
use veloki::push::{request, Pusher};
use veloki::tail::fingerprint::Fingerprint;

fn cpu_secs(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// A 250-byte velero-like line (varying numbers, names and text).
fn velero_line(i: u64) -> Vec<u8> {
    let msgs = [
        "Backed up {a} items out of an estimated total of {b} (estimate will change throughout the backup)",
        "Processing item resource=persistentvolumeclaims namespace=app-{a} name=data-{b}",
        "Executing takePVSnapshot: volume snapshot for pvc-{a}-{b} with snapshotter aws",
        "error getting backup store for this location: rpc error: code = Unknown desc = timeout {a}",
    ];
    let m = msgs[(i % 4) as usize]
        .replace("{a}", &(i % 977).to_string())
        .replace("{b}", &(i * 7919 % 100_003).to_string());
    let mut l = format!(
        "time=\"2026-04-10T02:{:02}:{:02}Z\" level=info msg=\"{m}\" backup=velero/daily-20260410020000 logSource=\"pkg/backup/backup.go:{}\"",
        i / 60 % 60,
        i % 60,
        400 + i % 300
    )
    .into_bytes();
    l.resize(250, b' ');
    l
}

fn labels(i: u64) -> LineLabels {
    LineLabels {
        component: Component::VeleroServer,
        severity: if i % 10 == 0 {
            Severity::Error
        } else {
            Severity::Info
        },
        operation: if i % 3 == 0 {
            Operation::Restore
        } else {
            Operation::Backup
        },
        backup_status: None,
        priority: Priority::Low,
    }
}

fn batcher() -> Batcher {
    Batcher::new(
        BatchOptions {
            max_bytes: 1 << 20,
            max_entries: 10_000,
            max_wait: Duration::from_secs(1),
            structured_metadata: true,
            max_pods: 500,
        },
        &[("cluster".into(), "bench".into())],
    )
}

fn meta() -> Metadata {
    let mut m = Metadata::default();
    m.push("stream", "stdout");
    m.push("backup", "velero/daily-20260410020000");
    m
}

/// Entries/s of batch + request + encode + snappy on this thread.
fn encode_rate(n: u64, line: &dyn Fn(u64) -> Vec<u8>) -> (f64, usize) {
    let ctx = FileCtx::new("velero", "velero-7d9f8b6c5-abcde", "velero", Hint::Velero);
    let meta = meta();
    let lines: Vec<Vec<u8>> = (0..1024).map(line).collect();
    let mut b = batcher();
    let mut enc =
        request::Encoder::new(Encoding::Protobuf, Compression::Snappy, MetadataMode::Send);
    let mut out_bytes = 0usize;
    let mut handle = |batch: Batch, out_bytes: &mut usize| {
        for plan in request::plan(&batch.body, &batch.streams, 1000, 4 << 20) {
            *out_bytes += enc.encode(&batch.body, &plan).bytes.len();
        }
    };
    let t = Instant::now();
    for i in 0..n {
        let l = &lines[(i % 1024) as usize];
        if let Some(batch) = b.add(
            1,
            &ctx,
            &labels(i),
            1_775_786_400_000_000_000 + i as i64,
            l,
            &meta,
            i * 251,
        ) {
            handle(batch, &mut out_bytes);
        }
    }
    if let Some(batch) = b.seal() {
        handle(batch, &mut out_bytes);
    }
    (n as f64 / t.elapsed().as_secs_f64(), out_bytes)
}

struct Backlog {
    secs: f64,
    requests: usize,
    pusher_cpu: f64,
    producer_cpu: f64,
    process_cpu: f64,
    accepted: usize,
}

fn backlog(n: u64) -> Backlog {
    let loki = LokiServer::start();
    loki.set_keep_entries(false);
    let mut cfg = config::Loki {
        url: Some(config::parse_http_url(&loki.url()).unwrap()),
        ..Default::default()
    };
    cfg.retry.min_backoff = config::Dur(Duration::from_millis(20));
    cfg.retry.max_backoff = config::Dur(Duration::from_millis(200));
    let metrics = Arc::new(Metrics::new());
    let cp = Arc::new(Mutex::new(Checkpoint::default()));
    const FILES: u32 = 8;
    for f in 0..FILES {
        cp.lock().unwrap().register(
            f,
            Path::new(&format!("/p/{f}.log")),
            1,
            f as u64,
            Fingerprint::of(format!("bench {f}").as_bytes()),
            0,
        );
    }
    let pusher = Pusher::new(&cfg, metrics.clone(), cp.clone()).unwrap();
    let (tx, rx) = mpsc::channel::<Batch>(4);
    let process_before = cpu_secs(libc::RUSAGE_SELF);
    let t = Instant::now();
    let cp2 = cp.clone();
    let m2 = metrics.clone();
    let producer = std::thread::spawn(move || {
        let before = cpu_secs(libc::RUSAGE_THREAD);
        let ctxs: Vec<FileCtx> = (0..FILES)
            .map(|f| FileCtx::new("velero", &format!("velero-pod-{f}"), "velero", Hint::Velero))
            .collect();
        let meta = meta();
        let lines: Vec<Vec<u8>> = (0..1024).map(velero_line).collect();
        let mut b = batcher();
        let mut offs = [0u64; FILES as usize];
        let send = |batch: Batch| {
            cp2.lock().unwrap().expect(batch.seq, &batch.acks);
            m2.loki_buffered_bytes.inc_by(batch.body.len() as i64);
            tx.blocking_send(batch).unwrap();
        };
        for i in 0..n {
            let f = (i % FILES as u64) as usize;
            offs[f] += 251;
            if let Some(batch) = b.add(
                f as u32,
                &ctxs[f],
                &labels(i / FILES as u64),
                1_775_786_400_000_000_000 + i as i64,
                &lines[(i % 1024) as usize],
                &meta,
                offs[f],
            ) {
                send(batch);
            }
        }
        if let Some(batch) = b.seal() {
            send(batch);
        }
        cpu_secs(libc::RUSAGE_THREAD) - before
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pusher_before = cpu_secs(libc::RUSAGE_THREAD);
    rt.block_on(pusher.run(rx));
    let pusher_cpu = cpu_secs(libc::RUSAGE_THREAD) - pusher_before;
    let secs = t.elapsed().as_secs_f64();
    let producer_cpu = producer.join().unwrap();
    let process_cpu = cpu_secs(libc::RUSAGE_SELF) - process_before;
    let expected = (n / FILES as u64 * 251) as usize;
    for f in 0..FILES {
        let c = cp.lock().unwrap().committed(f).unwrap_or(0) as usize;
        assert!(c >= expected, "file {f} committed {c} < {expected}");
    }
    Backlog {
        secs,
        requests: loki.push_requests().len(),
        pusher_cpu,
        producer_cpu,
        process_cpu,
        accepted: loki.entry_count(),
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n_enc: u64 = if full { 2_000_000 } else { 20_000 };
    let n_backlog: u64 = if full {
        std::env::var("VELOKI_PUSH_LINES")
            .ok()
            .and_then(|v| v.replace('_', "").parse().ok())
            .unwrap_or(1_000_000)
    } else {
        20_000
    };
    let (velero_rate, velero_out) = encode_rate(n_enc, &velero_line);
    let (x_rate, _) = encode_rate(n_enc, &|_| vec![b'x'; 250]);
    println!(
        "encode (batch + request + protobuf + snappy), 250-byte lines, one core:\n  velero-like: {:.2} M entries/s ({:.1} MB/s in, {:.0}% of input after snappy)\n  all 'x':     {:.2} M entries/s",
        velero_rate / 1e6,
        velero_rate * 250.0 / 1e6,
        100.0 * velero_out as f64 / (n_enc as f64 * 250.0),
        x_rate / 1e6
    );
    let b = backlog(n_backlog);
    assert_eq!(b.accepted as u64, n_backlog, "every entry accepted");
    let rate = n_backlog as f64 / b.secs;
    println!(
        "backlog through Pusher (4 shards) to the loopback server: {} entries in {:.2} s = {:.0} entries/s, {} requests\n  CPU: pusher thread {:.2} s ({:.0} entries per pusher CPU-second), producer {:.2} s, whole process {:.2} s (includes the server)",
        n_backlog,
        b.secs,
        rate,
        b.requests,
        b.pusher_cpu,
        n_backlog as f64 / b.pusher_cpu.max(1e-9),
        b.producer_cpu,
        b.process_cpu
    );
    println!(
        "{{\"bench\":\"veloki_push\",\"full\":{full},\"encode_entries\":{n_enc},\"encode_velero_eps\":{velero_rate:.0},\"encode_x_eps\":{x_rate:.0},\"backlog_entries\":{n_backlog},\"backlog_secs\":{:.3},\"backlog_eps\":{rate:.0},\"requests\":{},\"pusher_cpu_s\":{:.3},\"producer_cpu_s\":{:.3},\"process_cpu_s\":{:.3}}}",
        b.secs, b.requests, b.pusher_cpu, b.producer_cpu, b.process_cpu
    );
}
