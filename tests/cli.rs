//! The command line as a user meets it: `veloki check` errors name file, line and field; exit
//! codes are 0 ok, 1 runtime failure, 2 usage/config error; `--help` documents the flags.

use std::path::Path;
use std::process::{Command, Output};

fn veloki(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veloki"))
        .args(args)
        .env_remove("VELOKI_CONFIG")
        .env_remove("VELOKI_LOKI_URL")
        .output()
        .unwrap()
}

fn check(yaml: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pipeline.yaml");
    std::fs::write(&p, yaml).unwrap();
    let out = veloki(&["check", "--config", p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr).replace(p.to_str().unwrap(), "pipeline.yaml");
    (out.status.code().unwrap(), err)
}

#[test]
fn shipped_pipelines_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in std::fs::read_dir(root.join("pipelines")).unwrap() {
        let f = f.unwrap().path();
        let out = veloki(&["check", "--config", f.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_kind_of_bad_config_names_file_line_and_field() {
    let cases: &[(&str, &str, &str)] = &[
        // (yaml, expected location prefix, expected words)
        (
            "sources:\n  pods_dir: /x\n  namespacez: [velero]\n",
            "pipeline.yaml:3:",
            "unknown field `namespacez`",
        ),
        (
            "loki:\n  batch:\n    max_bytes: lots\n",
            "pipeline.yaml:3:",
            "loki.batch.max_bytes",
        ),
        (
            "loki:\n  url: ftp://loki:3100\n",
            "pipeline.yaml:2:",
            "loki.url",
        ),
        (
            "loki:\n  url: \"http://\"\n",
            "pipeline.yaml:2:",
            "loki.url",
        ),
        (
            "loki:\n  timeout: soon\n",
            "pipeline.yaml:2:",
            "loki.timeout",
        ),
        (
            "loki:\n  tls:\n    ca_file: /nonexistent/ca.pem\n",
            "pipeline.yaml:3:",
            "loki.tls.ca_file",
        ),
        (
            "loki:\n  bearer_token_file: /nonexistent/token\n",
            "pipeline.yaml:2:",
            "loki.bearer_token_file",
        ),
        (
            "sources:\n  pods_dir: ${VELOKI_TEST_UNSET_VAR}\n",
            "pipeline.yaml:2:",
            "VELOKI_TEST_UNSET_VAR",
        ),
        (
            "labels:\n  static:\n    severity: high\n",
            "pipeline.yaml:3",
            "labels.static.severity",
        ),
        (
            "metrics:\n  listen: everywhere\n",
            "pipeline.yaml:2",
            "metrics.listen",
        ),
        (
            "routes:\n  - parser: regex\n",
            "pipeline.yaml:2:",
            "routes[0].parser",
        ),
        ("sources: [1, 2]\n", "pipeline.yaml:1:", "sources"),
    ];
    for (yaml, loc, words) in cases {
        let (code, err) = check(yaml);
        assert_eq!(code, 2, "{yaml}: {err}");
        assert!(err.contains(loc), "{yaml}: want {loc} in {err}");
        assert!(err.contains(words), "{yaml}: want {words} in {err}");
    }
}

#[test]
fn missing_config_file_is_a_config_error() {
    let out = veloki(&["check", "--config", "/nonexistent/pipeline.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/pipeline.yaml"), "{err}");
}

#[test]
fn exit_codes() {
    // Usage error (clap): 2.
    assert_eq!(veloki(&["run", "--no-such-flag"]).status.code(), Some(2));
    // Bad flag value: 2.
    assert_eq!(
        veloki(&["run", "--dry-run", "--once", "--listen", "nowhere"])
            .status
            .code(),
        Some(2)
    );
    // Runtime failure (pods dir missing): 1.
    let out = veloki(&[
        "run",
        "--dry-run",
        "--once",
        "--listen",
        "127.0.0.1:0",
        "--pods-dir",
        "/nonexistent/pods",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("pods_dir"));
    // Success.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_veloki"))
        .args([
            "run",
            "--config",
            "pipelines/demo.yaml",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(root)
        .env_remove("VELOKI_PODS_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(lines >= 240, "demo printed {lines} entries");
}

#[test]
fn help_documents_every_flag_and_its_variable() {
    let out = veloki(&["run", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--pods-dir",
        "--loki-url",
        "--positions",
        "--listen",
        "--dry-run",
        "--once",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    for var in [
        "VELOKI_CONFIG",
        "VELOKI_PODS_DIR",
        "VELOKI_LOKI_URL",
        "VELOKI_POSITIONS",
        "VELOKI_LISTEN",
    ] {
        assert!(help.contains(var), "{var} missing from --help");
    }
    let top = String::from_utf8_lossy(&veloki(&["--help"]).stdout).to_string();
    for cmd in ["run", "parse", "check", "gen", "Exit codes"] {
        assert!(top.contains(cmd), "{cmd} missing from veloki --help");
    }
}
