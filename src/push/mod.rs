//! Push: sends sealed batches to Loki's `/loki/api/v1/push` and reports each batch's fate to the
//! checkpoint.
//!
//! **In:** [`Batch`]es over a bounded channel (a full channel blocks the reader: backpressure).
//! **Out:** acks to [`crate::checkpoint::Checkpoint`], self-metrics.
//! **Guarantees:** a batch is acknowledged only after a 2xx, or after a permanent rejection that
//! was counted as dropped; 429/5xx/timeouts/transport errors are retried with full-jitter
//! exponential backoff honouring `Retry-After`, without limit unless `retry.max_retries` is set.
//! Batches are sent one at a time, so each stream's entries reach Loki in order.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::batch::Batch;
use crate::checkpoint::Checkpoint;
use crate::config;
use crate::metrics::{self, Metrics};

pub mod encode;
pub mod proto;
pub mod retry;

use retry::{Backoff, Verdict};

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

/// What happened to one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Loki accepted it.
    Accepted,
    /// Loki rejected it for good (counted as dropped).
    Rejected,
    /// Retries were exhausted (only with `retry.max_retries`; counted as dropped).
    GaveUp,
}

/// The Loki client.
pub struct Pusher {
    client: reqwest::Client,
    url: reqwest::Url,
    tenant: String,
    basic: Option<(String, Option<String>, Option<PathBuf>)>,
    bearer_file: Option<PathBuf>,
    headers: Vec<(String, String)>,
    min_backoff: Duration,
    max_backoff: Duration,
    max_retries: Option<u32>,
    metrics: Arc<Metrics>,
    checkpoint: Arc<Mutex<Checkpoint>>,
}

