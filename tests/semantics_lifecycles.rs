//! Hand-written Velero lifecycles (reference `velero-and-gin-log-formats.md` §1.5–1.7) through
//! `veloki parse --summary` (in-process), and a restart in the middle of a backup through the
//! real `veloki run --once` binary with a positions file.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use veloki::cmd_parse::{run, ParseOptions};
use veloki::config::Config;

use common::loki::LokiServer;

/// 2026-04-10T02:00:00Z.
const T0: i64 = 1_775_786_400;

fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// CRI entries, one per line, `step` seconds apart from `start` (Unix seconds). `{t}` in a line
/// is replaced by the entry's own RFC 3339 time (second precision, as logrus prints it).
fn cri(lines: &[&str], start: i64, step: i64) -> String {
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let t = rfc3339(start + i as i64 * step);
        out.push_str(&format!(
            "{t}.000000001Z stdout F {}\n",
            l.replace("{t}", &format!("{t}Z"))
        ));
    }
    out
}

struct Parsed {
    entries: Vec<Value>,
    outcomes: Vec<Value>,
    metrics: Vec<String>,
}

impl Parsed {
    fn outcome(&self, kind: &str, name: &str) -> &Value {
        let hits: Vec<&Value> = self
            .outcomes
            .iter()
            .filter(|o| o["kind"] == kind && o["name"] == name)
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "{kind} {name} must be decided exactly once: {:#?}",
            self.outcomes
        );
        hits[0]
    }

    fn undecided(&self, kind: &str, name: &str) {
        assert!(
            !self
                .outcomes
                .iter()
                .any(|o| o["kind"] == kind && o["name"] == name),
            "{kind} {name} must not be decided: {:#?}",
            self.outcomes
        );
    }

    /// The `backup_status` label of the entry whose line contains `needle`.
    fn status_of(&self, needle: &str) -> Option<String> {
        let e = self
            .entries
            .iter()
            .find(|e| e["line"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no entry contains {needle:?}"));
        e["labels"]["backup_status"].as_str().map(str::to_string)
    }
}

fn parse_lines(container: &str, lines: &[&str]) -> Parsed {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.log");
    std::fs::write(&f, cri(lines, T0, 2)).unwrap();
    let opts = ParseOptions {
        namespace: "velero".into(),
        container: container.into(),
        summary: true,
        inputs: vec![f],
    };
    let mut out = Vec::new();
    run(&Config::default(), &opts, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut all: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = all.pop().unwrap();
    assert_eq!(all.len(), lines.len(), "one entry per input line");
    let s = &summary["summary"];
    Parsed {
        entries: all,
        outcomes: s["outcomes"].as_array().unwrap().clone(),
        metrics: s["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect(),
    }
}

fn velero(lines: &[&str]) -> Parsed {
    parse_lines("velero", lines)
}

const LS: &str = r#"logSource="pkg/controller/backup_controller.go:601""#;

fn line(level: &str, msg: &str, fields: &str) -> String {
    format!(r#"time="{{t}}" level={level} msg="{msg}" {fields} {LS}"#)
}

// ---------------------------------------------------------------------------------------------
// 1.9–1.12: `Backup completed` decides by the run's own error lines.

#[test]
fn legacy_backup_completed_with_own_error_is_partially_failed() {
    let l = [
        line(
            "info",
            "Setting up backup log",
            "backup=velero/shop-1 controller=backup",
        ),
        line(
            "info",
            "Processing item",
            "backup=velero/shop-1 name=api namespace=shop progress= resource=pods",
        ),
        line(
            "error",
            "Error backing up item",
            r#"backup=velero/shop-1 error="error taking snapshot of volume: rpc error: code = Unknown desc = InvalidVolume.NotFound" name=data-db-0"#,
        ),
        line(
            "info",
            "Backed up a total of 12 items",
            "backup=velero/shop-1 progress=",
        ),
        line(
            "info",
            "Backup completed",
            "backup=velero/shop-1 controller=backup",
        ),
        line(
            "info",
            "Updating backup's final status",
            "backuprequest=velero/shop-1 controller=backup",
        ),
    ];
    let p = velero(&l.iter().map(String::as_str).collect::<Vec<_>>());
    let o = p.outcome("backup", "shop-1");
    assert_eq!(o["outcome"], "PartiallyFailed");
    assert_eq!(o["reason"], "snapshot");
    assert!(o["reason_text"].as_str().unwrap().contains("InvalidVolume"));
    assert_eq!(o["duration_seconds"], 8.0);
    assert_eq!(
        p.status_of("msg=\"Setting up backup log\""),
        Some("InProgress".into())
    );
    assert!(
        p.metrics
            .iter()
            .any(|m| m == r#"veloki_backups_total{schedule="none",outcome="PartiallyFailed"} 1"#),
        "{:?}",
        p.metrics
    );
}

#[test]
fn legacy_backup_completed_without_own_error_is_completed() {
    // Error lines of *another* backup interleave; a bare `backup=<name>` error (persistence,
    // "Error uploading log file") is not the run logger's and does not count either.
    let l = [
        line(
            "info",
            "Setting up backup log",
            "backup=velero/daily-20260410020000 controller=backup",
        ),
        line(
            "info",
            "Setting up backup log",
            "backup=velero/other-1 controller=backup",
        ),
        line(
            "error",
            "Error backing up item",
            r#"backup=velero/other-1 error="pod volume backup failed: exit status 1" name=web-0"#,
        ),
        line(
            "warning",
            "Skipping item",
            "backup=velero/daily-20260410020000 name=x",
        ),
        line(
            "error",
            "failed to get snapshot progress",
            r#"backup=velero/other-1 cmd=/plugins/velero-plugin-for-csi error="timeout" pluginName=velero-plugin-for-csi"#,
        ),
        line(
            "error",
            "Error uploading log file",
            r#"backup=daily-20260410020000 error="AccessDenied: Access Denied""#,
        ),
        line(
            "info",
            "Backup completed",
            "backup=velero/daily-20260410020000 controller=backup",
        ),
        line(
            "info",
            "Updating backup's final status",
            "backuprequest=velero/daily-20260410020000 controller=backup",
        ),
    ];
    let p = velero(&l.iter().map(String::as_str).collect::<Vec<_>>());
    let o = p.outcome("backup", "daily-20260410020000");
    assert_eq!(o["outcome"], "Completed");
    assert_eq!(o["reason"], Value::Null);
    assert_eq!(o["schedule"], "daily");
    // The other backup never reached its phase line: nothing is decided for it.
    p.undecided("backup", "other-1");
    assert_eq!(p.outcomes.len(), 1);
}

#[test]
fn legacy_backup_completed_then_backup_failed_is_failed() {
    let l = [
        line("info", "Setting up backup log", "backup=velero/b3"),
        line("info", "Backup completed", "backup=velero/b3"),
        line(
            "error",
            "backup failed",
            r#"backuprequest=velero/b3 controller=backup error="rpc error: code = Unknown desc = SlowDown: Please reduce your request rate""#,
        ),
        line(
            "info",
            "Updating backup's final status",
            "backuprequest=velero/b3 controller=backup",
        ),
    ];
    let p = velero(&l.iter().map(String::as_str).collect::<Vec<_>>());
    let o = p.outcome("backup", "b3");
    assert_eq!(o["outcome"], "Failed");
    assert_eq!(o["reason"], "throttled");
}

// ---------------------------------------------------------------------------------------------
// 1.13+: `Initial backup processing complete, moving to <Phase>`.

#[test]
fn finalizing_then_backup_failed_is_failed_once() {
    let l = [
        line(
            "info",
            "Setting up backup log",
            "backup=velero/weekly-20260410020000",
        ),
        line(
            "info",
            "Initial backup processing complete, moving to Finalizing",
            "backup=velero/weekly-20260410020000",
        ),
        line(
            "error",
            "Error uploading log file",
            r#"backup=weekly-20260410020000 error="AccessDenied""#,
        ),
        line(
            "error",
            "backup failed",
            r#"backuprequest=velero/weekly-20260410020000 controller=backup error="rpc error: code = Unknown desc = AccessDenied: Access Denied\n\tstatus code: 403""#,
        ),
        line(
            "info",
            "Updating backup's status",
            "backuprequest=velero/weekly-20260410020000 controller=backup",
        ),
    ];
    let p = velero(&l.iter().map(String::as_str).collect::<Vec<_>>());
    let o = p.outcome("backup", "weekly-20260410020000");
    assert_eq!(o["outcome"], "Failed");
    assert_eq!(o["reason"], "credentials");
    assert_eq!(
        p.status_of("moving to Finalizing"),
        Some("Finalizing".into())
    );
    assert_eq!(p.status_of("msg=\"backup failed\""), Some("Failed".into()));
    let counted: Vec<&String> = p
        .metrics
        .iter()
        .filter(|m| m.starts_with("veloki_backups_total{"))
        .collect();
    assert_eq!(
        counted,
        [r#"veloki_backups_total{schedule="weekly",outcome="Failed"} 1"#],
        "counted once, as Failed"
    );
}

#[test]
fn finalizing_alone_is_completed_and_finalizing_partially_failed_is_partial() {
    let l = [
        line("info", "Setting up backup log", "backup=velero/ok-1"),
        line(
            "info",
            "Initial backup processing complete, moving to Finalizing",
            "backup=velero/ok-1",
        ),
        line(
            "info",
            "Updating backup's status",
            "backuprequest=velero/ok-1 controller=backup",
        ),
        line("info", "Setting up backup log", "backup=velero/pf-1"),
        line(
            "error",
            "Error backing up item",
            r#"backup=velero/pf-1 error="error executing custom action: rpc error: code = Unknown desc = plugin panicked""#,
        ),
        line(
            "info",
            "Initial backup processing complete, moving to FinalizingPartiallyFailed",
            "backup=velero/pf-1",
        ),
        line(
            "info",
            "Updating backup's status",
            "backuprequest=velero/pf-1 controller=backup",
        ),
        line("info", "Setting up backup log", "backup=velero/f-1"),
        line(
            "info",
            "Initial backup processing complete, moving to Failed",
            "backup=velero/f-1",
        ),
        line(
            "info",
            "Updating backup's status",
            "backuprequest=velero/f-1 controller=backup",
        ),
    ];
    let p = velero(&l.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(p.outcome("backup", "ok-1")["outcome"], "Completed");
    let pf = p.outcome("backup", "pf-1");
    assert_eq!(pf["outcome"], "PartiallyFailed");
    assert_eq!(pf["reason"], "plugin");
    assert_eq!(p.outcome("backup", "f-1")["outcome"], "Failed");
}

#[test]
fn waiting_for_plugin_operations_is_resolved_by_marking_backup() {
    let l = [
        line("info", "Setting up backup log", "backup=velero/csi-1"),
        line("info", "Initial backup processing complete, moving to WaitingForPluginOperations", "backup=velero/csi-1"),
        line("info", "Updating backup's status", "backuprequest=velero/csi-1 controller=backup"),
        r#"time="{t}" level=info msg="Marking backup csi-1 FinalizingPartiallyFailed" backup=velero/csi-1 logSource="pkg/controller/backup_operations_controller.go:207""#.to_string(),
        line("info", "Setting up backup log", "backup=velero/csi-2"),
        line("info", "Initial backup processing complete, moving to WaitingForPluginOperations", "backup=velero/csi-2"),
        line("info", "Updating backup's status", "backuprequest=velero/csi-2 controller=backup"),
        r#"time="{t}" level=info msg="Marking backup csi-2 Finalizing" backup=velero/csi-2 logSource="pkg/controller/backup_operations_controller.go:207""#.to_string(),
    ];
    let p = velero(&l.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        p.status_of("moving to WaitingForPluginOperations"),
        Some("WaitingForPluginOperations".into())
    );
    let o = p.outcome("backup", "csi-1");
    assert_eq!(o["outcome"], "PartiallyFailed");
    assert_eq!(p.outcome("backup", "csi-2")["outcome"], "Completed");
    assert_eq!(
        p.status_of("Marking backup csi-1 FinalizingPartiallyFailed"),
        Some("PartiallyFailed".into())
    );
}

#[test]
fn waiting_for_plugin_operations_unresolved_decides_nothing() {
    let l = [
        line("info", "Setting up backup log", "backup=velero/csi-3"),
        line(
            "info",
            "Initial backup processing complete, moving to WaitingForPluginOperations",
            "backup=velero/csi-3",
        ),
        line(
            "info",
            "Updating backup's status",
            "backuprequest=velero/csi-3 controller=backup",
        ),
    ];
    let p = velero(&l.iter().map(String::as_str).collect::<Vec<_>>());
    p.undecided("backup", "csi-3");
}

// ---------------------------------------------------------------------------------------------
// 1.18 queue.

#[test]
fn queue_lines_carry_queued_and_ready_to_start() {
    let l = [
        r#"time="{t}" level=info msg="Queueing backup q-1, queue position 1" backup=velero/q-1 controller=backup-queue logSource="pkg/controller/backup_queue_controller.go:220""#.to_string(),
        r#"time="{t}" level=info msg="Dequeueing backup q-1, moving to ReadyToStart" backup=velero/q-1 controller=backup-queue logSource="pkg/controller/backup_queue_controller.go:250""#.to_string(),
        line("info", "Setting up backup log", "backup=velero/q-1"),
        line("info", "Initial backup processing complete, moving to Finalizing", "backup=velero/q-1"),
        line("info", "Updating backup's status", "backuprequest=velero/q-1 controller=backup"),
    ];
    let p = velero(&l.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(p.status_of("Queueing backup q-1"), Some("Queued".into()));
    assert_eq!(
        p.status_of("Dequeueing backup q-1"),
        Some("ReadyToStart".into())
    );
    let e = p
        .entries
        .iter()
        .find(|e| e["line"].as_str().unwrap().contains("Queueing"))
        .unwrap();
    assert_eq!(e["labels"]["operation"], "backup");
    assert_eq!(e["metadata"]["backup"], "velero/q-1");
    assert_eq!(p.outcome("backup", "q-1")["outcome"], "Completed");
}

// ---------------------------------------------------------------------------------------------
// JSON mode (`--log-format=json`).

#[test]
fn json_mode_backuprequest_and_error_message() {
    let l = [
        r#"{"backup":"velero/nightly-db-20260410023000","level":"info","logSource":"pkg/controller/backup_controller.go:605","msg":"Setting up backup log","time":"{t}"}"#,
        r#"{"backup":"velero/nightly-db-20260410023000","level":"info","logSource":"pkg/controller/backup_controller.go:745","msg":"Initial backup processing complete, moving to Finalizing","time":"{t}"}"#,
        r#"{"backuprequest":"velero/nightly-db-20260410023000","controller":"backup","error.file":"/go/src/github.com/vmware-tanzu/velero/pkg/controller/backup_controller.go:841","error.function":"github.com/vmware-tanzu/velero/pkg/controller.(*backupReconciler).runBackup","error.message":"rpc error: code = Unknown desc = RequestError: send request failed\ncaused by: Put \"https://s3.amazonaws.com/b\": dial tcp 52.219.170.42:443: i/o timeout","level":"error","logSource":"pkg/controller/backup_controller.go:291","msg":"backup failed","time":"{t}"}"#,
        r#"{"backuprequest":"velero/nightly-db-20260410023000","controller":"backup","level":"info","logSource":"pkg/controller/backup_controller.go:310","msg":"Updating backup's status","time":"{t}"}"#,
    ];
    let p = velero(&l);
    let o = p.outcome("backup", "nightly-db-20260410023000");
    assert_eq!(o["outcome"], "Failed");
    assert_eq!(o["reason"], "timeout");
    assert_eq!(o["schedule"], "nightly-db");
    assert!(o["reason_text"].as_str().unwrap().contains("i/o timeout"));
    let failed = p
        .entries
        .iter()
        .find(|e| e["line"].as_str().unwrap().contains("\"backup failed\""))
        .unwrap();
    assert_eq!(failed["labels"]["backup_status"], "Failed");
    assert_eq!(failed["labels"]["severity"], "error");
    assert_eq!(failed["metadata"]["reason"], "timeout");
}

// ---------------------------------------------------------------------------------------------
// The Velero CLI in a backup CronJob.

#[test]
fn cronjob_cli_failed_validation_without_name() {
    let l = [
        r#"Backup request "core-cl1-20260410020000" submitted successfully."#,
        "Waiting for backup to complete. You may safely press ctrl-c to stop waiting - your backup will continue in the background.",
        "..........",
        "Backup completed with status: FailedValidation.",
    ];
    let p = parse_lines("velero-backup", &l);
    let o = p.outcome("backup", "core-cl1-20260410020000");
    assert_eq!(o["outcome"], "FailedValidation");
    assert_eq!(o["reason"], "validation");
    assert_eq!(
        p.status_of("Backup completed with status"),
        Some("FailedValidation".into())
    );
    let last = p.entries.last().unwrap();
    assert_eq!(last["labels"]["component"], "velero-cli");
    assert_eq!(last["labels"]["priority"], "critical");
}

#[test]
fn cronjob_cli_full_line_decides_its_status() {
    let l = [
        r#"Backup request "core-cl1-daily-backup-20260410020001" submitted successfully."#,
        "Waiting for backup to complete. You may safely press ctrl-c to stop waiting - your backup will continue in the background.",
        "..........Backup completed with status: PartiallyFailed. You may check for more information using the commands `velero backup describe core-cl1-daily-backup-20260410020001` and `velero backup logs core-cl1-daily-backup-20260410020001`.",
    ];
    let p = parse_lines("velero-backup", &l);
    let o = p.outcome("backup", "core-cl1-daily-backup-20260410020001");
    assert_eq!(o["outcome"], "PartiallyFailed");
    assert_eq!(o["schedule"], "core-cl1-daily-backup");
}

// ---------------------------------------------------------------------------------------------
// A crashed plugin.

#[test]
fn crashed_plugin_process_exited_counts_as_run_error() {
    let l = [
        line("info", "Setting up backup log", "backup=velero/plug-1"),
        r#"time="{t}" level=info msg="plugin process exited" backup=velero/plug-1 cmd=/plugins/velero-plugin-for-aws id=87 logSource="pkg/plugin/clientmgmt/process/logrus_adapter.go:80" plugin=/plugins/velero-plugin-for-aws"#.to_string(),
        line("info", "Setting up backup log", "backup=velero/plug-2"),
        r#"time="{t}" level=error msg="plugin process exited" backup=velero/plug-2 cmd=/plugins/velero-plugin-for-aws error="exit status 2" id=88 logSource="pkg/plugin/clientmgmt/process/logrus_adapter.go:80" plugin=/plugins/velero-plugin-for-aws"#.to_string(),
        line("info", "Backup completed", "backup=velero/plug-1"),
        line("info", "Backup completed", "backup=velero/plug-2"),
        line("info", "Updating backup's final status", "backuprequest=velero/plug-1 controller=backup"),
        line("info", "Updating backup's final status", "backuprequest=velero/plug-2 controller=backup"),
    ];
    let p = velero(&l.iter().map(String::as_str).collect::<Vec<_>>());
    // A plugin that exits normally (info) is not an error.
    assert_eq!(p.outcome("backup", "plug-1")["outcome"], "Completed");
    let o = p.outcome("backup", "plug-2");
    assert_eq!(o["outcome"], "PartiallyFailed");
    assert_eq!(o["reason"], "plugin");
    let crash = p
        .entries
        .iter()
        .find(|e| e["line"].as_str().unwrap().contains("exit status 2"))
        .unwrap();
    assert_eq!(crash["labels"]["component"], "velero-plugin");
    assert_eq!(crash["labels"]["severity"], "error");
}

// ---------------------------------------------------------------------------------------------
// Restores.

const RLS: &str = r#"logSource="pkg/controller/restore_controller.go:569""#;

fn rline(level: &str, msg: &str, restore: &str) -> String {
    format!(r#"time="{{t}}" level={level} msg="{msg}" {RLS} restore=velero/{restore}"#)
}

#[test]
fn restores_partially_failed_on_summary_error_else_completed() {
    let l = [
        rline("info", "starting restore", "r-bad"),
        rline("info", "starting restore", "r-good"),
        rline("info", "Starting restore of backup velero/daily-20260410020000", "r-bad"),
        rline("info", "Restore of ConfigMap, kube-root-ca.crt skipped: it already exists in the cluster and is the same as the backed up version", "r-good"),
        rline("warning", "Namespace shop, resource restore warning: could not restore, ConfigMap \\\"x\\\" already exists. Warning: the in-cluster version is different than the backed-up version.", "r-good"),
        rline("error", "Namespace billing, resource restore error: error restoring services/billing/api: the server could not find the requested resource", "r-bad"),
        rline("info", "restore completed", "r-bad"),
        rline("info", "restore completed", "r-good"),
    ];
    let p = velero(&l.iter().map(String::as_str).collect::<Vec<_>>());
    let bad = p.outcome("restore", "r-bad");
    assert_eq!(bad["outcome"], "PartiallyFailed");
    assert!(bad["reason_text"]
        .as_str()
        .unwrap()
        .contains("could not find the requested resource"));
    assert_eq!(p.outcome("restore", "r-good")["outcome"], "Completed");
    assert!(p
        .metrics
        .iter()
        .any(|m| m == r#"veloki_restores_total{outcome="PartiallyFailed"} 1"#));
    assert!(p
        .metrics
        .iter()
        .any(|m| m == r#"veloki_restores_total{outcome="Completed"} 1"#));
}

#[test]
fn restore_marking_confirms_once() {
    let l = [
        rline("info", "starting restore", "r-3"),
        rline("info", "restore completed", "r-3"),
        r#"time="{t}" level=info msg="Marking restore Completed" logSource="pkg/controller/restore_finalizer_controller.go:190" restore=velero/r-3"#.to_string(),
    ];
    let p = velero(&l.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(p.outcome("restore", "r-3")["outcome"], "Completed");
    assert_eq!(
        p.status_of("Marking restore Completed"),
        Some("Completed".into())
    );
}

// ---------------------------------------------------------------------------------------------
// A restart in the middle of a backup: the tracker state saved with the positions survives.

fn run_once(pods: &Path, positions: &Path, url: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_veloki"))
        .arg("run")
        .arg("--pods-dir")
        .arg(pods)
        .arg("--positions")
        .arg(positions)
        .args([
            "--loki-url",
            url,
            "--listen",
            "127.0.0.1:0",
            "--once",
            "--print-metrics",
        ])
        .env_remove("VELOKI_LOKI_URL")
        .env_remove("VELOKI_CONFIG")
        .output()
        .expect("veloki runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "veloki failed: {}\n{stderr}",
        out.status
    );
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

fn backups_total(exposition: &str) -> Vec<String> {
    exposition
        .lines()
        .filter(|l| l.starts_with("veloki_backups_total{"))
        .map(str::to_string)
        .collect()
}

#[test]
fn restart_mid_backup_keeps_tracker_state() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let file_dir =
        pods.join("velero_velero-7d9f8c6b5-x2x9k_3f6c2a1e-8b4d-4e7a-9c2f-5d1b7a9e0c43/velero");
    std::fs::create_dir_all(&file_dir).unwrap();
    let file = file_dir.join("0.log");
    let positions = dir.path().join("state/positions.json");
    let name = "hourly-apps-20260410020000";

    let first = [
        line(
            "info",
            "Setting up backup log",
            &format!("backup=velero/{name} controller=backup"),
        ),
        line(
            "info",
            "Processing item",
            &format!("backup=velero/{name} name=api namespace=shop progress= resource=pods"),
        ),
        line(
            "error",
            "Error backing up item",
            &format!(
                r#"backup=velero/{name} error="pod volume backup failed: data path backup failed: exit status 1" name=api-0"#
            ),
        ),
        line(
            "error",
            "Error backing up item",
            &format!(
                r#"backup=velero/{name} error="error getting persistent volume claim for volume: not found" name=db-0"#
            ),
        ),
    ];
    let second = [
        line(
            "info",
            "Backed up a total of 12 items",
            &format!("backup=velero/{name} progress="),
        ),
        line(
            "info",
            "Backup completed",
            &format!("backup=velero/{name} controller=backup"),
        ),
        line(
            "info",
            "Updating backup's final status",
            &format!("backuprequest=velero/{name} controller=backup"),
        ),
    ];
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    std::fs::write(&file, cri(&first, T0, 5)).unwrap();

    let loki = LokiServer::start();
    let (_, err1) = run_once(&pods, &positions, &loki.url());
    assert!(
        backups_total(&err1).iter().all(|l| l.ends_with(" 0")),
        "nothing decided yet: {:?}",
        backups_total(&err1)
    );
    assert!(err1.contains("# EOF"), "exposition printed: {err1}");
    let saved: Value = serde_json::from_slice(&std::fs::read(&positions).unwrap()).unwrap();
    assert!(
        saved.to_string().contains(name),
        "tracker state saved with the positions: {saved}"
    );
    assert_eq!(loki.entry_count(), first.len());

    // The rest of the backup is appended; a new process continues from the positions.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(
        &mut f,
        cri(&second, T0 + 5 * first.len() as i64, 5).as_bytes(),
    )
    .unwrap();
    drop(f);
    let (_, err2) = run_once(&pods, &positions, &loki.url());
    let counted: Vec<String> = backups_total(&err2)
        .into_iter()
        .filter(|l| !l.ends_with(" 0"))
        .collect();
    assert_eq!(
        counted,
        [r#"veloki_backups_total{schedule="hourly-apps",outcome="PartiallyFailed"} 1"#],
        "decided once, as PartiallyFailed, after the restart"
    );
    assert!(
        err2.lines().any(|l| l.starts_with(
            r#"veloki_backup_failures_total{schedule="hourly-apps",reason="pod_volume"} 1"#
        )),
        "reason from the first error, seen before the restart:\n{err2}"
    );
    assert_eq!(loki.entry_count(), first.len() + second.len());
    assert_eq!(loki.duplicate_count(), 0);

    // A third run has nothing new and decides nothing again.
    let (_, err3) = run_once(&pods, &positions, &loki.url());
    assert!(
        backups_total(&err3).iter().all(|l| l.ends_with(" 0")),
        "{:?}",
        backups_total(&err3)
    );
}
