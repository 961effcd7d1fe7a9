//! Velero lines: backup and restore scripts (server, node-agent and CLI steps), background
//! server activity (BSL validation, GC and deletion, repository maintenance) and start-up.
//!
//! A script is planned whole (so its length is known before it is accepted) as a list of
//! compact [`S`] steps; each step is rendered only when it is emitted, with the entry's time.

use std::fmt::Write as _;
use std::io;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::out::Stream;
use super::{text, Gen, GenBackup, Outcome, ReasonClass, MAX_CLI_PODS};

const NS: [&str; 8] = [
    "shop",
    "billing",
    "auth",
    "wiki",
    "gitea",
    "monitoring",
    "redis",
    "postgres",
];
const APPS: [&str; 8] = [
    "api",
    "web",
    "worker",
    "db",
    "cache",
    "frontend",
    "scheduler",
    "gateway",
];
const RES: [(&str, &str); 12] = [
    ("pods", "Pod"),
    ("persistentvolumeclaims", "PersistentVolumeClaim"),
    ("persistentvolumes", "PersistentVolume"),
    ("configmaps", "ConfigMap"),
    ("secrets", "Secret"),
    ("services", "Service"),
    ("deployments.apps", "Deployment"),
    ("replicasets.apps", "ReplicaSet"),
    ("serviceaccounts", "ServiceAccount"),
    ("namespaces", "Namespace"),
    ("endpoints", "Endpoints"),
    ("statefulsets.apps", "StatefulSet"),
];
const R_POD: u8 = 0;
const R_PVC: u8 = 1;
const R_PV: u8 = 2;
const R_NS: u8 = 9;
const CLUSTER: u8 = u8::MAX;
const SCHEDULES: [&str; 3] = ["hourly-apps", "daily", "weekly-full"];
const MANUAL: [&str; 5] = [
    "pre-upgrade-shop",
    "manual-billing",
    "adhoc-full",
    "before-migration-db",
    "test-restore-src",
];
/// Kubernetes' `rand.String` alphabet.
const K8S: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const AWS: &str = "/plugins/velero-plugin-for-aws";
const LOGRUSR: &str = "/go/pkg/mod/github.com/bombsimon/logrusr/v3@v3.0.0/logrusr.go:108";
const NODES: [&str; 2] = ["worker-1", "worker-2"];

/// Writes `n` characters of a Kubernetes-style random suffix derived from `v`.
fn k8s(out: &mut String, mut v: u64, n: usize) {
    for _ in 0..n {
        out.push(char::from(K8S[(v % 27) as usize]));
        v = v / 27 + 0x9e37_79b9 * (v % 7 + 1);
    }
}

fn hex(out: &mut String, mut v: u64, n: usize) {
    for _ in 0..n {
        out.push(char::from(b"0123456789abcdef"[(v & 15) as usize]));
        v = (v >> 4) | ((v & 15) << 60);
        v = v.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    }
}

/// A random pod name: `<base>-<rs hash>-<5>` for Deployments, `<base>-<5>` for DaemonSets.
pub(crate) fn pod_name(rng: &mut ChaCha8Rng, out: &mut String, base: &str, deploy: bool) {
    out.push_str(base);
    out.push('-');
    if deploy {
        let n = rng.gen_range(9..11);
        k8s(out, rng.gen(), n);
        out.push('-');
    }
    k8s(out, rng.gen(), 5);
}

/// A random version-4 UUID.
pub(crate) fn uuid(rng: &mut ChaCha8Rng, out: &mut String) {
    let a: u128 = rng.gen();
    let a = (a & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let s = format!("{a:032x}");
    let _ = write!(
        out,
        "{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    );
}

/// One Kubernetes object of a backup.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    res: u8,
    ns: u8,
    app: u8,
    suffix: u32,
}

impl Item {
    fn name(&self, out: &mut String) {
        let app = APPS[self.app as usize];
        match self.res {
            R_POD => {
                out.push_str(app);
                out.push('-');
                k8s(out, u64::from(self.suffix), 9);
                out.push('-');
                k8s(out, u64::from(self.suffix) >> 7, 5);
            }
            R_PVC => {
                let _ = write!(out, "data-{app}-{}", self.suffix % 3);
            }
            R_PV => {
                out.push_str("pvc-");
                hex(out, u64::from(self.suffix), 8);
                out.push('-');
                hex(out, u64::from(self.suffix) + 1, 4);
            }
            R_NS => out.push_str(NS[self.ns as usize]),
            7 => {
                let _ = write!(out, "{app}-");
                k8s(out, u64::from(self.suffix), 9);
            }
            3 => {
                let _ = write!(out, "{app}-config");
            }
            4 => {
                let _ = write!(out, "{app}-credentials");
            }
            _ => out.push_str(app),
        }
    }

    fn ns(&self) -> &'static str {
        if self.ns == CLUSTER {
            ""
        } else {
            NS[self.ns as usize]
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Schedule,
    Cli,
    Manual,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fail {
    None,
    Upload,
    AlreadyExists,
    PhaseFailed,
    PluginCrash,
}

#[derive(Clone, Copy, Debug)]
struct Vol {
    item: u16,
    node: u8,
    suffix: u32,
    fail: bool,
}

/// A backup being generated (and, afterwards, its manifest record).
pub(crate) struct BackupRt {
    pub name: String,
    sched: Option<&'static str>,
    mode: Mode,
    pub outcome: Outcome,
    reason: Option<ReasonClass>,
    fail: Fail,
    error: Option<String>,
    item_errs: Vec<(u16, String)>,
    items: Vec<Item>,
    nss: Vec<u8>,
    vols: Vec<Vol>,
    phase: &'static str,
    async_ops: bool,
    long: bool,
    cli_file: usize,
    dots: u16,
    done: u16,
    pid: u32,
}

impl BackupRt {
    /// The manifest record.
    pub fn summary(&self) -> GenBackup {
        GenBackup {
            name: self.name.clone(),
            namespace: "velero".to_string(),
            schedule: self.sched.map(str::to_string),
            created_by: match self.mode {
                Mode::Schedule => "schedule",
                Mode::Cli => "cli",
                Mode::Manual => "manual",
            }
            .to_string(),
            outcome: self.outcome,
            reason_class: self.reason,
            error: self.error.clone(),
        }
    }
}

/// A restore being generated.
pub(crate) struct RestoreRt {
    pub name: String,
    pub backup: u32,
    pub outcome: Outcome,
    pub reason: Option<ReasonClass>,
    nss: Vec<u8>,
    n_items: u16,
    vols: u8,
    err: String,
    done: u16,
}

/// Backup step kinds.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BK {
    SchedDue,
    Queue,
    Dequeue,
    SetupLog,
    SetupTemp,
    SetupPlugins,
    GetBia,
    GetIba,
    StoreCheck,
    VersionFile,
    InclNs,
    ExclNs,
    InclRes,
    ExclRes,
    PvFlag,
    Collected,
    ItemBlock(u16),
    AddToBlock(u16),
    Processing(u16),
    BackingUp(u16),
    CustomAction(u16),
    TakeSnap(u16),
    PluginVol(u16),
    Progress(u16),
    ErrCount(u16),
    ItemErr(u16, u8),
    ItemWarn(u16),
    DoneBlocks,
    WaitPvb,
    PvbFailed(u8),
    SkippedPvs,
    Total,
    StorePersist,
    UploadLogErr,
    Completed,
    MovingTo,
    PluginExited,
    PluginCrashed,
    Failed,
    UpdStatus,
    Marking,
    FinTemp,
    FinBia,
    FinCollected,
    FinTotal,
    CliSubmitted,
    CliWaiting,
    CliDots,
    CliStatus,
}

/// Restore step kinds.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RK {
    Start,
    StartOf,
    WillRestore(u8),
    Attempt,
    Progress,
    Skipped,
    ItemErr,
    WaitPvr,
    DonePvr,
    SumErr,
    SumWarn,
    Completed,
    Marking,
}

/// Background step kinds (server unless noted).
#[derive(Clone, Copy, Debug)]
pub(crate) enum BgK {
    BslValidating,
    BslValid,
    BslFailErr,
    BslInvalid,
    BslSummaryErr,
    GcExpired,
    GcCreateReq,
    DelRemovingPv,
    DelRemovingPodVol,
    DelDeleteSnap,
    DelRemovingBackup,
    DelRemovingRestores,
    DelDone,
    RepoStart,
    RepoJobStarted,
    RepoWaiting,
    RepoComplete,
    SyncFound,
}

/// One planned entry.
#[derive(Clone, Copy, Debug)]
pub(crate) enum S {
    /// Backup `b`, server or CLI.
    B(u32, BK),
    /// PodVolumeBackup of backup `b`, volume `v`, stage code (node-agent).
    Pvb(u32, u8, u8),
    /// Restore `r`.
    R(u32, RK),
    /// PodVolumeRestore of restore `r`, volume `v`, stage (node-agent).
    Pvr(u32, u8, u8),
    /// Background server line.
    Bg(BgK),
    /// Start-up line `k` of source `src` (0 server, 1–2 node-agents, 3 Gin app, 4 CoreDNS).
    Up(u8, u8),
}

// logSource line numbers by Velero minor (index = minor - 11), from the reference table.
const L_SETUP_LOG: [u32; 8] = [601, 601, 609, 622, 605, 613, 679, 705];
const L_COMPLETED: [u32; 8] = [785, 783, 0, 0, 0, 0, 0, 0];
const L_MOVING: [u32; 8] = [0, 0, 743, 756, 745, 753, 818, 844];
const L_FAILED: [u32; 8] = [290, 289, 288, 288, 291, 297, 317, 343];
const L_UPDATING: [u32; 8] = [309, 308, 307, 307, 310, 316, 336, 362];
const L_MARKING: [u32; 8] = [197, 198, 201, 201, 202, 207, 207, 207];

const PVB_OLD_OK: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const PVB_OLD_FAIL: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 13];
const PVB_NEW_OK: &[u8] = &[30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42];
const PVB_NEW_FAIL: &[u8] = &[30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 43, 44];

