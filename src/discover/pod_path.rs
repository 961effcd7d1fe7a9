//! Parsing kubelet pod-log paths: `<namespace>_<pod>_<uid>/<container>/<N>.log[.<stamp>[.gz]]`.

use std::path::Path;

/// Which kind of file within a container directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    /// A rotated, gzipped copy `N.log.<stamp>.gz` (oldest data).
    RotatedGz,
    /// A rotated file `N.log.<stamp>`.
    Rotated,
    /// The live file `N.log`.
    Live,
}

/// The identity encoded in a pod-log path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodLogPath<'a> {
    /// Namespace (never contains `_`).
    pub namespace: &'a str,
    /// Pod name (never contains `_`).
    pub pod: &'a str,
    /// Pod UID.
    pub uid: &'a str,
    /// Container name.
    pub container: &'a str,
    /// The restart number `N`.
    pub restart: u32,
    /// Rotation stamp (`20260410-020000`) of rotated files.
    pub stamp: Option<&'a str>,
    /// Live, rotated or gzipped.
    pub kind: FileKind,
}

/// Parses the last three components of a path. Returns `None` for anything else.
pub fn parse(path: &Path) -> Option<PodLogPath<'_>> {
    let mut comps = path.iter().rev();
    let file = comps.next()?.to_str()?;
    let container = comps.next()?.to_str()?;
    let pod_dir = comps.next()?.to_str()?;
    let mut parts = pod_dir.splitn(3, '_');
    let namespace = parts.next().filter(|s| !s.is_empty())?;
    let pod = parts.next().filter(|s| !s.is_empty())?;
    let uid = parts.next().filter(|s| !s.is_empty())?;
    if container.is_empty() {
        return None;
    }
    let (num, rest) = file.split_once(".log")?;
    let restart: u32 = num.parse().ok()?;
    let (stamp, kind) = if rest.is_empty() {
        (None, FileKind::Live)
    } else {
        let rest = rest.strip_prefix('.')?;
        if rest.ends_with(".tmp") {
            return None;
        }
        match rest.strip_suffix(".gz") {
            Some(s) => (Some(s), FileKind::RotatedGz),
            None => (Some(rest), FileKind::Rotated),
        }
    };
    if let Some(s) = stamp {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            return None;
        }
    }
    Some(PodLogPath {
        namespace,
        pod,
        uid,
        container,
        restart,
        stamp,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_rotated_gz() {
        let p = parse(Path::new(
            "/var/log/pods/velero_velero-7d9f8c6b5-x2x9k_0b9d2c4e-1111-2222-3333-444455556666/velero/0.log",
        ))
        .unwrap();
        assert_eq!(p.namespace, "velero");
        assert_eq!(p.pod, "velero-7d9f8c6b5-x2x9k");
        assert_eq!(p.container, "velero");
        assert_eq!(p.kind, FileKind::Live);
        let p = parse(Path::new("a_b_c/ctr/3.log.20260410-020000")).unwrap();
        assert_eq!(
            (p.restart, p.stamp, p.kind),
            (3, Some("20260410-020000"), FileKind::Rotated)
        );
        let p = parse(Path::new("a_b_c/ctr/3.log.20260410-020000.gz")).unwrap();
        assert_eq!(p.kind, FileKind::RotatedGz);
        for bad in [
            "a_b/ctr/0.log",
            "a_b_c/ctr/x.log",
            "a_b_c/ctr/0.txt",
            "a_b_c/ctr/0.log.20260410-020000.gz.tmp",
            "0.log",
        ] {
            assert!(parse(Path::new(bad)).is_none(), "{bad}");
        }
    }
}
