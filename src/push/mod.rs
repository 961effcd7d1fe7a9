//! Push: sends sealed batches to Loki's `/loki/api/v1/push` and reports each batch's fate to the
//! checkpoint.
//!
//! **In:** [`Batch`]es over a bounded channel (a full channel blocks the reader: backpressure).
//! **Out:** acks to [`crate::checkpoint::Checkpoint`], self-metrics.
//!
//! ```text
//! channel ──► dispatcher ──► shard 0: part → requests → deliver (in order, retried) ─┐
//!              (stream → shard,   shard 1: …                                          ├─► ack(batch seq)
//!               byte budget)      shard N-1: …                                        ┘   when every part
//!                                                                                         is answered
//! ```
//!
//! **Guarantees:**
//! - A batch is acknowledged only after every one of its entries got a final answer: a 2xx, a
//!   permanent rejection counted as dropped, or (only with `retry.max_retries`) a counted give-up.
//!   Acks are per file: a batch's file is acknowledged once every part holding entries of that
//!   file is answered, and the checkpoint commits a file's offset only when that batch *and
//!   every earlier batch of the file* are acknowledged, so splitting a batch over shards and
//!   requests never commits an offset past an unanswered entry.
//! - A stream always goes to the same shard (assigned round-robin when first seen), and a shard
//!   sends its requests one at a time, in order: each stream's entries reach Loki in order.
//!   Up to `loki.concurrency` requests are in flight, and a stream being retried only holds back
//!   the streams of its own shard.
//! - Memory is bounded: the dispatcher takes `loki.max_buffered_bytes` worth of permits for the
//!   data it hands to shards and waits when they run out, so the channel fills and the reader
//!   blocks.
//! - 429, 5xx (but 501), 401/403, timeouts and transport errors are retried with full-jitter
//!   exponential backoff honouring `Retry-After`, without limit unless `retry.max_retries` is set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::batch::{Batch, StreamSpan};
use crate::checkpoint::Checkpoint;
use crate::config::{self, Compression, Encoding, MetadataMode};
use crate::metrics::Metrics;

pub mod client;
pub mod encode;
pub mod proto;
pub mod request;
pub mod retry;

use client::Client;

/// Errors building the client.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No URL configured.
    #[error("no Loki URL: set loki.url in the pipeline file, --loki-url or VELOKI_LOKI_URL (or use --dry-run)")]
    NoUrl,
    /// A TLS or auth file could not be used.
    #[error("{0}")]
    Setup(String),
}

/// What happened to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Loki accepted it.
    Accepted,
    /// Loki rejected it for good (counted as dropped).
    Rejected,
    /// Retries were exhausted (only with `retry.max_retries`; counted as dropped).
    GaveUp,
}

/// A batch's acknowledgements: each file of the batch is acknowledged when the last part
/// holding entries of that file is answered (so a file whose streams are all healthy advances
/// even while another file's stream of the same batch is being retried).
struct BatchAck {
    seq: u64,
    /// (file, offset, parts still unanswered).
    files: Vec<(u32, u64, AtomicUsize)>,
}

impl BatchAck {
    /// A part holding entries of `files` (indices into [`BatchAck::files`]) is answered.
    fn part_done(&self, files: &[usize], checkpoint: &Mutex<Checkpoint>) {
        let done: Vec<(u32, u64)> = files
            .iter()
            .filter_map(|&i| {
                let (f, off, left) = &self.files[i];
                (left.fetch_sub(1, Ordering::AcqRel) == 1).then_some((*f, *off))
            })
            .collect();
        if !done.is_empty() {
            let mut cp = checkpoint.lock().unwrap_or_else(|p| p.into_inner());
            cp.ack(self.seq, &done);
        }
    }
}

/// One shard's share of a batch: the batch's body (shared, not copied) and the spans of the
/// streams this shard sends. The body is freed when the last part of the batch is done.
struct Part {
    data: bytes::Bytes,
    spans: Vec<StreamSpan>,
    /// Bytes of the spans (what the buffer budget and `loki_buffered_bytes` count).
    bytes: usize,
    ack: Arc<BatchAck>,
    files: Vec<usize>,
    _permit: Option<OwnedSemaphorePermit>,
}

/// How shards build requests.
#[derive(Clone, Copy)]
struct Shape {
    encoding: Encoding,
    compression: Compression,
    meta: MetadataMode,
    max_streams: usize,
    max_request_bytes: usize,
}

/// The Loki client: a dispatcher and `loki.concurrency` in-order shards.
pub struct Pusher {
    client: Arc<Client>,
    shape: Shape,
    concurrency: usize,
    max_buffered: usize,
}

impl Pusher {
    /// Builds the client from the pipeline's `loki` section.
    pub fn new(
        cfg: &config::Loki,
        metrics: Arc<Metrics>,
        checkpoint: Arc<Mutex<Checkpoint>>,
    ) -> Result<Pusher, PushError> {
        Ok(Pusher {
            client: Arc::new(Client::new(cfg, metrics, checkpoint)?),
            shape: Shape {
                encoding: cfg.encoding,
                compression: cfg.effective_compression(),
                meta: cfg.metadata_mode(),
                max_streams: cfg.batch.max_streams.max(1),
                max_request_bytes: cfg.batch.max_request_bytes.max(1),
            },
            concurrency: cfg.concurrency.clamp(1, 64),
            max_buffered: cfg.max_buffered_bytes.clamp(1, u32::MAX as usize),
        })
    }

