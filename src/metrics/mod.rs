//! Metrics: the Prometheus registry (derived-from-logs and self-metrics) and the HTTP server.
//!
//! **Contract:** every name starts with `veloki_`; every label value comes from a closed set
//! (an enum's `as_str()`, a capped set with an `other` bucket, or the pod identity of a file that
//! exists on this node). The README's metrics reference lists them all; a test compares that list
//! with [`Metrics::encode_text`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub mod server;

use crate::model::labels::Severity;

/// `{namespace,container,severity}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LineLabels {
    /// Namespace of the pod.
    pub namespace: String,
    /// Container name.
    pub container: String,
    /// Severity label value.
    pub severity: &'static str,
}

/// `{schedule,outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScheduleOutcome {
    /// Schedule name (`none` for manual backups, `other` past the cap).
    pub schedule: String,
    /// Outcome.
    pub outcome: &'static str,
}

/// `{schedule,reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScheduleReason {
    /// Schedule name.
    pub schedule: String,
    /// Reason class.
    pub reason: &'static str,
}

/// `{schedule}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScheduleLabel {
    /// Schedule name.
    pub schedule: String,
}

/// `{outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// Outcome.
    pub outcome: &'static str,
}

/// `{reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Reason (closed set of the metric in question).
    pub reason: &'static str,
}

/// `{operation,outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PodVolumeLabels {
    /// `backup` or `restore`.
    pub operation: &'static str,
    /// `completed`, `failed` or `canceled`.
    pub outcome: &'static str,
}

/// `{location}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LocationLabel {
    /// Backup storage location name (capped).
    pub location: String,
}

/// `{method,route,code}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// HTTP method (closed set, `OTHER` otherwise).
    pub method: &'static str,
    /// Route template (capped).
    pub route: String,
    /// 3-digit status code.
    pub code: String,
}

/// `{method,route}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodRoute {
    /// HTTP method.
    pub method: &'static str,
    /// Route template.
    pub route: String,
}

/// `{namespace}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabel {
    /// Namespace.
    pub namespace: String,
}

/// `{namespace,pod,container}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FileLabels {
    /// Namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// Container.
    pub container: String,
}

/// `{kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Kind of redaction.
    pub kind: &'static str,
}

/// `{code}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// HTTP status code or `transport`/`timeout`.
    pub code: String,
}

/// `{result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// `{version}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    /// Crate version.
    pub version: &'static str,
}

type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_buckets() -> Histogram {
    // 1 s … ~9 h: backups take seconds to hours.
    Histogram::new(
        [
            1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
            32400.0,
        ]
        .into_iter(),
    )
}

fn http_buckets() -> Histogram {
    Histogram::new(
        [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0,
        ]
        .into_iter(),
    )
}

fn push_buckets() -> Histogram {
    Histogram::new(
        [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]
        .into_iter(),
    )
}

