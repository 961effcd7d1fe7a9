//! The label contract: every stream label's value comes from a closed enum here (plus the pod
//! identity from the path and configured statics). Nothing else may become a label.

use serde::{Deserialize, Serialize};

/// Every stream label veloki sets itself, in the order of the README's label table.
pub const STREAM_LABELS: &[&str] = &[
    "namespace",
    "pod",
    "container",
    "job",
    "component",
    "severity",
    "operation",
    "backup_status",
    "priority",
];

/// Every structured-metadata key veloki may attach to an entry.
pub const METADATA_KEYS: &[&str] = &[
    "backup",
    "restore",
    "schedule",
    "error",
    "reason",
    "outcome",
    "controller",
    "log_source",
    "plugin",
    "method",
    "path",
    "route",
    "status_code",
    "latency_ms",
    "client_ip",
    "stream",
];

macro_rules! closed_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $v),+
        }
        impl $name {
            /// Every value, for pre-registration and cardinality tests.
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            /// The label value.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
            /// Parses a label value.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_enum!(
    /// What the line itself says about its gravity, normalised across formats.
    Severity {
        /// trace/debug.
        Debug = "debug",
        /// info, Gin 1xx–3xx.
        Info = "info",
        /// warning, Gin 4xx.
        Warning = "warning",
        /// error, Gin 5xx.
        Error = "error",
        /// fatal, panic, a Go runtime panic.
        Critical = "critical",
    }
);

closed_enum!(
    /// Which Velero activity the line is about.
    Operation {
        /// Backups (run, schedule-created, deletion, GC, sync).
        Backup = "backup",
        /// Restores.
        Restore = "restore",
        /// Schedules.
        Schedule = "schedule",
        /// Backup storage locations.
        Storage = "storage",
        /// Backup repositories and their maintenance.
        Repository = "repository",
        /// Pod-volume backups/restores, data movers.
        PodVolume = "pod-volume",
        /// HTTP access lines.
        Http = "http",
        /// Anything else.
        Other = "other",
    }
);

closed_enum!(
    /// Velero's phase enum (backups; restores use the same words).
    Phase {
        /// New.
        New = "New",
        /// Queued (1.18 queue).
        Queued = "Queued",
        /// ReadyToStart (1.18 queue).
        ReadyToStart = "ReadyToStart",
        /// FailedValidation.
        FailedValidation = "FailedValidation",
        /// InProgress.
        InProgress = "InProgress",
        /// WaitingForPluginOperations.
        WaitingForPluginOperations = "WaitingForPluginOperations",
        /// WaitingForPluginOperationsPartiallyFailed.
        WaitingForPluginOperationsPartiallyFailed = "WaitingForPluginOperationsPartiallyFailed",
        /// Finalizing.
        Finalizing = "Finalizing",
        /// FinalizingPartiallyFailed.
        FinalizingPartiallyFailed = "FinalizingPartiallyFailed",
        /// Completed.
        Completed = "Completed",
        /// PartiallyFailed.
        PartiallyFailed = "PartiallyFailed",
        /// Failed.
        Failed = "Failed",
        /// Deleting.
        Deleting = "Deleting",
    }
);

closed_enum!(
    /// veloki's assessment for operators; a function of the other labels (adds no streams).
    Priority {
        /// A decided failure, a panic.
        Critical = "critical",
        /// Errors, partial failures.
        High = "high",
        /// Warnings, outcome lines that are fine.
        Normal = "normal",
        /// Routine info/debug.
        Low = "low",
    }
);

closed_enum!(
    /// Which program wrote the line.
    Component {
        /// The Velero server (`velero` container).
        VeleroServer = "velero-server",
        /// The node-agent / restic DaemonSet.
        NodeAgent = "node-agent",
        /// A Velero plugin (lines with `cmd=`/`pluginName=`).
        VeleroPlugin = "velero-plugin",
        /// The Velero CLI in a backup CronJob.
        VeleroCli = "velero-cli",
        /// The velero-manager Gin application.
        VeleroManager = "velero-manager",
        /// Anything else.
        Other = "other",
    }
);

closed_enum!(
    /// A decided backup or restore outcome (metric label `outcome`).
    Outcome {
        /// Completed.
        Completed = "Completed",
        /// PartiallyFailed.
        PartiallyFailed = "PartiallyFailed",
        /// Failed.
        Failed = "Failed",
        /// FailedValidation.
        FailedValidation = "FailedValidation",
    }
);

closed_enum!(
    /// The class of a failure reason (label `reason`); the text itself is metadata only.
    Reason {
        /// Object storage / BSL unreachable or unavailable.
        StorageUnavailable = "storage_unavailable",
        /// Access denied, invalid credentials, expired tokens.
        Credentials = "credentials",
        /// Throttling / rate limits.
        Throttled = "throttled",
        /// Timeouts and deadlines.
        Timeout = "timeout",
        /// The backup already exists in object storage.
        AlreadyExists = "already_exists",
        /// Pod-volume (restic/kopia/PVB) failures.
        PodVolume = "pod_volume",
        /// Volume snapshot / CSI failures.
        Snapshot = "snapshot",
        /// Plugin crashes and plugin errors.
        Plugin = "plugin",
        /// Validation failures.
        Validation = "validation",
        /// Anything else.
        Other = "other",
    }
);

impl Phase {
    /// The outcome a terminal phase decides, if it is terminal.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Phase::Completed => Some(Outcome::Completed),
            Phase::PartiallyFailed => Some(Outcome::PartiallyFailed),
            Phase::Failed => Some(Outcome::Failed),
            Phase::FailedValidation => Some(Outcome::FailedValidation),
            _ => None,
        }
    }
}

impl From<Outcome> for Phase {
    fn from(o: Outcome) -> Phase {
        match o {
            Outcome::Completed => Phase::Completed,
            Outcome::PartiallyFailed => Phase::PartiallyFailed,
            Outcome::Failed => Phase::Failed,
            Outcome::FailedValidation => Phase::FailedValidation,
        }
    }
}

/// The labels veloki derives for one entry (the pod identity and statics are added per file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineLabels {
    /// `component`.
    pub component: Component,
    /// `severity`.
    pub severity: Severity,
    /// `operation`.
    pub operation: Operation,
    /// `backup_status`, only on lines that state or decide a phase.
    pub backup_status: Option<Phase>,
    /// `priority`.
    pub priority: Priority,
}

/// Priority as a pure function of the other labels (so it never adds streams).
pub fn priority(severity: Severity, status: Option<Phase>) -> Priority {
    match (severity, status) {
        (_, Some(Phase::Failed | Phase::FailedValidation)) | (Severity::Critical, _) => {
            Priority::Critical
        }
        (
            _,
            Some(
                Phase::PartiallyFailed
                | Phase::FinalizingPartiallyFailed
                | Phase::WaitingForPluginOperationsPartiallyFailed,
            ),
        )
        | (Severity::Error, _) => Priority::High,
        (_, Some(_)) | (Severity::Warning, _) => Priority::Normal,
        _ => Priority::Low,
    }
}
