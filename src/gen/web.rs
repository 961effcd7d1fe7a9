//! velero-manager (Gin v1.10 access lines, `Error #01:` continuations, Go `log` lines, a rare
//! Recovery block) and the "other" sources: klog on the Velero server's stderr (≤ 1.15) and
//! CoreDNS in `kube-system`.

use std::fmt::Write as _;
use std::io;

use rand::Rng;

use super::out::Stream;
use super::{text, Gen};

const KUBELET: &str = "10.42.0.1";
const SCRAPERS: [&str; 3] = ["10.42.1.15", "10.42.2.8", "10.100.102.110"];
const USERS: [&str; 6] = [
    "192.168.1.25",
    "10.42.0.9",
    "192.168.1.25",
    "fd00:10:244:1::1a2b",
    "10.42.3.7",
    "::1",
];

/// What one Gin unit writes.
#[derive(Clone, Copy)]
enum Unit {
    Access,
    WithError,
    Recovery,
}

impl Unit {
    fn entries(self) -> u64 {
        match self {
            Unit::Access => 1,
            Unit::WithError => 2,
            Unit::Recovery => 10,
        }
    }
}

/// Microseconds/milliseconds ranges in ns.
const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// Gin v1.8–v1.11 `defaultLogFormatter` without colours:
/// `"[GIN] %v |%s %3d %s| %13v | %15s |%s %-7s %s %#v\n%s"`.
#[allow(clippy::too_many_arguments)]
fn gin_line(
    out: &mut String,
    tmp: &mut String,
    t: i64,
    status: u16,
    lat: u64,
    ip: &str,
    method: &str,
    path: &str,
) {
    // Gin ≥ 1.8 truncates latencies over a minute to whole seconds.
    let lat = if lat > 60 * SEC { lat - lat % SEC } else { lat };
    tmp.clear();
    text::go_duration(tmp, lat);
    out.push_str("[GIN] ");
    text::gin_time(out, t);
    // `|%s %-7s %s %#v`: empty colour, space, padded method, space, empty reset, space, path.
    let _ = write!(out, " | {status:3} | {tmp:>13} | {ip:>15} | {method:<7}  ");
    text::go_quote(out, path);
}

impl Gen {
    /// A backup name for API paths: a recent real one when there is one.
    fn api_backup_name(&mut self, out: &mut String) {
        if self.restorable.is_empty() {
            out.push_str("core-cl1-daily-backup-20260409020001");
        } else {
            let i = self.restorable.len() - 1 - self.rng.gen_range(0..self.restorable.len().min(8));
            out.push_str(&self.backups[self.restorable[i] as usize].name);
        }
    }

    /// Writes one Gin access line for time `t` into `self.buf`.
    fn gin_access(&mut self, t: i64, status: u16, lat: u64, ip: &str, method: &str, path: &str) {
        gin_line(
            &mut self.buf,
            &mut self.tmp,
            t,
            status,
            lat,
            ip,
            method,
            path,
        );
    }

