//! Change notifications: inotify (through `notify`) wakes the reader when a followed directory
//! changes, so it sleeps while nothing happens instead of polling.
//!
//! **In:** the pods directory and the namespace filter. **Out:** [`Wake`]s from a [`Bell`]: "rescan"
//! (something was created, deleted or renamed), the paths of files written to, "everything" (the
//! kernel queue overflowed), or "stop". **Guarantees:** the pods directory is watched for new pod
//! directories, and every pod directory of a followed namespace is watched recursively (its
//! container directories, whose entries are the log files), added *before* the scan that lists
//! them, so a file is either listed or notified; memory is bounded (at most [`MAX_PATHS`] paths
//! pending, then "everything"); when inotify cannot be used (no support, watch or instance limits)
//! it says so once and the reader falls back to polling.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::Filter;

/// Most written-to paths remembered between two wake-ups; beyond, every file is read.
pub const MAX_PATHS: usize = 1024;

/// What happened since the reader last looked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Wake {
    /// Files or directories were created, deleted or renamed: rescan.
    pub rescan: bool,
    /// Read every file (events were lost, or too many paths to name).
    pub all: bool,
    /// Files written to.
    pub paths: Vec<PathBuf>,
    /// Stop reading.
    pub stop: bool,
}

impl Wake {
    /// True when nothing happened.
    pub fn is_empty(&self) -> bool {
        !self.rescan && !self.all && self.paths.is_empty() && !self.stop
    }
}

/// Where notifications (and the stop request) wait for the reader.
#[derive(Debug, Default)]
pub struct Bell {
    state: Mutex<Wake>,
    cv: Condvar,
}

impl Bell {
    /// A bell with nothing pending.
    pub fn new() -> Arc<Bell> {
        Arc::new(Bell::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Wake> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ring(&self, f: impl FnOnce(&mut Wake)) {
        let mut w = self.lock();
        f(&mut w);
        drop(w);
        self.cv.notify_all();
    }

    /// Asks for a rescan.
    pub fn ring_rescan(&self) {
        self.ring(|w| w.rescan = true);
    }

    /// Asks to read every file (and rescan).
    pub fn ring_all(&self) {
        self.ring(|w| {
            w.all = true;
            w.rescan = true;
            w.paths.clear();
        });
    }

    /// Names files written to.
    pub fn ring_paths(&self, paths: Vec<PathBuf>) {
        self.ring(|w| {
            if w.all {
                return;
            }
            for p in paths {
                if !w.paths.contains(&p) {
                    w.paths.push(p);
                }
            }
            if w.paths.len() > MAX_PATHS {
                w.paths.clear();
                w.all = true;
            }
        });
    }

    /// Asks the reader to stop (sticky).
    pub fn stop(&self) {
        self.ring(|w| w.stop = true);
    }

    /// True once [`Bell::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.lock().stop
    }

    /// Takes what is pending without waiting.
    pub fn take(&self) -> Wake {
        let mut w = self.lock();
        let stop = w.stop;
        let mut out = std::mem::take(&mut *w);
        w.stop = stop;
        out.stop = stop;
        out
    }

    /// Waits until something is pending or `timeout` passed, then takes it.
    pub fn wait(&self, timeout: Duration) -> Wake {
        let w = self.lock();
        let (mut w, _) = self
            .cv
            .wait_timeout_while(w, timeout, |w| w.is_empty())
            .unwrap_or_else(|p| p.into_inner());
        let stop = w.stop;
        let mut out = std::mem::take(&mut *w);
        w.stop = stop;
        out.stop = stop;
        out
    }
}

fn on_event(bell: &Bell, res: notify::Result<notify::Event>) {
    let ev = match res {
        Ok(ev) => ev,
        Err(_) => return bell.ring_all(),
    };
    if ev.need_rescan() {
        return bell.ring_all();
    }
    match ev.kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)) => {
            bell.ring_rescan()
        }
        // Our own opens and chmods say nothing about content.
        EventKind::Access(AccessKind::Open(_) | AccessKind::Read)
        | EventKind::Access(AccessKind::Close(AccessMode::Read))
        | EventKind::Modify(ModifyKind::Metadata(_)) => {}
        EventKind::Modify(_) | EventKind::Access(_) => bell.ring_paths(ev.paths),
        EventKind::Any | EventKind::Other => bell.ring_all(),
    }
}

