//! The HTTP side: one request until Loki gives a final answer (or the retry budget runs out).
//!
//! Auth and headers are applied per attempt (a rotated bearer token or password file is
//! re-read); Loki's answer is classified by [`retry::classify`], the one decision point.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::request::{Body, Plan};
use super::retry::{self, Backoff, Verdict};
use super::{Fate, PushError};
use crate::checkpoint::Checkpoint;
use crate::config;
use crate::metrics::{self, Metrics};

/// Shortest interval between two log messages of one kind.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Rate-limits log messages per kind; says how many were held back.
#[derive(Default)]
struct LogLimiter {
    last: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl LogLimiter {
    /// `Some(suppressed since the last message)` when a message of this kind may be logged now.
    fn allow(&self, kind: &'static str) -> Option<u64> {
        let mut m = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(kind) {
            Some((at, n)) if at.elapsed() < LOG_EVERY => {
                *n += 1;
                None
            }
            Some((at, n)) => {
                let held = *n;
                *at = Instant::now();
                *n = 0;
                Some(held)
            }
            None => {
                m.insert(kind, (Instant::now(), 0));
                Some(0)
            }
        }
    }
}

/// The Loki HTTP client shared by the shards.
pub struct Client {
    http: reqwest::Client,
    url: reqwest::Url,
    tenant: String,
    basic: Option<(String, Option<String>, Option<PathBuf>)>,
    bearer_file: Option<PathBuf>,
    headers: Vec<(String, String)>,
    min_backoff: Duration,
    max_backoff: Duration,
    max_retries: Option<u32>,
    /// Self-metrics.
    pub metrics: Arc<Metrics>,
    /// Where answered batches are acknowledged.
    pub checkpoint: Arc<Mutex<Checkpoint>>,
    logs: LogLimiter,
}

impl Client {
    /// Builds the client from the pipeline's `loki` section.
    pub fn new(
        cfg: &config::Loki,
        metrics: Arc<Metrics>,
        checkpoint: Arc<Mutex<Checkpoint>>,
    ) -> Result<Client, PushError> {
        let url = cfg.url.clone().ok_or(PushError::NoUrl)?.0;
        let mut b = reqwest::Client::builder()
            .timeout(cfg.timeout.0)
            .connect_timeout(cfg.timeout.0.min(Duration::from_secs(10)))
            .user_agent(concat!("veloki/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(cfg.concurrency.max(1));
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
        if let Some(p) = &cfg.proxy_url {
            let proxy = reqwest::Proxy::all(p.0.clone())
                .map_err(|e| PushError::Setup(format!("loki.proxy_url: {e}")))?;
            b = b.proxy(proxy);
        }
        let http = b
            .build()
            .map_err(|e| PushError::Setup(format!("building the HTTP client: {e}")))?;
        Ok(Client {
            http,
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
            logs: LogLimiter::default(),
        })
    }

    fn secret_file(&self, path: &PathBuf) -> Option<String> {
        match std::fs::read_to_string(path) {
            Ok(s) => Some(s.trim().to_string()),
            Err(e) => {
                if let Some(held) = self.logs.allow("credential_file") {
                    tracing::error!(path = %path.display(), held_back = held, "cannot read credential file: {e}");
                }
                None
            }
        }
    }

    async fn send_once(&self, body: &Body) -> Result<(u16, Option<Duration>, String), String> {
        let mut req = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, body.content_type)
            .body(body.bytes.clone());
        if let Some(enc) = body.content_encoding {
            req = req.header(reqwest::header::CONTENT_ENCODING, enc);
        }
        if !self.tenant.is_empty() {
            req = req.header("X-Scope-OrgID", &self.tenant);
        }
        if let Some((user, pass, file)) = &self.basic {
            let p = match (pass, file) {
                (Some(p), _) => Some(p.clone()),
                (None, Some(f)) => self.secret_file(f),
                _ => None,
            };
            req = req.basic_auth(user, p);
        }
        if let Some(f) = &self.bearer_file {
            // Re-read on every request so a rotated token is picked up.
            if let Some(t) = self.secret_file(f) {
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
        let text = match tokio::time::timeout(Duration::from_secs(10), resp.text()).await {
            Ok(Ok(t)) => t,
            _ => String::new(),
        };
        Ok((status, retry_after, text))
    }

    /// Sends one request until Loki gives a final answer (or the retry budget runs out);
    /// counts what was sent and what was dropped.
    pub async fn deliver(&self, plan: &Plan, body: &Body) -> Fate {
        let mut backoff = Backoff::new(self.min_backoff, self.max_backoff);
        loop {
            self.metrics.loki_inflight.inc();
            let started = Instant::now();
            let res = self.send_once(body).await;
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
                    self.metrics.loki_sent_entries.inc_by(plan.entries as u64);
                    self.metrics.loki_sent_bytes.inc_by(body.bytes.len() as u64);
                    if status == 260 {
                        // Loki answers 260 when ingestion is blocked: the data is dropped.
                        self.count_dropped("other", plan.entries);
                    }
                    if status != 204 && status != 200 && !text.is_empty() {
                        if let Some(held) = self.logs.allow("accepted_with_message") {
                            tracing::warn!(
                                status,
                                held_back = held,
                                "Loki accepted the request but said: {}",
                                first_line(text)
                            );
                        }
                    }
                    return Fate::Accepted;
                }
                Verdict::Reject => {
                    let streams: Vec<(&str, usize)> = plan
                        .pieces
                        .iter()
                        .map(|p| (p.labels.as_ref(), p.entries))
                        .collect();
                    let dropped = retry::drop_breakdown(status, text, &streams, plan.entries);
                    for &(reason, n) in &dropped {
                        self.count_dropped(reason, n);
                    }
                    if let Some(held) = self.logs.allow("rejected") {
                        tracing::warn!(
                            status,
                            dropped = ?dropped,
                            entries = plan.entries,
                            stream = %named_stream(text).unwrap_or_else(|| plan.pieces.first().map_or("", |p| p.labels.as_ref())),
                            held_back = held,
                            "Loki rejected entries; not retrying: {}",
                            first_line(text)
                        );
                    }
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
                            self.count_dropped(reason, plan.entries);
                            tracing::error!(
                                status,
                                entries = plan.entries,
                                stream = %plan.pieces.first().map_or("", |p| p.labels.as_ref()),
                                "giving up on a request after {max} retries: {}",
                                first_line(text)
                            );
                            return Fate::GaveUp;
                        }
                    }
                    let delay = backoff.next(retry_after);
                    self.metrics.loki_retries.inc();
                    if status == 401 || status == 403 {
                        tracing::error!(
                            status,
                            "Loki refused our credentials; keeping the data and retrying in {delay:?}: {}",
                            first_line(text)
                        );
                    } else if backoff.attempts() <= 3 || backoff.attempts() % 10 == 0 {
                        if let Some(held) = self.logs.allow("retry") {
                            tracing::warn!(
                                answer = %if status == 0 { text.to_string() } else { format!("{status} {}", first_line(text)) },
                                attempt = backoff.attempts(),
                                stream = %plan.pieces.first().map_or("", |p| p.labels.as_ref()),
                                held_back = held,
                                "push failed; retrying in {delay:?}"
                            );
                        }
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn count_dropped(&self, reason: &'static str, n: usize) {
        if n == 0 {
            return;
        }
        self.metrics
            .loki_dropped
            .get_or_create(&metrics::ReasonLabel { reason })
            .inc_by(n as u64);
    }
}

/// The stream Loki's message names (`… stream '{…}' …`), if any.
fn named_stream(text: &str) -> Option<&str> {
    let i = text.find("stream '")? + "stream '".len();
    let rest = &text[i..];
    let end = rest.find("}'").map(|j| j + 1)?;
    Some(&rest[..end])
}

fn first_line(s: &str) -> &str {
    let l = s.lines().next().unwrap_or("");
    match l.char_indices().nth(300) {
        Some((i, _)) => &l[..i],
        None => l,
    }
}