    /// Picks a request and writes it into `self.buf`; returns the unit shape.
    fn gin_request(&mut self, t: i64, allow: u64) -> Unit {
        let x: f64 = self.rng.gen();
        let mut path = String::with_capacity(96);
        let (status, lat, ip, method) = if x < 0.52 {
            path.push_str("/api/v1/health");
            (200, self.rng.gen_range(15 * US..90 * US), KUBELET, "GET")
        } else if x < 0.62 {
            path.push_str("/metrics");
            let ip = SCRAPERS[self.rng.gen_range(0..3)];
            (200, self.rng.gen_range(1200 * US..4500 * US), ip, "GET")
        } else if x < 0.68 {
            let p = [
                "/static/js/main.a5ff1055.js",
                "/static/css/main.8c2f1b2e.css",
                "/favicon.ico",
                "/manifest.json",
                "/",
            ][self.rng.gen_range(0..5)];
            path.push_str(p);
            let ip = USERS[self.rng.gen_range(0..USERS.len())];
            (200, self.rng.gen_range(300..300 * US), ip, "GET")
        } else if x < 0.71 {
            let ip = USERS[self.rng.gen_range(0..3)];
            match self.rng.gen_range(0..3) {
                0 => {
                    path.push_str("/api/v1/auth/oidc/login");
                    (302, self.rng.gen_range(80 * US..400 * US), ip, "GET")
                }
                1 => {
                    path.push_str("/api/v1/auth/oidc/callback?state=");
                    let st: u64 = self.rng.gen();
                    let _ = write!(path, "{st:016x}&session_state={:08x}-", st >> 7);
                    let _ = write!(
                        path,
                        "{:04x}&code={:08x}-{:04x}-4c55.9e1f",
                        st & 0xffff,
                        st >> 9,
                        st >> 48
                    );
                    (302, self.rng.gen_range(120 * MS..600 * MS), ip, "GET")
                }
                _ => {
                    let v: u64 = self.rng.gen();
                    let _ = write!(
                        path,
                        "/?token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VybmFtZSI6ImFsaWNlIn0.{v:016x}&auth=oidc&username=alice&role=admin"
                    );
                    (200, self.rng.gen_range(150 * US..600 * US), ip, "GET")
                }
            }
        } else if x < 0.995 || allow < 2 {
            let ip = USERS[self.rng.gen_range(0..USERS.len())];
            let y = self.rng.gen_range(0..100);
            match y {
                0..=14 => {
                    path.push_str("/api/v1/backups");
                    (200, self.rng.gen_range(3 * MS..60 * MS), ip, "GET")
                }
                15..=24 => {
                    path.push_str("/api/v1/backups/");
                    self.api_backup_name(&mut path);
                    path.push_str(["/details", "/describe", "/logs"][y % 3]);
                    let lat = if y % 3 == 2 {
                        self.rng.gen_range(50 * MS..2 * SEC)
                    } else {
                        self.rng.gen_range(5 * MS..90 * MS)
                    };
                    (200, lat, ip, "GET")
                }
                25..=31 => {
                    path.push_str(
                        [
                            "/api/v1/restores",
                            "/api/v1/schedules",
                            "/api/v1/dashboard/metrics",
                            "/api/v1/clusters",
                            "/api/v1/storage-locations",
                            "/api/v1/auth/info",
                            "/api/v1/cronjobs",
                        ][y - 25],
                    );
                    (200, self.rng.gen_range(2 * MS..40 * MS), ip, "GET")
                }
                32..=38 => {
                    path.push_str("/api/v1/backups");
                    (204, self.rng.gen_range(3 * US..9 * US), ip, "OPTIONS")
                }
                39..=42 => {
                    path.push_str(["/api/v1/backups", "/api/v1/restores"][y % 2]);
                    (201, self.rng.gen_range(20 * MS..90 * MS), ip, "POST")
                }
                43..=45 => {
                    path.push_str("/api/v1/backups/");
                    self.api_backup_name(&mut path);
                    if y == 45 {
                        (500, self.rng.gen_range(SEC..3 * SEC), ip, "DELETE")
                    } else {
                        (200, self.rng.gen_range(30 * MS..400 * MS), ip, "DELETE")
                    }
                }
                46..=55 => {
                    path.push_str("/api/v1/backups");
                    (401, self.rng.gen_range(10 * US..40 * US), ip, "GET")
                }
                56..=60 => {
                    path.push_str("/api/v1/users");
                    (403, self.rng.gen_range(800 * US..2 * MS), ip, "GET")
                }
                61..=66 => {
                    if y == 66 {
                        path.push_str("/api/v1/backups/a b\"c/details");
                    } else {
                        let _ =
                            write!(path, "/api/v1/backups/daily-2026030{}020000/details", y % 9);
                    }
                    (404, self.rng.gen_range(20 * US..60 * US), ip, "GET")
                }
                67..=69 => {
                    path.push_str("/api/v1/backups/");
                    self.api_backup_name(&mut path);
                    path.push_str("/download");
                    if y == 67 {
                        (408, 30 * SEC + self.rng.gen_range(0..10 * MS), ip, "GET")
                    } else {
                        (200, self.rng.gen_range(2 * SEC..100 * SEC), ip, "GET")
                    }
                }
                70..=74 => {
                    path.push_str("/api/v1/auth/login");
                    let st = if y == 74 { 401 } else { 200 };
                    (st, self.rng.gen_range(40 * MS..120 * MS), ip, "POST")
                }
                75..=78 => {
                    let s = ["daily", "hourly-apps", "weekly-full"][y % 3];
                    let _ = write!(path, "/api/v1/schedules/{s}");
                    if y == 78 {
                        path.push_str("/backup");
                        (201, self.rng.gen_range(15 * MS..60 * MS), ip, "POST")
                    } else {
                        (200, self.rng.gen_range(10 * MS..50 * MS), ip, "PUT")
                    }
                }
                79..=84 => {
                    path.push_str(
                        [
                            "/api/v1/clusters/core-cl1/health",
                            "/api/v1/clusters/core-cl1/backups",
                        ][y % 2],
                    );
                    (200, self.rng.gen_range(4 * MS..80 * MS), ip, "GET")
                }
                85..=89 => {
                    path.push_str("/api/v1/restores/");
                    self.api_backup_name(&mut path);
                    path.push_str("-20260410031000/logs");
                    (200, self.rng.gen_range(40 * MS..900 * MS), ip, "GET")
                }
                _ if allow >= 2 => {
                    // A write failure Gin attaches to the context: an `Error #01:` line follows.
                    path.push_str("/api/v1/backups/");
                    self.api_backup_name(&mut path);
                    path.push_str("/download");
                    let lat = self.rng.gen_range(2 * SEC..8 * SEC);
                    self.gin_access(t, 200, lat, ip, "GET", &path);
                    return Unit::WithError;
                }
                _ => {
                    path.push_str("/api/v1/health");
                    (200, self.rng.gen_range(15 * US..90 * US), KUBELET, "GET")
                }
            }
        } else if allow >= Unit::Recovery.entries() {
            return Unit::Recovery;
        } else {
            path.push_str("/api/v1/health");
            (200, self.rng.gen_range(15 * US..90 * US), KUBELET, "GET")
        };
        self.gin_access(t, status, lat, ip, method, &path);
        Unit::Access
    }

