//! The entry and file-context model every stage shares: which stream a line came from, the pod
//! identity and route of its file.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;

use super::labels::Component;
use super::route::{Hint, Route};

/// stdout or stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

impl StreamKind {
    /// `stdout` / `stderr`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
}

/// Per-file context: the pod identity from the path and the route that applies.
#[derive(Clone, Debug)]
pub struct FileCtx {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Pod name.
    pub pod: Arc<str>,
    /// Container name.
    pub container: Arc<str>,
    /// Parser hint of the route.
    pub hint: Hint,
    /// Component of the route (per-line detection when `None`).
    pub component: Option<Component>,
    /// `veloki_log_lines_total` children for this container, by [`Severity`] index.
    pub line_counters: Option<Arc<[Counter; 5]>>,
}

impl FileCtx {
    /// A context without metric handles (tests, `veloki parse`).
    pub fn new(namespace: &str, pod: &str, container: &str, hint: Hint) -> FileCtx {
        FileCtx {
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.into(),
            hint,
            component: None,
            line_counters: None,
        }
    }

    /// The context of a container under the first route that matches it (parser hint and
    /// component; defaults when none does).
    pub fn routed(routes: &[Route], namespace: &str, pod: &str, container: &str) -> FileCtx {
        let route = routes
            .iter()
            .find(|r| r.matches.matches(namespace, container));
        let mut ctx = FileCtx::new(
            namespace,
            pod,
            container,
            route.map(|r| r.parser).unwrap_or_default(),
        );
        ctx.component = route.and_then(|r| r.component);
        ctx
    }
}