    /// Delivers batches until the channel closes and every shard is done; every batch is
    /// acknowledged to the checkpoint.
    pub async fn run(self, mut rx: mpsc::Receiver<Batch>) {
        let budget = Arc::new(Semaphore::new(self.max_buffered));
        let mut shards = Vec::with_capacity(self.concurrency);
        let mut tasks = JoinSet::new();
        for _ in 0..self.concurrency {
            let (tx, rx) = mpsc::unbounded_channel::<Part>();
            tasks.spawn(shard_loop(self.client.clone(), self.shape, rx));
            shards.push(tx);
        }
        let mut assign: HashMap<Arc<str>, usize> = HashMap::new();
        let mut next = 0usize;
        while let Some(batch) = rx.recv().await {
            self.dispatch(batch, &shards, &budget, &mut assign, &mut next)
                .await;
        }
        drop(shards);
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                tracing::error!("a Loki send loop failed: {e}");
            }
        }
    }

    /// Splits a batch by shard and hands the parts over (waiting for buffer budget).
    async fn dispatch(
        &self,
        batch: Batch,
        shards: &[mpsc::UnboundedSender<Part>],
        budget: &Arc<Semaphore>,
        assign: &mut HashMap<Arc<str>, usize>,
        next: &mut usize,
    ) {
        let n = shards.len();
        let mut by_shard: Vec<Vec<&StreamSpan>> = vec![Vec::new(); n];
        for s in &batch.streams {
            let k = *assign.entry(s.labels.clone()).or_insert_with(|| {
                let k = *next % n;
                *next += 1;
                k
            });
            by_shard[k].push(s);
        }
        // Which files each part carries, and how many parts carry each file.
        let mut part_files: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut counts = vec![0usize; batch.acks.len()];
        for (k, spans) in by_shard.iter().enumerate() {
            for s in spans {
                for f in &s.files {
                    if let Some(i) = batch.acks.iter().position(|(id, _)| id == f) {
                        if !part_files[k].contains(&i) {
                            part_files[k].push(i);
                            counts[i] += 1;
                        }
                    }
                }
            }
        }
        let ack = Arc::new(BatchAck {
            seq: batch.seq,
            files: batch
                .acks
                .iter()
                .zip(&counts)
                .map(|(&(f, off), &c)| (f, off, AtomicUsize::new(c)))
                .collect(),
        });
        let in_parts: usize = batch.streams.iter().map(|s| s.end - s.start).sum();
        let rest = batch.body.len().saturating_sub(in_parts);
        if rest > 0 {
            self.client.metrics.loki_buffered_bytes.dec_by(rest as i64);
        }
        // Files no entry came from (nothing to wait for).
        let idle: Vec<(u32, u64)> = batch
            .acks
            .iter()
            .zip(&counts)
            .filter(|(_, &c)| c == 0)
            .map(|(a, _)| *a)
            .collect();
        if !idle.is_empty() {
            let mut cp = self
                .client
                .checkpoint
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            cp.ack(batch.seq, &idle);
        }
        let body = bytes::Bytes::from(batch.body);
        for (k, (spans, files)) in by_shard.into_iter().zip(part_files).enumerate() {
            if spans.is_empty() {
                continue;
            }
            let bytes: usize = spans.iter().map(|s| s.end - s.start).sum();
            let want = bytes.clamp(1, self.max_buffered) as u32;
            let permit = budget.clone().acquire_many_owned(want).await.ok();
            let spans = spans
                .into_iter()
                .map(|s| StreamSpan {
                    labels: s.labels.clone(),
                    start: s.start,
                    end: s.end,
                    entries: s.entries,
                    files: Vec::new(),
                })
                .collect();
            let part = Part {
                data: body.clone(),
                spans,
                bytes,
                ack: ack.clone(),
                files,
                _permit: permit,
            };
            if let Err(mpsc::error::SendError(p)) = shards[k].send(part) {
                // The shard is gone (it panicked): nothing will send this part; do not ack it.
                tracing::error!(
                    "a Loki send loop is gone; {} bytes stay undelivered",
                    p.bytes
                );
            }
        }
    }
}

/// One shard: sends its parts' requests one at a time, in order.
async fn shard_loop(client: Arc<Client>, shape: Shape, mut rx: mpsc::UnboundedReceiver<Part>) {
    let mut encoder = request::Encoder::new(shape.encoding, shape.compression, shape.meta);
    while let Some(part) = rx.recv().await {
        for plan in request::plan(
            &part.data,
            &part.spans,
            shape.max_streams,
            shape.max_request_bytes,
        ) {
            let body = encoder.encode(&part.data, &plan);
            client.deliver(&plan, &body).await;
        }
        client.metrics.loki_buffered_bytes.dec_by(part.bytes as i64);
        part.ack.part_done(&part.files, &client.checkpoint);
    }
}
