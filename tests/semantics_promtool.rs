//! `promtool check metrics` on the real exposition: `veloki run --once --dry-run
//! --print-metrics --config pipelines/demo.yaml` prints `/metrics` to stderr after its own log
//! lines (from the first `# HELP` line to `# EOF`).
//!
//! veloki serves OpenMetrics text (`application/openmetrics-text`): a counter family is named
//! without `_total` in `# HELP`/`# TYPE` and its samples carry `_total`, and the text ends with
//! `# EOF`. promtool's linter reads the Prometheus text format 0.0.4, where HELP/TYPE name the
//! sample (`…_total`). So the exposition is also converted the way a scraper would see it in
//! the classic format, and that must lint clean; on the raw OpenMetrics text, the only findings
//! allowed are that format difference ("<counter>_total no help text").
//!
//! promtool comes from `deploy/test.sh` (Debian's `prometheus` package). When it is missing,
//! this test runs that script once to install it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn promtool() -> &'static str {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let ok = || {
            Command::new("promtool")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !ok() {
            let out = Command::new("bash")
                .arg(root().join("deploy/test.sh"))
                .current_dir(root())
                .output()
                .expect("bash runs");
            assert!(
                ok(),
                "promtool is missing and deploy/test.sh did not install it ({}); install it with \
                 `apt-get install prometheus` (Debian) or run `bash deploy/test.sh`:\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
    "promtool"
}

/// The exposition printed by a dry `--once` run over the demo pipeline.
fn exposition() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let positions = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_veloki"))
            .args([
                "run",
                "--once",
                "--dry-run",
                "--print-metrics",
                "--config",
                "pipelines/demo.yaml",
                "--listen",
                "127.0.0.1:0",
            ])
            .current_dir(root())
            .env("VELOKI_POSITIONS", positions.path().join("positions.json"))
            .env_remove("VELOKI_CONFIG")
            .env_remove("VELOKI_PODS_DIR")
            .env_remove("VELOKI_LOKI_URL")
            .env_remove("VELOKI_LISTEN")
            .output()
            .expect("veloki runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "veloki failed: {}\n{stderr}",
            out.status
        );
        assert!(!out.stdout.is_empty(), "dry run prints entries");
        let start = stderr
            .find("\n# HELP ")
            .map(|i| i + 1)
            .or_else(|| stderr.starts_with("# HELP ").then_some(0))
            .unwrap_or_else(|| panic!("no exposition on stderr:\n{stderr}"));
        let text = &stderr[start..];
        let end = text.find("# EOF\n").expect("exposition ends with # EOF") + "# EOF\n".len();
        text[..end].to_string()
    })
}

/// Runs `promtool check metrics` on `text`; returns (success, findings).
fn check(text: &str) -> (bool, Vec<String>) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let findings = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect();
    (out.status.success(), findings)
}

/// Counter family names (OpenMetrics `# TYPE <name> counter`).
fn counters(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .map(str::to_string)
        .collect()
}

/// The classic text format (0.0.4): counters' HELP/TYPE name the `_total` sample; no `# EOF`.
fn to_classic(text: &str) -> String {
    let counters = counters(text);
    let mut out = String::with_capacity(text.len());
    for l in text.lines() {
        if l == "# EOF" || l.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = l.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(l));
        out.push('\n');
    }
    out
}

#[test]
fn exposition_has_the_contract_families() {
    let text = exposition();
    assert!(text.starts_with("# HELP "));
    assert!(text.ends_with("# EOF\n"));
    for family in [
        "veloki_backups",
        "veloki_backup_failures",
        "veloki_restores",
        "veloki_http_requests",
        "veloki_log_lines",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} counter\n")),
            "{family} missing"
        );
    }
    // The demo run decided backups from the fixtures.
    assert!(text.lines().any(|l| l.starts_with("veloki_backups_total{")));
}

#[test]
fn promtool_lints_the_classic_form_clean() {
    // The linter is live: a counter without HELP is a finding.
    let (_, findings) = check("# TYPE demo_things_total counter\ndemo_things_total 1\n");
    assert!(
        !findings.is_empty(),
        "promtool reported nothing on a bad input"
    );
    let classic = to_classic(exposition());
    let (ok, findings) = check(&classic);
    assert!(
        ok && findings.is_empty(),
        "promtool check metrics: ok={ok}\n{}",
        findings.join("\n")
    );
}

#[test]
fn promtool_on_raw_openmetrics_only_reports_the_format_difference() {
    let text = exposition();
    let counters = counters(text);
    let (_ok, findings) = check(text);
    let unexpected: Vec<&String> = findings
        .iter()
        .filter(|f| {
            !f.strip_suffix(" no help text")
                .and_then(|n| n.strip_suffix("_total"))
                .is_some_and(|n| counters.contains(n))
        })
        .collect();
    eprintln!(
        "promtool on raw OpenMetrics text: {} finding(s), all `<counter>_total no help text`",
        findings.len()
    );
    assert!(
        unexpected.is_empty(),
        "promtool findings beyond the OpenMetrics/classic naming difference:\n{}",
        unexpected
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A free loopback port (bound and released; the race with other processes is negligible here).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str, accept: Option<&str>) -> Option<(String, String)> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

#[test]
fn served_metrics_pass_promtool_without_findings() {
    let port = free_port();
    let positions = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_veloki"))
        .args([
            "run",
            "--dry-run",
            "--once=false",
            "--config",
            "pipelines/demo.yaml",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(root())
        .env("VELOKI_POSITIONS", positions.path().join("positions.json"))
        .env_remove("VELOKI_CONFIG")
        .env_remove("VELOKI_PODS_DIR")
        .env_remove("VELOKI_LOKI_URL")
        .env_remove("VELOKI_LISTEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the server and for the fixtures to be read (backups decided).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut body = None;
    while std::time::Instant::now() < deadline {
        if let Some((head, b)) = http_get(port, "/metrics", None) {
            if b.contains("veloki_backups_total{") {
                assert!(head.contains("text/plain; version=0.0.4"), "{head}");
                body = Some(b);
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let om = http_get(
        port,
        "/metrics",
        Some("application/openmetrics-text; version=1.0.0"),
    );
    let health = http_get(port, "/healthz", None);
    let ready = http_get(port, "/ready", None);
    let _ = child.kill();
    let _ = child.wait();
    let body = body.expect("veloki served /metrics with decided backups");
    let (ok, findings) = check(&body);
    assert!(
        ok && findings.is_empty(),
        "promtool check metrics: {findings:#?}"
    );
    let (head, om) = om.expect("OpenMetrics response");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(om.ends_with("# EOF\n"));
    assert!(health.expect("/healthz").0.starts_with("HTTP/1.1 200"));
    assert!(ready.expect("/ready").0.starts_with("HTTP/1.1 200"));
}