impl Gen {
    fn ix(&self) -> usize {
        (self.minor - 11) as usize
    }

    fn draw(&mut self, restore: bool) -> Outcome {
        use Outcome::*;
        let deck = if restore {
            &mut self.rdeck
        } else {
            &mut self.deck
        };
        if deck.is_empty() {
            if restore {
                deck.extend_from_slice(&[Completed, Completed, Completed, PartiallyFailed]);
            } else {
                deck.extend_from_slice(&[
                    Completed,
                    Completed,
                    Completed,
                    Completed,
                    PartiallyFailed,
                    PartiallyFailed,
                    Failed,
                    FailedValidation,
                ]);
            }
            deck.shuffle(&mut self.rng);
        }
        deck.pop().unwrap_or(Completed)
    }

    fn unique_name(&mut self, prefix: &str) -> String {
        let mut t = self.now + 1_000_000_000;
        loop {
            let mut n = String::with_capacity(prefix.len() + 15);
            n.push_str(prefix);
            n.push('-');
            text::name_stamp(&mut n, t);
            if !self.names.contains(&n) {
                return n;
            }
            t += 1_000_000_000;
        }
    }

    fn aws_error(&mut self, code: &str, msg: &str, status: u16) -> String {
        let mut s = format!(
            "rpc error: code = Unknown desc = {code}: {msg}\n\tstatus code: {status}, request id: "
        );
        for _ in 0..16 {
            s.push(char::from(b"0123456789ABCDEF"[self.rng.gen_range(0..16)]));
        }
        s.push_str(", host id: ");
        for _ in 0..24 {
            s.push(char::from(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
                    [self.rng.gen_range(0..64)],
            ));
        }
        s.push('=');
        s
    }

    /// Plans the next backup; queues it if it fits into `remaining` entries.
    pub(crate) fn plan_backup(&mut self, remaining: u64) -> bool {
        let m = self.minor;
        let drawn = self.draw(false);
        let mut outcome = drawn;
        let cli_ok = self.cli_pods < MAX_CLI_PODS;
        if outcome == Outcome::FailedValidation && !cli_ok {
            outcome = Outcome::Completed;
        }
        let r: f64 = self.rng.gen();
        let mode = if outcome == Outcome::FailedValidation || (r < 0.15 && cli_ok) {
            Mode::Cli
        } else if r < 0.35 {
            Mode::Manual
        } else {
            Mode::Schedule
        };
        let sched = match mode {
            Mode::Schedule => {
                let x: f64 = self.rng.gen();
                Some(
                    SCHEDULES[if x < 0.5 {
                        0
                    } else if x < 0.85 {
                        1
                    } else {
                        2
                    }],
                )
            }
            _ => None,
        };
        let name = match mode {
            Mode::Schedule => self.unique_name(sched.unwrap_or("daily")),
            Mode::Cli => self.unique_name("core-cl1-daily-backup"),
            Mode::Manual => {
                let w = MANUAL[self.rng.gen_range(0..MANUAL.len())];
                format!("{w}-{}", self.manual_n + 1)
            }
        };

        // Contents.
        let n_ns = self.rng.gen_range(1..4usize);
        let mut nss: Vec<u8> = (0..NS.len() as u8).collect();
        nss.shuffle(&mut self.rng);
        nss.truncate(n_ns);
        let x = self.rng.gen_range(0..100);
        let n_items = if x < 70 {
            self.rng.gen_range(5..30)
        } else if x < 95 {
            self.rng.gen_range(30..70)
        } else {
            self.rng.gen_range(70..140)
        };
        let mut items = Vec::with_capacity(n_items + n_ns);
        for &ns in &nss {
            items.push(Item {
                res: R_NS,
                ns,
                app: 0,
                suffix: 0,
            });
        }
        for _ in 0..n_items {
            let res = self.rng.gen_range(0..RES.len() as u8);
            let res = if res == R_NS { R_POD } else { res };
            let ns = if res == R_PV {
                CLUSTER
            } else {
                nss[self.rng.gen_range(0..nss.len())]
            };
            items.push(Item {
                res,
                ns,
                app: self.rng.gen_range(0..APPS.len() as u8),
                suffix: self.rng.gen(),
            });
        }
        items.shuffle(&mut self.rng);
        let pods: Vec<u16> = (0..items.len() as u16)
            .filter(|&i| items[i as usize].res == R_POD)
            .collect();
        let want_vols = [1usize, 2, 2, 3, 3, 4, 4, 5][self.rng.gen_range(0..8)].min(pods.len());
        let mut vols = Vec::new();
        for k in 0..want_vols {
            vols.push(Vol {
                item: pods[k * pods.len() / want_vols.max(1)],
                node: self.rng.gen_range(0..2),
                suffix: self.rng.gen(),
                fail: false,
            });
        }

        // How it ends.
        let mut fail = Fail::None;
        let mut reason = None;
        let mut error = None;
        let mut item_errs: Vec<(u16, String)> = Vec::new();
        let mut phase = "Finalizing";
        let mut async_ops = false;
        match outcome {
            Outcome::Completed => {
                if m >= 13 && mode != Mode::Cli && self.rng.gen_bool(0.2) {
                    phase = "WaitingForPluginOperations";
                    async_ops = true;
                }
            }
            Outcome::PartiallyFailed => {
                phase = "FinalizingPartiallyFailed";
                if m >= 13 && mode != Mode::Cli && self.rng.gen_bool(0.2) {
                    phase = "WaitingForPluginOperationsPartiallyFailed";
                    async_ops = true;
                }
                let x: f64 = self.rng.gen();
                let class = if x < 0.35 && !vols.is_empty() {
                    ReasonClass::PodVolume
                } else if x < 0.6 {
                    ReasonClass::Snapshot
                } else if x < 0.75 {
                    ReasonClass::Plugin
                } else {
                    ReasonClass::Other
                };
                reason = Some(class);
                let k = if class == ReasonClass::PodVolume {
                    1
                } else {
                    self.rng.gen_range(1..4usize)
                };
                for j in 0..k {
                    let i = if class == ReasonClass::PodVolume {
                        vols[0].fail = true;
                        vols[0].item
                    } else {
                        let c = (j * items.len() / k + self.rng.gen_range(0..items.len() / k))
                            .min(items.len() - 1);
                        if class == ReasonClass::Snapshot {
                            items[c].res = R_PV;
                            items[c].ns = CLUSTER;
                        } else if class == ReasonClass::Plugin {
                            items[c].res = R_POD;
                            if items[c].ns == CLUSTER {
                                items[c].ns = nss[0];
                            }
                        }
                        c as u16
                    };
                    let it = items[i as usize];
                    let mut iname = String::new();
                    it.name(&mut iname);
                    let e = match class {
                        ReasonClass::PodVolume => {
                            let mut s = String::from(
                                "pod volume backup failed: data path backup failed: Failed to run kopia backup: unable to get local block device entry: resolveSymlink: lstat /host_pods/",
                            );
                            uuid(&mut self.rng, &mut s);
                            s.push_str("/volumes/kubernetes.io~csi/pvc-");
                            uuid(&mut self.rng, &mut s);
                            s.push_str("/mount: no such file or directory");
                            s
                        }
                        ReasonClass::Snapshot => {
                            let mut s = String::from("error taking snapshot of volume: ");
                            let mut v = String::from("The volume 'vol-0");
                            hex(&mut v, self.rng.gen(), 16);
                            v.push_str("' does not exist.");
                            s.push_str(&self.aws_error("InvalidVolume.NotFound", &v, 400));
                            s
                        }
                        ReasonClass::Plugin => format!(
                            "error executing custom action (groupResource=pods, namespace={}, name={iname}): rpc error: code = Unknown desc = plugin panicked: runtime error: index out of range [0] with length 0",
                            it.ns()
                        ),
                        _ => format!(
                            "error getting persistent volume claim for volume: persistentvolumeclaims \"data-{}-0\" not found",
                            APPS[it.app as usize]
                        ),
                    };
                    item_errs.push((i, e));
                }
                error = item_errs.first().map(|e| e.1.clone());
            }
            Outcome::Failed => {
                let x: f64 = self.rng.gen();
                let (f, class) = if x < 0.25 {
                    (Fail::Upload, ReasonClass::Credentials)
                } else if x < 0.45 {
                    (Fail::Upload, ReasonClass::StorageUnavailable)
                } else if x < 0.6 {
                    (Fail::Upload, ReasonClass::Throttled)
                } else if x < 0.68 {
                    (Fail::Upload, ReasonClass::Timeout)
                } else if x < 0.75 && m >= 13 {
                    (Fail::PhaseFailed, ReasonClass::Timeout)
                } else if x < 0.9 {
                    (Fail::AlreadyExists, ReasonClass::AlreadyExists)
                } else {
                    (Fail::PluginCrash, ReasonClass::Plugin)
                };
                fail = f;
                reason = Some(class);
                if f == Fail::PhaseFailed {
                    phase = "Failed";
                }
                error = Some(match class {
                    ReasonClass::Credentials => self.aws_error("AccessDenied", "Access Denied", 403),
                    ReasonClass::Throttled => {
                        self.aws_error("SlowDown", "Please reduce your request rate.", 503)
                    }
                    ReasonClass::StorageUnavailable => {
                        self.bsl_bad = 2;
                        format!(
                            "BackupStorageLocation \"default\" is unavailable: rpc error: code = Unknown desc = RequestError: send request failed\ncaused by: Put \"https://minio.velero.svc:9000/velero/backups/{name}/velero-backup.json\": dial tcp 10.43.12.7:9000: connect: connection refused"
                        )
                    }
                    ReasonClass::Timeout if f == Fail::Upload => format!(
                        "rpc error: code = Unknown desc = RequestError: send request failed\ncaused by: Put \"https://s3.eu-central-1.amazonaws.com/velero-backups/backups/{name}/{name}.tar.gz\": dial tcp 52.219.170.42:443: i/o timeout"
                    ),
                    ReasonClass::Timeout => {
                        "rpc error: code = DeadlineExceeded desc = context deadline exceeded"
                            .to_string()
                    }
                    ReasonClass::AlreadyExists => "backup already exists in object storage".to_string(),
                    _ => "plugin panicked: runtime error: invalid memory address or nil pointer dereference"
                        .to_string(),
                });
            }
            Outcome::FailedValidation => {
                reason = Some(ReasonClass::Validation);
                error = Some(if self.rng.gen_bool(0.5) {
                    "backup can't be created because BackupStorageLocation default is in Unavailable status.".to_string()
                } else {
                    "Invalid included/excluded namespace lists: excludes list cannot contain an item in the includes list: shop".to_string()
                });
            }
        }
        let long = outcome != Outcome::FailedValidation
            && fail != Fail::AlreadyExists
            && (!self.long_done || self.rng.gen_bool(0.02));

        // Script.
        let b = self.backups.len() as u32;
        let mut q: Vec<S> = Vec::with_capacity(8 + items.len() * 5);
        let mut deferred = 0u64;
        let bk = |k| S::B(b, k);
        if mode == Mode::Cli {
            q.push(bk(BK::CliSubmitted));
            q.push(bk(BK::CliWaiting));
        }
        if outcome != Outcome::FailedValidation {
            if mode == Mode::Schedule {
                q.push(bk(BK::SchedDue));
            }
            if m >= 18 {
                q.push(bk(BK::Queue));
                q.push(bk(BK::Dequeue));
            }
            q.push(bk(BK::SetupLog));
            q.push(bk(BK::SetupTemp));
            q.push(bk(BK::SetupPlugins));
            q.push(bk(BK::GetBia));
            if m >= 15 {
                q.push(bk(BK::GetIba));
            }
            q.push(bk(BK::StoreCheck));
        }
        if fail == Fail::AlreadyExists {
            q.push(bk(BK::Failed));
            q.push(bk(BK::UpdStatus));
        } else if outcome != Outcome::FailedValidation {
            for k in [
                BK::VersionFile,
                BK::InclNs,
                BK::ExclNs,
                BK::InclRes,
                BK::ExclRes,
                BK::PvFlag,
                BK::Collected,
            ] {
                q.push(bk(k));
            }
            // Items, with the node-agent's PVB lines merged in after their pod.
            let mut na: Vec<S> = Vec::new();
            let crash_at = if fail == Fail::PluginCrash {
                items.len() / 2
            } else {
                usize::MAX
            };
            for (i, &it) in items.iter().enumerate() {
                let iu = i as u16;
                if i == crash_at {
                    q.push(bk(BK::PluginCrashed));
                }
                if m >= 15 {
                    q.push(bk(BK::ItemBlock(iu)));
                    q.push(bk(BK::AddToBlock(iu)));
                }
                q.push(bk(BK::Processing(iu)));
                q.push(bk(BK::BackingUp(iu)));
                if (it.res == R_POD || it.res == R_PVC) && self.rng.gen_bool(0.5) {
                    q.push(bk(BK::CustomAction(iu)));
                }
                if it.res == R_PV {
                    q.push(bk(BK::TakeSnap(iu)));
                    q.push(bk(BK::PluginVol(iu)));
                }
                for (e, (ei, _)) in item_errs.iter().enumerate() {
                    if *ei == iu && !(reason == Some(ReasonClass::PodVolume) && m >= 14) {
                        q.push(bk(BK::ErrCount(iu)));
                        q.push(bk(BK::ItemErr(iu, e as u8)));
                    }
                }
                if self.rng.gen_bool(0.015) {
                    q.push(bk(BK::ItemWarn(iu)));
                }
                q.push(bk(BK::Progress(iu)));
                for (v, vol) in vols.iter().enumerate() {
                    if vol.item == iu {
                        let stages = match (m >= 17, vol.fail) {
                            (false, false) => PVB_OLD_OK,
                            (false, true) => PVB_OLD_FAIL,
                            (true, false) => PVB_NEW_OK,
                            (true, true) => PVB_NEW_FAIL,
                        };
                        na.extend(stages.iter().map(|&s| S::Pvb(b, v as u8, s)));
                    }
                }
                // Interleave some pending node-agent lines with the next items.
                let take = self.rng.gen_range(0..6).min(na.len());
                q.extend(na.drain(..take));
            }
            if m >= 14 && !vols.is_empty() {
                q.push(bk(BK::DoneBlocks));
                q.push(bk(BK::WaitPvb));
            }
            q.append(&mut na);
            if reason == Some(ReasonClass::PodVolume) && m >= 14 {
                q.push(bk(BK::PvbFailed(0)));
            }
            if m >= 12 {
                q.push(bk(BK::SkippedPvs));
            }
            q.push(bk(BK::Total));
            q.push(bk(BK::StorePersist));
            if m <= 12 {
                q.push(bk(BK::Completed));
            } else {
                q.push(bk(BK::MovingTo));
            }
            if fail == Fail::Upload {
                q.push(bk(BK::UploadLogErr));
            }
            if m >= 14 {
                q.push(bk(BK::PluginExited));
            }
            if fail != Fail::None {
                q.push(bk(BK::Failed));
            }
            q.push(bk(BK::UpdStatus));
            if async_ops {
                deferred = 5;
            }
        }
        if mode == Mode::Cli {
            q.push(bk(BK::CliDots));
            q.push(bk(BK::CliStatus));
        }
        let n = q.len() as u64 + deferred;
        if !self.fits(n, remaining) {
            // Put the card back: the end of the tree should not skew the outcome mix.
            self.deck.push(drawn);
            return false;
        }
        // Accepted: commit side effects.
        if mode == Mode::Manual {
            self.manual_n += 1;
        }
        if mode == Mode::Cli {
            self.cli_pods += 1;
        }
        if long {
            self.long_done = true;
        }
        self.names.insert(name.clone());
        self.plugin_pid += self.rng.gen_range(3..40);
        let dots = if outcome == Outcome::FailedValidation {
            0
        } else {
            (q.len() / 25).clamp(1, 400) as u16
        };
        self.backups.push(BackupRt {
            name,
            sched,
            mode,
            outcome,
            reason,
            fail,
            error,
            item_errs,
            items,
            nss,
            vols,
            phase,
            async_ops,
            long,
            cli_file: usize::MAX,
            dots,
            done: 0,
            pid: self.plugin_pid,
        });
        self.pending += n;
        self.backup_q.extend(q);
        true
    }