    /// One Gin request (1, 2 or 10 entries) if it fits.
    pub(crate) fn gin_unit(&mut self, remaining: u64) -> io::Result<bool> {
        let allow = remaining.saturating_sub(self.pending);
        if allow == 0 {
            return Ok(false);
        }
        let t = self.tick();
        self.buf.clear();
        let gin = self.files.gin;
        match self.gin_request(t, allow) {
            Unit::Access => self.put(gin, t, Stream::Stdout),
            Unit::WithError => {
                self.put(gin, t, Stream::Stdout)?;
                self.buf.clear();
                let port = self.rng.gen_range(32768..61000);
                let _ = write!(
                    self.buf,
                    "Error #01: write tcp 10.42.0.57:8080->10.42.0.9:{port}: write: broken pipe"
                );
                let t2 = self.tick();
                self.put(gin, t2, Stream::Stdout)
            }
            Unit::Recovery => self.recovery(t),
        }
        .map(|_| true)
    }

    /// Gin's Recovery block on stderr for the mock-data panic, then the 500 access line.
    fn recovery(&mut self, t: i64) -> io::Result<()> {
        let gin = self.files.gin;
        let mut lines: Vec<String> = vec![String::new(), String::new()];
        let mut head = String::from("\x1b[31m");
        text::golog_time(&mut head, t);
        head.push_str(" [Recovery] ");
        text::gin_time(&mut head, t);
        head.push_str(" panic recovered:");
        lines.push(head);
        lines.push("inconsistent label cardinality: expected 1 label values but got 2 in []string{\"production\", \"daily-backup\"}".to_string());
        for (f, pc) in [
            ("/app/pkg/metrics/mock.go:112", 0x1a2b3c4u32),
            ("/app/pkg/handlers/velero.go:2350", 0x1a4f1e0),
            (
                "/go/pkg/mod/github.com/gin-gonic/gin@v1.10.1/context.go:185",
                0x9d8a2a,
            ),
            (
                "/go/pkg/mod/github.com/gin-gonic/gin@v1.10.1/recovery.go:102",
                0x9e3b15,
            ),
        ] {
            lines.push(format!("{f} (0x{pc:x})"));
        }
        lines.push("\x1b[0m".to_string());
        let mut tt = t;
        for l in &lines {
            self.buf.clear();
            self.buf.push_str(l);
            self.put(gin, tt, Stream::Stderr)?;
            tt = self.tick();
        }
        self.buf.clear();
        let lat = self.rng.gen_range(300 * US..900 * US);
        self.gin_access(
            tt,
            500,
            lat,
            "10.1.0.1",
            "POST",
            "/api/v1/test/generate-mock-data",
        );
        self.put(gin, tt, Stream::Stdout)
    }