/// Every metric veloki exports.
pub struct Metrics {
    registry: Registry,
    // Derived from logs.
    /// `veloki_log_lines_total{namespace,container,severity}`.
    pub log_lines: Family<LineLabels, Counter>,
    /// `veloki_backups_total{schedule,outcome}`.
    pub backups: Family<ScheduleOutcome, Counter>,
    /// `veloki_backup_failures_total{schedule,reason}`.
    pub backup_failures: Family<ScheduleReason, Counter>,
    /// `veloki_backup_last_outcome_timestamp_seconds{schedule,outcome}`.
    pub backup_last_outcome: Family<ScheduleOutcome, Gauge<f64, AtomicU64>>,
    /// `veloki_backup_duration_seconds{schedule}`.
    pub backup_duration: HistFamily<ScheduleLabel>,
    /// `veloki_restores_total{outcome}`.
    pub restores: Family<OutcomeLabel, Counter>,
    /// `veloki_restore_failures_total{reason}`.
    pub restore_failures: Family<ReasonLabel, Counter>,
    /// `veloki_pod_volume_operations_total{operation,outcome}`.
    pub pod_volume_ops: Family<PodVolumeLabels, Counter>,
    /// `veloki_backup_storage_location_available{location}`.
    pub bsl_available: Family<LocationLabel, Gauge>,
    /// `veloki_http_requests_total{method,route,code}`.
    pub http_requests: Family<HttpLabels, Counter>,
    /// `veloki_http_request_duration_seconds{method,route}`.
    pub http_duration: HistFamily<MethodRoute>,
    // Self.
    /// `veloki_files_watched`.
    pub files_watched: Gauge,
    /// `veloki_read_lines_total{namespace}`.
    pub read_lines: Family<NamespaceLabel, Counter>,
    /// `veloki_read_bytes_total{namespace}`.
    pub read_bytes: Family<NamespaceLabel, Counter>,
    /// `veloki_file_lag_bytes{namespace,pod,container}`.
    pub file_lag: Family<FileLabels, Gauge>,
    /// `veloki_unparsed_lines_total{reason}`.
    pub unparsed: Family<ReasonLabel, Counter>,
    /// `veloki_truncated_lines_total`.
    pub truncated: Counter,
    /// `veloki_redactions_total{kind}`.
    pub redactions: Family<KindLabel, Counter>,
    /// `veloki_loki_requests_total{code}`.
    pub loki_requests: Family<CodeLabel, Counter>,
    /// `veloki_loki_request_duration_seconds`.
    pub loki_request_duration: Histogram,
    /// `veloki_loki_sent_entries_total`.
    pub loki_sent_entries: Counter,
    /// `veloki_loki_sent_bytes_total`.
    pub loki_sent_bytes: Counter,
    /// `veloki_loki_dropped_entries_total{reason}`.
    pub loki_dropped: Family<ReasonLabel, Counter>,
    /// `veloki_loki_retries_total`.
    pub loki_retries: Counter,
    /// `veloki_loki_inflight_requests`.
    pub loki_inflight: Gauge,
    /// `veloki_loki_buffered_bytes`.
    pub loki_buffered_bytes: Gauge,
    /// `veloki_loki_last_success_timestamp_seconds`.
    pub loki_last_success: Gauge<f64, AtomicU64>,
    /// `veloki_positions_writes_total{result}`.
    pub positions_writes: Family<ResultLabel, Counter>,
    /// `process_resident_memory_bytes`.
    pub process_rss: Gauge,
    /// `process_cpu_seconds_total`.
    pub process_cpu: Counter<f64, AtomicU64>,
    cpu_seen_micros: AtomicU64,
}

/// Loki drop reasons (label `reason` of `veloki_loki_dropped_entries_total`).
pub const DROP_REASONS: &[&str] = &[
    "line_too_long",
    "too_old",
    "too_new",
    "too_far_behind",
    "rate_limited",
    "stream_limit",
    "invalid_labels",
    "structured_metadata",
    "other",
];

