//! Routes: which containers a rule applies to, which parser it asks for first and which
//! component label it gives.

use serde::Deserialize;

use super::labels::Component;

/// Which parser a route asks for first. `Auto` sniffs each line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hint {
    /// Sniff every line (the default).
    #[default]
    Auto,
    /// Velero server / node-agent / plugins: logrus text or JSON first.
    Velero,
    /// A Gin application (velero-manager): Gin and Go `log` first.
    Gin,
    /// The Velero CLI in a CronJob pod.
    VeleroCli,
    /// Do not parse: ship every line as `Plain`.
    None,
}

/// A route: which containers it applies to and how to treat them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Conditions; all given ones must hold.
    #[serde(default, rename = "match")]
    pub matches: RouteMatch,
    /// Which parser to try first.
    #[serde(default)]
    pub parser: Hint,
    /// The `component` label for these containers; per-line detection when absent.
    #[serde(default)]
    pub component: Option<Component>,
}

/// What a route matches.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Namespaces (any of).
    #[serde(default)]
    pub namespace: Vec<String>,
    /// Container names (any of).
    #[serde(default)]
    pub container: Vec<String>,
}

impl RouteMatch {
    /// True when this route applies to the container.
    pub fn matches(&self, namespace: &str, container: &str) -> bool {
        (self.namespace.is_empty() || self.namespace.iter().any(|n| n == namespace))
            && (self.container.is_empty() || self.container.iter().any(|c| c == container))
    }
}

/// The routes used when the file gives none.
pub fn default_routes() -> Vec<Route> {
    let r = |ns: &[&str], c: &[&str], parser, component| Route {
        matches: RouteMatch {
            namespace: ns.iter().map(|s| s.to_string()).collect(),
            container: c.iter().map(|s| s.to_string()).collect(),
        },
        parser,
        component,
    };
    vec![
        r(
            &["velero-manager"],
            &[],
            Hint::Gin,
            Some(Component::VeleroManager),
        ),
        r(
            &[],
            &["velero"],
            Hint::Velero,
            Some(Component::VeleroServer),
        ),
        r(
            &[],
            &["node-agent", "restic"],
            Hint::Velero,
            Some(Component::NodeAgent),
        ),
        r(&[], &[], Hint::Auto, None),
    ]
}