    /// Plans a restore of an earlier backup; queues it if it fits.
    pub(crate) fn plan_restore(&mut self, remaining: u64) -> bool {
        if self.restorable.is_empty() {
            return false;
        }
        let pick = self.restorable.len() - 1 - self.rng.gen_range(0..self.restorable.len().min(4));
        let b = self.restorable[pick];
        let outcome = self.draw(true);
        let bname = self.backups[b as usize].name.clone();
        let name = self.unique_name(&bname);
        let nss = self.backups[b as usize].nss.clone();
        let n_items = self.rng.gen_range(5..50u16);
        let vols = [0u8, 0, 1, 2][self.rng.gen_range(0..4)];
        let m = self.minor;
        let r = self.restores.len() as u32;
        let mut q = vec![S::R(r, RK::Start), S::R(r, RK::StartOf)];
        for k in 0..nss.len() as u8 {
            q.push(S::R(r, RK::WillRestore(k)));
        }
        q.push(S::R(r, RK::WillRestore(u8::MAX)));
        let err_at = if outcome == Outcome::PartiallyFailed {
            self.rng.gen_range(0..n_items)
        } else {
            u16::MAX
        };
        for i in 0..n_items {
            if self.rng.gen_bool(0.15) {
                q.push(S::R(r, RK::Skipped));
            } else {
                q.push(S::R(r, RK::Attempt));
            }
            if i == err_at {
                q.push(S::R(r, RK::ItemErr));
            }
            q.push(S::R(r, RK::Progress));
        }
        if vols > 0 {
            q.push(S::R(r, RK::WaitPvr));
            for v in 0..vols {
                for st in 0..3 {
                    q.push(S::Pvr(r, v, st));
                }
            }
            q.push(S::R(r, RK::DonePvr));
        }
        if outcome == Outcome::PartiallyFailed {
            q.push(S::R(r, RK::SumErr));
        }
        if self.rng.gen_bool(0.3) {
            q.push(S::R(r, RK::SumWarn));
        }
        q.push(S::R(r, RK::Completed));
        if m >= 14 {
            q.push(S::R(r, RK::Marking));
        }
        if !self.fits(q.len() as u64, remaining) {
            self.rdeck.push(outcome);
            return false;
        }
        self.names.insert(name.clone());
        let ns = NS[nss[0] as usize];
        let app = APPS[self.rng.gen_range(0..APPS.len())];
        let ip = self.rng.gen_range(10..250);
        let err = format!(
            "error restoring services/{ns}/{app}: Service \"{app}\" is invalid: spec.clusterIPs[0]: Invalid value: []string{{\"10.43.0.{ip}\"}}: failed to allocate IP 10.43.0.{ip}: provided IP is already allocated"
        );
        self.restores.push(RestoreRt {
            name,
            backup: b,
            outcome,
            reason: (outcome == Outcome::PartiallyFailed).then_some(ReasonClass::Other),
            nss,
            n_items,
            vols,
            err,
            done: 0,
        });
        self.pending += q.len() as u64;
        self.restore_q.extend(q);
        true
    }

