//! Cardinality: 100,000 distinct backup names, restore names, schedules, Gin paths, client IPs
//! and error texts go through parse → enrich → `StreamRegistry::stream_id` in-process. The
//! number of streams must stay small and bounded by the closed label enums, every label value
//! must come from its closed enum (or a capped set in the metrics), and none of the distinct
//! names, paths, IPs or texts may reach a label: they belong in structured metadata.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, OnceLock};

use regex::Regex;
use veloki::batch::StreamRegistry;
use veloki::config::Config;
use veloki::enrich::{EnrichOptions, Enricher};
use veloki::metrics::{Metrics, DROP_REASONS, REDACTION_KINDS};
use veloki::model::labels::{Component, Operation, Outcome, Phase, Priority, Reason, Severity};
use veloki::model::{FileCtx, StreamKind};
use veloki::parse::{parse_into, Record, UnparsedReason};

const N: usize = 100_000;
const MAX_ROUTES: usize = 200;
const MAX_SCHEDULES: usize = 200;

/// (namespace, pod, container) of the files fed.
const PODS: &[(&str, &str, &str)] = &[
    ("velero", "velero-7d9f8c6b5-x2x9k", "velero"),
    (
        "velero-manager",
        "velero-manager-6b8d9c7f4-p9l2m",
        "velero-manager",
    ),
    (
        "velero",
        "core-cl1-daily-backup-29071234-xk2lp",
        "velero-backup",
    ),
];

struct Run {
    /// Stream label strings, by stream id.
    streams: Vec<String>,
    /// The `/metrics` exposition after the run.
    exposition: String,
    /// Client IPs fed (for the "never a label" check).
    ips: HashSet<String>,
    /// Metadata values seen for a few keys (proof they were kept, just not as labels).
    metadata_samples: BTreeMap<&'static str, usize>,
}

fn name_of(i: usize) -> String {
    // Half schedule-created (`<schedule>-<timestamp>`), half manual.
    if i % 2 == 0 {
        format!("schz{i}-20260410{:06}", i % 1_000_000)
    } else {
        format!("bkz{i}")
    }
}

