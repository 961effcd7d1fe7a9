//! `deploy/contract.json` is what the Grafana dashboards and the Prometheus rules in `deploy/` are
//! checked against (`deploy/check_dashboards.py`). These tests hold it equal to what veloki
//! really registers and labels, so a renamed metric or label breaks here, not in a user's
//! dashboard.
//!
//! - metric families: the `# TYPE` lines of a fresh registry's text exposition (every registered
//!   family has one, even without samples), `process_*` excluded;
//! - histogram families: same, restricted to type `histogram`;
//! - sample label names, where samples exist: a subset of the contract's labels;
//! - Loki stream labels and structured-metadata keys: `veloki::model::labels`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

fn contract() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/contract.json");
    let text = std::fs::read_to_string(path).expect("read deploy/contract.json");
    serde_json::from_str(&text).expect("deploy/contract.json is JSON")
}

fn string_set(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// Contract metrics → their label names.
fn contract_metrics() -> BTreeMap<String, BTreeSet<String>> {
    contract()["metrics"]
        .as_object()
        .expect("metrics is an object")
        .iter()
        .map(|(name, labels)| (name.clone(), string_set(labels)))
        .collect()
}

/// `# TYPE <family> <type>` lines → (sample name prefix as users query it, type).
///
/// OpenMetrics (and the prometheus-client crate) name a counter family without its `_total`
/// suffix and an info family without `_info`; the contract lists the names PromQL uses.
fn families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| {
            let mut parts = rest.split_whitespace();
            let name = parts.next().expect("family name").to_owned();
            let kind = parts.next().expect("family type").to_owned();
            let name = match kind.as_str() {
                "counter" if !name.ends_with("_total") => format!("{name}_total"),
                "info" if !name.ends_with("_info") => format!("{name}_info"),
                _ => name,
            };
            (name, kind)
        })
        .collect()
}

/// A sample line `name{a="x",b="y"} value [timestamp]` → (name, label names).
fn sample(line: &str) -> (String, BTreeSet<String>) {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..end].to_owned();
    let mut labels = BTreeSet::new();
    if line[end..].starts_with('{') {
        let mut rest = &line[end + 1..];
        loop {
            rest = rest.trim_start_matches([',', ' ']);
            if rest.starts_with('}') || rest.is_empty() {
                break;
            }
            let eq = rest.find('=').expect("label=\"value\"");
            labels.insert(rest[..eq].trim().to_owned());
            // Skip the quoted value, honouring \" and \\ escapes.
            let value = &rest[eq + 1..];
            assert!(
                value.starts_with('"'),
                "label value must be quoted in {line:?}"
            );
            let mut escaped = false;
            let mut close = None;
            for (i, c) in value.char_indices().skip(1) {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        close = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            rest = &value[close.expect("closing quote") + 1..];
        }
    }
    (name, labels)
}

fn exposition() -> String {
    let metrics = veloki::metrics::Metrics::new();
    metrics.encode_text()
}

fn without_process(names: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    names
        .into_iter()
        .filter(|n| !n.starts_with("process_"))
        .collect()
}

fn diff(veloki: &BTreeSet<String>, contract: &BTreeSet<String>) -> String {
    format!(
        "registered by veloki but not in deploy/contract.json: {:?}\n\
         in deploy/contract.json but not registered by veloki: {:?}",
        veloki.difference(contract).collect::<Vec<_>>(),
        contract.difference(veloki).collect::<Vec<_>>(),
    )
}

#[test]
fn metric_families_match_the_contract() {
    let registered = without_process(families(&exposition()).into_keys());
    let contract = without_process(contract_metrics().into_keys());
    assert_eq!(registered, contract, "\n{}", diff(&registered, &contract));
}

#[test]
fn histogram_families_match_the_contract() {
    let registered: BTreeSet<String> = families(&exposition())
        .into_iter()
        .filter(|(_, kind)| kind == "histogram")
        .map(|(name, _)| name)
        .collect();
    let contract = string_set(&contract()["histograms"]);
    assert_eq!(registered, contract, "\n{}", diff(&registered, &contract));
}

/// The contract metric a sample belongs to, and whether it may carry `le`.
fn family_of(
    name: &str,
    metrics: &BTreeMap<String, BTreeSet<String>>,
    histograms: &BTreeSet<String>,
) -> Option<(String, bool)> {
    if metrics.contains_key(name) {
        return Some((name.to_owned(), false));
    }
    if let Some(base) = name.strip_suffix("_bucket") {
        if histograms.contains(base) {
            return Some((base.to_owned(), true));
        }
    }
    for suffix in ["_sum", "_count", "_created"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if histograms.contains(base) {
                return Some((base.to_owned(), false));
            }
        }
    }
    let counter = format!("{}_total", name.strip_suffix("_created")?);
    metrics.contains_key(&counter).then_some((counter, false))
}

#[test]
fn sample_labels_are_in_the_contract() {
    let metrics = contract_metrics();
    let histograms = string_set(&contract()["histograms"]);
    for line in exposition().lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, labels) = sample(line);
        if name.starts_with("process_") {
            continue;
        }
        // Sample name → contract entry: the name itself, a histogram's _bucket/_sum/_count, or
        // the _created series OpenMetrics adds to counters (family without _total) and
        // histograms.
        let (family, allowed_extra) =
            family_of(&name, &metrics, &histograms).unwrap_or_else(|| {
                panic!("sample {name} belongs to no metric of deploy/contract.json")
            });
        let mut allowed = metrics[&family].clone();
        if allowed_extra {
            allowed.insert("le".to_owned());
        }
        assert!(
            labels.is_subset(&allowed),
            "{name}: labels {labels:?} are not all in the contract's {allowed:?}"
        );
    }
}

#[test]
fn stream_labels_match_the_contract() {
    // The labels veloki derives itself, plus the static labels of the production pipeline file
    // (`cluster`, `node`), which the DaemonSet ships.
    let mut veloki: BTreeSet<String> = veloki::model::labels::STREAM_LABELS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cfg = veloki::config::Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pipelines/velero.yaml"
    )))
    .expect("pipelines/velero.yaml loads");
    veloki.extend(cfg.labels.r#static.keys().cloned());
    let contract = string_set(&contract()["stream_labels"]);
    assert_eq!(veloki, contract, "\n{}", diff(&veloki, &contract));
}

#[test]
fn metadata_keys_match_the_contract() {
    let veloki: BTreeSet<String> = veloki::model::labels::METADATA_KEYS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let contract = string_set(&contract()["metadata_keys"]);
    assert_eq!(veloki, contract, "\n{}", diff(&veloki, &contract));
}

#[test]
fn sample_parser_reads_escaped_values() {
    let (name, labels) =
        sample(r#"veloki_http_requests_total{method="GET",route="/a\"b\\",code="200"} 3"#);
    assert_eq!(name, "veloki_http_requests_total");
    assert_eq!(
        labels,
        BTreeSet::from(["code", "method", "route"].map(String::from))
    );
    let (name, labels) = sample("veloki_files_watched 4");
    assert_eq!(name, "veloki_files_watched");
    assert!(labels.is_empty());
}