    /// Plans a background script (BSL validation, GC, repository maintenance, sync).
    pub(crate) fn plan_bg(&mut self, remaining: u64) -> bool {
        let x: f64 = self.rng.gen();
        let q: &[BgK] = if self.bsl_bad > 0 {
            &[
                BgK::BslValidating,
                BgK::BslFailErr,
                BgK::BslInvalid,
                BgK::BslSummaryErr,
            ]
        } else if x < 0.7 {
            &[BgK::BslValidating, BgK::BslValid]
        } else if x < 0.85 {
            &[
                BgK::GcExpired,
                BgK::GcCreateReq,
                BgK::DelRemovingPv,
                BgK::DelRemovingPodVol,
                BgK::DelDeleteSnap,
                BgK::DelRemovingBackup,
                BgK::DelRemovingRestores,
                BgK::DelDone,
            ]
        } else if x < 0.95 && self.minor >= 14 {
            &[
                BgK::RepoStart,
                BgK::RepoJobStarted,
                BgK::RepoWaiting,
                BgK::RepoComplete,
            ]
        } else {
            &[BgK::SyncFound]
        };
        if !self.fits(q.len() as u64, remaining) {
            return false;
        }
        if matches!(q[0], BgK::BslValidating) && self.bsl_bad > 0 {
            self.bsl_bad -= 1;
        }
        if matches!(q[0], BgK::GcExpired) {
            // A backup from before the tree, expired after its 30-day TTL.
            let s = SCHEDULES[self.rng.gen_range(0..3)];
            self.gc_name.clear();
            self.gc_name.push_str(s);
            self.gc_name.push('-');
            text::name_stamp(
                &mut self.gc_name,
                self.now - 30 * 86_400_000_000_000 - self.rng.gen_range(0..3_600_000_000_000),
            );
        }
        self.pending += q.len() as u64;
        self.bg_q.extend(q.iter().map(|&k| S::Bg(k)));
        true
    }

    /// Writes the start-up lines of every pod (as many as fit).
    pub(crate) fn startup(&mut self) -> io::Result<()> {
        let old = self.minor <= 15;
        let mut seq: Vec<S> = (0..STARTUP_SERVER).map(|k| S::Up(0, k)).collect();
        let na: Vec<u8> = if old {
            vec![0, 1, 2, 3, 4, 5, 6]
        } else {
            vec![0, 1, 2, 4, 5, 7]
        };
        for node in 1..=2u8 {
            seq.extend(na.iter().map(|&k| S::Up(node, k)));
        }
        seq.extend((0..7).map(|k| S::Up(3, k)));
        seq.extend((0..4).map(|k| S::Up(4, k)));
        // Pods start in parallel: interleave the server's lines with the others.
        let (server, rest) = seq.split_at(STARTUP_SERVER as usize);
        let mut merged = Vec::with_capacity(seq.len());
        let (mut i, mut j) = (0, 0);
        while i < server.len() || j < rest.len() {
            if j >= rest.len() || (i < server.len() && self.rng.gen_bool(0.6)) {
                merged.push(server[i]);
                i += 1;
            } else {
                merged.push(rest[j]);
                j += 1;
            }
        }
        for s in merged {
            if self.tree.entries >= self.target_lines() {
                break;
            }
            self.emit(s)?;
        }
        Ok(())
    }