/// Redaction kinds (label `kind` of `veloki_redactions_total`).
pub const REDACTION_KINDS: &[&str] =
    &["query_param", "url_credentials", "authorization", "aws_key"];

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The `veloki_log_lines_total` children of one container, by [`Severity`] index.
    pub fn line_counters(&self, namespace: &str, container: &str) -> Arc<[Counter; 5]> {
        let mk = |s: Severity| {
            self.log_lines
                .get_or_create(&LineLabels {
                    namespace: namespace.to_string(),
                    container: container.to_string(),
                    severity: s.as_str(),
                })
                .clone()
        };
        Arc::new([
            mk(Severity::Debug),
            mk(Severity::Info),
            mk(Severity::Warning),
            mk(Severity::Error),
            mk(Severity::Critical),
        ])
    }

    /// Builds and registers every family.
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let m = Metrics {
            log_lines: Family::default(),
            backups: Family::default(),
            backup_failures: Family::default(),
            backup_last_outcome: Family::default(),
            backup_duration: Family::new_with_constructor(duration_buckets),
            restores: Family::default(),
            restore_failures: Family::default(),
            pod_volume_ops: Family::default(),
            bsl_available: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(http_buckets),
            files_watched: Gauge::default(),
            read_lines: Family::default(),
            read_bytes: Family::default(),
            file_lag: Family::default(),
            unparsed: Family::default(),
            truncated: Counter::default(),
            redactions: Family::default(),
            loki_requests: Family::default(),
            loki_request_duration: push_buckets(),
            loki_sent_entries: Counter::default(),
            loki_sent_bytes: Counter::default(),
            loki_dropped: Family::default(),
            loki_retries: Counter::default(),
            loki_inflight: Gauge::default(),
            loki_buffered_bytes: Gauge::default(),
            loki_last_success: Gauge::default(),
            positions_writes: Family::default(),
            process_rss: Gauge::default(),
            process_cpu: Counter::default(),
            cpu_seen_micros: AtomicU64::new(0),
            registry: Registry::default(),
        };
        r.register(
            "veloki_log_lines",
            "Log entries shipped, by namespace, container and severity",
            m.log_lines.clone(),
        );
        r.register(
            "veloki_backups",
            "Backups whose outcome veloki decided from the logs, by schedule and outcome",
            m.backups.clone(),
        );
        r.register(
            "veloki_backup_failures",
            "Failed, partially failed and failed-validation backups by schedule and reason class",
            m.backup_failures.clone(),
        );
        r.register(
            "veloki_backup_last_outcome_timestamp_seconds",
            "Log time of the latest decided backup outcome, by schedule and outcome",
            m.backup_last_outcome.clone(),
        );
        r.register(
            "veloki_backup_duration_seconds",
            "Backup duration from its start line to the line that decided it",
            m.backup_duration.clone(),
        );
        r.register(
            "veloki_restores",
            "Restores whose outcome veloki decided from the logs",
            m.restores.clone(),
        );
        r.register(
            "veloki_restore_failures",
            "Failed and partially failed restores by reason class",
            m.restore_failures.clone(),
        );
        r.register(
            "veloki_pod_volume_operations",
            "Pod-volume backups and restores by outcome (node-agent logs)",
            m.pod_volume_ops.clone(),
        );
        r.register("veloki_backup_storage_location_available", "1 when the latest validation of the backup storage location succeeded, 0 when it failed", m.bsl_available.clone());
        r.register(
            "veloki_http_requests",
            "HTTP requests logged by Gin (velero-manager), by method, route template and status",
            m.http_requests.clone(),
        );
        r.register(
            "veloki_http_request_duration_seconds",
            "Latency of HTTP requests logged by Gin, by method and route template",
            m.http_duration.clone(),
        );
        r.register(
            "veloki_files_watched",
            "Log files veloki is following",
            m.files_watched.clone(),
        );
        r.register(
            "veloki_read_lines",
            "Log entries read from files, by namespace",
            m.read_lines.clone(),
        );
        r.register(
            "veloki_read_bytes",
            "Bytes read from log files, by namespace",
            m.read_bytes.clone(),
        );
        r.register(
            "veloki_file_lag_bytes",
            "Bytes of a file not yet delivered to Loki (size minus delivered offset)",
            m.file_lag.clone(),
        );
        r.register(
            "veloki_unparsed_lines",
            "Entries no parser recognised (shipped as is), by reason",
            m.unparsed.clone(),
        );
        r.register(
            "veloki_truncated_lines",
            "Entries cut to sources.max_line_bytes",
            m.truncated.clone(),
        );
        r.register(
            "veloki_redactions",
            "Secrets replaced by <redacted>, by kind",
            m.redactions.clone(),
        );
        r.register(
            "veloki_loki_requests",
            "Push requests by Loki's answer (status code, transport or timeout)",
            m.loki_requests.clone(),
        );
        r.register(
            "veloki_loki_request_duration_seconds",
            "Duration of push requests",
            m.loki_request_duration.clone(),
        );
        r.register(
            "veloki_loki_sent_entries",
            "Entries Loki accepted",
            m.loki_sent_entries.clone(),
        );
        r.register(
            "veloki_loki_sent_bytes",
            "Compressed request bytes Loki accepted",
            m.loki_sent_bytes.clone(),
        );
        r.register(
            "veloki_loki_dropped_entries",
            "Entries Loki rejected for good (never retried), by reason",
            m.loki_dropped.clone(),
        );
        r.register(
            "veloki_loki_retries",
            "Push attempts that were retried",
            m.loki_retries.clone(),
        );
        r.register(
            "veloki_loki_inflight_requests",
            "Push requests in flight",
            m.loki_inflight.clone(),
        );
        r.register(
            "veloki_loki_buffered_bytes",
            "Encoded bytes waiting to be pushed or acknowledged",
            m.loki_buffered_bytes.clone(),
        );
        r.register(
            "veloki_loki_last_success_timestamp_seconds",
            "Unix time of the latest push Loki accepted",
            m.loki_last_success.clone(),
        );
        r.register(
            "veloki_positions_writes",
            "Writes of the positions file by result",
            m.positions_writes.clone(),
        );
        let info: Family<VersionLabel, Gauge> = Family::default();
        info.get_or_create(&VersionLabel {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
        r.register("veloki_build_info", "veloki build information", info);
        r.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            m.process_rss.clone(),
        );
        r.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            m.process_cpu.clone(),
        );
        // Pre-create the closed-set series so dashboards see zeros instead of nothing.
        for reason in crate::parse::UnparsedReason::ALL {
            let _ = m.unparsed.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        for reason in DROP_REASONS {
            let _ = m.loki_dropped.get_or_create(&ReasonLabel { reason });
        }
        for kind in REDACTION_KINDS {
            let _ = m.redactions.get_or_create(&KindLabel { kind });
        }
        Metrics { registry: r, ..m }
    }

    /// Renders the Prometheus text exposition (OpenMetrics text, `# EOF` included).
    pub fn encode_text(&self) -> String {
        self.refresh_process();
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("encoding metrics failed: {e}");
        }
        out
    }

    /// Renders the classic Prometheus text format (`text/plain; version=0.0.4`): the OpenMetrics
    /// text with counter families named `…_total` in `# HELP`/`# TYPE`, and without `# UNIT`
    /// and `# EOF`. Served to scrapers that do not ask for OpenMetrics, and what
    /// `promtool check metrics` lints.
    pub fn encode_prometheus_text(&self) -> String {
        openmetrics_to_classic(&self.encode_text())
    }

    /// Updates the process metrics from `/proc/self` (Linux; a no-op elsewhere).
    pub fn refresh_process(&self) {
        if let Some((rss, cpu_micros)) = read_proc_self() {
            self.process_rss.set(rss as i64);
            let prev = self.cpu_seen_micros.swap(cpu_micros, Ordering::Relaxed);
            if cpu_micros > prev {
                self.process_cpu.inc_by((cpu_micros - prev) as f64 / 1e6);
            }
        }
    }
}

