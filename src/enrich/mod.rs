//! Enrich: a parsed line in; bounded stream labels, structured metadata, a possibly redacted line
//! and derived-metric updates out.
//!
//! **In:** the file's pod identity ([`FileCtx`]), the entry's timestamp and stream, the line and
//! its [`Record`]. **Out:** [`Enriched`] (labels from closed enums only) plus [`Metadata`]
//! (high-cardinality facts: backup names, error texts, paths, IPs, latencies).
//! **Guarantees:** the line is shipped byte for byte unless a secret was redacted; every label
//! value comes from [`labels`]; each backup/restore outcome is decided and counted once.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::metrics::{self, Metrics};
use crate::model::labels::{priority, Component, LineLabels, Operation, Outcome, Phase, Severity};
use crate::model::{FileCtx, Metadata, StreamKind};
use crate::parse::{CliEvent, Format, GinAccess, Level, Record, Value};

pub mod outcome;
pub mod reason;
pub mod redact;
pub mod route;

use outcome::{bare_name, Decided, Event, Kind, Tracker};

/// The result of enriching one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enriched {
    /// The derived labels.
    pub labels: LineLabels,
    /// True when a secret was redacted: ship [`Enricher::redacted_line`] instead of the line.
    pub redacted: bool,
    /// The outcome this line decided, if any.
    pub decided: Option<Outcome>,
}

/// Enrichment settings.
#[derive(Clone, Debug)]
pub struct EnrichOptions {
    /// Most names the outcome tracker follows.
    pub max_tracked: usize,
    /// Tracker TTL in nanoseconds of log time.
    pub ttl_ns: i64,
    /// Most distinct `schedule` metric label values.
    pub max_schedules: usize,
    /// Most distinct HTTP route templates.
    pub max_routes: usize,
    /// Keep every decided outcome in memory (for `veloki parse --summary`).
    pub keep_decided: bool,
    /// Query-parameter names whose values are redacted (`redact.params`).
    pub redact_params: Vec<String>,
}