    /// Renders and writes one step, then runs its follow-ups.
    pub(crate) fn emit(&mut self, s: S) -> io::Result<()> {
        let t = self.tick();
        self.buf.clear();
        let (file, stream) = match s {
            S::B(b, k) => self.r_backup(b, k, t)?,
            S::Pvb(b, v, st) => self.r_pvb(b, v, st, t),
            S::R(r, k) => self.r_restore(r, k, t),
            S::Pvr(r, v, st) => self.r_pvr(r, v, st, t),
            S::Bg(k) => self.r_bg(k, t),
            S::Up(src, k) => self.r_up(src, k, t),
        };
        self.put(file, t, stream)?;
        if let S::B(b, k) = s {
            let bi = b as usize;
            match k {
                BK::MovingTo if self.backups[bi].async_ops => {
                    for k in [
                        BK::Marking,
                        BK::FinTemp,
                        BK::FinBia,
                        BK::FinCollected,
                        BK::FinTotal,
                    ] {
                        self.bg_q.push_back(S::B(b, k));
                    }
                }
                BK::UpdStatus
                    if matches!(
                        self.backups[bi].outcome,
                        Outcome::Completed | Outcome::PartiallyFailed
                    ) =>
                {
                    self.restorable.push(b);
                }
                BK::CliStatus => {
                    let f = self.backups[bi].cli_file;
                    self.tree.close_file(f)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn r_backup(&mut self, b: u32, k: BK, t: i64) -> io::Result<(usize, Stream)> {
        let ix = self.ix();
        let m = self.minor;
        if matches!(k, BK::CliSubmitted) && self.backups[b as usize].cli_file == usize::MAX {
            let minute = (t / 60_000_000_000).max(self.last_cli_minute + 1);
            self.last_cli_minute = minute;
            let mut pod = format!("backup-core-cl1-daily-{minute}");
            pod_name(&mut self.rng, &mut pod, "", false);
            let pod = pod.replacen("--", "-", 1);
            let mut uid = String::new();
            uuid(&mut self.rng, &mut uid);
            self.backups[b as usize].cli_file =
                self.tree.add_file("velero", &pod, &uid, "velero-backup")?;
        }
        let bb = &mut self.backups[b as usize];
        let rec = &mut self.rec;
        let out = &mut self.buf;
        let server = self.files.server;
        let name = bb.name.as_str();
        let item_name = |it: &Item, s: &mut String| {
            s.clear();
            it.name(s);
        };
        rec.begin();
        let mut level = "info";
        macro_rules! backup_f {
            () => {
                rec.f("backup", format_args!("velero/{name}"))
            };
        }
        macro_rules! ls {
            ($($a:tt)*) => { rec.f("logSource", format_args!($($a)*)) };
        }
        let tmp = &mut self.tmp;
        match k {
            BK::CliSubmitted => {
                let _ = write!(out, "Backup request \"{name}\" submitted successfully.");
                return Ok((bb.cli_file, Stream::Stdout));
            }
            BK::CliWaiting => {
                out.push_str("Waiting for backup to complete. You may safely press ctrl-c to stop waiting - your backup will continue in the background.");
                return Ok((bb.cli_file, Stream::Stdout));
            }
            BK::CliDots => {
                for _ in 0..bb.dots {
                    out.push('.');
                }
                return Ok((bb.cli_file, Stream::Stdout));
            }
            BK::CliStatus => {
                let _ = write!(out, "Backup completed with status: {}. You may check for more information using the commands `velero backup describe {name}` and `velero backup logs {name}`.", bb.outcome.as_str());
                return Ok((bb.cli_file, Stream::Stdout));
            }
            BK::SchedDue => {
                rec.m("Schedule is due, going to submit backup.").f(
                    "schedule",
                    format_args!("velero/{}", bb.sched.unwrap_or("daily")),
                );
                ls!("pkg/controller/schedule_controller.go:{}", 255 + ix as u32);
            }
            BK::Queue => {
                rec.msg(format_args!("Queueing backup {name}, queue position 1"))
                    .s("controller", "backup-queue");
                backup_f!();
                ls!("pkg/controller/backup_queue_controller.go:241");
            }
            BK::Dequeue => {
                rec.msg(format_args!(
                    "Dequeueing backup {name}, moving to ReadyToStart"
                ))
                .s("controller", "backup-queue");
                backup_f!();
                ls!("pkg/controller/backup_queue_controller.go:287");
            }
            BK::SetupLog => {
                rec.m("Setting up backup log");
                backup_f!();
                ls!("pkg/controller/backup_controller.go:{}", L_SETUP_LOG[ix]);
            }
            BK::SetupTemp | BK::SetupPlugins | BK::GetBia | BK::GetIba | BK::StoreCheck => {
                let (msg, off) = match k {
                    BK::SetupTemp => ("Setting up backup temp file", 8),
                    BK::SetupPlugins => ("Setting up plugin manager", 16),
                    BK::GetBia => ("Getting backup item actions", 21),
                    BK::GetIba => ("Getting ItemBlock actions", 27),
                    _ => ("Setting up backup store to check for backup existence", 33),
                };
                rec.m(msg);
                backup_f!();
                ls!(
                    "pkg/controller/backup_controller.go:{}",
                    L_SETUP_LOG[ix] + off
                );
            }
            BK::VersionFile => {
                rec.m("Writing backup version file");
                backup_f!();
                ls!("pkg/backup/backup.go:{}", 283 + 7 * ix);
            }
            BK::InclNs | BK::ExclNs => {
                if matches!(k, BK::InclNs) {
                    rec.m("Including namespaces: ");
                    if bb.long && m < 12 {
                        for i in 0..1800 {
                            let _ = write!(rec.msg, "tenant-{i:04}, ");
                        }
                    }
                    for (i, &ns) in bb.nss.iter().enumerate() {
                        if i > 0 {
                            rec.msg.push_str(", ");
                        }
                        rec.msg.push_str(NS[ns as usize]);
                    }
                } else {
                    rec.m("Excluding namespaces: <none>");
                }
                backup_f!();
                ls!("pkg/backup/backup.go:{}", 290 + 7 * ix);
            }
            BK::InclRes | BK::ExclRes => {
                rec.m(if matches!(k, BK::InclRes) {
                    "Including resources: *"
                } else {
                    "Excluding resources: <none>"
                });
                backup_f!();
                ls!("pkg/util/collections/includes_excludes.go:{}", 506 + ix);
            }
            BK::PvFlag => {
                rec.m("Backing up all volumes using pod volume backup: false");
                backup_f!();
                ls!("pkg/backup/backup.go:{}", 298 + 7 * ix);
            }
            BK::Collected => {
                rec.msg(format_args!("Collected {} items matching the backup spec from the Kubernetes API (actual number of items backed up may be more or less depending on velero.io/exclude-from-backup annotation, plugins returning additional related items to back up, etc.)", bb.items.len()))
                    .s("progress", "");
                backup_f!();
                ls!("pkg/backup/backup.go:{}", 346 + 7 * ix);
            }
            BK::ItemBlock(i) | BK::AddToBlock(i) => {
                let it = bb.items[i as usize];
                item_name(&it, tmp);
                let (gr, ns) = (RES[it.res as usize].0, it.ns());
                let sep = if ns.is_empty() { "" } else { "/" };
                if matches!(k, BK::ItemBlock(_)) {
                    rec.msg(format_args!(
                        "Backing Up Item Block including {gr} {ns}{sep}{tmp} (1 items in block)"
                    ));
                    ls!("pkg/backup/backup.go:{}", 470 + 4 * ix);
                } else {
                    rec.msg(format_args!("adding {gr} {ns}{sep}{tmp} to ItemBlock"));
                    ls!("pkg/backup/backup.go:{}", 520 + 4 * ix);
                }
                backup_f!();
            }
            BK::Processing(i) | BK::BackingUp(i) | BK::CustomAction(i) | BK::Progress(i) => {
                let it = bb.items[i as usize];
                item_name(&it, tmp);
                match k {
                    BK::Processing(_) => {
                        rec.m("Processing item").s("progress", "");
                        ls!("pkg/backup/backup.go:{}", 423 + 6 * ix);
                    }
                    BK::BackingUp(_) => {
                        rec.m("Backing up item");
                        ls!("pkg/backup/item_backupper.go:{}", 179 + 3 * ix);
                    }
                    BK::CustomAction(_) => {
                        rec.m("Executing custom action");
                        ls!("pkg/backup/item_backupper.go:{}", 366 + 3 * ix);
                    }
                    _ => {
                        bb.done += 1;
                        rec.msg(format_args!("Backed up {} items out of an estimated total of {} (estimate will change throughout the backup)", bb.done, bb.items.len()))
                            .s("progress", "");
                        ls!("pkg/backup/backup.go:{}", 470 + 6 * ix);
                    }
                }
                backup_f!();
                rec.s("name", tmp)
                    .s("namespace", it.ns())
                    .s("resource", RES[it.res as usize].0);
            }
            BK::TakeSnap(i) => {
                let it = bb.items[i as usize];
                item_name(&it, tmp);
                rec.m("Executing takePVSnapshot")
                    .s("name", tmp)
                    .s("namespace", "")
                    .s("resource", "persistentvolumes");
                backup_f!();
                ls!("pkg/backup/item_backupper.go:{}", 525 + 3 * ix);
            }
            BK::PluginVol(i) => {
                let it = bb.items[i as usize];
                rec.m("Getting volume information for persistent volume")
                    .s("cmd", AWS)
                    .s("pluginName", "velero-plugin-for-aws")
                    .f(
                        "volumeID",
                        format_args!("vol-0{:016x}", it.suffix as u64 * 2_654_435_761),
                    );
                backup_f!();
                ls!(
                    "/go/src/velero-plugin-for-aws/velero-plugin-for-aws/volume_snapshotter.go:183"
                );
            }
            BK::ErrCount(i) => {
                let it = bb.items[i as usize];
                item_name(&it, tmp);
                rec.m("1 errors encountered backup up item")
                    .s("name", tmp)
                    .s("namespace", it.ns())
                    .s("progress", "")
                    .s("resource", RES[it.res as usize].0);
                backup_f!();
                ls!("pkg/backup/backup.go:{}", 440 + 6 * ix);
            }
            BK::ItemErr(i, e) => {
                level = "error";
                let it = bb.items[i as usize];
                item_name(&it, tmp);
                rec.m("Error backing up item")
                    .s("error", &bb.item_errs[e as usize].1)
                    .s("name", tmp);
                if bb.reason != Some(ReasonClass::Plugin) {
                    rec.f(
                        "error.file",
                        format_args!(
                            "/go/src/github.com/vmware-tanzu/velero/pkg/backup/item_backupper.go:{}",
                            540 + 3 * ix
                        ),
                    )
                    .s(
                        "error.function",
                        "github.com/vmware-tanzu/velero/pkg/backup.(*itemBackupper).backupItemInternal",
                    );
                }
                backup_f!();
                ls!("pkg/backup/backup.go:{}", 443 + 6 * ix);
            }
            BK::ItemWarn(i) => {
                level = "warning";
                let it = bb.items[i as usize];
                item_name(&it, tmp);
                rec.msg(format_args!(
                    "Skip pod volume data of {tmp}: volume cache is a hostPath volume which is not supported for pod volume backup, skipping"
                ));
                backup_f!();
                ls!("pkg/podvolume/backupper.go:{}", 260 + ix);
            }
            BK::DoneBlocks => {
                rec.m("done processing ItemBlocks");
                backup_f!();
                ls!("pkg/backup/backup.go:{}", 560 + 4 * ix);
            }
            BK::WaitPvb => {
                rec.m("Waiting for completion of PVB");
                backup_f!();
                ls!("pkg/podvolume/backupper.go:{}", 400 + ix);
            }
            BK::PvbFailed(e) => {
                level = "error";
                rec.m(&bb.item_errs[e as usize].1);
                backup_f!();
                ls!("pkg/podvolume/backupper.go:{}", 428 + ix);
            }
            BK::SkippedPvs => {
                rec.m("Summary for skipped PVs: [");
                if bb.long {
                    for j in 0..170u32 {
                        if j > 0 {
                            rec.msg.push(',');
                        }
                        let _ = write!(
                            rec.msg,
                            "{{\"name\":\"pvc-{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}\",\"reasons\":[{{\"approach\":\"podvolume\",\"reason\":\"opted out due to annotation in pod tenant-{j:04}-0\"}}]}}",
                            j.wrapping_mul(2_654_435_761),
                            j * 7 % 65_536,
                            j % 4096,
                            (j * 3) % 4096,
                            u64::from(j) * 1_000_003
                        );
                    }
                }
                rec.msg.push(']');
                backup_f!();
                ls!("pkg/backup/backup.go:{}", 600 + 5 * ix);
            }
            BK::Total => {
                rec.msg(format_args!(
                    "Backed up a total of {} items",
                    bb.items.len()
                ))
                .s("progress", "");
                backup_f!();
                ls!("pkg/backup/backup.go:{}", 610 + 5 * ix);
            }
            BK::StorePersist => {
                rec.m("Setting up backup store to persist the backup");
                backup_f!();
                ls!(
                    "pkg/controller/backup_controller.go:{}",
                    L_SETUP_LOG[ix] + 120
                );
            }
            BK::UploadLogErr => {
                level = "error";
                rec.m("Error uploading log file")
                    .s("backup", name)
                    .s("bucket", "velero")
                    .s("error", bb.error.as_deref().unwrap_or(""))
                    .s("prefix", "");
                ls!("pkg/persistence/object_store.go:{}", 252 + ix);
            }
            BK::Completed => {
                rec.m("Backup completed");
                backup_f!();
                ls!("pkg/controller/backup_controller.go:{}", L_COMPLETED[ix]);
            }
            BK::MovingTo => {
                rec.msg(format_args!(
                    "Initial backup processing complete, moving to {}",
                    bb.phase
                ));
                backup_f!();
                ls!("pkg/controller/backup_controller.go:{}", L_MOVING[ix]);
            }
            BK::PluginExited | BK::PluginCrashed => {
                rec.m("plugin process exited")
                    .s("cmd", AWS)
                    .f("id", format_args!("{}", bb.pid))
                    .s("plugin", AWS);
                if matches!(k, BK::PluginCrashed) {
                    level = "error";
                    rec.s("error", "exit status 2");
                }
                backup_f!();
                ls!("pkg/plugin/clientmgmt/process/logrus_adapter.go:80");
            }
            BK::Failed => {
                level = "error";
                let err = bb.error.as_deref().unwrap_or("");
                rec.m("backup failed")
                    .f("backuprequest", format_args!("velero/{name}"))
                    .s("controller", "backup")
                    .s("error", err);
                match bb.fail {
                    Fail::Upload => {
                        rec.f("error.file", format_args!("/go/src/github.com/vmware-tanzu/velero/pkg/persistence/object_store.go:{}", 283 + ix))
                            .s("error.function", "github.com/vmware-tanzu/velero/pkg/persistence.(*objectBackupStore).PutBackup");
                    }
                    Fail::AlreadyExists => {
                        rec.f("error.file", format_args!("/go/src/github.com/vmware-tanzu/velero/pkg/controller/backup_controller.go:{}", L_SETUP_LOG[ix] + 37))
                            .s("error.function", "github.com/vmware-tanzu/velero/pkg/controller.(*backupReconciler).runBackup");
                    }
                    _ => {}
                }
                ls!("pkg/controller/backup_controller.go:{}", L_FAILED[ix]);
            }
            BK::UpdStatus => {
                rec.m(if m >= 15 {
                    "Updating backup's status"
                } else {
                    "Updating backup's final status"
                })
                .f("backuprequest", format_args!("velero/{name}"))
                .s("controller", "backup");
                ls!("pkg/controller/backup_controller.go:{}", L_UPDATING[ix]);
            }
            BK::Marking => {
                let ph = if bb.outcome == Outcome::PartiallyFailed {
                    "FinalizingPartiallyFailed"
                } else {
                    "Finalizing"
                };
                rec.msg(format_args!("Marking backup {name} {ph}"))
                    .s("controller", "backup-operations");
                backup_f!();
                ls!(
                    "pkg/controller/backup_operations_controller.go:{}",
                    L_MARKING[ix]
                );
            }
            BK::FinTemp | BK::FinBia | BK::FinCollected | BK::FinTotal => {
                match k {
                    BK::FinTemp => rec.m("Setting up finalized backup temp file"),
                    BK::FinBia => rec.m("Getting backup item actions"),
                    BK::FinCollected => rec.m(
                        "Collected 2 items from the async BIA operations PostOperationItems list",
                    ),
                    _ => rec.m("Updated a total of 2 items").s("progress", ""),
                };
                rec.s("controller", "backup-finalizer");
                backup_f!();
                ls!(
                    "pkg/controller/backup_finalizer_controller.go:{}",
                    120 + 4 * ix
                );
            }
        }
        rec.text(out, t, level);
        Ok((server, Stream::Stdout))
    }

    fn r_pvb(&mut self, b: u32, v: u8, st: u8, t: i64) -> (usize, Stream) {
        let ix = self.ix();
        let bb = &self.backups[b as usize];
        let vol = bb.vols[v as usize];
        let it = bb.items[vol.item as usize];
        let rec = &mut self.rec;
        let tmp = &mut self.tmp;
        tmp.clear();
        let _ = write!(tmp, "{}-", bb.name);
        k8s(tmp, u64::from(vol.suffix), 5);
        let pvb = tmp.as_str();
        let mut pod = String::new();
        it.name(&mut pod);
        let pvc = format!("pvc-{:08x}-{:04x}", vol.suffix, vol.suffix >> 16);
        let pod_uid = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            vol.suffix.wrapping_mul(7),
            vol.suffix >> 3 & 0xffff,
            vol.suffix & 0xfff,
            vol.suffix >> 5 & 0xfff,
            u64::from(vol.suffix) * 48_271
        );
        let path = format!("/host_pods/{pod_uid}/volumes/kubernetes.io~csi/{pvc}/mount");
        let mut level = "info";
        rec.begin();
        let pvb_log = |rec: &mut text::Rec, n: u32| {
            rec.f(
                "logSource",
                format_args!(
                    "pkg/controller/pod_volume_backup_controller.go:{}",
                    n + 3 * ix as u32
                ),
            );
        };
        if st < 30 {
            rec.f("backup", format_args!("velero/{}", bb.name))
                .s("controller", "podvolumebackup")
                .f("podvolumebackup", format_args!("velero/{pvb}"));
        } else {
            rec.s("PVB", pvb).s("controller", "PodVolumeBackup");
        }
        match st {
            0 => {
                rec.m("PodVolumeBackup starting");
                pvb_log(rec, 91);
            }
            1 => {
                rec.m("Got volume dir").s("volDir", &pvc);
                pvb_log(rec, 130);
            }
            2 => {
                rec.m("Found path matching glob").s("path", &path);
                pvb_log(rec, 136);
            }
            3 => {
                rec.m("Founding existing repo")
                    .s("backupLocation", "default")
                    .s("repositoryType", "kopia");
                rec.s("logSource", "pkg/podvolume/util.go:168");
            }
            4 => {
                rec.m("FileSystemBR is initialized")
                    .s("bsl", "default")
                    .s("jobName", pvb)
                    .s("repository", "kopia")
                    .s("source namespace", it.ns())
                    .s("uploader", "kopia");
                rec.s("logSource", "pkg/datapath/file_system.go:110");
            }
            5 => {
                rec.m("Async fs backup data path started").s("path", &path);
                pvb_log(rec, 176);
            }
            6 => {
                rec.m("Opening backup repo")
                    .s("logSource", "pkg/uploader/provider/kopia.go:78");
            }
            7 => {
                rec.m("Starting backup")
                    .s("parentSnapshot", "")
                    .s("path", &path)
                    .s("realSource", "")
                    .s("logSource", "pkg/uploader/provider/kopia.go:143");
            }
            8 => {
                rec.m("Start to snapshot...")
                    .s("logSource", "pkg/uploader/kopia/snapshot.go:239");
            }
            9 => {
                rec.m("Searching for parent snapshot")
                    .s("logSource", "pkg/uploader/kopia/snapshot.go:251");
            }
            10 => {
                rec.msg(format_args!(
                    "Using parent snapshot {:08x}{:08x}{:016x}",
                    vol.suffix,
                    vol.suffix ^ 0x5bd1_e995,
                    u64::from(vol.suffix) * 0x9e37_79b9
                ))
                .s("logSource", "pkg/uploader/kopia/snapshot.go:264");
            }
            11 => {
                rec.msg(format_args!(
                    "Created snapshot with root k{:032x} and ID {:032x} in {}m{}s",
                    u128::from(vol.suffix) * 0x1234_5678_9abc_def1,
                    u128::from(vol.suffix) * 0x0fed_cba9_8765_4321,
                    vol.suffix % 3,
                    vol.suffix % 60
                ))
                .s("logSource", "pkg/uploader/kopia/snapshot.go:343");
            }
            12 => {
                rec.m("Action finished")
                    .s("logSource", "pkg/uploader/provider/kopia.go:156");
            }
            13 => {
                rec.m("Closing FileSystemBR")
                    .s("user", pvb)
                    .s("logSource", "pkg/datapath/file_system.go:127");
            }
            14 | 41 => {
                rec.m("Async fs backup data path completed").s("pvb", pvb);
                if st == 14 {
                    rec.s("PVB", pvb);
                    rec.s(
                        "logSource",
                        "pkg/controller/pod_volume_backup_controller.go:246",
                    );
                } else {
                    rec.s(
                        "logSource",
                        "pkg/controller/pod_volume_backup_controller.go:402",
                    );
                }
            }
            15 => {
                rec.m("PodVolumeBackup completed");
                pvb_log(rec, 280);
            }
            20 | 44 => {
                level = "error";
                let e = bb.item_errs.first().map(|e| e.1.as_str()).unwrap_or("");
                let e = e.strip_prefix("pod volume backup failed: ").unwrap_or(e);
                rec.m("Async fs backup data path failed").s("error", e);
                pvb_log(rec, if st == 20 { 294 } else { 420 });
            }
            30 => {
                rec.m("Accepting PVB");
                pvb_log(rec, 210);
            }
            31 => {
                rec.m("Exposing PVB");
                pvb_log(rec, 232);
            }
            32 => {
                rec.m("PVB is exposed");
                pvb_log(rec, 251);
            }
            33 => {
                let node = NODES[vol.node as usize];
                rec.msg(format_args!(
                    "PVB is prepared and should be processed by {node} ({node})"
                ));
                pvb_log(rec, 270);
            }
            34 => {
                rec.m("Exposed PVB is ready and creating data path routine");
                pvb_log(rec, 296);
            }
            35 => {
                rec.m("MicroServiceBR is initialized")
                    .s("taskName", pvb)
                    .s("taskType", "backup")
                    .s("thisPod", &self.na_pods[vol.node as usize]);
                rec.s("logSource", "pkg/datapath/micro_service_watcher.go:130");
            }
            36 => {
                rec.m("Init cancelable PVB");
                pvb_log(rec, 318);
            }
            37 => {
                rec.m("PVB is marked as in progress");
                pvb_log(rec, 340);
            }
            38 => {
                rec.m("Start cancelable PVB");
                pvb_log(rec, 349);
            }
            39 => {
                rec.msg(format_args!(
                    "Async backup started for pod {pod}, volume {}",
                    APPS[it.app as usize]
                ));
                pvb_log(rec, 360);
            }
            40 => {
                rec.msg(format_args!(
                    "Received data path completed message: Data path for {pvb} completed"
                ))
                .s("logSource", "pkg/datapath/micro_service_watcher.go:389");
            }
            42 => {
                rec.m("PVB completed");
                pvb_log(rec, 412);
            }
            _ => {
                let e = bb.item_errs.first().map(|e| e.1.as_str()).unwrap_or("");
                let e = e.strip_prefix("pod volume backup failed: ").unwrap_or(e);
                rec.msg(format_args!(
                    "Received data path failed message: Data path for PVB {pvb} failed, error {e}"
                ))
                .s("logSource", "pkg/datapath/micro_service_watcher.go:389");
            }
        }
        rec.text(&mut self.buf, t, level);
        (self.files.na[vol.node as usize], Stream::Stdout)
    }

    fn r_restore(&mut self, r: u32, k: RK, t: i64) -> (usize, Stream) {
        let ix = self.ix();
        let rr = &mut self.restores[r as usize];
        let bname = self.backups[rr.backup as usize].name.as_str();
        let rec = &mut self.rec;
        rec.begin();
        rec.f("restore", format_args!("velero/{}", rr.name));
        let mut level = "info";
        let ns = NS[rr.nss[0] as usize];
        let (app, res) = {
            let x = self.rng.gen_range(0..APPS.len());
            (APPS[x], [3usize, 4, 5, 6, 8, 11][x % 6])
        };
        match k {
            RK::Start => {
                rec.m("starting restore").f(
                    "logSource",
                    format_args!("pkg/controller/restore_controller.go:{}", 560 + 3 * ix),
                );
            }
            RK::StartOf => {
                rec.msg(format_args!("Starting restore of backup velero/{bname}"))
                    .f(
                        "logSource",
                        format_args!("pkg/restore/restore.go:{}", 415 + 5 * ix),
                    );
            }
            RK::WillRestore(n) => {
                if n == u8::MAX {
                    rec.m("Resource 'persistentvolumes' will be restored at cluster scope");
                } else {
                    rec.msg(format_args!(
                        "Resource '{}' will be restored into namespace '{}'",
                        RES[[6usize, 5, 3][n as usize % 3]].0,
                        NS[rr.nss[n as usize % rr.nss.len()] as usize]
                    ));
                }
                rec.f(
                    "logSource",
                    format_args!("pkg/restore/restore.go:{}", 2300 + 7 * ix),
                );
            }
            RK::Attempt | RK::Skipped => {
                let (gr, kind) = RES[res];
                if matches!(k, RK::Attempt) {
                    rec.msg(format_args!("Attempting to restore {kind}: {app}."));
                } else {
                    rec.msg(format_args!("Restore of {kind}, {app} skipped: it already exists in the cluster and is the same as the backed up version"));
                }
                rec.s("groupResource", gr)
                    .s("namespace", ns)
                    .s("original name", app)
                    .f(
                        "logSource",
                        format_args!("pkg/restore/restore.go:{}", 1500 + 9 * ix),
                    );
            }
            RK::Progress => {
                rr.done += 1;
                rec.msg(format_args!("Restored {} items out of an estimated total of {} (estimate will change throughout the restore)", rr.done, rr.n_items))
                    .s("name", app)
                    .s("namespace", ns)
                    .s("progress", "")
                    .s("resource", RES[res].0)
                    .f("logSource", format_args!("pkg/restore/restore.go:{}", 780 + 4 * ix));
            }
            RK::ItemErr => {
                level = "error";
                let e = rr.err.split_once(": ").map(|x| x.1).unwrap_or(&rr.err);
                let svc = rr.err.split('/').nth(2).and_then(|s| s.split(':').next());
                rec.msg(format_args!("error restoring {}: {e}", svc.unwrap_or(app)))
                    .s("groupResource", "services")
                    .s("namespace", ns)
                    .f(
                        "logSource",
                        format_args!("pkg/restore/restore.go:{}", 1690 + 9 * ix),
                    );
            }
            RK::WaitPvr | RK::DonePvr => {
                rec.m(if matches!(k, RK::WaitPvr) {
                    "Waiting for all pod volume restores to complete"
                } else {
                    "Done waiting for all pod volume restores to complete"
                })
                .f(
                    "logSource",
                    format_args!("pkg/restore/restore.go:{}", 700 + 5 * ix),
                );
            }
            RK::SumErr => {
                level = "error";
                rec.msg(format_args!(
                    "Namespace {ns}, resource restore error: {}",
                    rr.err
                ))
                .f(
                    "logSource",
                    format_args!("pkg/controller/restore_controller.go:{}", 600 + 3 * ix),
                );
            }
            RK::SumWarn => {
                level = "warning";
                rec.msg(format_args!("Namespace {ns}, resource restore warning: could not restore, ConfigMap \"kube-root-ca.crt\" already exists. Warning: the in-cluster version is different than the backed-up version."))
                    .f(
                        "logSource",
                        format_args!("pkg/controller/restore_controller.go:{}", 597 + 3 * ix),
                    );
            }
            RK::Completed => {
                rec.m("restore completed").f(
                    "logSource",
                    format_args!("pkg/controller/restore_controller.go:{}", 624 + 3 * ix),
                );
            }
            RK::Marking => {
                rec.msg(format_args!("Marking restore {}", rr.outcome.as_str()))
                    .f(
                        "logSource",
                        format_args!(
                            "pkg/controller/restore_finalizer_controller.go:{}",
                            175 + 5 * ix
                        ),
                    );
            }
        }
        rec.text(&mut self.buf, t, level);
        (self.files.server, Stream::Stdout)
    }

    fn r_pvr(&mut self, r: u32, v: u8, st: u8, t: i64) -> (usize, Stream) {
        let m = self.minor;
        let rr = &self.restores[r as usize];
        let node = ((r as usize + v as usize) % 2) as u8;
        let rec = &mut self.rec;
        rec.begin();
        let ns = NS[rr.nss[0] as usize];
        let _ = rr.vols;
        rec.f(
            "PodVolumeRestore",
            format_args!(
                "velero/{}-{}",
                rr.name,
                ["x7k2m", "q9w4z", "b5n8c"][v as usize % 3]
            ),
        )
        .s("controller", "PodVolumeRestore")
        .f(
            "pod",
            format_args!("{ns}/{}-{}", APPS[v as usize % APPS.len()], v),
        )
        .f("restore", format_args!("velero/{}", rr.name));
        match st {
            0 => rec.m(if m >= 17 {
                "Accepting PVR"
            } else {
                "Restore starting"
            }),
            1 => rec.m("Async fs restore data path completed"),
            _ => rec.m("Restore completed"),
        };
        rec.f(
            "logSource",
            format_args!(
                "pkg/controller/pod_volume_restore_controller.go:{}",
                [112, 318, 331][st as usize % 3]
            ),
        );
        rec.text(&mut self.buf, t, "info");
        (self.files.na[node as usize], Stream::Stdout)
    }

    fn r_bg(&mut self, k: BgK, t: i64) -> (usize, Stream) {
        let ix = self.ix();
        let rec = &mut self.rec;
        rec.begin();
        let mut level = "info";
        let bsl = |rec: &mut text::Rec| {
            rec.s("backup-storage-location", "velero/default")
                .s("controller", "backup-storage-location");
        };
        let del = |rec: &mut text::Rec, gc: &str| {
            rec.s("backup", gc).s("controller", "backup-deletion").f(
                "deletebackuprequest",
                format_args!("velero/{gc}-{}", "m7x2k"),
            );
        };
        let gc = self.gc_name.as_str();
        match k {
            BgK::BslValidating => {
                rec.m("Validating BackupStorageLocation");
                bsl(rec);
                rec.f(
                    "logSource",
                    format_args!(
                        "pkg/controller/backup_storage_location_controller.go:{}",
                        141 + ix
                    ),
                );
            }
            BgK::BslValid => {
                rec.m("BackupStorageLocations is valid, marking as available");
                bsl(rec);
                rec.f(
                    "logSource",
                    format_args!(
                        "pkg/controller/backup_storage_location_controller.go:{}",
                        126 + ix
                    ),
                );
            }
            BgK::BslFailErr => {
                level = "error";
                rec.m("fail to validate backup store")
                    .s("error", "rpc error: code = Unknown desc = RequestError: send request failed\ncaused by: Get \"https://minio.velero.svc:9000/velero?delimiter=%2F&list-type=2&prefix=backups%2F\": dial tcp 10.43.12.7:9000: connect: connection refused");
                bsl(rec);
                rec.f(
                    "logSource",
                    format_args!(
                        "pkg/controller/backup_storage_location_controller.go:{}",
                        158 + ix
                    ),
                );
            }
            BgK::BslInvalid => {
                rec.m("BackupStorageLocation is invalid, marking as unavailable");
                bsl(rec);
                rec.f(
                    "logSource",
                    format_args!(
                        "pkg/controller/backup_storage_location_controller.go:{}",
                        120 + ix
                    ),
                );
            }
            BgK::BslSummaryErr => {
                level = "error";
                rec.m("Current BackupStorageLocations available/unavailable/unknown: 0/1/0, BackupStorageLocation \"default\" is unavailable: rpc error: code = Unknown desc = RequestError: send request failed\ncaused by: Get \"https://minio.velero.svc:9000/velero?delimiter=%2F&list-type=2&prefix=backups%2F\": dial tcp 10.43.12.7:9000: connect: connection refused)")
                    .s("controller", "backup-storage-location");
                rec.f(
                    "logSource",
                    format_args!(
                        "pkg/controller/backup_storage_location_controller.go:{}",
                        194 + ix
                    ),
                );
            }
            BgK::GcExpired | BgK::GcCreateReq => {
                rec.m(if matches!(k, BgK::GcExpired) {
                    "Backup:"
                } else {
                    "Creating a new deletion request"
                });
                if matches!(k, BgK::GcExpired) {
                    let _ = write!(rec.msg, "{gc} has expired");
                }
                rec.f("backup", format_args!("velero/{gc}"))
                    .s("controller", "gc");
                self.tmp.clear();
                text::go_time_string(&mut self.tmp, t - 12 * 3_600_000_000_000);
                rec.s("expiration", &self.tmp);
                rec.f(
                    "logSource",
                    format_args!("pkg/controller/gc_controller.go:{}", 179 + ix),
                );
            }
            BgK::DelRemovingPv => {
                rec.m("Removing PV snapshots");
                del(rec, gc);
                rec.s(
                    "logSource",
                    "pkg/controller/backup_deletion_controller.go:305",
                );
            }
            BgK::DelRemovingPodVol => {
                rec.m("Removing pod volume snapshots");
                del(rec, gc);
                rec.s(
                    "logSource",
                    "pkg/controller/backup_deletion_controller.go:330",
                );
            }
            BgK::DelDeleteSnap => {
                // Logged without fields.
                let _ = write!(
                    rec.msg,
                    "Deleting snapshot {:032x}, namespace: {}, repo type: kopia",
                    (t as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    NS[(t as usize / 7) % NS.len()]
                );
                rec.s("logSource", "pkg/repository/manager/manager.go:243");
            }
            BgK::DelRemovingBackup => {
                rec.m("Removing backup from backup storage");
                del(rec, gc);
                rec.s(
                    "logSource",
                    "pkg/controller/backup_deletion_controller.go:365",
                );
            }
            BgK::DelRemovingRestores => {
                rec.m("Removing restores");
                del(rec, gc);
                rec.s(
                    "logSource",
                    "pkg/controller/backup_deletion_controller.go:378",
                );
            }
            BgK::DelDone => {
                rec.m("Reconciliation done");
                del(rec, gc);
                rec.s(
                    "logSource",
                    "pkg/controller/backup_deletion_controller.go:441",
                );
            }
            BgK::RepoStart | BgK::RepoJobStarted | BgK::RepoWaiting | BgK::RepoComplete => {
                let ns = NS[(t as usize / 13) % NS.len()];
                let repo = format!(
                    "{ns}-default-kopia-{}",
                    ["x7k2m", "p4d9s", "w2c8f"][t as usize % 3]
                );
                let job = format!("{repo}-maintain-job-{}", t / 1_000_000);
                match k {
                    BgK::RepoStart | BgK::RepoJobStarted => {
                        rec.m(if matches!(k, BgK::RepoStart) {
                            "Starting maintenance repo"
                        } else {
                            "Repo maintenance job started"
                        })
                        .s("BSL name", "default")
                        .f(
                            "repo UID",
                            format_args!("{:08x}-3c1a-4f2e-9d7b-{:012x}", t as u32, t as u64 >> 16),
                        )
                        .s("repo name", &repo)
                        .s("repo type", "kopia");
                        if matches!(k, BgK::RepoJobStarted) {
                            rec.f("job", format_args!("velero/{job}"));
                        }
                        rec.s("logSource", "pkg/repository/maintenance/maintenance.go:412");
                    }
                    BgK::RepoWaiting => {
                        rec.msg(format_args!(
                            "Waiting for maintenance job {job} to complete"
                        ))
                        .s("logSource", "pkg/repository/maintenance/maintenance.go:236");
                    }
                    _ => {
                        rec.m("Maintenance repo complete, succeeded 1, failed 0")
                            .s("job name", &job)
                            .s("logSource", "pkg/repository/maintenance/maintenance.go:449");
                    }
                }
            }
            BgK::SyncFound => {
                rec.m("Found 1 backups in the backup location that do not exist in the cluster and need to be synced")
                    .s("backupLocation", "velero/default")
                    .s("controller", "backup-sync")
                    .f("logSource", format_args!("pkg/controller/backup_sync_controller.go:{}", 190 + ix));
            }
        }
        rec.text(&mut self.buf, t, level);
        (self.files.server, Stream::Stdout)
    }

    fn target_lines(&self) -> u64 {
        self.target
    }
}

const STARTUP_SERVER: u8 = 16;

impl Gen {
    fn r_up(&mut self, src: u8, k: u8, t: i64) -> (usize, Stream) {
        let ix = self.ix();
        let rec = &mut self.rec;
        let out = &mut self.buf;
        rec.begin();
        match src {
            0 => {
                let ls = |rec: &mut text::Rec, n: usize| {
                    rec.f(
                        "logSource",
                        format_args!("pkg/cmd/server/server.go:{}", n + 4 * ix),
                    );
                };
                match k {
                    0 => {
                        rec.m("setting log-level to INFO");
                        ls(rec, 191);
                    }
                    1 => {
                        rec.msg(format_args!(
                            "Starting Velero server {} ({})",
                            self.version, self.commit
                        ));
                        ls(rec, 193);
                    }
                    2 => {
                        rec.m("No feature flags enabled");
                        ls(rec, 197);
                    }
                    3 | 4 => {
                        rec.m(if k == 3 {
                            "Checking existence of namespace."
                        } else {
                            "Namespace exists"
                        })
                        .s("namespace", "velero");
                        ls(rec, 410 + usize::from(k));
                    }
                    5 => {
                        rec.m("Checking existence of Velero custom resource definitions");
                        ls(rec, 445);
                    }
                    6 => {
                        rec.m("All Velero custom resource definitions exist");
                        ls(rec, 478);
                    }
                    7 | 8 => {
                        let (kind, pname, cmd) = if k == 7 {
                            ("BackupItemAction", "velero.io/pod", "/velero")
                        } else {
                            ("ObjectStore", "velero.io/aws", AWS)
                        };
                        rec.m("registering plugin")
                            .s("command", cmd)
                            .s("kind", kind)
                            .s("name", pname)
                            .s("logSource", "pkg/plugin/clientmgmt/process/registry.go:101");
                    }
                    9 => {
                        rec.m("Starting controllers");
                        ls(rec, 612);
                    }
                    10 => {
                        rec.m("Server starting...");
                        ls(rec, 1020);
                    }
                    11 => {
                        rec.m("Starting metric server at address [:8085]");
                        ls(rec, 720);
                    }
                    12..=14 => {
                        let (c, kind) = [
                            ("backup", "Backup"),
                            ("schedule", "Schedule"),
                            ("restore", "Restore"),
                        ][(k - 12) as usize];
                        rec.m("Starting workers")
                            .s("controller", c)
                            .s("controllerGroup", "velero.io")
                            .s("controllerKind", kind)
                            .s("logSource", LOGRUSR)
                            .s("worker count", "1");
                    }
                    _ => {
                        rec.m(
                            "Current BackupStorageLocations available/unavailable/unknown: 0/0/1)",
                        )
                        .s("controller", "backup-storage-location")
                        .f(
                            "logSource",
                            format_args!(
                                "pkg/controller/backup_storage_location_controller.go:{}",
                                194 + ix
                            ),
                        );
                        rec.text(out, t, "error");
                        return (self.files.server, Stream::Stdout);
                    }
                }
                rec.text(out, t, "info");
                (self.files.server, Stream::Stdout)
            }
            1 | 2 => {
                let f = self.files.na[(src - 1) as usize];
                match k {
                    0 => {
                        rec.m("Setting log-level to INFO");
                    }
                    1 => {
                        rec.msg(format_args!(
                            "Starting Velero node-agent server {} ({})",
                            self.version, self.commit
                        ))
                        .s("logSource", "pkg/cmd/cli/nodeagent/server.go:152");
                    }
                    2 => {
                        rec.m("Starting metric server for node agent at address [:8085]")
                            .s("logSource", "pkg/cmd/cli/nodeagent/server.go:230");
                    }
                    3 => {
                        // controller-runtime through zap (development console encoder) until 1.15.
                        let secs = t as f64 / 1e9;
                        let s = format!("{secs:e}");
                        let s = match s.split_once('e') {
                            Some((mant, exp)) => format!("{mant}e+{exp:0>2}"),
                            None => s,
                        };
                        let _ = write!(out, "{s}\tINFO\tcontroller-runtime.metrics\tMetrics server is starting to listen\t{{\"addr\": \":8080\"}}");
                        return (f, Stream::Stderr);
                    }
                    4 => {
                        rec.m("Starting controllers")
                            .s("logSource", "pkg/cmd/cli/nodeagent/server.go:276");
                    }
                    5 => {
                        rec.m("Controllers starting...")
                            .s("logSource", "pkg/cmd/cli/nodeagent/server.go:340");
                    }
                    6 => {
                        out.push('I');
                        text::klog_time(out, t);
                        out.push_str("       1 request.go:665] Waited for 1.047203821s due to client-side throttling, not priority and fairness, request: GET:https://10.43.0.1:443/apis/velero.io/v1?timeout=32s");
                        return (f, Stream::Stderr);
                    }
                    _ => {
                        rec.m("Starting workers")
                            .s("controller", "podvolumebackup")
                            .s("controllerGroup", "velero.io")
                            .s("controllerKind", "PodVolumeBackup")
                            .s("logSource", LOGRUSR)
                            .s("worker count", "1");
                    }
                }
                rec.text(out, t, "info");
                (f, Stream::Stdout)
            }
            3 => {
                text::golog_time(out, t);
                out.push(' ');
                out.push_str(
                    [
                        "OIDC Provider initialized with config version: 2870813311",
                        "Admin roles: [velero-admin admin], Admin groups: [velero-administrators administrators]",
                        "OIDC authentication enabled with issuer: https://keycloak.homelab.local/realms/velero",
                        "🚀 Velero Manager starting on :8080",
                        "📁 Serving frontend from ./frontend/build/",
                        "📊 Starting Velero metrics collector...",
                        "✅ Initial metrics collection completed",
                    ][k as usize % 7],
                );
                (self.files.gin, Stream::Stderr)
            }
            _ => {
                out.push_str(
                    [
                        ".:53",
                        "[INFO] plugin/reload: Running configuration SHA512 = 591cf328cccc12bc490481273e738df59329c62c0b729d94e8b61db9961c2fa5f046dd37f1cf888b953814040d180f52594972691cd6ff41be96639138a43908",
                        "CoreDNS-1.11.3",
                        "linux/amd64, go1.21.11, a6338e9",
                    ][k as usize % 4],
                );
                (self.files.core, Stream::Stdout)
            }
        }
    }
}
