//! End to end over loopback: the real `veloki run --once` binary ships the bundled fixture tree
//! to the Loki-contract server; every line must arrive exactly once, byte-identical (but for
//! redacted secrets), in its stream, with bounded labels and the right metadata, in timestamp
//! order per stream; positions must be saved, and a second run must push nothing.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::loki::{LabeledEntry, LokiServer};

/// An entry the fixtures must produce, decoded independently of veloki.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Expected {
    namespace: String,
    pod: String,
    container: String,
    ts: i128,
    stream: String,
    line: String,
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn rfc3339(s: &str) -> i128 {
    // 2026-04-10T02:00:00.123456789Z
    let (date, rest) = s.split_once('T').unwrap();
    let mut d = date.split('-').map(|x| x.parse::<i64>().unwrap());
    let (y, m, dd) = (d.next().unwrap(), d.next().unwrap(), d.next().unwrap());
    let rest = rest.trim_end_matches('Z');
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().unwrap());
    let (h, mi, se) = (t.next().unwrap(), t.next().unwrap(), t.next().unwrap());
    let nanos: i64 = format!("{frac:0<9}")[..9].parse().unwrap();
    let days = veloki::timefmt::days_from_civil(y, m as u32, dd as u32);
    (((days * 86400 + h * 3600 + mi * 60 + se) as i128) * 1_000_000_000) + nanos as i128
}

/// Decodes a pod-log file the simple way: CRI (`ts stream P|F content`) or docker json-file.
fn expected_entries(path: &Path, ns: &str, pod: &str, container: &str) -> Vec<Expected> {
    let data = std::fs::read(path).unwrap();
    let text = String::from_utf8(data).expect("fixtures are UTF-8");
    let mut out = Vec::new();
    let mut partial: HashMap<String, (i128, String)> = HashMap::new();
    for raw in text.split_terminator('\n') {
        let (ts, stream, is_partial, content): (i128, String, bool, String) =
            if raw.starts_with('{') {
                let v: serde_json::Value = serde_json::from_str(raw).unwrap();
                let log = v["log"].as_str().unwrap();
                let partial = !log.ends_with('\n');
                (
                    rfc3339(v["time"].as_str().unwrap()),
                    v["stream"].as_str().unwrap().to_string(),
                    partial,
                    log.trim_end_matches('\n').to_string(),
                )
            } else {
                let mut it = raw.splitn(4, ' ');
                let ts = rfc3339(it.next().unwrap());
                let stream = it.next().unwrap().to_string();
                let tag = it.next().unwrap();
                (
                    ts,
                    stream,
                    tag.starts_with('P'),
                    it.next().unwrap_or("").to_string(),
                )
            };
        let slot = partial.entry(stream.clone());
        match slot {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                o.get_mut().1.push_str(&content);
                if !is_partial {
                    let (ts0, line) = o.remove();
                    out.push(Expected {
                        namespace: ns.into(),
                        pod: pod.into(),
                        container: container.into(),
                        ts: ts0,
                        stream,
                        line,
                    });
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                if is_partial {
                    v.insert((ts, content));
                } else {
                    out.push(Expected {
                        namespace: ns.into(),
                        pod: pod.into(),
                        container: container.into(),
                        ts,
                        stream,
                        line: content,
                    });
                }
            }
        }
    }
    assert!(
        partial.is_empty(),
        "fixture {} ends with a dangling partial",
        path.display()
    );
    group_multiline(out)
}