    /// A single health-probe line (always fits while anything remains).
    pub(crate) fn gin_filler(&mut self) -> io::Result<()> {
        let t = self.tick();
        self.buf.clear();
        let lat = self.rng.gen_range(15 * US..90 * US);
        self.gin_access(t, 200, lat, KUBELET, "GET", "/api/v1/health");
        let gin = self.files.gin;
        self.put(gin, t, Stream::Stdout)
    }

    /// One "other" entry: Go `log` lines of velero-manager, klog, CoreDNS.
    pub(crate) fn other_unit(&mut self, remaining: u64) -> io::Result<bool> {
        if remaining <= self.pending {
            return Ok(false);
        }
        let t = self.tick();
        self.buf.clear();
        let x: f64 = self.rng.gen();
        // The collector logs its heartbeat every 30 s; the other Go `log` lines are events.
        let heartbeat = t - self.last_heartbeat >= 30_000_000_000;
        let (file, stream) = if x < 0.15 || (x < 0.55 && heartbeat) {
            let out = &mut self.buf;
            text::golog_time(out, t);
            out.push(' ');
            let y = if heartbeat {
                self.rng.gen_range(0..100)
            } else {
                self.rng.gen_range(60..100)
            };
            match y {
                0..=59 => {
                    self.last_heartbeat = t;
                    out.push_str("📈 Velero metrics updated at ");
                    text::hms(out, t);
                }
                60..=64 => out.push_str("⚠️  Failed to collect Velero metrics: the server could not find the requested resource"),
                65..=79 => out.push_str("OIDC User authenticated: alice, Roles: [velero-admin offline_access uma_authorization], Groups: [/velero-admins], Mapped Role: admin"),
                80..=91 => out.push_str("User alice authenticated successfully with role: admin"),
                92..=97 => out.push_str("Access denied for user bob - no valid role assigned (roles: [offline_access uma_authorization], groups: [])"),
                _ => {
                    // fmt.Printf on stdout, no timestamp.
                    out.clear();
                    out.push_str("Warning: Failed to save default admin user: secrets \"velero-manager-users\" is forbidden: User \"system:serviceaccount:velero-manager:velero-manager\" cannot update resource \"secrets\" in API group \"\" in the namespace \"velero-manager\"");
                    let gin = self.files.gin;
                    self.put(gin, t, Stream::Stdout)?;
                    return Ok(true);
                }
            }
            (self.files.gin, Stream::Stderr)
        } else if x < 0.75 && self.minor <= 15 {
            let out = &mut self.buf;
            out.push('I');
            text::klog_time(out, t);
            let w = self.rng.gen_range(1000..1300);
            let _ = write!(out, "       1 request.go:690] Waited for 1.{w}s due to client-side throttling, not priority and fairness, request: GET:https://10.43.0.1:443/apis/velero.io/v1/namespaces/velero/backups?limit=500");
            (self.files.server, Stream::Stderr)
        } else {
            let out = &mut self.buf;
            let q = [
                "velero.velero.svc.cluster.local.",
                "minio.velero.svc.cluster.local.",
                "keycloak.homelab.local.",
                "s3.eu-central-1.amazonaws.com.",
            ];
            let name = q[self.rng.gen_range(0..q.len())];
            let port = self.rng.gen_range(32768..61000);
            let id = self.rng.gen_range(1..65535);
            let rc = if name.starts_with("keycloak") {
                "NXDOMAIN"
            } else {
                "NOERROR"
            };
            let _ = write!(out, "[INFO] 10.42.0.{}:{port} - {id} \"A IN {name} udp 49 false 512\" {rc} qr,aa,rd 110 0.000{:03}s", self.rng.gen_range(2..60), self.rng.gen_range(50..999));
            (self.files.core, Stream::Stdout)
        };
        self.put(file, t, stream)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte-exact lines from the reference (seed-observability-stack.md §6.3).
    #[test]
    fn access_lines_match_the_reference() {
        // 2025-09-13T10:15:30Z
        let t0 = 1_757_758_530_000_000_000i64;
        let cases: &[(i64, u16, u64, &str, &str, &str, &str)] = &[
            (0, 200, 41_237, "10.1.0.1", "GET", "/api/v1/health",
             "[GIN] 2025/09/13 - 10:15:30 | 200 |      41.237µs |        10.1.0.1 | GET      \"/api/v1/health\""),
            (35, 204, 6_100, "192.168.1.25", "OPTIONS", "/api/v1/backups",
             "[GIN] 2025/09/13 - 10:16:05 | 204 |         6.1µs |    192.168.1.25 | OPTIONS  \"/api/v1/backups\""),
            (70, 500, 1_203_004_551, "192.168.1.25", "DELETE", "/api/v1/backups/core-cl1-daily-backup-20250913020001",
             "[GIN] 2025/09/13 - 10:16:40 | 500 |  1.203004551s |    192.168.1.25 | DELETE   \"/api/v1/backups/core-cl1-daily-backup-20250913020001\""),
            (120, 404, 35_002, "fd00:10:244:1::1a2b", "GET", "/api/v1/backups/a b\"c/details",
             "[GIN] 2025/09/13 - 10:17:30 | 404 |      35.002µs | fd00:10:244:1::1a2b | GET      \"/api/v1/backups/a b\\\"c/details\""),
            (150, 408, 30_004_118_734, "192.168.1.25", "GET", "/x",
             "[GIN] 2025/09/13 - 10:18:00 | 408 | 30.004118734s |    192.168.1.25 | GET      \"/x\""),
            (210, 200, 75_123_000_000, "192.168.1.25", "GET", "/api/v1/backups/x/logs",
             "[GIN] 2025/09/13 - 10:19:00 | 200 |         1m15s |    192.168.1.25 | GET      \"/api/v1/backups/x/logs\""),
            (270, 200, 950, "::1", "GET", "/static/js/main.a5ff1055.js",
             "[GIN] 2025/09/13 - 10:20:00 | 200 |         950ns |             ::1 | GET      \"/static/js/main.a5ff1055.js\""),
        ];
        for &(dt, status, lat, ip, method, path, want) in cases {
            let (mut out, mut tmp) = (String::new(), String::new());
            gin_line(
                &mut out,
                &mut tmp,
                t0 + dt * 1_000_000_000,
                status,
                lat,
                ip,
                method,
                path,
            );
            assert_eq!(out, want);
        }
    }
}
