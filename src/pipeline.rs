//! Pipeline: builds the stages, the bounded channel between them, and owns the shutdown order.
//!
//! ```text
//! reader thread (sync):  inotify/poll → rescan → tail → decode → parse → enrich → batch ──► channel (2 batches)
//! tokio runtime (async): channel ──► push ──► ack → checkpoint ──► saver (timer) → positions file
//!                        metrics server (/metrics /healthz /ready), signals
//! ```
//!
//! Shutdown runs in one direction: stop reading → seal the open batch and confirm pending
//! outcomes → let the pusher drain (bounded by a deadline) → write the final positions. Positions
//! only ever hold acknowledged offsets, so stopping at any point loses nothing.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::batch::{Batch, BatchOptions, Batcher, StreamRegistry};
use crate::checkpoint::{self, Checkpoint};
use crate::config::Config;
use crate::decode::multiline::{Grouper, Held};
use crate::discover::watch::{Bell, Wake, Watch};
use crate::discover::{Filter, Found};
use crate::enrich::{EnrichOptions, Enricher};
use crate::metrics::server::Health;
use crate::metrics::Metrics;
use crate::model::{FileCtx, Metadata, StreamKind};
use crate::parse::{parse_into, Record};
use crate::push::Pusher;
use crate::tail::{Entry, EntrySink, TailOptions, Tailer};
use crate::timefmt::format_rfc3339_nanos;

/// How long shutdown (SIGTERM) may take in total: finishing reads, flushing, waiting for Loki.
/// Below Kubernetes' default 30 s grace period.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// Entries read and handed to the output.
    pub entries: u64,
    /// Batches sealed.
    pub batches: u64,
    /// The metrics server's address.
    pub metrics_addr: Option<SocketAddr>,
    /// True when shutdown's deadline passed before Loki took everything that was read (those
    /// lines stay on disk, behind the saved positions).
    pub undelivered: bool,
}

/// Where processed entries go.
pub enum Output {
    /// Batches to the pusher.
    Loki {
        /// The batcher.
        batcher: Box<Batcher>,
        /// The channel to the pusher.
        tx: mpsc::Sender<Batch>,
        /// For ack expectations.
        checkpoint: Arc<Mutex<Checkpoint>>,
    },
    /// JSON lines on stdout (`--dry-run`).
    DryRun {
        /// Buffered stdout.
        out: Box<std::io::BufWriter<std::io::Stdout>>,
        /// Pod-label capping like the real streams.
        registry: Box<StreamRegistry>,
    },
}

/// Parses and enriches entries and hands them to an [`Output`].
pub struct Processor {
    /// The enrichment stage.
    pub enricher: Enricher,
    rec: Record,
    out: Output,
    lossy: String,
    metrics: Arc<Metrics>,
    /// Entries processed.
    pub entries: u64,
    /// Batches sealed.
    pub batches: u64,
    /// Set when the pusher is gone.
    pub broken: bool,
    grouper: Grouper,
}

impl Processor {
    /// A processor; grouped multi-line entries stay within `max_entry_bytes`.
    pub fn new(
        enricher: Enricher,
        out: Output,
        metrics: Arc<Metrics>,
        max_entry_bytes: usize,
    ) -> Processor {
        Processor {
            grouper: Grouper::new(max_entry_bytes),
            enricher,
            rec: Record::new(),
            out,
            lossy: String::new(),
            metrics,
            entries: 0,
            batches: 0,
            broken: false,
        }
    }

    fn send(&mut self, b: Batch) {
        if let Output::Loki { tx, checkpoint, .. } = &mut self.out {
            checkpoint
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .expect(b.seq, &b.acks);
            self.metrics.loki_buffered_bytes.inc_by(b.body.len() as i64);
            self.batches += 1;
            if tx.blocking_send(b).is_err() {
                self.broken = true;
            }
        }
    }

    /// Seals and sends the open batch when it is older than `max_wait`.
    pub fn flush_due(&mut self) {
        let due = match &self.out {
            Output::Loki { batcher, .. } => batcher.due(),
            Output::DryRun { .. } => true,
        };
        if due {
            self.flush();
        }
    }

    /// Seals and sends the open batch now.
    pub fn flush(&mut self) {
        self.release_grouped();
        match &mut self.out {
            Output::Loki { batcher, .. } => {
                if let Some(b) = batcher.seal() {
                    self.send(b);
                }
            }
            Output::DryRun { out, .. } => {
                let _ = out.flush();
            }
        }
    }
}