/// The inotify watches on the pods directory and the followed pod directories.
pub struct Watch {
    watcher: Option<RecommendedWatcher>,
    pods_dir: PathBuf,
    namespaces: Vec<String>,
    watched: HashSet<PathBuf>,
}

impl Watch {
    /// Starts watching `pods_dir` (call [`Watch::sync`] before each scan). Never fails: without
    /// inotify, [`Watch::active`] is false and the caller polls.
    pub fn start(pods_dir: &Path, filter: &Filter, bell: Arc<Bell>) -> Watch {
        let mut w = Watch {
            watcher: None,
            pods_dir: pods_dir.to_path_buf(),
            namespaces: filter.namespaces.clone(),
            watched: HashSet::new(),
        };
        let started =
            notify::recommended_watcher(move |res| on_event(&bell, res)).and_then(|mut watcher| {
                watcher.watch(pods_dir, RecursiveMode::NonRecursive)?;
                Ok(watcher)
            });
        match started {
            Ok(watcher) => w.watcher = Some(watcher),
            Err(e) => tracing::warn!(
                pods_dir = %pods_dir.display(),
                "cannot watch the pods directory for changes ({e}); polling instead"
            ),
        }
        w
    }

    /// A watch that never notifies (polling only).
    pub fn disabled(pods_dir: &Path) -> Watch {
        Watch {
            watcher: None,
            pods_dir: pods_dir.to_path_buf(),
            namespaces: Vec::new(),
            watched: HashSet::new(),
        }
    }

    /// True while change notifications arrive (false: poll).
    pub fn active(&self) -> bool {
        self.watcher.is_some()
    }

    /// Watches the pod directories of followed namespaces that appeared and forgets those that
    /// are gone. A watch that cannot be added for a lack of inotify resources turns
    /// notifications off (once, logged); the caller then polls.
    pub fn sync(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&self.pods_dir) else {
            return;
        };
        let mut present = HashSet::new();
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(ns) = name.to_str().and_then(|n| n.split('_').next()) else {
                continue;
            };
            if !self.namespaces.iter().any(|n| n == ns) {
                continue;
            }
            let path = e.path();
            if !self.watched.contains(&path) {
                match watcher.watch(&path, RecursiveMode::Recursive) {
                    Ok(()) => {}
                    Err(err) if matches!(err.kind, notify::ErrorKind::MaxFilesWatch) => {
                        tracing::warn!(
                            "inotify watch limit reached (fs.inotify.max_user_watches); polling instead"
                        );
                        self.watcher = None;
                        self.watched.clear();
                        return;
                    }
                    Err(_) => continue, // gone meanwhile, or not a directory
                }
            }
            present.insert(path);
        }
        for gone in self.watched.difference(&present) {
            let _ = watcher.unwatch(gone);
        }
        self.watched = present;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bell_coalesces_and_bounds_paths() {
        let bell = Bell::new();
        assert!(bell.wait(Duration::from_millis(1)).is_empty());
        bell.ring_paths(vec!["a".into(), "b".into()]);
        bell.ring_paths(vec!["a".into()]);
        let w = bell.take();
        assert_eq!(w.paths, vec![PathBuf::from("a"), PathBuf::from("b")]);
        bell.ring_paths(
            (0..=MAX_PATHS)
                .map(|i| PathBuf::from(i.to_string()))
                .collect(),
        );
        let w = bell.take();
        assert!(w.all && w.paths.is_empty());
        bell.stop();
        assert!(bell.take().stop);
        assert!(bell.wait(Duration::from_secs(5)).stop, "stop is sticky");
    }
}