impl Default for EnrichOptions {
    fn default() -> Self {
        EnrichOptions {
            max_tracked: 10_000,
            ttl_ns: 24 * 3600 * 1_000_000_000,
            max_schedules: 200,
            max_routes: 200,
            keep_decided: false,
            redact_params: redact::DEFAULT_PARAMS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

type HttpHandles = (Counter, Histogram);

/// The enrichment stage (one per pipeline; not shared between threads).
pub struct Enricher {
    metrics: Arc<Metrics>,
    tracker: Tracker,
    routes: route::RouteTemplater,
    redactor: redact::Redactor,
    /// Metadata of the last enriched line.
    pub meta: Metadata,
    redacted: Vec<u8>,
    decided_log: Vec<Decided>,
    keep_decided: bool,
    due: Vec<Decided>,
    schedules: HashSet<String>,
    max_schedules: usize,
    http: HashMap<(&'static str, u32, u16), HttpHandles>,
    /// The backup/restore each CLI pod last submitted, for the short
    /// `Backup completed with status: X.` line that does not repeat the name.
    cli_submitted: HashMap<(Kind, Arc<str>), String>,
    locations: HashSet<String>,
}

/// Most distinct `location` values of `veloki_backup_storage_location_available`; further
/// locations report as `other`.
pub const MAX_LOCATIONS: usize = 64;

/// Most CLI pods whose last submitted name is remembered (CronJob pods are short-lived).
const MAX_CLI_PODS: usize = 1024;

/// Methods with their own label value; anything else is `OTHER`.
const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
];

fn method_label(m: &[u8]) -> &'static str {
    METHODS
        .iter()
        .find(|x| x.as_bytes() == m)
        .copied()
        .unwrap_or("OTHER")
}

/// Severity from the line's own level.
pub fn severity_of(level: Option<Level>) -> Severity {
    match level {
        Some(Level::Trace | Level::Debug) => Severity::Debug,
        Some(Level::Info) | None => Severity::Info,
        Some(Level::Warning) => Severity::Warning,
        Some(Level::Error) => Severity::Error,
        Some(Level::Fatal | Level::Panic) => Severity::Critical,
    }
}

/// The fields of a Velero line that enrichment looks at, found in one pass.
#[derive(Default)]
struct Known {
    backup: Option<Value>,
    backuprequest: Option<Value>,
    key: Option<Value>,
    backup_cap: Option<Value>,
    restore: Option<Value>,
    restore_cap: Option<Value>,
    schedule: Option<Value>,
    error: Option<Value>,
    controller: Option<Value>,
    log_source: Option<Value>,
    plugin_name: Option<Value>,
    cmd: Option<Value>,
    phase: Option<Value>,
    bsl: Option<Value>,
    backup_location: Option<Value>,
    pod_volume: bool,
    repository: bool,
}

impl Known {
    fn scan(line: &[u8], rec: &Record) -> Known {
        let mut k = Known::default();
        for f in &rec.fields {
            let v = Some(f.value);
            match f.key.get(line) {
                b"backup" => k.backup = v,
                b"backuprequest" => k.backuprequest = v,
                b"key" => k.key = v,
                b"Backup" => k.backup_cap = v,
                b"restore" => k.restore = v,
                b"Restore" => k.restore_cap = v,
                b"schedule" => k.schedule = v,
                b"error" | b"error.message" => k.error = v,
                b"controller" => k.controller = v,
                b"logSource" => k.log_source = v,
                b"pluginName" => k.plugin_name = v,
                b"cmd" => k.cmd = v,
                b"phase" => k.phase = v,
                b"backup-storage-location" => k.bsl = v,
                b"backupLocation" => k.backup_location = v,
                b"podvolumebackup" | b"PodVolumeBackup" | b"PodVolumeRestore" | b"pvb" | b"PVB"
                | b"podvolumerestore" | b"dataupload" | b"datadownload" => k.pod_volume = true,
                b"backupRepo" | b"BackupRepository" | b"repo name" | b"BSL name" => {
                    k.repository = true
                }
                _ => {}
            }
        }
        k
    }

    /// The backup this line is about: (name as written, whether it is `ns/name`).
    fn backup_ref(&self) -> Option<Value> {
        self.backup
            .or(self.backuprequest)
            .or(self.key)
            .or(self.backup_cap)
    }
}

impl Enricher {
    /// A new enricher reporting to `metrics`.
    pub fn new(metrics: Arc<Metrics>, opts: &EnrichOptions) -> Enricher {
        Enricher {
            metrics,
            tracker: Tracker::new(opts.max_tracked, opts.ttl_ns),
            routes: route::RouteTemplater::new(route::DEFAULT_TEMPLATES, opts.max_routes),
            redactor: redact::Redactor::new(&opts.redact_params),
            meta: Metadata::default(),
            redacted: Vec::new(),
            decided_log: Vec::new(),
            keep_decided: opts.keep_decided,
            due: Vec::new(),
            schedules: HashSet::new(),
            max_schedules: opts.max_schedules,
            http: HashMap::new(),
            cli_submitted: HashMap::new(),
            locations: HashSet::new(),
        }
    }

    /// The redacted line of the last [`Enriched`] whose `redacted` is true.
    pub fn redacted_line(&self) -> &[u8] {
        &self.redacted
    }

    /// Every decided outcome so far (only with `keep_decided`).
    pub fn decided(&self) -> &[Decided] {
        &self.decided_log
    }

    /// The outcome tracker (state persistence).
    pub fn tracker_mut(&mut self) -> &mut Tracker {
        &mut self.tracker
    }

    /// Lets the tracker confirm what is due (into a reused buffer) and counts it.
    fn confirm(&mut self, f: impl FnOnce(&mut Tracker, &mut Vec<Decided>)) {
        let mut due = std::mem::take(&mut self.due);
        f(&mut self.tracker, &mut due);
        for d in due.drain(..) {
            self.record(&d);
        }
        self.due = due;
    }

    /// Confirms outcomes pending for longer than two minutes of wall time and counts them.
    pub fn tick_wall(&mut self) {
        self.confirm(|t, due| t.tick_wall(std::time::Duration::from_secs(120), due));
    }

    /// Confirms every pending outcome (shutdown, end of input) and counts them.
    pub fn flush(&mut self) {
        self.confirm(|t, due| t.flush(due));
    }

    /// Enriches one line; metadata is left in [`Enricher::meta`].
    pub fn enrich(
        &mut self,
        ctx: &FileCtx,
        ts_ns: i64,
        stream: StreamKind,
        line: &[u8],
        rec: &Record,
    ) -> Enriched {
        self.meta.clear();
        let mut severity = severity_of(rec.level);
        let mut operation = Operation::Other;
        let mut status: Option<Phase> = None;
        let mut decided: Option<Outcome> = None;
        let mut component = ctx.component;
        match rec.format {
            Format::LogrusText | Format::LogrusJson => {
                let k = Known::scan(line, rec);
                if k.cmd.is_some() || k.plugin_name.is_some() {
                    component = Some(Component::VeleroPlugin);
                }
                operation = operation_of(line, &k, ctx);
                let (st, dec) = self.velero_semantics(line, rec, &k, ts_ns);
                status = st;
                decided = dec;
                self.velero_metadata(line, &k);
            }
            Format::GinAccess => {
                operation = Operation::Http;
                if let Some(g) = &rec.gin {
                    severity = match g.status {
                        500.. => Severity::Error,
                        400..=499 => Severity::Warning,
                        _ => Severity::Info,
                    };
                    self.gin(line, g);
                }
            }
            Format::GinError | Format::GinDebug => operation = Operation::Http,
            Format::VeleroCli => {
                operation = match rec.cli {
                    Some(CliEvent::RestoreSubmitted { .. } | CliEvent::RestoreCompleted { .. }) => {
                        Operation::Restore
                    }
                    _ => Operation::Backup,
                };
                if component.is_none() {
                    component = Some(Component::VeleroCli);
                }
                if let Some(cli) = rec.cli {
                    let (st, dec) = self.cli(&ctx.pod, line, cli, ts_ns);
                    status = st;
                    decided = dec;
                }
            }
            _ => {}
        }
        let component = component.unwrap_or(match rec.format {
            Format::LogrusText | Format::LogrusJson => Component::VeleroServer,
            Format::GinAccess | Format::GinError | Format::GinDebug => Component::VeleroManager,
            _ => Component::Other,
        });
        self.meta.push("stream", stream.as_str());
        if let Some(c) = &ctx.line_counters {
            c[severity as usize].inc();
        }
        if rec.format == Format::Plain {
            if let Some(r) = rec.unparsed {
                self.metrics
                    .unparsed
                    .get_or_create(&metrics::ReasonLabel { reason: r.as_str() })
                    .inc();
            }
        }
        let redactions = self.redactor.redact(line, &mut self.redacted);
        if !redactions.is_empty() {
            self.count_redactions(redactions);
        }
        Enriched {
            labels: LineLabels {
                component,
                severity,
                operation,
                backup_status: status,
                priority: priority(severity, status),
            },
            redacted: !redactions.is_empty(),
            decided,
        }
    }

    fn count_redactions(&self, r: redact::Redactions) {
        for (kind, n) in [
            ("query_param", r.query_param),
            ("url_credentials", r.url_credentials),
            ("authorization", r.authorization),
            ("aws_key", r.aws_key),
        ] {
            if n > 0 {
                self.metrics
                    .redactions
                    .get_or_create(&metrics::KindLabel { kind })
                    .inc_by(n as u64);
            }
        }
    }

    fn velero_metadata(&mut self, line: &[u8], k: &Known) {
        if let Some(b) = k.backup_ref() {
            let t = b.text(line);
            self.meta.push("backup", &t);
            if let Some(s) = k.schedule {
                self.meta.push("schedule", &s.text(line));
            } else if let Some(s) = outcome::schedule_of(bare_name(&t)) {
                self.meta.push("schedule", s);
            }
        } else if let Some(s) = k.schedule {
            self.meta.push("schedule", &s.text(line));
        }
        if let Some(r) = k.restore.or(k.restore_cap) {
            self.meta.push("restore", &r.text(line));
        }
        if let Some(e) = k.error {
            let text = e.text(line);
            let mut red = Vec::new();
            let r = self.redactor.redact(text.as_bytes(), &mut red);
            if r.is_empty() {
                self.meta.push("error", &text);
            } else {
                self.meta.push("error", &String::from_utf8_lossy(&red));
            }
            if self.meta.get("reason").is_none() {
                self.meta.push("reason", reason::classify(&text).as_str());
            }
        }
        if let Some(c) = k.controller {
            self.meta.push("controller", &c.text(line));
        }
        if let Some(l) = k.log_source {
            self.meta.push("log_source", &l.text(line));
        }
        if let Some(p) = k.plugin_name.or(k.cmd) {
            let t = p.text(line);
            self.meta.push("plugin", t.rsplit('/').next().unwrap_or(&t));
        }
    }

    fn gin(&mut self, line: &[u8], g: &GinAccess) {
        let method = method_label(g.method.get(line));
        let path = g.path.text(line);
        let route_id = self.routes.route(&path);
        self.meta.push("method", method);
        self.meta.push("path", &path);
        let route_name = self.routes.name(route_id).to_string();
        self.meta.push("route", &route_name);
        self.meta
            .push_fmt("status_code", format_args!("{}", g.status));
        self.meta.push_fmt(
            "latency_ms",
            format_args!("{:.3}", g.latency_seconds * 1000.0),
        );
        self.meta
            .push("client_ip", &String::from_utf8_lossy(g.client_ip.get(line)));
        let metrics = &self.metrics;
        let (c, h) = self
            .http
            .entry((method, route_id, g.status))
            .or_insert_with(|| {
                let route = route_name.clone();
                (
                    metrics
                        .http_requests
                        .get_or_create(&metrics::HttpLabels {
                            method,
                            route: route.clone(),
                            code: format!("{:03}", g.status),
                        })
                        .clone(),
                    metrics
                        .http_duration
                        .get_or_create(&metrics::MethodRoute { method, route })
                        .clone(),
                )
            });
        c.inc();
        if g.latency_seconds.is_finite() && g.latency_seconds >= 0.0 {
            h.observe(g.latency_seconds);
        }
    }

    /// Remembers the name a CLI pod submitted.
    fn cli_submitted(&mut self, kind: Kind, pod: &Arc<str>, name: &str) {
        if self.cli_submitted.len() >= MAX_CLI_PODS {
            self.cli_submitted.clear();
        }
        self.cli_submitted
            .insert((kind, pod.clone()), name.to_string());
    }

    fn cli(
        &mut self,
        pod: &Arc<str>,
        line: &[u8],
        cli: CliEvent,
        ts_ns: i64,
    ) -> (Option<Phase>, Option<Outcome>) {
        let text = |s: crate::parse::Span| String::from_utf8_lossy(s.get(line)).into_owned();
        match cli {
            CliEvent::BackupSubmitted { name } => {
                self.cli_start(Kind::Backup, pod, &text(name), ts_ns)
            }
            CliEvent::RestoreSubmitted { name } => {
                self.cli_start(Kind::Restore, pod, &text(name), ts_ns)
            }
            CliEvent::BackupCompleted { phase, name } => {
                self.cli_final(Kind::Backup, pod, &text(phase), name.map(text), ts_ns)
            }
            CliEvent::RestoreCompleted { phase, name } => {
                self.cli_final(Kind::Restore, pod, &text(phase), name.map(text), ts_ns)
            }
            _ => (None, None),
        }
    }

    /// `Backup|Restore request "<name>" submitted successfully.`
    fn cli_start(
        &mut self,
        kind: Kind,
        pod: &Arc<str>,
        name: &str,
        ts_ns: i64,
    ) -> (Option<Phase>, Option<Outcome>) {
        self.cli_submitted(kind, pod, name);
        let (key, ev) = match kind {
            Kind::Backup => ("backup", Event::BackupStarted),
            Kind::Restore => ("restore", Event::RestoreStarted),
        };
        self.meta.push(key, name);
        self.apply(name, ev, ts_ns);
        (Some(Phase::New), None)
    }

    /// `Backup|Restore completed with status: <Phase>. …` — the name comes from the line's
    /// `describe` hint or, for the short form, from what this CLI pod submitted.
    fn cli_final(
        &mut self,
        kind: Kind,
        pod: &Arc<str>,
        phase: &str,
        name: Option<String>,
        ts_ns: i64,
    ) -> (Option<Phase>, Option<Outcome>) {
        let p = Phase::parse(phase);
        let n = name.or_else(|| self.cli_submitted.get(&(kind, pod.clone())).cloned());
        if let Some(n) = &n {
            match kind {
                Kind::Backup => {
                    self.meta.push("backup", n);
                    if let Some(s) = outcome::schedule_of(n) {
                        self.meta.push("schedule", s);
                    }
                }
                Kind::Restore => self.meta.push("restore", n),
            }
        }
        let decided = match (p, &n) {
            (Some(p), Some(n)) => {
                let ev = match kind {
                    Kind::Backup => Event::BackupCliFinal(p),
                    Kind::Restore => Event::RestoreCliFinal(p),
                };
                self.apply(n, ev, ts_ns)
            }
            _ => None,
        };
        self.note_cli_outcome(p);
        (p, decided)
    }

    /// The CLI's final line states the outcome with authority: annotate it even when the count
    /// waits for the server's reason.
    fn note_cli_outcome(&mut self, phase: Option<Phase>) {
        if let Some(o) = phase.and_then(|p| p.outcome()) {
            if self.meta.get("outcome").is_none() {
                self.meta.push("outcome", o.as_str());
            }
        }
    }

    /// Feeds an event to the tracker; counts and annotates the decision if there is one.
    fn apply(&mut self, name: &str, ev: Event, ts_ns: i64) -> Option<Outcome> {
        let d = self.tracker.on_event(name, ev, ts_ns)?;
        self.meta.push("outcome", d.outcome.as_str());
        if let Some(r) = d.reason {
            if self.meta.get("reason").is_none() {
                self.meta.push("reason", r.as_str());
            }
        }
        if let Some(t) = &d.reason_text {
            if self.meta.get("error").is_none() {
                self.meta.push("error", t);
            }
        }
        let o = d.outcome;
        self.record(&d);
        Some(o)
    }

    fn schedule_label(&mut self, s: Option<&str>) -> String {
        match s {
            None => "none".into(),
            Some(s) if self.schedules.contains(s) => s.to_string(),
            Some(s) if self.schedules.len() < self.max_schedules => {
                self.schedules.insert(s.to_string());
                s.to_string()
            }
            Some(_) => "other".into(),
        }
    }

    /// Counts a decided outcome in the derived metrics.
    fn record(&mut self, d: &Decided) {
        let m = self.metrics.clone();
        match d.kind {
            Kind::Backup => {
                let schedule = self.schedule_label(d.schedule.as_deref());
                let outcome = d.outcome.as_str();
                m.backups
                    .get_or_create(&metrics::ScheduleOutcome {
                        schedule: schedule.clone(),
                        outcome,
                    })
                    .inc();
                m.backup_last_outcome
                    .get_or_create(&metrics::ScheduleOutcome {
                        schedule: schedule.clone(),
                        outcome,
                    })
                    .set(d.at_ns as f64 / 1e9);
                if let Some(r) = d.reason {
                    m.backup_failures
                        .get_or_create(&metrics::ScheduleReason {
                            schedule: schedule.clone(),
                            reason: r.as_str(),
                        })
                        .inc();
                }
                if let Some(secs) = d.duration_seconds {
                    m.backup_duration
                        .get_or_create(&metrics::ScheduleLabel { schedule })
                        .observe(secs);
                }
            }
            Kind::Restore => {
                m.restores
                    .get_or_create(&metrics::OutcomeLabel {
                        outcome: d.outcome.as_str(),
                    })
                    .inc();
                if let Some(r) = d.reason {
                    m.restore_failures
                        .get_or_create(&metrics::ReasonLabel { reason: r.as_str() })
                        .inc();
                }
            }
        }
        if self.keep_decided && self.decided_log.len() < 1_000_000 {
            self.decided_log.push(d.clone());
        }
    }

    /// Velero lifecycle: which phase the line states and which outcome it decides.
    fn velero_semantics(
        &mut self,
        line: &[u8],
        rec: &Record,
        k: &Known,
        ts_ns: i64,
    ) -> (Option<Phase>, Option<Outcome>) {
        // Confirm pending decisions whose grace period passed (log time).
        self.confirm(|t, due| t.tick(ts_ns, due));

        let msg: Cow<str> = match rec.msg {
            Some(m) => m.text(line),
            None => Cow::Borrowed(""),
        };
        self.pod_volume_and_bsl(line, &msg, k);

        let is_error = rec.level.is_some_and(|l| l >= Level::Error);
        let error_text = || k.error.map(|e| e.text(line).into_owned());

        // Restores first: their lines carry restore=/Restore=.
        if let Some(r) = k.restore.or(k.restore_cap) {
            if k.pod_volume {
                return (None, None);
            }
            let written = r.text(line);
            let name = bare_name(&written);
            let ev = if msg == "starting restore" {
                Some((Event::RestoreStarted, Some(Phase::InProgress)))
            } else if msg == "restore completed" {
                Some((Event::RestoreCompleted, None))
            } else if let Some(p) = msg.strip_prefix("Marking restore ") {
                let word = p.rsplit(' ').next().unwrap_or("");
                let phase = match word {
                    "completed" | "Completed" => Some(Phase::Completed),
                    _ => Phase::parse(word),
                };
                phase.map(|ph| (Event::RestoreMarked(ph), Some(ph)))
            } else if msg == "Restore failed" {
                Some((
                    Event::RestoreFailed(error_text().unwrap_or_else(|| msg.to_string())),
                    Some(Phase::Failed),
                ))
            } else if msg.contains("restore error: ") || (is_error && k.error.is_some()) {
                Some((
                    Event::RestoreErrorLine(error_text().unwrap_or_else(|| msg.to_string())),
                    None,
                ))
            } else if is_error {
                Some((Event::RestoreErrorLine(msg.to_string()), None))
            } else {
                None
            };
            if let Some((ev, phase)) = ev {
                let decided = self.apply(name, ev, ts_ns);
                let phase = decided.map(Phase::from).or(phase);
                return (phase, decided);
            }
            return (None, None);
        }

        let bref = match k.backup_ref() {
            Some(b) => b,
            None => return (None, None),
        };
        let written = bref.text(line);
        let qualified = written.contains('/');
        let name = bare_name(&written);
        if let Some(s) = k.schedule {
            let s = s.text(line);
            self.tracker
                .set_schedule(Kind::Backup, name, bare_name(&s), ts_ns);
        }
        let m: &str = &msg;
        let (ev, phase): (Option<Event>, Option<Phase>) = if m == "backup failed" {
            (
                Some(Event::BackupFailed(
                    error_text().unwrap_or_else(|| "backup failed".into()),
                )),
                Some(Phase::Failed),
            )
        } else if let Some(p) = m.strip_prefix("Initial backup processing complete, moving to ") {
            let ph = Phase::parse(p.trim());
            (ph.map(Event::BackupMovingTo), ph)
        } else if m == "Backup completed" {
            (Some(Event::BackupCompletedLegacy), None)
        } else if m == "Setting up backup log" {
            (Some(Event::BackupStarted), Some(Phase::InProgress))
        } else if m.starts_with("Updating backup's") {
            (Some(Event::BackupStatusUpdate), None)
        } else if let Some(p) = m.strip_prefix("Marking backup ") {
            let ph = Phase::parse(p.rsplit(' ').next().unwrap_or(""));
            (ph.map(Event::BackupMarked), ph)
        } else if m.starts_with("Cannot check progress on Backup operations")
            && m.ends_with("marking backup PartiallyFailed")
        {
            (
                Some(Event::BackupMarked(Phase::PartiallyFailed)),
                Some(Phase::PartiallyFailed),
            )
        } else if m == "failed to validate backup status" {
            (
                Some(Event::BackupPhaseSeen(Phase::FailedValidation)),
                Some(Phase::FailedValidation),
            )
        } else if m == "Backup is not handled" {
            let ph = k.phase.and_then(|p| Phase::parse(&p.text(line)));
            (ph.map(Event::BackupPhaseSeen), ph)
        } else if m.starts_with("Queueing backup ") {
            (None, Some(Phase::Queued))
        } else if m.starts_with("Dequeueing backup ") {
            (None, Some(Phase::ReadyToStart))
        } else if is_error && qualified {
            let text = match error_text() {
                // A crashed plugin: go-plugin's `error=` is only `exit status 2` / `signal: …`.
                Some(e) if m == "plugin process exited" => format!("{m}: {e}"),
                Some(e) => e,
                None => m.to_string(),
            };
            (Some(Event::BackupErrorLine(text)), None)
        } else {
            (None, None)
        };
        let decided = match ev {
            Some(ev) => self.apply(name, ev, ts_ns),
            None => None,
        };
        (decided.map(Phase::from).or(phase), decided)
    }

    fn pod_volume_and_bsl(&mut self, line: &[u8], msg: &str, k: &Known) {
        let pv = |op: &'static str, outcome: &'static str| Some((op, outcome));
        let hit = match msg {
            "PodVolumeBackup completed" | "PVB completed" => pv("backup", "completed"),
            "Async fs backup data path failed" => pv("backup", "failed"),
            "Async fs backup data path canceled" => pv("backup", "canceled"),
            "Restore completed" if k.pod_volume => pv("restore", "completed"),
            "PVR completed" => pv("restore", "completed"),
            "Async fs restore data path failed" => pv("restore", "failed"),
            "Async fs restore data path canceled" => pv("restore", "canceled"),
            _ => None,
        };
        if let Some((operation, outcome)) = hit {
            self.metrics
                .pod_volume_ops
                .get_or_create(&metrics::PodVolumeLabels { operation, outcome })
                .inc();
        }
        let avail = if msg.starts_with("BackupStorageLocations is valid") {
            Some(1)
        } else if msg.starts_with("BackupStorageLocation is invalid") {
            Some(0)
        } else {
            None
        };
        if let (Some(v), Some(loc)) = (avail, k.bsl.or(k.backup_location)) {
            let loc = bare_name(&loc.text(line)).to_string();
            // Locations are few; cap anyway so a misbehaving log cannot grow the family.
            let location = if self.locations.contains(&loc) {
                loc
            } else if self.locations.len() < MAX_LOCATIONS {
                self.locations.insert(loc.clone());
                loc
            } else {
                "other".to_string()
            };
            let fam = &self.metrics.bsl_available;
            let label = metrics::LocationLabel { location };
            fam.get_or_create(&label).set(v);
        }
    }
}

fn operation_of(line: &[u8], k: &Known, ctx: &FileCtx) -> Operation {
    if let Some(c) = k.controller {
        let c = c.raw(line);
        let lc = c.to_ascii_lowercase();
        match lc.as_slice() {
            b"backup-storage-location" | b"backupstoragelocation" | b"backup-sync" => {
                return Operation::Storage
            }
            b"backuprepository" | b"backup-repository" => return Operation::Repository,
            b"podvolumebackup" | b"podvolumerestore" | b"dataupload" | b"datadownload"
            | b"pod-volume-backup" => return Operation::PodVolume,
            b"schedule" => return Operation::Schedule,
            b"restore" | b"restore-finalizer" | b"restore-operations" => return Operation::Restore,
            _ => {}
        }
        if lc.starts_with(b"backup") {
            return Operation::Backup;
        }
    }
    if k.pod_volume {
        Operation::PodVolume
    } else if k.restore.is_some() || k.restore_cap.is_some() {
        Operation::Restore
    } else if k.bsl.is_some() || k.backup_location.is_some() {
        Operation::Storage
    } else if k.repository {
        Operation::Repository
    } else if k.backup_ref().is_some() {
        Operation::Backup
    } else if k.schedule.is_some() {
        Operation::Schedule
    } else if ctx.component == Some(Component::NodeAgent) {
        Operation::PodVolume
    } else {
        Operation::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Hint;
    use crate::parse::parse_into;

    fn redacted(opts: &EnrichOptions, line: &str) -> String {
        let mut en = Enricher::new(Arc::new(Metrics::new()), opts);
        let ctx = FileCtx::new("velero-manager", "p", "velero-manager", Hint::Gin);
        let mut rec = Record::new();
        parse_into(line.as_bytes(), ctx.hint, &mut rec);
        let e = en.enrich(&ctx, 0, StreamKind::Stdout, line.as_bytes(), &rec);
        if e.redacted {
            String::from_utf8(en.redacted_line().to_vec()).unwrap()
        } else {
            line.to_string()
        }
    }

    #[test]
    fn redaction_params_come_from_the_options() {
        let line = r#"[GIN] 2026/04/10 - 02:00:05 | 200 |      41.237µs |       10.42.0.1 | GET      "/cb?sig=abc&token=t0k&x=1""#;
        let default = redacted(&EnrichOptions::default(), line);
        assert!(default.contains("token=<redacted>"), "{default}");
        assert!(default.contains("sig=abc"), "{default}");
        let custom = EnrichOptions {
            redact_params: vec!["sig".into()],
            ..EnrichOptions::default()
        };
        let got = redacted(&custom, line);
        assert!(got.contains("sig=<redacted>"), "{got}");
        assert!(
            got.contains("token=t0k"),
            "the list replaces the default: {got}"
        );
        let none = EnrichOptions {
            redact_params: Vec::new(),
            ..EnrichOptions::default()
        };
        assert_eq!(redacted(&none, line), line);
    }
}
