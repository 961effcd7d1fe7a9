//! `veloki parse` on each fixture file matches its golden output in `fixtures/golden/`.
//! Set `VELOKI_BLESS=1` to rewrite the goldens after an intended change (and review the diff).

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture_logs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pods");
    let mut out = Vec::new();
    for pod in std::fs::read_dir(&root).unwrap() {
        let pod = pod.unwrap().path();
        for c in std::fs::read_dir(&pod).unwrap() {
            for f in std::fs::read_dir(c.unwrap().path()).unwrap() {
                out.push(f.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

fn golden_name(log: &Path) -> String {
    let container = log.parent().unwrap();
    let pod = container.parent().unwrap();
    format!(
        "{}__{}__{}.jsonl",
        pod.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .split('_')
            .take(2)
            .collect::<Vec<_>>()
            .join("_"),
        container.file_name().unwrap().to_str().unwrap(),
        log.file_name().unwrap().to_str().unwrap()
    )
}

fn parse(args: &[&str], log: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Relative paths keep the goldens independent of the checkout location.
    let rel = log.strip_prefix(root).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_veloki"))
        .arg("parse")
        .args(args)
        .arg(rel)
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn parse_output_matches_goldens() {
    let bless = std::env::var_os("VELOKI_BLESS").is_some();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden");
    let logs = fixture_logs();
    assert!(logs.len() >= 6);
    let mut failures = Vec::new();
    for log in &logs {
        let got = parse(&["--summary"], log);
        let path = dir.join(golden_name(log));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("missing golden {}; run with VELOKI_BLESS=1", path.display())
        });
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            failures.push(format!(
                "{}: first difference at line {}\n got:  {}\n want: {}",
                path.display(),
                line + 1,
                got.lines().nth(line).unwrap_or("<eof>"),
                want.lines().nth(line).unwrap_or("<eof>")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_golden_line_is_json_with_the_entry_shape() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden");
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        let text = std::fs::read_to_string(&f).unwrap();
        let n = text.lines().count();
        for (i, line) in text.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if i + 1 == n && v.get("summary").is_some() {
                continue;
            }
            for k in ["ts", "labels", "metadata", "line", "parsed"] {
                assert!(v.get(k).is_some(), "{}:{}: no {k}", f.display(), i + 1);
            }
        }
    }
}