/// The grouping veloki applies when the lines arrive together (the whole file here): a Gin
/// access line takes the `Error #NN:` / `     Meta:` lines after it, a Go panic dump and Gin's
/// Recovery block stay one entry. Consecutive lines of the same stream only.
fn group_multiline(entries: Vec<Expected>) -> Vec<Expected> {
    #[derive(PartialEq, Clone, Copy)]
    enum Kind {
        Gin,
        Panic,
        Recovery,
    }
    let start = |l: &str| {
        if l.starts_with("[GIN] ") {
            Some(Kind::Gin)
        } else if l.starts_with("panic: ") || l.starts_with("fatal error: ") {
            Some(Kind::Panic)
        } else if l.contains("[Recovery] ") && l.contains("panic recovered") {
            Some(Kind::Recovery)
        } else {
            None
        }
    };
    let continues = |k: Kind, l: &str| match k {
        Kind::Gin => {
            (l.starts_with("Error #") && l.as_bytes().get(9) == Some(&b':'))
                || l.starts_with("     Meta: ")
        }
        Kind::Panic => {
            l.is_empty()
                || l.starts_with('\t')
                || l.starts_with("goroutine ")
                || l.starts_with("[signal ")
                || l.starts_with("created by ")
                || (l.contains('(') && l.ends_with(')') && !l[..l.find('(').unwrap()].contains(' '))
        }
        Kind::Recovery => !l.starts_with("[GIN] "),
    };
    let mut out: Vec<Expected> = Vec::new();
    let mut open: Option<(Kind, bool)> = None; // (kind, closed)
    for e in entries {
        if let (Some((k, false)), Some(last)) = (open, out.last_mut()) {
            if last.stream == e.stream && continues(k, &e.line) {
                last.line.push('\n');
                last.line.push_str(&e.line);
                if k == Kind::Recovery && e.line.starts_with("\u{1b}[0m") {
                    open = Some((k, true));
                }
                continue;
            }
        }
        open = start(&e.line).map(|k| (k, false));
        out.push(e);
    }
    out
}

fn fixture_expectations(root: &Path) -> (Vec<Expected>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    for pod_dir in std::fs::read_dir(root).unwrap() {
        let pod_dir = pod_dir.unwrap().path();
        if !pod_dir.is_dir() {
            continue;
        }
        let name = pod_dir.file_name().unwrap().to_str().unwrap().to_string();
        let mut parts = name.splitn(3, '_');
        let (ns, pod) = (parts.next().unwrap(), parts.next().unwrap());
        for c in std::fs::read_dir(&pod_dir).unwrap() {
            let c = c.unwrap().path();
            let container = c.file_name().unwrap().to_str().unwrap().to_string();
            for f in std::fs::read_dir(&c).unwrap() {
                let f = f.unwrap().path();
                let entries = expected_entries(&f, ns, pod, &container);
                if ns == "velero" || ns == "velero-manager" {
                    out.extend(entries);
                } else {
                    skipped += entries.len();
                }
            }
        }
    }
    (out, skipped)
}

/// What redaction may change: the values of secret query parameters.
fn unredact_matches(original: &str, received: &str) -> bool {
    if !received.contains("<redacted>") {
        return original == received;
    }
    // Every `<redacted>` replaces a non-empty run of the original; the rest is identical.
    let parts: Vec<&str> = received.split("<redacted>").collect();
    let mut pos = 0;
    for (i, p) in parts.iter().enumerate() {
        match original[pos..].find(p) {
            Some(at) if i == 0 && at != 0 => return false,
            Some(at) => pos += at + p.len(),
            None => return false,
        }
    }
    pos == original.len()
}

