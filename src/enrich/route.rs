//! Route templates for HTTP metrics: `/api/v1/backups/daily-20260410` → `/api/v1/backups/:name`.
//!
//! Templates are matched segment by segment (`:x` matches one segment, `*x` the rest). Paths no
//! template matches are normalised (numbers, UUIDs, hashes and backup-like names → `:id`) and the
//! number of distinct routes is capped; past the cap a path counts as `other`.

use std::collections::HashMap;

/// velero-manager's routes (its `main.go` route table).
pub const DEFAULT_TEMPLATES: &[&str] = &[
    "/api/v1/users/:username/password",
    "/api/v1/users/:username",
    "/api/v1/storage-locations/:name",
    "/api/v1/backups/:name/details",
    "/api/v1/backups/:name/logs",
    "/api/v1/backups/:name/download",
    "/api/v1/backups/:name/describe",
    "/api/v1/backups/:name",
    "/api/v1/restores/:name/logs",
    "/api/v1/restores/:name/describe",
    "/api/v1/restores/:name",
    "/api/v1/schedules/:name/backup",
    "/api/v1/schedules/:name",
    "/api/v1/cronjobs/:name/trigger",
    "/api/v1/cronjobs/:name",
    "/api/v1/clusters/:cluster/description",
    "/api/v1/clusters/:cluster/backups",
    "/api/v1/clusters/:cluster/health",
    "/api/v1/clusters/:cluster/details",
    "/api/v1/orchestration/clusters/:name",
    "/api/v1/orchestration/schedules/:name/trigger",
    "/api/v1/gitops/applications/:name/status",
    "/api/v1/gitops/applications/:name/sync",
    "/static/*filepath",
];

/// Maps request paths to a bounded set of route templates.
pub struct RouteTemplater {
    templates: Vec<Vec<String>>,
    known: HashMap<String, u32>,
    names: Vec<String>,
    cap: usize,
}

/// Index of the `other` route in [`RouteTemplater::name`].
pub const OTHER: u32 = 0;

impl RouteTemplater {
    /// A templater with the given templates (tried in order) and a cap on distinct routes.
    pub fn new(templates: &[&str], cap: usize) -> RouteTemplater {
        RouteTemplater {
            templates: templates
                .iter()
                .map(|t| t.split('/').map(str::to_string).collect())
                .collect(),
            known: HashMap::new(),
            names: vec!["other".to_string()],
            cap: cap.max(1),
        }
    }

    /// The route id for a path (no query); ids are stable for the life of the process.
    pub fn route(&mut self, path: &str) -> u32 {
        if let Some(&id) = self.known.get(path) {
            return id;
        }
        let template = self.template_of(path);
        let id = match self.known.get(&template) {
            Some(&id) => id,
            None if self.names.len() <= self.cap => {
                let id = self.names.len() as u32;
                self.names.push(template.clone());
                self.known.insert(template, id);
                id
            }
            None => OTHER,
        };
        // Remember the raw path too, but only while the memo stays small.
        if id != OTHER && self.known.len() < 4 * self.cap + 1024 {
            self.known.insert(path.to_string(), id);
        }
        id
    }

    /// The template text of a route id.
    pub fn name(&self, id: u32) -> &str {
        self.names
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("other")
    }

    fn template_of(&self, path: &str) -> String {
        let segs: Vec<&str> = path.split('/').collect();
        'outer: for t in &self.templates {
            let rest_at = t.iter().position(|s| s.starts_with('*'));
            if rest_at.is_none() && t.len() != segs.len() {
                continue;
            }
            if let Some(r) = rest_at {
                if segs.len() < r + 1 {
                    continue;
                }
            }
            for (i, ts) in t.iter().enumerate() {
                if ts.starts_with('*') {
                    break;
                }
                if ts.starts_with(':') {
                    if segs[i].is_empty() {
                        continue 'outer;
                    }
                    continue;
                }
                if ts != segs[i] {
                    continue 'outer;
                }
            }
            return t.join("/");
        }
        segs.iter()
            .map(|s| if looks_like_id(s) { ":id" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Numbers, UUIDs, long hex, and names that embed a number or timestamp.
fn looks_like_id(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    let all_digits = s.bytes().all(|b| b.is_ascii_digit());
    let hex = s.len() >= 16 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    let mut run = 0;
    let mut longest_run = 0;
    for b in s.bytes() {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        longest_run = longest_run.max(run);
    }
    all_digits || hex || longest_run >= 4 || s.len() > 40
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_cap() {
        let mut r = RouteTemplater::new(DEFAULT_TEMPLATES, 5);
        let id = r.route("/api/v1/backups/core-cl1-daily-backup-20250913020001");
        assert_eq!(r.name(id), "/api/v1/backups/:name");
        let id = r.route("/api/v1/backups/x/logs");
        assert_eq!(r.name(id), "/api/v1/backups/:name/logs");
        let id = r.route("/static/js/main.a5ff1055.js");
        assert_eq!(r.name(id), "/static/*filepath");
        let id = r.route("/api/v1/health");
        assert_eq!(r.name(id), "/api/v1/health");
        let id = r.route("/api/v2/things/12345");
        assert_eq!(r.name(id), "/api/v2/things/:id");
        let id = r.route("/api/v2/things/550e8400-e29b-41d4-a716-446655440000");
        assert_eq!(r.name(id), "/api/v2/things/:id");
        for i in 0..100 {
            let id = r.route(&format!("/random/path{i}x/a{i}"));
            assert!(r.name(id) == "other" || r.names.len() <= 6);
        }
        assert!(r.names.len() <= 6);
    }
}