fn ip_of(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// A word of letters only, distinct per `i` (so it never looks like an id to the templater).
fn word(mut i: usize) -> String {
    let mut s = String::from("wz");
    loop {
        s.push(char::from(b'a' + (i % 26) as u8));
        i /= 26;
        if i == 0 {
            break;
        }
    }
    s
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let cfg = Config::default();
        let routes = cfg.effective_routes();
        let metrics = Arc::new(Metrics::new());
        let mut en = Enricher::new(
            metrics.clone(),
            &EnrichOptions {
                max_routes: MAX_ROUTES,
                max_schedules: MAX_SCHEDULES,
                ..EnrichOptions::default()
            },
        );
        let mut reg = StreamRegistry::new(&[], 500);
        let ctxs: Vec<FileCtx> = PODS
            .iter()
            .map(|(ns, pod, c)| {
                let r = routes.iter().find(|r| r.matches.matches(ns, c)).unwrap();
                let mut ctx = FileCtx::new(ns, pod, c, r.parser);
                ctx.line_counters = Some(metrics.line_counters(ns, c));
                ctx.component = r.component;
                ctx
            })
            .collect();
        let mut rec = Record::new();
        let mut ips = HashSet::new();
        let mut metadata_samples: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut ts: i64 = 1_775_786_400 * 1_000_000_000;
        let mut line = String::with_capacity(512);
        let mut feed = |file: usize, line: &str, en: &mut Enricher, reg: &mut StreamRegistry| {
            ts += 7_000_000;
            parse_into(line.as_bytes(), ctxs[file].hint, &mut rec);
            let e = en.enrich(&ctxs[file], ts, StreamKind::Stdout, line.as_bytes(), &rec);
            for k in ["backup", "restore", "error", "path", "client_ip", "schedule"] {
                if en.meta.get(k).is_some() {
                    *metadata_samples.entry(k).or_default() += 1;
                }
            }
            reg.stream_id(file as u32, &ctxs[file], &e.labels);
        };
        let methods = ["GET", "POST", "DELETE", "PATCH", "PROPFIND"];
        let codes = [200, 201, 204, 302, 400, 401, 404, 500, 503];
        for i in 0..N {
            let name = name_of(i);
            let t = "2026-04-10T02:00:00Z";
            let ls = r#"logSource="pkg/controller/backup_controller.go:601""#;
            let mut v = |l: &str, en: &mut Enricher, reg: &mut StreamRegistry| feed(0, l, en, reg);
            macro_rules! velero {
                ($($arg:tt)*) => {{
                    line.clear();
                    line.push_str(&format!($($arg)*));
                    v(&line, &mut en, &mut reg);
                }};
            }
            if i % 2 == 0 {
                velero!(r#"time="{t}" level=info msg="Schedule is due, going to submit backup." {ls} schedule=velero/schz{i}"#);
            }
            if i % 5 == 4 {
                velero!(r#"time="{t}" level=info msg="Queueing backup {name}, queue position {}" backup=velero/{name} controller=backup-queue {ls}"#, i % 7);
            }
            velero!(r#"time="{t}" level=info msg="Setting up backup log" backup=velero/{name} controller=backup {ls}"#);
            velero!(r#"time="{t}" level=error msg="Error backing up item" backup=velero/{name} error="errz{i}: https://minio:9000/b?token=tz{i}x&X-Amz-Signature=s{i} failed" {ls} name=pod-{i}"#);
            match i % 6 {
                0 => velero!(r#"time="{t}" level=info msg="Backup completed" backup=velero/{name} controller=backup {ls}"#),
                1 => velero!(r#"time="{t}" level=info msg="Initial backup processing complete, moving to Finalizing" backup=velero/{name} {ls}"#),
                2 => velero!(r#"time="{t}" level=error msg="backup failed" backuprequest=velero/{name} controller=backup error="rpc error: code = Unknown desc = errz{i} AccessDenied" {ls}"#),
                3 => {
                    velero!(r#"time="{t}" level=info msg="Initial backup processing complete, moving to WaitingForPluginOperations" backup=velero/{name} {ls}"#);
                    velero!(r#"time="{t}" level=info msg="Marking backup {name} FinalizingPartiallyFailed" backup=velero/{name} {ls}"#);
                }
                4 => velero!(r#"time="{t}" level=debug msg="Backup is not handled" backup=velero/{name} phase=FailedValidation {ls}"#),
                _ => {
                    velero!(r#"time="{t}" level=info msg="starting restore" {ls} restore=velero/{name}-rz{i}"#);
                    velero!(r#"time="{t}" level=error msg="Namespace ns{i}, resource restore error: errz{i}" {ls} restore=velero/{name}-rz{i}"#);
                    velero!(r#"time="{t}" level=info msg="restore completed" {ls} restore=velero/{name}-rz{i}"#);
                }
            }
            velero!(r#"time="{t}" level=info msg="Updating backup's status" backuprequest=velero/{name} controller=backup {ls}"#);
            if i % 100 == 0 {
                velero!(r#"time="{t}" level=info msg="BackupStorageLocations is valid, marking as available" backup-storage-location=velero/bslz{i} controller=backup-storage-location {ls}"#);
            }
            if i % 50 == 0 {
                velero!(r#"time="{t}" level=error msg="plugin process exited" backup=velero/{name} cmd=/plugins/velero-plugin-for-aws error="exit status 2" id={i} {ls} plugin=/plugins/velero-plugin-for-aws"#);
            }

            // Gin: a backup path, a numeric path, and a letters-only path (capped routes).
            let ip = ip_of(i);
            ips.insert(ip.clone());
            let m = methods[i % methods.len()];
            let code = codes[i % codes.len()];
            for path in [
                format!("/api/v1/backups/{name}"),
                format!("/x/{}/y", i * 7919),
                format!("/r/{}", word(i)),
            ] {
                line.clear();
                line.push_str(&format!(
                    "[GIN] 2026/04/10 - 02:00:05 | {code} | {:>9}µs | {ip:>15} | {m:<8} \"{path}?state=sz{i}\"",
                    i % 999 + 1
                ));
                feed(1, &line, &mut en, &mut reg);
            }

            if i % 10 == 0 {
                line.clear();
                line.push_str(&format!("Backup request \"{name}\" submitted successfully."));
                feed(2, &line, &mut en, &mut reg);
                line.clear();
                line.push_str("Backup completed with status: PartiallyFailed.");
                feed(2, &line, &mut en, &mut reg);
            }
        }
        en.flush();
        Run {
            streams: (0..reg.stream_count())
                .map(|s| reg.label_string(s as u32).to_string())
                .collect(),
            exposition: metrics.encode_text(),
            ips,
            metadata_samples,
        }
    })
}

fn pairs(labels: &str) -> Vec<(String, String)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re =
        RE.get_or_init(|| Regex::new(r#"([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)""#).unwrap());
    re.captures_iter(labels)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

/// Fragments of the fed data that must never be part of a label value.
fn assert_no_fed_data(what: &str, value: &str, ips: &HashSet<String>) {
    for marker in [
        "schz", "bkz", "errz", "-rz", "tz", "sz", "ns1", "/x/1", "/x/7", "pod-",
    ] {
        assert!(
            !(value.contains(marker) && !(marker == "schz" && what == "schedule")),
            "{what}={value:?} carries fed data ({marker})"
        );
    }
    if what != "le" {
        static IP: OnceLock<Regex> = OnceLock::new();
        let ip = IP.get_or_init(|| Regex::new(r"\d+\.\d+\.\d+\.\d+").unwrap());
        assert!(!ip.is_match(value), "{what}={value:?} looks like an IP");
        assert!(!ips.contains(value), "{what}={value:?} is a client IP");
    }
}

#[test]
fn streams_stay_few_and_closed() {
    let r = run();
    // Per pod, only the closed enums vary; priority is a function of severity and status.
    let bound_per_pod =
        Component::ALL.len() * Severity::ALL.len() * Operation::ALL.len() * (Phase::ALL.len() + 1);
    let mut per_pod: BTreeMap<String, usize> = BTreeMap::new();
    for s in &r.streams {
        let p = pairs(s);
        let keys: BTreeSet<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        for k in &keys {
            assert!(
                veloki::model::labels::STREAM_LABELS.contains(k),
                "unexpected label {k} in {s}"
            );
        }
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (ns, pod, c) = (
            get("namespace").unwrap(),
            get("pod").unwrap(),
            get("container").unwrap(),
        );
        assert!(PODS.contains(&(ns, pod, c)), "{s}");
        assert_eq!(get("job").unwrap(), format!("{ns}/{c}"));
        assert!(Component::parse(get("component").unwrap()).is_some(), "{s}");
        assert!(Severity::parse(get("severity").unwrap()).is_some(), "{s}");
        assert!(Operation::parse(get("operation").unwrap()).is_some(), "{s}");
        assert!(Priority::parse(get("priority").unwrap()).is_some(), "{s}");
        if let Some(b) = get("backup_status") {
            assert!(Phase::parse(b).is_some(), "{s}");
        }
        for (k, v) in &p {
            assert_no_fed_data(k, v, &r.ips);
        }
        *per_pod.entry(pod.to_string()).or_default() += 1;
    }
    eprintln!(
        "streams: {} in all, per pod {per_pod:?}; theoretical bound per pod {bound_per_pod}",
        r.streams.len()
    );
    assert!(bound_per_pod < 5_000);
    for (pod, n) in &per_pod {
        assert!(*n < 200, "{pod}: {n} streams");
    }
    assert!(r.streams.len() < 200 * PODS.len());
    // The distinct values went somewhere: structured metadata.
    for k in [
        "backup",
        "restore",
        "error",
        "path",
        "client_ip",
        "schedule",
    ] {
        assert!(
            r.metadata_samples.get(k).copied().unwrap_or(0) >= N / 10,
            "metadata {k}: {:?}",
            r.metadata_samples
        );
    }
}

/// (metric family, labels) of every sample line of the exposition.
fn samples(exposition: &str) -> Vec<(String, Vec<(String, String)>)> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let name_end = l.find(['{', ' ']).unwrap();
            let labels = match l[name_end..].strip_prefix('{') {
                Some(rest) => pairs(&rest[..rest.rfind('}').unwrap()]),
                None => Vec::new(),
            };
            (l[..name_end].to_string(), labels)
        })
        .collect()
}

#[test]
fn metric_labels_are_closed_or_capped() {
    let r = run();
    let closed = |vals: &[&str], v: &str| vals.contains(&v);
    let severity: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
    let outcome: Vec<&str> = Outcome::ALL
        .iter()
        .map(|s| s.as_str())
        .chain(["completed", "failed", "canceled"])
        .collect();
    let reason: Vec<&str> = Reason::ALL
        .iter()
        .map(|s| s.as_str())
        .chain(UnparsedReason::ALL.iter().map(|u| u.as_str()))
        .chain(DROP_REASONS.iter().copied())
        .collect();
    let methods = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "OTHER",
    ];
    let code = Regex::new(r"^[1-5][0-9][0-9]$").unwrap();
    let number = Regex::new(r"^(\+Inf|[0-9.e+-]+)$").unwrap();
    let mut routes = BTreeSet::new();
    let mut schedules = BTreeSet::new();
    let mut locations = BTreeSet::new();
    for (family, labels) in samples(&r.exposition) {
        for (k, v) in &labels {
            let ok = match k.as_str() {
                "severity" => closed(&severity, v),
                "outcome" => closed(&outcome, v),
                "reason" => closed(&reason, v),
                "kind" => closed(REDACTION_KINDS, v),
                "method" => closed(&methods, v),
                "operation" => closed(&["backup", "restore"], v),
                "result" => closed(&["ok", "error"], v),
                "version" => v == env!("CARGO_PKG_VERSION"),
                "code" => code.is_match(v),
                "le" => number.is_match(v),
                "namespace" => PODS.iter().any(|p| p.0 == v),
                "container" => PODS.iter().any(|p| p.2 == v),
                "pod" => PODS.iter().any(|p| p.1 == v),
                "route" => {
                    routes.insert(v.clone());
                    true
                }
                "schedule" => {
                    schedules.insert(v.clone());
                    true
                }
                "location" => {
                    locations.insert(v.clone());
                    true
                }
                _ => false,
            };
            assert!(
                ok,
                "{family}: label {k}={v:?} is not from a closed or capped set"
            );
            if k != "route" {
                assert_no_fed_data(k, v, &r.ips);
            }
            if k == "route" && !v.starts_with("/r/") {
                assert_no_fed_data(k, v, &r.ips);
            }
        }
    }
    eprintln!(
        "metric label sets: {} routes, {} schedules, {} locations",
        routes.len(),
        schedules.len(),
        locations.len()
    );
    // Capped sets: at most the cap plus `other` (and `none` for schedules).
    assert!(routes.len() <= MAX_ROUTES + 1, "{} routes", routes.len());
    assert!(routes.contains("other"), "the route cap was reached");
    assert!(routes.contains("/api/v1/backups/:name"));
    assert!(routes.contains("/x/:id/y"));
    assert!(
        schedules.len() <= MAX_SCHEDULES + 2,
        "{} schedules",
        schedules.len()
    );
    assert!(schedules.contains("other") && schedules.contains("none"));
    assert!(
        locations.len() <= veloki::enrich::MAX_LOCATIONS + 1,
        "{} locations",
        locations.len()
    );
    assert!(locations.contains("other"), "the location cap was reached");
    // The derived counters did count: every backup that reached a deciding line and every
    // restore was decided once (`i % 6 == 5` runs a restore instead of a phase line).
    let total = |prefix: &str| -> usize {
        r.exposition
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>() as usize
    };
    let restores = (0..N).filter(|i| i % 6 == 5).count();
    assert_eq!(
        total("veloki_backups_total{"),
        N - restores,
        "backups decided once"
    );
    assert_eq!(
        total("veloki_restores_total{"),
        restores,
        "restores decided once"
    );
}

#[test]
fn http_route_values_are_capped() {
    let r = run();
    let routes: BTreeSet<String> = samples(&r.exposition)
        .into_iter()
        .filter(|(f, _)| f == "veloki_http_requests_total")
        .flat_map(|(_, l)| l.into_iter().filter(|(k, _)| k == "route").map(|(_, v)| v))
        .collect();
    assert!(routes.len() <= MAX_ROUTES + 1, "{}", routes.len());
    assert!(routes.contains("other"));
}