fn run_veloki(pods: &Path, positions: &Path, url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_veloki"))
        .args(["run", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/velero.yaml"))
        .arg("--pods-dir")
        .arg(pods)
        .arg("--positions")
        .arg(positions)
        .args(["--loki-url", url, "--listen", "127.0.0.1:0", "--once"])
        .env("CLUSTER_NAME", "e2e")
        .env("NODE_NAME", "node-1")
        .env_remove("VELOKI_LOKI_URL")
        .output()
        .expect("veloki runs")
}

fn key_of(e: &LabeledEntry) -> Expected {
    Expected {
        namespace: e.labels["namespace"].clone(),
        pod: e.labels["pod"].clone(),
        container: e.labels["container"].clone(),
        ts: e.ts_nanos,
        stream: e
            .metadata
            .iter()
            .find(|(k, _)| k == "stream")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        line: e.line.clone(),
    }
}

#[test]
fn fixtures_arrive_exactly_once_with_labels_and_positions() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/pods");
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    std::fs::create_dir_all(&pods).unwrap();
    copy_tree(&fixtures, &pods);
    let positions = dir.path().join("state/positions.json");
    let (mut expected, skipped) = fixture_expectations(&pods);
    assert!(
        expected.len() >= 100,
        "fixture tree too small: {}",
        expected.len()
    );
    assert!(
        skipped > 0,
        "fixtures should include a namespace that is not shipped"
    );

    let loki = LokiServer::start();
    let out = run_veloki(&pods, &positions, &loki.url());
    assert!(
        out.status.success(),
        "veloki failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        loki.decode_errors().is_empty(),
        "{:?}",
        loki.decode_errors()
    );
    let got = loki.accepted_entries();
    assert_eq!(loki.duplicate_count(), 0);

    // Exactly once, byte-identical except redacted secret values.
    let mut received: Vec<Expected> = got.iter().map(key_of).collect();
    expected.sort();
    received.sort();
    assert_eq!(received.len(), expected.len(), "entry count");
    let mut redacted = 0;
    for (r, e) in received.iter().zip(expected.iter()) {
        assert_eq!(
            (&r.namespace, &r.pod, &r.container, r.ts, &r.stream),
            (&e.namespace, &e.pod, &e.container, e.ts, &e.stream),
            "entry identity differs:\n got  {r:?}\n want {e:?}"
        );
        assert!(
            unredact_matches(&e.line, &r.line),
            "line differs:\n got  {:?}\n want {:?}",
            r.line,
            e.line
        );
        if r.line != e.line {
            redacted += 1;
        }
    }
    assert!(
        redacted > 0,
        "the fixtures carry secrets that must be redacted"
    );
    assert!(
        got.iter().all(|e| !e.line.contains("eyJhbGciOi")),
        "a JWT leaked"
    );

    // Timestamp order per stream, in arrival order.
    for s in loki.accepted_streams() {
        let ts: Vec<i128> = s.entries.iter().map(|e| e.ts_nanos).collect();
        let mut sorted = ts.clone();
        sorted.sort();
        assert_eq!(ts, sorted, "stream {} is out of order", s.raw_labels);
    }

    // Labels: only the contract's names, statics present, bounded values.
    let allowed: Vec<&str> = veloki::model::labels::STREAM_LABELS
        .iter()
        .copied()
        .chain(["cluster", "node"])
        .collect();
    for e in &got {
        for (k, v) in &e.labels {
            assert!(allowed.contains(&k.as_str()), "unexpected label {k}={v}");
        }
        assert_eq!(e.labels["cluster"], "e2e");
        assert_eq!(e.labels["node"], "node-1");
        assert_eq!(
            e.labels["job"],
            format!("{}/{}", e.labels["namespace"], e.labels["container"])
        );
        assert!(veloki::model::labels::Severity::parse(&e.labels["severity"]).is_some());
        assert!(veloki::model::labels::Operation::parse(&e.labels["operation"]).is_some());
        assert!(veloki::model::labels::Priority::parse(&e.labels["priority"]).is_some());
        assert!(veloki::model::labels::Component::parse(&e.labels["component"]).is_some());
        if let Some(s) = e.labels.get("backup_status") {
            assert!(veloki::model::labels::Phase::parse(s).is_some(), "{s}");
        }
        for (k, _) in &e.metadata {
            assert!(
                veloki::model::labels::METADATA_KEYS.contains(&k.as_str()),
                "metadata {k}"
            );
        }
    }

    // Semantics on the lines that matter.
    let meta = |e: &LabeledEntry, k: &str| -> Option<String> {
        e.metadata
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let failed: Vec<&LabeledEntry> = got
        .iter()
        .filter(|e| {
            e.line.contains("msg=\"backup failed\"") || e.line.contains("\"msg\":\"backup failed\"")
        })
        .collect();
    assert!(!failed.is_empty(), "fixtures contain a failed backup");
    for e in failed {
        assert_eq!(e.labels["severity"], "error", "{}", e.line);
        assert_eq!(e.labels["backup_status"], "Failed", "{}", e.line);
        assert_eq!(e.labels["priority"], "critical");
        assert_eq!(e.labels["operation"], "backup");
        assert_eq!(meta(e, "outcome").as_deref(), Some("Failed"), "{}", e.line);
        assert!(meta(e, "backup").is_some());
        assert!(meta(e, "error").is_some());
        assert!(meta(e, "reason").is_some());
    }
    let gin_prefixed = got.iter().filter(|e| e.line.starts_with("[GIN] ")).count();
    let gin: Vec<&LabeledEntry> = got
        .iter()
        .filter(|e| e.line.starts_with("[GIN] ") && meta(e, "status_code").is_some())
        .collect();
    assert!(gin.len() >= 5, "fixtures contain Gin access lines");
    // The fixtures hold exactly one malformed `[GIN]` line: shipped, but without HTTP metadata.
    assert_eq!(gin_prefixed - gin.len(), 1);
    for e in gin {
        let code: u16 = meta(e, "status_code")
            .expect("status_code")
            .parse()
            .unwrap();
        let want = match code {
            500.. => "error",
            400..=499 => "warning",
            _ => "info",
        };
        assert_eq!(e.labels["severity"], want, "{}", e.line);
        assert_eq!(e.labels["operation"], "http");
        assert_eq!(e.labels["component"], "velero-manager");
        for k in ["method", "path", "route", "latency_ms", "client_ip"] {
            assert!(meta(e, k).is_some(), "{k} missing on {}", e.line);
        }
        assert!(
            !meta(e, "route").unwrap().contains("20250913"),
            "route not templated: {}",
            e.line
        );
    }

    // Multi-line entries: the Gin error continuation, the Recovery block and the panic dump.
    let joined_error = got
        .iter()
        .find(|e| e.line.contains("\nError #01: "))
        .expect("Error #01 joined to its access line");
    assert!(joined_error.line.starts_with("[GIN] "));
    assert_eq!(joined_error.labels["operation"], "http");
    let recovery = got
        .iter()
        .find(|e| e.line.contains("[Recovery]"))
        .expect("Recovery block");
    assert!(recovery.line.ends_with("\u{1b}[0m"), "{:?}", recovery.line);
    let panic = got
        .iter()
        .find(|e| e.line.starts_with("panic: "))
        .expect("panic dump");
    assert!(
        panic.line.contains("\ngoroutine 412 [running]:\n"),
        "{:?}",
        panic.line
    );
    assert_eq!(panic.labels["severity"], "critical");
    assert_eq!(panic.labels["priority"], "critical");

    // Positions: every shipped file is committed to its end.
    let pos: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&positions).expect("positions saved")).unwrap();
    let files = pos["files"].as_array().unwrap();
    let mut by_path: BTreeMap<String, u64> = BTreeMap::new();
    for f in files {
        by_path.insert(
            f["path"].as_str().unwrap().to_string(),
            f["offset"].as_u64().unwrap(),
        );
    }
    for (path, off) in &by_path {
        let size = std::fs::metadata(path).unwrap().len();
        assert_eq!(*off, size, "{path} committed {off} of {size}");
    }
    assert!(by_path.keys().all(|p| !p.contains("kube-system")));

    // A second run with the saved positions pushes nothing.
    let requests_before = loki.push_requests().len();
    let out = run_veloki(&pods, &positions, &loki.url());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        loki.push_requests().len(),
        requests_before,
        "second run pushed"
    );
    assert_eq!(loki.entry_count(), expected.len());

    // Lines appended later are shipped from where the first run stopped.
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(&pods)
        .unwrap()
        .map(|e| e.unwrap().path().join("velero/0.log"))
        .filter(|p| p.exists())
        .collect();
    candidates.sort();
    let file = candidates
        .into_iter()
        .find(|p| std::fs::read(p).unwrap().first() != Some(&b'{'))
        .expect("a CRI-format Velero server log in the fixtures");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(
        &mut f,
        b"2026-04-10T03:30:00.000000001Z stdout F time=\"2026-04-10T03:30:00Z\" level=info msg=\"appended later\" logSource=\"pkg/x.go:1\"\n",
    )
    .unwrap();
    let out = run_veloki(&pods, &positions, &loki.url());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(loki.wait_for_entries(expected.len() + 1, Duration::from_secs(5)));
    assert_eq!(loki.entry_count(), expected.len() + 1);
    assert_eq!(loki.duplicate_count(), 0);
}

#[test]
fn missing_loki_url_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_veloki"))
        .args(["run", "--pods-dir", "/nonexistent", "--once"])
        .env_remove("VELOKI_LOKI_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Loki URL"));
}
