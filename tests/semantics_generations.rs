//! Velero semantics across generations: for every Velero minor the generator imitates (1.11 …
//! 1.18) and a few seeds, `veloki parse --summary` over a generated tree must decide every backup
//! and restore of the manifest, exactly once, with the manifest's outcome and reason class, and
//! nothing the manifest does not know.
//!
//! Input order: `veloki parse` reads its inputs one after the other, so the order stands in for
//! log time across files. The Velero server's file goes first, as in real time: the server logs
//! `backup failed error=…` before the CronJob's `velero backup create --wait` polls the phase
//! and prints `Backup completed with status: Failed.` In plain path order the CLI pod's file
//! comes first and decides CLI-created backups before the server says why; that variant is
//! checked too, but without reason classes for CLI-created backups.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use veloki::cmd_parse::{run, ParseOptions};
use veloki::config::Config;
use veloki::gen::{generate, GenOptions, GenSummary, VELERO_MINORS};

const SEEDS: &[u64] = &[1, 7, 4242];
const LINES: u64 = 4_000;

/// Every `.log` file; with `server_first`, the Velero server's files lead.
fn log_files(root: &Path, server_first: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "log") {
                out.push(p);
            }
        }
    }
    out.sort();
    if server_first {
        out.sort_by_key(|p| !p.parent().is_some_and(|c| c.ends_with("velero")));
    }
    out
}

/// (kind, name) → (outcome, reason class) as the manifest states them.
type Want = BTreeMap<(String, String), (String, Option<String>)>;

/// The manifest's expectations; without `cli_reasons`, CLI-created backups carry no reason class.
fn expected(m: &GenSummary, cli_reasons: bool) -> Want {
    let class = |c: &Option<veloki::gen::ReasonClass>| {
        c.as_ref().map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
    };
    let mut want = Want::new();
    for b in &m.backups {
        let prev = want.insert(
            ("backup".into(), b.name.clone()),
            (
                b.outcome.as_str().to_string(),
                if cli_reasons || b.created_by != "cli" {
                    class(&b.reason_class)
                } else {
                    None
                },
            ),
        );
        assert!(prev.is_none(), "manifest lists backup {} twice", b.name);
    }
    for r in &m.restores {
        let prev = want.insert(
            ("restore".into(), r.name.clone()),
            (r.outcome.as_str().to_string(), class(&r.reason_class)),
        );
        assert!(prev.is_none(), "manifest lists restore {} twice", r.name);
    }
    want
}

/// Runs `veloki parse --summary` in-process; returns every decided outcome in order.
fn decided(root: &Path, server_first: bool) -> Vec<serde_json::Value> {
    let opts = ParseOptions {
        namespace: "velero".into(),
        container: "velero".into(),
        summary: true,
        inputs: log_files(root, server_first),
    };
    assert!(!opts.inputs.is_empty());
    let mut out = Vec::new();
    run(&Config::default(), &opts, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let last = text.lines().last().expect("summary line");
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    v["summary"]["outcomes"].as_array().unwrap().clone()
}

fn check(minor: u32, seed: u64, server_first: bool) -> (usize, usize, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut o = GenOptions::new(dir.path());
    o.lines = LINES;
    o.seed = seed;
    o.velero_minor = Some(minor);
    let manifest = generate(&o).unwrap();
    let want = expected(&manifest, server_first);
    let got = decided(dir.path(), server_first);

    let mut problems = Vec::new();
    let mut seen: BTreeMap<(String, String), (String, Option<String>)> = BTreeMap::new();
    for d in &got {
        let key = (
            d["kind"].as_str().unwrap().to_string(),
            d["name"].as_str().unwrap().to_string(),
        );
        let val = (
            d["outcome"].as_str().unwrap().to_string(),
            d["reason"].as_str().map(str::to_string),
        );
        if seen.insert(key.clone(), val).is_some() {
            problems.push(format!("{key:?} decided more than once"));
        }
    }
    for (key, (outcome, class)) in &want {
        match seen.get(key) {
            None => problems.push(format!(
                "{key:?}: manifest {outcome}, veloki decided nothing"
            )),
            Some((o, r)) => {
                if o != outcome {
                    problems.push(format!("{key:?}: manifest {outcome}, veloki {o}"));
                } else if class.is_some() && r != class {
                    problems.push(format!(
                        "{key:?}: {outcome}: manifest reason {class:?}, veloki {r:?}"
                    ));
                }
            }
        }
    }
    for key in seen.keys() {
        if !want.contains_key(key) {
            problems.push(format!("{key:?}: decided but not in the manifest"));
        }
    }
    let problems = problems
        .into_iter()
        .map(|p| {
            let order = if server_first {
                "server first"
            } else {
                "path order"
            };
            format!("{} seed {seed} ({order}): {p}", manifest.velero_version)
        })
        .collect();
    (manifest.backups.len(), manifest.restores.len(), problems)
}

fn check_minor(minor: u32) {
    assert!(VELERO_MINORS.contains(&minor));
    let (mut b, mut r) = (0, 0);
    let mut problems = Vec::new();
    for &seed in SEEDS {
        let (nb, nr, p) = check(minor, seed, true);
        b += nb;
        r += nr;
        problems.extend(p);
    }
    problems.extend(check(minor, SEEDS[0], false).2);
    assert!(
        problems.is_empty(),
        "Velero 1.{minor}: {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(b >= 10, "1.{minor}: only {b} backups generated");
    assert!(r >= 1, "1.{minor}: no restore generated");
}

#[test]
fn velero_1_11() {
    check_minor(11);
}
#[test]
fn velero_1_12() {
    check_minor(12);
}
#[test]
fn velero_1_13() {
    check_minor(13);
}
#[test]
fn velero_1_14() {
    check_minor(14);
}
#[test]
fn velero_1_15() {
    check_minor(15);
}
#[test]
fn velero_1_16() {
    check_minor(16);
}
#[test]
fn velero_1_17() {
    check_minor(17);
}
#[test]
fn velero_1_18() {
    check_minor(18);
}

/// The list above covers exactly the generator's range.
#[test]
fn covers_every_minor() {
    assert_eq!(VELERO_MINORS, 11..=18);
}