impl EntrySink for Processor {
    fn entry(&mut self, file_id: u32, ctx: &FileCtx, e: Entry<'_>) {
        let offer = self.grouper.offer(
            file_id,
            ctx,
            e.ts_ns,
            e.stream,
            e.content,
            e.commit_offset,
            e.truncated,
        );
        if let Some(h) = offer.released {
            self.process_held(h);
        }
        if !offer.taken {
            self.process(file_id, ctx, e.ts_ns, e.stream, e.content, e.commit_offset);
        }
    }
}

impl Processor {
    fn process_held(&mut self, h: Held) {
        self.process(
            h.file_id,
            &h.ctx,
            h.ts_ns,
            h.stream,
            &h.content,
            h.commit_offset,
        );
    }

    /// Releases entries held for multi-line grouping (end of a read pass, shutdown).
    pub fn release_grouped(&mut self) {
        if self.grouper.is_empty() {
            return;
        }
        for h in self.grouper.release_all() {
            self.process_held(h);
        }
    }

    /// Parses, enriches and outputs one (possibly grouped) entry.
    fn process(
        &mut self,
        file_id: u32,
        ctx: &FileCtx,
        ts_ns: i64,
        stream: StreamKind,
        content: &[u8],
        commit_offset: u64,
    ) {
        self.entries += 1;
        // A grouped entry is parsed by its first line; the others ride along.
        let first = memchr::memchr(b'\n', content).map_or(content, |i| &content[..i]);
        parse_into(first, ctx.hint, &mut self.rec);
        let en = self.enricher.enrich(ctx, ts_ns, stream, content, &self.rec);
        let raw: &[u8] = if en.redacted {
            self.enricher.redacted_line()
        } else {
            content
        };
        // Loki's line is a protobuf string: invalid UTF-8 becomes U+FFFD.
        let line: &[u8] = match std::str::from_utf8(raw) {
            Ok(_) => raw,
            Err(_) => {
                self.lossy.clear();
                self.lossy.push_str(&String::from_utf8_lossy(raw));
                self.lossy.as_bytes()
            }
        };
        let sealed = match &mut self.out {
            Output::Loki { batcher, .. } => batcher.add(
                file_id,
                ctx,
                &en.labels,
                ts_ns,
                line,
                &self.enricher.meta,
                commit_offset,
            ),
            Output::DryRun { out, registry } => {
                let sid = registry.stream_id(file_id, ctx, &en.labels);
                let labels = registry.labels_json(sid);
                let _ = write_json_entry(out, ts_ns, &labels, &self.enricher.meta, line, None);
                None
            }
        };
        if let Some(b) = sealed {
            self.send(b);
        }
    }
}

/// Writes one entry as a JSON line: `{"ts","labels":{…},"metadata":{…},"line"}` plus an optional
/// `parsed` object (already JSON). `labels_json` is the stream's labels as a JSON object
/// ([`StreamRegistry::labels_json`]).
pub fn write_json_entry<W: Write + ?Sized>(
    out: &mut W,
    ts_ns: i64,
    labels_json: &str,
    meta: &Metadata,
    line: &[u8],
    parsed: Option<&str>,
) -> std::io::Result<()> {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    write!(
        out,
        "{{\"ts\":{},\"labels\":{labels_json},\"metadata\":{{",
        q(&format_rfc3339_nanos(ts_ns))
    )?;
    for (i, (k, v)) in meta.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write!(out, "{}:{}", q(k), q(v))?;
    }
    write!(out, "}},\"line\":{}", q(&String::from_utf8_lossy(line)))?;
    if let Some(p) = parsed {
        write!(out, ",\"parsed\":{p}")?;
    }
    out.write_all(b"}\n")
}

/// The enrichment settings of a pipeline file.
pub(crate) fn enrich_options(cfg: &Config, keep_decided: bool) -> EnrichOptions {
    EnrichOptions {
        max_tracked: cfg.outcomes.max_tracked,
        ttl_ns: cfg.outcomes.ttl.0.as_nanos().min(i64::MAX as u128) as i64,
        max_schedules: cfg.outcomes.max_schedules,
        max_routes: 200,
        keep_decided,
        redact_params: cfg.redact.params.clone(),
    }
}