/// Converts OpenMetrics text to the classic Prometheus text format (see
/// [`Metrics::encode_prometheus_text`]).
pub fn openmetrics_to_classic(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len() + 16 * counters.len());
    for l in text.lines() {
        if l == "# EOF" || l.starts_with("# UNIT ") {
            continue;
        }
        let mut renamed = false;
        for p in ["# HELP ", "# TYPE "] {
            if let Some((name, tail)) = l.strip_prefix(p).and_then(|r| r.split_once(' ')) {
                if counters.contains(name) {
                    out.push_str(p);
                    out.push_str(name);
                    out.push_str("_total ");
                    out.push_str(tail);
                    renamed = true;
                }
            }
        }
        if !renamed {
            out.push_str(l);
        }
        out.push('\n');
    }
    out
}

/// Shared handle.
pub type SharedMetrics = Arc<Metrics>;

/// (resident bytes, user+system CPU microseconds) of this process.
pub fn read_proc_self() -> Option<(u64, u64)> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let rss_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = 4096u64;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let ticks = 100u64; // USER_HZ on Linux
    Some((rss_pages * page, (utime + stime) * 1_000_000 / ticks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exported_with_prefix() {
        let m = Metrics::new();
        let text = m.encode_text();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(names.len() >= 30, "{names:?}");
        for n in names {
            assert!(n.starts_with("veloki_") || n.starts_with("process_"), "{n}");
        }
        assert!(text.contains("veloki_loki_dropped_entries_total{reason=\"too_old\"} 0"));
        let classic = m.encode_prometheus_text();
        assert!(classic.contains("# TYPE veloki_log_lines_total counter\n"));
        assert!(classic.contains("# TYPE veloki_backup_duration_seconds histogram\n"));
        assert!(!classic.contains("# EOF"));
    }
}
