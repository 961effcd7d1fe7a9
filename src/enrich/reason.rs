//! Failure-reason classifier: maps an error text to a closed [`Reason`] class.
//!
//! Labels and metrics only ever see the class; the text goes to structured metadata.

use crate::model::labels::Reason;

/// Classifies a failure text. Rules are ordered from most to least specific.
pub fn classify(text: &str) -> Reason {
    let t = text.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    if has(&["already exists"]) && !has(&["error checking if", "checking if backup already exists"])
    {
        Reason::AlreadyExists
    } else if has(&[
        "accessdenied",
        "access denied",
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "expiredtoken",
        "unauthorized",
        "forbidden",
        "status code: 403",
        "no valid credential",
        "invalid credentials",
        "credentials",
        "authorizationfailure",
    ]) {
        Reason::Credentials
    } else if has(&[
        "slowdown",
        "slow down",
        "throttl",
        "rate limit",
        "ratelimit",
        "toomanyrequests",
        "too many requests",
        "requestlimitexceeded",
        "status code: 429",
    ]) {
        Reason::Throttled
    } else if has(&[
        "pod volume",
        "podvolume",
        "restic",
        "kopia",
        "podvolumebackup",
        "data path",
        "pvb",
    ]) {
        Reason::PodVolume
    } else if has(&["snapshot", "csi", "volumesnapshot", "dataupload"]) {
        Reason::Snapshot
    } else if has(&[
        "is unavailable",
        "unavailable status",
        "backupstoragelocation",
        "backup storage location",
        "nosuchbucket",
        "no such bucket",
        "no such host",
        "connection refused",
        "connection reset",
        "error getting a backup store",
        "error getting backup store",
        "object store",
        "objectstore",
    ]) {
        Reason::StorageUnavailable
    } else if has(&[
        "timeout",
        "timed out",
        "deadline exceeded",
        "deadlineexceeded",
    ]) {
        Reason::Timeout
    } else if has(&[
        "plugin",
        "rpc error: code = unavailable",
        "transport is closing",
        "grpc",
    ]) {
        Reason::Plugin
    } else if has(&[
        "validation",
        "invalid included",
        "invalid excluded",
        "spec is invalid",
        "orlabelselectors",
    ]) {
        Reason::Validation
    } else {
        Reason::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let cases = [
            ("rpc error: code = Unknown desc = AccessDenied: Access Denied\n\tstatus code: 403", Reason::Credentials),
            ("backup already exists in object storage", Reason::AlreadyExists),
            ("rpc error: code = Unknown desc = SlowDown: Please reduce your request rate", Reason::Throttled),
            ("timed out waiting for all PodVolumeBackups to complete", Reason::PodVolume),
            ("pod volume backup failed: running Restic backup, stderr=: exit status 1", Reason::PodVolume),
            ("error taking snapshot of volume: rpc error", Reason::Snapshot),
            ("backup can't be created because BackupStorageLocation default is in Unavailable status.", Reason::StorageUnavailable),
            ("dial tcp 10.0.0.1:9000: connect: connection refused", Reason::StorageUnavailable),
            ("context deadline exceeded", Reason::Timeout),
            ("plugin panicked: runtime error", Reason::Plugin),
            ("Invalid included/excluded namespace lists", Reason::Validation),
            // A Kubernetes object rejected during a restore is not Velero's validation.
            ("error restoring api: Service \"api\" is invalid: spec.clusterIPs[0]: Invalid value", Reason::Other),
            ("something odd", Reason::Other),
            ("error checking if backup already exists in object storage: dial tcp: connection refused", Reason::StorageUnavailable),
        ];
        for (text, want) in cases {
            assert_eq!(classify(text), want, "{text}");
        }
    }
}
