//! Runs `deploy/test.sh`: kustomize rendering, offline Kubernetes schema validation,
//! `promtool check rules` / `promtool test rules`, and the dashboard checks against
//! `deploy/contract.json`. The script installs promtool (Debian's `prometheus`) and
//! `kubernetes-validate` (PyPI) when they are missing.

use std::process::Command;

#[test]
fn deploy_checks_pass() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/deploy/test.sh"))
        .current_dir(root)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "deploy/test.sh failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
