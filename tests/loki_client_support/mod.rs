//! Drives the real `Pusher` over loopback for the `loki_client_*` tests: builds batches the way
//! the batcher does (entry frames grouped by stream, `(file, offset)` acks), registers their
//! files with a checkpoint, and reads the outcome back (committed offsets, self-metrics).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use veloki::batch::{Batch, StreamSpan};
use veloki::checkpoint::Checkpoint;
use veloki::config::{self, Dur};
use veloki::metrics::{CodeLabel, Metrics, ReasonLabel};
use veloki::push::{encode, Pusher};
use veloki::tail::fingerprint::Fingerprint;

/// A `loki` section for tests: fast backoffs, short timeout.
pub fn loki_cfg(url: &str) -> config::Loki {
    let mut c = config::Loki {
        url: Some(config::parse_http_url(url).expect("test URL")),
        timeout: Dur(Duration::from_secs(2)),
        ..Default::default()
    };
    c.retry.min_backoff = Dur(Duration::from_millis(20));
    c.retry.max_backoff = Dur(Duration::from_millis(200));
    c
}

/// One entry to send: (timestamp ns, line).
pub type Line = (i64, String);

/// One stream of a batch: label string, file the entries come from, entries.
pub struct StreamIn<'a> {
    /// `{a="x", …}` (sorted, as veloki renders them).
    pub labels: &'a str,
    /// File id.
    pub file: u32,
    /// Entries.
    pub lines: Vec<Line>,
}

/// `n` lines `"{tag}-{i:05}"` with timestamps `base + i` µs.
pub fn lines(tag: &str, from: usize, n: usize) -> Vec<Line> {
    (from..from + n)
        .map(|i| {
            (
                1_775_786_400_000_000_000 + i as i64 * 1000,
                format!("{tag}-{i:05}"),
            )
        })
        .collect()
}

/// A running pusher plus the state it reports to.
pub struct Harness {
    /// Self-metrics.
    pub metrics: Arc<Metrics>,
    /// The checkpoint acks go to.
    pub checkpoint: Arc<Mutex<Checkpoint>>,
    tx: Option<mpsc::Sender<Batch>>,
    task: Option<tokio::task::JoinHandle<()>>,
    seq: u64,
    offsets: BTreeMap<u32, u64>,
}

impl Harness {
    /// Starts `Pusher::run` on the current runtime, behind a 4-batch channel like the pipeline.
    pub fn start(cfg: &config::Loki) -> Harness {
        let metrics = Arc::new(Metrics::new());
        let checkpoint = Arc::new(Mutex::new(Checkpoint::default()));
        let pusher = Pusher::new(cfg, metrics.clone(), checkpoint.clone()).expect("pusher");
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(pusher.run(rx));
        Harness {
            metrics,
            checkpoint,
            tx: Some(tx),
            task: Some(task),
            seq: 0,
            offsets: BTreeMap::new(),
        }
    }

    /// Builds the next batch (registering new files) without sending it.
    pub fn batch(&mut self, streams: &[StreamIn<'_>]) -> Batch {
        let mut body = Vec::new();
        let mut spans = Vec::new();
        let mut acks: Vec<(u32, u64)> = Vec::new();
        let mut entries = 0;
        let mut line_bytes = 0;
        for s in streams {
            if let std::collections::btree_map::Entry::Vacant(v) = self.offsets.entry(s.file) {
                v.insert(0);
                self.checkpoint.lock().unwrap().register(
                    s.file,
                    Path::new(&format!("/pods/{}.log", s.file)),
                    1,
                    s.file as u64,
                    Fingerprint::of(format!("file {}", s.file).as_bytes()),
                    0,
                );
            }
            let start = body.len();
            for (ts, line) in &s.lines {
                encode::put_entry(
                    &mut body,
                    *ts,
                    line.as_bytes(),
                    [("stream", "stdout")].into_iter(),
                );
                let off = self.offsets.get_mut(&s.file).unwrap();
                *off += line.len() as u64 + 1;
                match acks.iter_mut().find(|(f, _)| *f == s.file) {
                    Some(a) => a.1 = *off,
                    None => acks.push((s.file, *off)),
                }
                entries += 1;
                line_bytes += line.len();
            }
            spans.push(StreamSpan {
                labels: Arc::from(s.labels),
                start,
                end: body.len(),
                entries: s.lines.len(),
                files: vec![s.file],
            });
        }
        self.seq += 1;
        Batch {
            seq: self.seq,
            body,
            entries,
            line_bytes,
            acks,
            streams: spans,
        }
    }

    /// Records the batch's expectations (as `Processor::send` does) and queues it; blocks while
    /// the pusher applies backpressure.
    pub async fn send_batch(&mut self, b: Batch) {
        self.checkpoint.lock().unwrap().expect(b.seq, &b.acks);
        self.metrics.loki_buffered_bytes.inc_by(b.body.len() as i64);
        self.tx
            .as_ref()
            .expect("open")
            .send(b)
            .await
            .expect("pusher alive");
    }

    /// Like [`Harness::send_batch`], but gives the batch back when the pusher does not take it
    /// within `wait` (backpressure), recording nothing.
    pub async fn try_send_batch(&mut self, b: Batch, wait: Duration) -> Result<(), Batch> {
        let tx = self.tx.as_ref().expect("open");
        match tokio::time::timeout(wait, tx.reserve()).await {
            Ok(Ok(permit)) => {
                self.checkpoint.lock().unwrap().expect(b.seq, &b.acks);
                self.metrics.loki_buffered_bytes.inc_by(b.body.len() as i64);
                permit.send(b);
                Ok(())
            }
            _ => Err(b),
        }
    }

    /// Builds and sends one batch; returns its seq.
    pub async fn send(&mut self, streams: &[StreamIn<'_>]) -> u64 {
        let b = self.batch(streams);
        let seq = b.seq;
        self.send_batch(b).await;
        seq
    }

    /// The offset every entry sent so far for `file` ends at.
    pub fn sent_offset(&self, file: u32) -> u64 {
        self.offsets.get(&file).copied().unwrap_or(0)
    }

    /// The committed offset of `file`.
    pub fn committed(&self, file: u32) -> u64 {
        self.checkpoint.lock().unwrap().committed(file).unwrap_or(0)
    }

    /// True when every file's committed offset equals what was sent.
    pub fn all_committed(&self) -> bool {
        self.offsets.iter().all(|(&f, &o)| self.committed(f) == o)
    }

    /// Closes the channel and waits (≤ 30 s) for the pusher to deliver everything.
    pub async fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("pusher finished within 30 s")
                .expect("pusher task");
        }
    }

    /// `veloki_loki_dropped_entries_total{reason}`.
    pub fn dropped(&self, reason: &'static str) -> u64 {
        self.metrics
            .loki_dropped
            .get_or_create(&ReasonLabel { reason })
            .get()
    }

    /// Total dropped entries, all reasons.
    pub fn dropped_total(&self) -> u64 {
        veloki::metrics::DROP_REASONS
            .iter()
            .map(|r| self.dropped(r))
            .sum()
    }

    /// `veloki_loki_requests_total{code}`.
    pub fn requests(&self, code: &str) -> u64 {
        self.metrics
            .loki_requests
            .get_or_create(&CodeLabel {
                code: code.to_string(),
            })
            .get()
    }

    /// `veloki_loki_retries_total`.
    pub fn retries(&self) -> u64 {
        self.metrics.loki_retries.get()
    }
}

/// Polls `f` every 5 ms until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, f: impl Fn() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
