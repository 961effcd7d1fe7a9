//! Outcome tracker: follows each backup and restore by name through Velero's lifecycle lines and
//! decides Completed / PartiallyFailed / Failed / FailedValidation (rules of the reference
//! `velero-and-gin-log-formats.md` §1.6–1.7).
//!
//! * `backup failed` decides Failed and overrides any earlier phase line.
//! * 1.13+: `moving to Finalizing` → Completed, `…PartiallyFailed` → PartiallyFailed,
//!   `moving to Failed` → Failed; `WaitingForPluginOperations*` waits for `Marking backup …`.
//! * ≤ 1.12: `Backup completed` → PartiallyFailed iff the run logged an error line carrying
//!   `backup=ns/name` since its start, else Completed.
//! * Restores: `restore completed` → PartiallyFailed iff a `… restore error: …` line was seen;
//!   `Marking restore <Phase>` (1.14+) confirms.
//! * CLI (`Backup completed with status: X`) decides X directly.
//!
//! Decisions that a later line may still override (Completed after `moving to Finalizing`, …)
//! are *pending*: they are confirmed by the controller's next status-update line for the same
//! backup, by log time passing a grace period, or at shutdown. Each backup is decided once.
//! Memory is bounded: at most `max_tracked` names (least recently seen forgotten first), and
//! names not seen for `ttl` of log time are dropped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::reason::classify;
use crate::model::labels::{Outcome, Phase, Reason};

/// Backup or restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A backup.
    Backup,
    /// A restore.
    Restore,
}

/// A decided outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    /// Backup or restore.
    pub kind: Kind,
    /// The name (without namespace).
    pub name: String,
    /// The schedule that created it (from the name pattern or the `schedule` field).
    pub schedule: Option<String>,
    /// The outcome.
    pub outcome: Outcome,
    /// Reason class (failures only).
    pub reason: Option<Reason>,
    /// Reason text (the `error` field or the first error line), failures only.
    pub reason_text: Option<String>,
    /// Log time of the decision, Unix nanoseconds.
    pub at_ns: i64,
    /// Seconds from the start line to the decision, when the start was seen.
    pub duration_seconds: Option<f64>,
}

/// What a line says about a backup or restore.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A backup run started (`Setting up backup log`, CLI `submitted`).
    BackupStarted,
    /// An error line of the backup's run logger (`level=error` with `backup=ns/name`).
    BackupErrorLine(String),
    /// 1.13+: `Initial backup processing complete, moving to <Phase>`.
    BackupMovingTo(Phase),
    /// ≤ 1.12: `Backup completed`.
    BackupCompletedLegacy,
    /// `backup failed` with its error text.
    BackupFailed(String),
    /// `Marking backup <n> Finalizing|FinalizingPartiallyFailed`, or the BSL-unreadable
    /// `… marking backup PartiallyFailed`.
    BackupMarked(Phase),
    /// `Updating backup's (final) status`: the controller finished this reconcile.
    BackupStatusUpdate,
    /// `failed to validate backup status` (debug, 1.11+) or `Backup is not handled phase=…`.
    BackupPhaseSeen(Phase),
    /// CLI: `Backup completed with status: <Phase>`.
    BackupCliFinal(Phase),
    /// `starting restore`, CLI `Restore request … submitted`.
    RestoreStarted,
    /// CLI: `Restore completed with status: <Phase>`.
    RestoreCliFinal(Phase),
    /// A restore error line (summary `… restore error: …` or an error-level run line).
    RestoreErrorLine(String),
    /// `restore completed`.
    RestoreCompleted,
    /// `Marking restore <Phase>` / `Marking restore <n> completed`.
    RestoreMarked(Phase),
    /// Debug `Restore failed` with its error.
    RestoreFailed(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    outcome: Outcome,
    at_ns: i64,
    reason_text: Option<String>,
    /// When the decision became pending (wall clock; a restored one counts from the restart).
    #[serde(skip, default = "Instant::now")]
    since: Instant,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Tracked {
    kind: Kind,
    schedule: Option<String>,
    started_ns: Option<i64>,
    errors: u32,
    first_error: Option<String>,
    pending: Option<Pending>,
    /// Waiting for async plugin operations (1.13+ `WaitingForPluginOperations*`).
    waiting: bool,
    decided: Option<Outcome>,
    last_seen_ns: i64,
}

impl Tracked {
    /// Completed, or PartiallyFailed when the run logged errors (≤ 1.12 backups, restores):
    /// pending until confirmed.
    fn pend_by_errors(&mut self, now_ns: i64) {
        let (outcome, reason_text) = if self.errors > 0 {
            (Outcome::PartiallyFailed, self.first_error.clone())
        } else {
            (Outcome::Completed, None)
        };
        self.pending = Some(Pending {
            outcome,
            at_ns: now_ns,
            reason_text,
            since: Instant::now(),
        });
    }
}

/// Serializable tracker state (saved with the positions).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrackerState {
    entries: Vec<(String, Tracked)>,
}