/// The static labels of a pipeline file (empty values left out).
pub(crate) fn statics(cfg: &Config) -> Vec<(String, String)> {
    cfg.labels
        .r#static
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Builds the processor of a run (also used by benchmarks).
pub fn build_processor(
    cfg: &Config,
    metrics: Arc<Metrics>,
    tx: Option<(mpsc::Sender<Batch>, Arc<Mutex<Checkpoint>>)>,
) -> Processor {
    let enricher = Enricher::new(metrics.clone(), &enrich_options(cfg, false));
    let statics = statics(cfg);
    let out = match tx {
        Some((tx, checkpoint)) => Output::Loki {
            batcher: Box::new(Batcher::new(
                BatchOptions {
                    max_bytes: cfg.loki.batch.max_bytes,
                    max_entries: cfg.loki.batch.max_entries,
                    max_wait: cfg.loki.batch.max_wait.0,
                    structured_metadata: cfg.loki.keeps_metadata(),
                    max_pods: cfg.labels.max_pods,
                },
                &statics,
            )),
            tx,
            checkpoint,
        },
        None => Output::DryRun {
            out: Box::new(std::io::BufWriter::with_capacity(
                256 * 1024,
                std::io::stdout(),
            )),
            registry: Box::new(StreamRegistry::new(&statics, cfg.labels.max_pods)),
        },
    };
    Processor::new(enricher, out, metrics, cfg.sources.max_line_bytes)
}

struct ReaderArgs {
    cfg: Config,
    metrics: Arc<Metrics>,
    checkpoint: Arc<Mutex<Checkpoint>>,
    tx: Option<mpsc::Sender<Batch>>,
    /// Change notifications, and the stop request.
    bell: Arc<Bell>,
    health: Arc<Health>,
}

/// With notifications, the directories are listed every this many safety reads.
const SAFETY_SCAN_FACTOR: u32 = 5;

/// True when `path` is a log file the filter follows (a write to it before the scan found it
/// calls for a rescan).
fn followed_log(filter: &Filter, path: &std::path::Path) -> bool {
    Found::from_path(path).is_some_and(|f| filter.accepts(&f.namespace, &f.container))
}

/// The reader thread: rescan → read → parse/enrich/batch, then sleep until a change notification
/// (or, without inotify, the poll interval), a batch or a dangling partial falls due, the outcome
/// tracker's wall-clock tick, or the safety rescan. A full channel to the pusher blocks it here
/// (backpressure: nothing is read while Loki does not take data).
fn reader_loop(a: ReaderArgs) -> RunReport {
    let cfg = &a.cfg;
    let filter = Filter {
        namespaces: cfg.sources.namespaces.clone(),
        containers: cfg.sources.containers.clone(),
    };
    let opts = TailOptions {
        pods_dir: cfg.sources.pods_dir.clone(),
        filter: filter.clone(),
        max_line_bytes: cfg.sources.max_line_bytes,
        start_at: cfg.sources.start_at,
        partial_timeout: Duration::from_secs(5),
        read_budget: 1 << 20,
        wait_for_acks: !cfg.run.dry_run,
    };
    let mut tailer = Tailer::new(
        opts,
        cfg.effective_routes(),
        a.checkpoint.clone(),
        a.metrics.clone(),
    );
    let tx = a.tx.map(|tx| (tx, a.checkpoint.clone()));
    let mut proc = build_processor(cfg, a.metrics.clone(), tx);
    if let Some(state) = a
        .checkpoint
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take_tracker()
    {
        proc.enricher.tracker_mut().restore(state);
    }
    // `--once` reads what is there and exits: no notifications needed.
    let mut watch = if cfg.sources.inotify && !cfg.run.once {
        Watch::start(&cfg.sources.pods_dir, &filter, a.bell.clone())
    } else {
        Watch::disabled(&cfg.sources.pods_dir)
    };
    let poll_rescan_every = Duration::from_secs(1).min(cfg.sources.poll_interval.0 * 4);
    let max_wait = cfg.loki.batch.max_wait.0;
    let sync = cfg.sources.sync_interval.0;
    let mut last_scan: Option<Instant> = None;
    let mut last_full_read = Instant::now();
    let mut last_state = Instant::now();
    let mut saved_state: Vec<u8> = Vec::new();
    // When the open batch (if any) got its first entry, at the latest.
    let mut batch_open_since: Option<Instant> = None;
    let mut wake = Wake::default();
    loop {
        if wake.stop || proc.broken {
            break;
        }
        let watching = watch.active();
        // With notifications the safety net reads every file each rescan_interval (one fstat
        // per idle file) and lists the directories every SAFETY_SCAN_FACTOR times that (listing
        // them makes inotify report our own opens).
        let scan_every = if watching {
            cfg.sources.rescan_interval.0 * SAFETY_SCAN_FACTOR
        } else {
            poll_rescan_every
        };
        let scan = wake.rescan || last_scan.is_none_or(|t| t.elapsed() >= scan_every);
        let read_all = !watching
            || scan
            || wake.all
            || last_full_read.elapsed() >= cfg.sources.rescan_interval.0;
        let mut scan_failed = false;
        if scan {
            watch.sync();
            if let Err(e) = tailer.rescan() {
                scan_failed = true;
                tracing::error!(pods_dir = %cfg.sources.pods_dir.display(), "cannot scan the pods directory: {e}");
            }
            a.health.ready.store(true, Ordering::Relaxed);
            last_scan = Some(Instant::now());
        }
        let (entries_before, batches_before) = (proc.entries, proc.batches);
        let mut unknown_written = false;
        let n = if read_all {
            last_full_read = Instant::now();
            tailer.poll(&mut proc)
        } else {
            for p in &wake.paths {
                if !tailer.wake(p) && followed_log(&filter, p) {
                    unknown_written = true;
                }
            }
            tailer.poll_woken(&mut proc)
        };
        tailer.flush_partials(&mut proc);
        // Grouping never holds a line past the pass that read it.
        proc.release_grouped();
        proc.flush_due();
        tailer.reap();
        if proc.batches != batches_before {
            batch_open_since = (proc.entries != entries_before).then(Instant::now);
        } else if proc.entries != entries_before {
            batch_open_since.get_or_insert_with(Instant::now);
        }
        if batch_open_since.is_some_and(|t| t.elapsed() >= max_wait) {
            batch_open_since = None; // flush_due sealed it
        }
        if last_state.elapsed() >= sync {
            proc.enricher.tick_wall();
            let st = proc.enricher.tracker_mut().state();
            let bytes = serde_json::to_vec(&st).unwrap_or_default();
            if bytes != saved_state {
                saved_state = bytes;
                a.checkpoint
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .set_tracker(st);
            }
            last_state = Instant::now();
        }
        // A write to a file not followed yet, or a truncated file waiting (for the copy a
        // copytruncate made to be opened first): rescan at once.
        let rescan_now = unknown_written || (tailer.wants_rescan() && !scan_failed);
        if n > 0 || rescan_now {
            wake = a.bell.take();
            wake.rescan |= rescan_now;
            continue;
        }
        if cfg.run.once && tailer.idle() {
            break;
        }
        let mut timeout = if watching {
            cfg.sources
                .rescan_interval
                .0
                .saturating_sub(last_full_read.elapsed())
        } else {
            cfg.sources.poll_interval.0
        };
        timeout = timeout.min(sync.saturating_sub(last_state.elapsed()));
        if let Some(t) = batch_open_since {
            timeout = timeout.min(max_wait.saturating_sub(t.elapsed()));
        }
        if let Some(t) = tailer.next_partial_flush() {
            timeout = timeout.min(t);
        }
        wake = a.bell.wait(timeout.max(Duration::from_millis(1)));
    }
    proc.flush();
    proc.enricher.flush();
    let st = proc.enricher.tracker_mut().state();
    a.checkpoint
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .set_tracker(st);
    RunReport {
        entries: proc.entries,
        batches: proc.batches,
        metrics_addr: None,
        undelivered: false,
    }
}

async fn save_positions(
    path: &std::path::Path,
    cp: &Arc<Mutex<Checkpoint>>,
    metrics: &Metrics,
    force: bool,
) {
    let snap = {
        let mut c = cp.lock().unwrap_or_else(|p| p.into_inner());
        if !force && !c.is_dirty() {
            return;
        }
        c.snapshot()
    };
    let path = path.to_path_buf();
    let res = tokio::task::spawn_blocking(move || checkpoint::save(&path, &snap)).await;
    let ok = matches!(res, Ok(Ok(())));
    if let Ok(Err(e)) = &res {
        tracing::error!("cannot write the positions file: {e}");
    }
    metrics
        .positions_writes
        .get_or_create(&crate::metrics::ResultLabel {
            result: if ok { "ok" } else { "error" },
        })
        .inc();
}

/// Runs the pipeline until `stop` resolves (or, with `run.once`, until everything present was
/// delivered).
pub async fn run(
    cfg: Config,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RunReport> {
    let health = Arc::new(Health::default());
    let listen: SocketAddr = cfg.metrics.listen.parse().map_err(|_| {
        anyhow::anyhow!("metrics.listen {:?} is not an address", cfg.metrics.listen)
    })?;
    let (server_stop_tx, server_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (bound, server) =
        crate::metrics::server::serve(listen, metrics.clone(), health.clone(), async move {
            let _ = server_stop_rx.await;
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    tracing::info!("serving /metrics, /healthz and /ready on http://{bound}");

    if !cfg.sources.pods_dir.is_dir() {
        anyhow::bail!(
            "sources.pods_dir {} is not a directory",
            cfg.sources.pods_dir.display()
        );
    }
    let dry = cfg.run.dry_run;
    let (cp, warning) = if dry {
        (Checkpoint::default(), None)
    } else {
        Checkpoint::load(&cfg.sources.positions)
    };
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    let checkpoint = Arc::new(Mutex::new(cp));

    let (tx, pusher_task) = if dry {
        (None, None)
    } else {
        let pusher = Pusher::new(&cfg.loki, metrics.clone(), checkpoint.clone())?;
        let (tx, rx) = mpsc::channel::<Batch>(2);
        (Some(tx), Some(tokio::spawn(pusher.run(rx))))
    };

    let bell = Bell::new();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<RunReport>();
    let args = ReaderArgs {
        cfg: cfg.clone(),
        metrics: metrics.clone(),
        checkpoint: checkpoint.clone(),
        tx,
        bell: bell.clone(),
        health: health.clone(),
    };
    std::thread::Builder::new()
        .name("veloki-reader".into())
        .spawn(move || {
            let r = reader_loop(args);
            let _ = done_tx.send(r);
        })?;

    let saver_cp = checkpoint.clone();
    let saver_metrics = metrics.clone();
    let positions = cfg.sources.positions.clone();
    let sync = cfg.sources.sync_interval.0;
    let saver = (!dry).then(|| {
        tokio::spawn(async move {
            let mut t = tokio::time::interval(sync);
            loop {
                t.tick().await;
                save_positions(&positions, &saver_cp, &saver_metrics, false).await;
            }
        })
    });

    // The stop signal may come while reading or while waiting for Loki (also in --once).
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(true);
    });
    let stopped = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    tokio::pin!(done_rx);
    // One deadline for the whole shutdown, started by the signal.
    let mut deadline: Option<tokio::time::Instant> = None;
    let report = tokio::select! {
        r = &mut done_rx => r.ok(),
        _ = &mut stopped => {
            tracing::info!("stopping: finishing reads, flushing batches, waiting for Loki");
            bell.stop();
            let d = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
            deadline = Some(d);
            tokio::time::timeout_at(d, &mut done_rx).await.ok().and_then(Result::ok)
        }
    };
    let mut undelivered = false;
    if let Some(mut task) = pusher_task {
        let finished = match deadline {
            Some(d) => tokio::time::timeout_at(d, &mut task).await.ok(),
            None => tokio::select! {
                r = &mut task => Some(r),
                _ = &mut stopped => {
                    tracing::info!("stopping: waiting for Loki");
                    let d = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
                    tokio::time::timeout_at(d, &mut task).await.ok()
                }
            },
        };
        match finished {
            Some(Ok(())) => {}
            Some(Err(e)) => tracing::error!("pusher failed: {e}"),
            None => {
                undelivered = true;
                tracing::warn!(
                    "Loki did not take everything within {SHUTDOWN_DEADLINE:?}; undelivered lines stay on disk and are sent after the restart"
                );
                task.abort();
            }
        }
    }
    if let Some(s) = saver {
        s.abort();
    }
    if !dry {
        save_positions(&cfg.sources.positions, &checkpoint, &metrics, true).await;
    }
    let _ = server_stop_tx.send(());
    let _ = server.await;
    let mut report = report.unwrap_or_default();
    report.metrics_addr = Some(bound);
    report.undelivered = undelivered;
    Ok(report)
}
