//! Discover: finds the pod-log files to follow.
//!
//! **In:** the pods directory and the namespace/container filters. **Out:** every matching file
//! (`N.log`, rotated `N.log.<stamp>` and `N.log.<stamp>.gz`) with its pod identity, ordered oldest
//! first within each container directory; change notifications ([`watch`]) that wake the reader.
//! **Guarantees:** never follows a file outside the filters; unreadable directories are skipped
//! and reported, never fatal.

use std::path::{Path, PathBuf};

pub mod pod_path;
pub mod watch;

pub use pod_path::{FileKind, PodLogPath};

/// Which pods and containers to follow.
#[derive(Clone, Debug)]
pub struct Filter {
    /// Namespaces (exact).
    pub namespaces: Vec<String>,
    /// Containers (exact); empty means all.
    pub containers: Vec<String>,
}

impl Filter {
    /// True when a file of this namespace and container is followed.
    pub fn accepts(&self, namespace: &str, container: &str) -> bool {
        self.namespaces.iter().any(|n| n == namespace)
            && (self.containers.is_empty() || self.containers.iter().any(|c| c == container))
    }
}

/// One file found by a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Full path.
    pub path: PathBuf,
    /// Namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// Pod UID.
    pub uid: String,
    /// Container.
    pub container: String,
    /// Restart number.
    pub restart: u32,
    /// Rotation stamp.
    pub stamp: Option<String>,
    /// Live, rotated or gzipped.
    pub kind: FileKind,
}

impl Found {
    /// The identity of one pod-log path; `None` when it is not one.
    pub fn from_path(path: &Path) -> Option<Found> {
        let p = pod_path::parse(path)?;
        Some(Found {
            namespace: p.namespace.to_string(),
            pod: p.pod.to_string(),
            uid: p.uid.to_string(),
            container: p.container.to_string(),
            restart: p.restart,
            stamp: p.stamp.map(str::to_string),
            kind: p.kind,
            path: path.to_path_buf(),
        })
    }
}

/// Lists every followed file under `pods_dir`, oldest data first per container directory:
/// by restart number, then rotated `.gz`/plain files by stamp, then the live file.
pub fn scan(pods_dir: &Path, filter: &Filter) -> std::io::Result<Vec<Found>> {
    let mut out = Vec::new();
    for pod_entry in std::fs::read_dir(pods_dir)? {
        let Ok(pod_entry) = pod_entry else { continue };
        let pod_name = pod_entry.file_name();
        let Some(pod_name) = pod_name.to_str() else {
            continue;
        };
        let Some(ns) = pod_name.split('_').next() else {
            continue;
        };
        if !filter.namespaces.iter().any(|n| n == ns) {
            continue;
        }
        let Ok(containers) = std::fs::read_dir(pod_entry.path()) else {
            continue;
        };
        for c in containers.flatten() {
            let Ok(files) = std::fs::read_dir(c.path()) else {
                continue;
            };
            for f in files.flatten() {
                let path = f.path();
                let Some(found) = Found::from_path(&path) else {
                    continue;
                };
                if !filter.accepts(&found.namespace, &found.container) {
                    continue;
                }
                out.push(found);
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.namespace, &a.pod, &a.uid, &a.container, a.restart)
            .cmp(&(&b.namespace, &b.pod, &b.uid, &b.container, b.restart))
            .then_with(|| match (a.kind, b.kind) {
                (FileKind::Live, FileKind::Live) => std::cmp::Ordering::Equal,
                (FileKind::Live, _) => std::cmp::Ordering::Greater,
                (_, FileKind::Live) => std::cmp::Ordering::Less,
                _ => a.stamp.cmp(&b.stamp).then(a.kind.cmp(&b.kind)),
            })
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_orders() {
        let d = tempfile::tempdir().unwrap();
        let mk = |p: &str| {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x\n").unwrap();
        };
        mk("velero_v-1_u1/velero/0.log");
        mk("velero_v-1_u1/velero/0.log.20260410-020000");
        mk("velero_v-1_u1/velero/0.log.20260409-020000.gz");
        mk("velero_v-1_u1/velero/0.log.20260410-030000.gz.tmp");
        mk("kube-system_dns_u2/coredns/0.log");
        mk("velero-manager_m_u3/velero-manager/0.log");
        let f = Filter {
            namespaces: vec!["velero".into(), "velero-manager".into()],
            containers: vec![],
        };
        let got = scan(d.path(), &f).unwrap();
        let names: Vec<String> = got
            .iter()
            .map(|f| f.path.strip_prefix(d.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            vec![
                "velero_v-1_u1/velero/0.log.20260409-020000.gz",
                "velero_v-1_u1/velero/0.log.20260410-020000",
                "velero_v-1_u1/velero/0.log",
                "velero-manager_m_u3/velero-manager/0.log",
            ]
        );
    }
}