/// The tracker.
pub struct Tracker {
    map: HashMap<(Kind, String), Tracked>,
    max_tracked: usize,
    ttl_ns: i64,
    grace_ns: i64,
    next_check_ns: i64,
}

const GRACE_NS: i64 = 60 * 1_000_000_000;
const MAX_TEXT: usize = 2048;

/// The schedule part of a schedule-created name `<schedule>-YYYYMMDDhhmmss`.
pub fn schedule_of(name: &str) -> Option<&str> {
    let (head, tail) = name.rsplit_once('-')?;
    (tail.len() == 14 && tail.bytes().all(|b| b.is_ascii_digit()) && !head.is_empty())
        .then_some(head)
}

/// The name part of `ns/name`.
pub fn bare_name(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(_, n)| n)
}

fn cap_text(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_string();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Tracker {
    /// A tracker that follows at most `max_tracked` names and forgets them after `ttl_ns`.
    pub fn new(max_tracked: usize, ttl_ns: i64) -> Tracker {
        Tracker {
            map: HashMap::new(),
            max_tracked: max_tracked.max(16),
            ttl_ns,
            grace_ns: GRACE_NS,
            next_check_ns: i64::MIN,
        }
    }

    /// Number of names followed.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is followed.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn entry(&mut self, kind: Kind, name: &str, now_ns: i64) -> &mut Tracked {
        if !self.map.contains_key(&(kind, name.to_string())) && self.map.len() >= self.max_tracked {
            self.evict();
        }
        let t = self
            .map
            .entry((kind, name.to_string()))
            .or_insert_with(|| Tracked {
                kind,
                schedule: match kind {
                    Kind::Backup => schedule_of(name).map(str::to_string),
                    Kind::Restore => None,
                },
                started_ns: None,
                errors: 0,
                first_error: None,
                pending: None,
                waiting: false,
                decided: None,
                last_seen_ns: now_ns,
            });
        t.last_seen_ns = t.last_seen_ns.max(now_ns);
        t
    }

    /// Forgets the least recently seen tenth (pending decisions are kept if possible).
    fn evict(&mut self) {
        let mut by_age: Vec<(i64, bool, (Kind, String))> = self
            .map
            .iter()
            .map(|(k, t)| (t.last_seen_ns, t.pending.is_some(), k.clone()))
            .collect();
        by_age.sort_by_key(|(seen, pending, _)| (*pending, *seen));
        let n = (self.max_tracked / 10).max(1);
        for (_, _, k) in by_age.into_iter().take(n) {
            self.map.remove(&k);
        }
    }

    /// Notes the schedule of a name explicitly (e.g. from a `schedule=` field).
    pub fn set_schedule(&mut self, kind: Kind, name: &str, schedule: &str, now_ns: i64) {
        let t = self.entry(kind, name, now_ns);
        t.schedule = Some(schedule.to_string());
    }

    /// Feeds one event; returns the outcome this line decides, if it decides one now.
    pub fn on_event(&mut self, name: &str, ev: Event, now_ns: i64) -> Option<Decided> {
        let kind = match ev {
            Event::BackupStarted
            | Event::BackupErrorLine(_)
            | Event::BackupMovingTo(_)
            | Event::BackupCompletedLegacy
            | Event::BackupFailed(_)
            | Event::BackupMarked(_)
            | Event::BackupStatusUpdate
            | Event::BackupPhaseSeen(_)
            | Event::BackupCliFinal(_) => Kind::Backup,
            _ => Kind::Restore,
        };
        let t = self.entry(kind, name, now_ns);
        if t.decided.is_some() {
            return None;
        }
        let mut decide_now: Option<(Outcome, Option<String>)> = None;
        let mut decided_at = now_ns;
        match ev {
            Event::BackupStarted | Event::RestoreStarted => {
                if t.started_ns.is_none() {
                    t.started_ns = Some(now_ns);
                }
                // A new run of the same name starts clean.
                t.errors = 0;
                t.first_error = None;
            }
            Event::BackupErrorLine(text) | Event::RestoreErrorLine(text) => {
                t.errors += 1;
                if t.first_error.is_none() {
                    t.first_error = Some(cap_text(&text));
                }
            }
            Event::BackupMovingTo(phase) => match phase {
                Phase::Finalizing | Phase::Completed => {
                    t.pending = Some(Pending {
                        outcome: Outcome::Completed,
                        at_ns: now_ns,
                        reason_text: None,
                        since: Instant::now(),
                    })
                }
                Phase::FinalizingPartiallyFailed | Phase::PartiallyFailed => {
                    t.pending = Some(Pending {
                        outcome: Outcome::PartiallyFailed,
                        at_ns: now_ns,
                        reason_text: t.first_error.clone(),
                        since: Instant::now(),
                    })
                }
                Phase::Failed => {
                    t.pending = Some(Pending {
                        outcome: Outcome::Failed,
                        at_ns: now_ns,
                        reason_text: t.first_error.clone(),
                        since: Instant::now(),
                    })
                }
                Phase::WaitingForPluginOperations
                | Phase::WaitingForPluginOperationsPartiallyFailed => t.waiting = true,
                _ => {}
            },
            Event::BackupCompletedLegacy => t.pend_by_errors(now_ns),
            Event::BackupFailed(text) | Event::RestoreFailed(text) => {
                decide_now = Some((Outcome::Failed, Some(cap_text(&text))));
            }
            Event::BackupMarked(phase) | Event::RestoreMarked(phase) => {
                let outcome = match phase {
                    Phase::Finalizing | Phase::Completed => {
                        if t.errors > 0 && kind == Kind::Restore {
                            Outcome::PartiallyFailed
                        } else {
                            Outcome::Completed
                        }
                    }
                    Phase::FinalizingPartiallyFailed | Phase::PartiallyFailed => {
                        Outcome::PartiallyFailed
                    }
                    Phase::Failed => Outcome::Failed,
                    _ => return None,
                };
                let reason = (outcome != Outcome::Completed).then(|| t.first_error.clone());
                decide_now = Some((outcome, reason.flatten()));
            }
            Event::BackupStatusUpdate => {
                if let Some(p) = t.pending.take() {
                    decided_at = p.at_ns;
                    decide_now = Some((p.outcome, p.reason_text));
                }
            }
            Event::BackupPhaseSeen(phase) => {
                if let Some(o) = phase.outcome() {
                    let reason = match o {
                        Outcome::FailedValidation => Some("backup failed validation".to_string()),
                        Outcome::Completed => None,
                        _ => t.first_error.clone(),
                    };
                    decide_now = Some((o, reason));
                }
            }
            Event::BackupCliFinal(phase) | Event::RestoreCliFinal(phase) => {
                if let Some(o) = phase.outcome() {
                    let reason = match o {
                        Outcome::Completed => None,
                        Outcome::FailedValidation => Some("backup failed validation".to_string()),
                        _ => t
                            .pending
                            .as_ref()
                            .and_then(|p| p.reason_text.clone())
                            .or_else(|| t.first_error.clone()),
                    };
                    if reason.is_none() && o != Outcome::Completed {
                        // The CLI says that it failed, not why: wait for the server's line
                        // (read later during a catch-up, or on another file) to give the reason.
                        t.pending = Some(Pending {
                            outcome: o,
                            at_ns: now_ns,
                            reason_text: None,
                            since: Instant::now(),
                        });
                    } else {
                        decide_now = Some((o, reason));
                    }
                }
            }
            Event::RestoreCompleted => t.pend_by_errors(now_ns),
        }
        let (outcome, reason_text) = decide_now?;
        Some(Self::finish(
            kind,
            name,
            t,
            outcome,
            reason_text,
            decided_at,
        ))
    }

    fn finish(
        kind: Kind,
        name: &str,
        t: &mut Tracked,
        outcome: Outcome,
        reason_text: Option<String>,
        at_ns: i64,
    ) -> Decided {
        t.decided = Some(outcome);
        t.pending = None;
        let reason = match outcome {
            Outcome::Completed => None,
            Outcome::FailedValidation => Some(Reason::Validation),
            _ => Some(reason_text.as_deref().map_or(Reason::Other, classify)),
        };
        Decided {
            kind,
            name: name.to_string(),
            schedule: t.schedule.clone(),
            outcome,
            reason,
            reason_text: if outcome == Outcome::Completed {
                None
            } else {
                reason_text
            },
            at_ns,
            duration_seconds: t
                .started_ns
                .filter(|s| *s <= at_ns)
                .map(|s| (at_ns - s) as f64 / 1e9),
        }
    }

    /// Confirms the pending decisions `due` says are due, in decision order.
    fn confirm(&mut self, out: &mut Vec<Decided>, due: impl Fn(&Pending) -> bool) {
        let start = out.len();
        for ((kind, name), t) in self.map.iter_mut() {
            if t.pending.as_ref().is_some_and(&due) {
                if let Some(p) = t.pending.take() {
                    out.push(Self::finish(
                        *kind,
                        name,
                        t,
                        p.outcome,
                        p.reason_text,
                        p.at_ns,
                    ));
                }
            }
        }
        out[start..].sort_by(|a, b| (a.at_ns, &a.name).cmp(&(b.at_ns, &b.name)));
    }

    /// Confirms pending decisions older than the grace period (log time) and forgets names not
    /// seen within the TTL. Cheap when nothing is due.
    pub fn tick(&mut self, now_ns: i64, out: &mut Vec<Decided>) {
        if now_ns < self.next_check_ns {
            return;
        }
        self.next_check_ns = now_ns.saturating_add(self.grace_ns / 4);
        let grace = self.grace_ns;
        self.confirm(out, |p| now_ns.saturating_sub(p.at_ns) >= grace);
        let ttl = self.ttl_ns;
        self.map
            .retain(|_, t| now_ns.saturating_sub(t.last_seen_ns) < ttl || t.pending.is_some());
    }

    /// Confirms pending decisions that have waited `wall` of real time, for namespaces whose log
    /// time stops advancing (a CronJob pod that exited, a quiet server).
    pub fn tick_wall(&mut self, wall: Duration, out: &mut Vec<Decided>) {
        self.confirm(out, |p| p.since.elapsed() >= wall);
    }

    /// Confirms every pending decision now (shutdown, end of `--once`, end of `veloki parse`).
    pub fn flush(&mut self, out: &mut Vec<Decided>) {
        self.confirm(out, |_| true);
    }

    /// The state to save with the positions.
    pub fn state(&self) -> TrackerState {
        TrackerState {
            entries: self
                .map
                .iter()
                .map(|((kind, name), t)| {
                    let mut t = t.clone();
                    t.kind = *kind;
                    (name.clone(), t)
                })
                .collect(),
        }
    }

    /// Restores saved state.
    pub fn restore(&mut self, state: TrackerState) {
        for (name, t) in state.entries {
            self.map.insert((t.kind, name), t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn finalizing_then_failed_is_failed() {
        let mut t = Tracker::new(100, 3600 * S);
        assert!(t
            .on_event("daily-20260410020000", Event::BackupStarted, 0)
            .is_none());
        assert!(t
            .on_event(
                "daily-20260410020000",
                Event::BackupMovingTo(Phase::Finalizing),
                10 * S
            )
            .is_none());
        let d = t
            .on_event(
                "daily-20260410020000",
                Event::BackupFailed("AccessDenied: Access Denied".into()),
                11 * S,
            )
            .unwrap();
        assert_eq!(d.outcome, Outcome::Failed);
        assert_eq!(d.reason, Some(Reason::Credentials));
        assert_eq!(d.schedule.as_deref(), Some("daily"));
        assert_eq!(d.duration_seconds, Some(11.0));
        // Decided once.
        assert!(t
            .on_event("daily-20260410020000", Event::BackupStatusUpdate, 12 * S)
            .is_none());
        let mut out = Vec::new();
        t.flush(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn legacy_completed_with_error_is_partial() {
        let mut t = Tracker::new(100, 3600 * S);
        t.on_event("b", Event::BackupStarted, 0);
        t.on_event(
            "b",
            Event::BackupErrorLine("Error backing up item".into()),
            S,
        );
        t.on_event("b", Event::BackupCompletedLegacy, 2 * S);
        let d = t.on_event("b", Event::BackupStatusUpdate, 3 * S).unwrap();
        assert_eq!(d.outcome, Outcome::PartiallyFailed);
        assert_eq!(d.at_ns, 2 * S);
    }

    #[test]
    fn pending_confirmed_by_time_and_waiting_resolved() {
        let mut t = Tracker::new(100, 3600 * S);
        t.on_event("a", Event::BackupMovingTo(Phase::Finalizing), 0);
        let mut out = Vec::new();
        t.tick(30 * S, &mut out);
        assert!(out.is_empty());
        t.tick(61 * S, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome, Outcome::Completed);
        t.on_event(
            "w",
            Event::BackupMovingTo(Phase::WaitingForPluginOperations),
            0,
        );
        let d = t
            .on_event(
                "w",
                Event::BackupMarked(Phase::FinalizingPartiallyFailed),
                5 * S,
            )
            .unwrap();
        assert_eq!(d.outcome, Outcome::PartiallyFailed);
    }

    #[test]
    fn cli_failure_waits_for_the_server_reason() {
        let mut t = Tracker::new(100, 3600 * S);
        assert!(t
            .on_event(
                "daily-20260410020000",
                Event::BackupCliFinal(Phase::Failed),
                20 * S
            )
            .is_none());
        // The server's line, read later, carries an earlier log time and the reason.
        let d = t
            .on_event(
                "daily-20260410020000",
                Event::BackupFailed("AccessDenied: Access Denied".into()),
                10 * S,
            )
            .unwrap();
        assert_eq!(d.outcome, Outcome::Failed);
        assert_eq!(d.reason, Some(Reason::Credentials));
        // Without server evidence the CLI decision is confirmed on the wall clock.
        t.on_event("cli-only", Event::BackupCliFinal(Phase::PartiallyFailed), 0);
        let mut out = Vec::new();
        t.tick_wall(Duration::ZERO, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome, Outcome::PartiallyFailed);
        assert_eq!(out[0].reason, Some(Reason::Other));
    }

    #[test]
    fn restores() {
        let mut t = Tracker::new(100, 3600 * S);
        t.on_event("r1", Event::RestoreStarted, 0);
        t.on_event(
            "r1",
            Event::RestoreErrorLine("error restoring services/x".into()),
            S,
        );
        t.on_event("r1", Event::RestoreCompleted, 2 * S);
        let d = t
            .on_event("r1", Event::RestoreMarked(Phase::PartiallyFailed), 3 * S)
            .unwrap();
        assert_eq!(d.outcome, Outcome::PartiallyFailed);
        assert_eq!(d.kind, Kind::Restore);
    }

    #[test]
    fn bounded() {
        let mut t = Tracker::new(100, 3600 * S);
        for i in 0..10_000 {
            t.on_event(&format!("b{i}"), Event::BackupStarted, i);
        }
        assert!(t.len() <= 100);
    }

    #[test]
    fn schedule_names() {
        assert_eq!(schedule_of("daily-20260410020000"), Some("daily"));
        assert_eq!(
            schedule_of("core-cl1-daily-backup-20250913020001"),
            Some("core-cl1-daily-backup")
        );
        assert_eq!(schedule_of("manual-backup"), None);
        assert_eq!(bare_name("velero/x"), "x");
    }
}