impl Pusher {
    /// Builds the client from the pipeline's `loki` section.
    pub fn new(
        cfg: &config::Loki,
        metrics: Arc<Metrics>,
        checkpoint: Arc<Mutex<Checkpoint>>,
    ) -> Result<Pusher, PushError> {
        let url = cfg.url.clone().ok_or(PushError::NoUrl)?.0;
        let mut b = reqwest::Client::builder()
            .timeout(cfg.timeout.0)
            .connect_timeout(cfg.timeout.0.min(Duration::from_secs(10)))
            .user_agent(concat!("veloki/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(4);
        if let Some(ca) = &cfg.tls.ca_file {
            let pem = std::fs::read(&ca.0).map_err(|e| {
                PushError::Setup(format!("loki.tls.ca_file {}: {e}", ca.0.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                PushError::Setup(format!("loki.tls.ca_file {}: {e}", ca.0.display()))
            })?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let (Some(cert), Some(key)) = (&cfg.tls.cert_file, &cfg.tls.key_file) {
            let mut pem = std::fs::read(&cert.0).map_err(|e| {
                PushError::Setup(format!("loki.tls.cert_file {}: {e}", cert.0.display()))
            })?;
            pem.push(b'\n');
            pem.extend(std::fs::read(&key.0).map_err(|e| {
                PushError::Setup(format!("loki.tls.key_file {}: {e}", key.0.display()))
            })?);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| PushError::Setup(format!("loki.tls client certificate: {e}")))?;
            b = b.identity(id);
        }
        if cfg.tls.insecure_skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        let client = b
            .build()
            .map_err(|e| PushError::Setup(format!("building the HTTP client: {e}")))?;
        Ok(Pusher {
            client,
            url,
            tenant: cfg.tenant.clone(),
            basic: cfg.basic_auth.as_ref().map(|a| {
                (
                    a.username.clone(),
                    a.password.clone(),
                    a.password_file.as_ref().map(|f| f.0.clone()),
                )
            }),
            bearer_file: cfg.bearer_token_file.as_ref().map(|f| f.0.clone()),
            headers: cfg
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            min_backoff: cfg.retry.min_backoff.0,
            max_backoff: cfg.retry.max_backoff.0,
            max_retries: cfg.retry.max_retries,
            metrics,
            checkpoint,
        })
    }

    /// Delivers batches until the channel closes; every batch is acknowledged to the checkpoint.
    pub async fn run(self, mut rx: mpsc::Receiver<Batch>) {
        while let Some(mut batch) = rx.recv().await {
            let body = Bytes::from(std::mem::take(&mut batch.body));
            let fate = self.deliver(&batch, body.clone()).await;
            self.metrics.loki_buffered_bytes.dec_by(body.len() as i64);
            if fate == Fate::Accepted {
                self.metrics.loki_sent_entries.inc_by(batch.entries as u64);
                self.metrics.loki_sent_bytes.inc_by(body.len() as u64);
            }
            let mut cp = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
            cp.ack(batch.seq, &batch.acks);
        }
    }

    fn secret_file(path: &PathBuf) -> Option<String> {
        match std::fs::read_to_string(path) {
            Ok(s) => Some(s.trim().to_string()),
            Err(e) => {
                tracing::error!(path = %path.display(), "cannot read credential file: {e}");
                None
            }
        }
    }

    async fn send_once(&self, body: Bytes) -> Result<(u16, Option<Duration>, String), String> {
        let mut req = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body);
        if !self.tenant.is_empty() {
            req = req.header("X-Scope-OrgID", &self.tenant);
        }
        if let Some((user, pass, file)) = &self.basic {
            let p = match (pass, file) {
                (Some(p), _) => Some(p.clone()),
                (None, Some(f)) => Self::secret_file(f),
                _ => None,
            };
            req = req.basic_auth(user, p);
        }
        if let Some(f) = &self.bearer_file {
            // Re-read on every request so a rotated token is picked up.
            if let Some(t) = Self::secret_file(f) {
                req = req.bearer_auth(t);
            }
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                "timeout".to_string()
            } else {
                format!("transport: {e}")
            }
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry::parse_retry_after);
        let text = resp.text().await.unwrap_or_default();
        Ok((status, retry_after, text))
    }

    /// Sends one batch until Loki gives a final answer (or the retry budget runs out).
    pub async fn deliver(&self, batch: &Batch, body: Bytes) -> Fate {
        let mut backoff = Backoff::new(self.min_backoff, self.max_backoff);
        loop {
            self.metrics.loki_inflight.inc();
            let started = Instant::now();
            let res = self.send_once(body.clone()).await;
            self.metrics.loki_inflight.dec();
            self.metrics
                .loki_request_duration
                .observe(started.elapsed().as_secs_f64());
            let (code_label, verdict, retry_after, text, status) = match &res {
                Ok((status, ra, text)) => (
                    status.to_string(),
                    retry::classify(*status),
                    *ra,
                    text.as_str(),
                    *status,
                ),
                Err(e) if e == "timeout" => ("timeout".into(), Verdict::Retry, None, e.as_str(), 0),
                Err(e) => ("transport".into(), Verdict::Retry, None, e.as_str(), 0),
            };
            self.metrics
                .loki_requests
                .get_or_create(&metrics::CodeLabel { code: code_label })
                .inc();
            match verdict {
                Verdict::Success => {
                    self.metrics.loki_last_success.set(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0.0, |d| d.as_secs_f64()),
                    );
                    if status != 204 && status != 200 && !text.is_empty() {
                        tracing::warn!(
                            status,
                            "Loki accepted the request but said: {}",
                            first_line(text)
                        );
                        if status == 260 {
                            self.count_dropped("other", batch.entries);
                        }
                    }
                    return Fate::Accepted;
                }
                Verdict::Reject => {
                    let reason = retry::drop_reason(status, text);
                    let n = retry::dropped_count(text, batch.entries);
                    self.count_dropped(reason, n);
                    tracing::warn!(
                        status,
                        reason,
                        dropped = n,
                        streams = batch.streams.len(),
                        first_stream = %batch.streams.first().map(|s| s.as_ref()).unwrap_or(""),
                        "Loki rejected entries; not retrying: {}",
                        first_line(text)
                    );
                    return Fate::Rejected;
                }
                Verdict::Retry => {
                    if let Some(max) = self.max_retries {
                        if backoff.attempts() >= max {
                            let reason = if status == 429 {
                                "rate_limited"
                            } else {
                                "other"
                            };
                            self.count_dropped(reason, batch.entries);
                            tracing::error!(
                                status,
                                entries = batch.entries,
                                "giving up on a batch after {max} retries: {}",
                                first_line(text)
                            );
                            return Fate::GaveUp;
                        }
                    }
                    let delay = backoff.next(retry_after);
                    self.metrics.loki_retries.inc();
                    if status == 401 || status == 403 {
                        tracing::error!(status, "Loki refused our credentials; keeping the data and retrying in {delay:?}: {}", first_line(text));
                    } else if backoff.attempts() <= 3 || backoff.attempts() % 10 == 0 {
                        tracing::warn!(answer = %if status == 0 { text.to_string() } else { status.to_string() }, attempt = backoff.attempts(), "push failed; retrying in {delay:?}");
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn count_dropped(&self, reason: &'static str, n: usize) {
        self.metrics
            .loki_dropped
            .get_or_create(&metrics::ReasonLabel { reason })
            .inc_by(n as u64);
    }
}

fn first_line(s: &str) -> &str {
    let l = s.lines().next().unwrap_or("");
    match l.char_indices().nth(300) {
        Some((i, _)) => &l[..i],
        None => l,
    }
}
