//! The pipeline file: typed, documented, validated once at startup.
//!
//! A pipeline file is YAML (see `pipelines/velero.yaml`). Before parsing, `${VAR}` and
//! `${VAR:-default}` are replaced from the environment (`$$` is a literal `$`). Unknown fields, bad
//! types, bad URLs, bad durations and missing files are errors that name the file, the line and
//! the field (`pipelines/x.yaml:12:5: loki.url: …`). Command-line flags and `VELOKI_*` variables
//! override the file afterwards ([`Overrides`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// A configuration error, located in its file where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The pipeline file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted path of the field (`loki.batch.max_bytes`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            if !field.is_empty() && field != "." {
                write!(f, "{field}: ")?;
            }
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A duration written as `250ms`, `1s`, `1m30s`, `5m`, `1h` or a bare number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Dur(Duration::from_secs(n))),
            Raw::S(s) => parse_duration(&s).map(Dur).ok_or_else(|| {
                de::Error::custom(format!(
                    "invalid duration {s:?} (expected e.g. 500ms, 10s, 5m, 1h30m)"
                ))
            }),
        }
    }
}

/// Parses `500ms`, `10s`, `1m30s`, `2h`, `1.5s`, `100us`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

/// An `http://` or `https://` URL, checked when the file is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl(pub reqwest::Url);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_http_url(&s).map_err(de::Error::custom)
    }
}

/// Parses and checks a Loki URL; a URL without a path gets `/loki/api/v1/push`.
pub fn parse_http_url(s: &str) -> Result<HttpUrl, String> {
    let mut u = reqwest::Url::parse(s.trim()).map_err(|e| format!("invalid URL {s:?}: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!(
            "invalid URL {s:?}: scheme must be http or https, not {:?}",
            u.scheme()
        ));
    }
    if u.host_str().is_none_or(|h| h.is_empty()) {
        return Err(format!("invalid URL {s:?}: no host"));
    }
    if u.path() == "/" || u.path().is_empty() {
        u.set_path("/loki/api/v1/push");
    }
    Ok(HttpUrl(u))
}

/// A path to a file that must exist when the pipeline file is read (CA, token, password files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingFile(pub PathBuf);

impl<'de> Deserialize<'de> for ExistingFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let p = PathBuf::from(&s);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(ExistingFile(p)),
            Ok(_) => Err(de::Error::custom(format!("{s:?} is not a regular file"))),
            Err(e) => Err(de::Error::custom(format!("cannot read file {s:?}: {e}"))),
        }
    }
}

/// The whole pipeline file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the logs come from.
    #[serde(default)]
    pub sources: Sources,
    /// Which parser and component apply to which containers; first match wins. Empty means the
    /// built-in routes (see [`default_routes`]).
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Stream-label policy.
    #[serde(default)]
    pub labels: Labels,
    /// Backup/restore outcome tracking.
    #[serde(default)]
    pub outcomes: Outcomes,
    /// Secret redaction before lines leave the node.
    #[serde(default)]
    pub redact: Redact,
    /// Where and how to push.
    #[serde(default)]
    pub loki: Loki,
    /// The metrics/health server.
    #[serde(default)]
    pub metrics: Metrics,
    /// Run-mode switches (also `--dry-run` / `--once`).
    #[serde(default)]
    pub run: Run,
}

/// Where the logs come from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    /// The kubelet's pod-log directory (`/var/log/pods`). Overridden by `--pods-dir`.
    #[serde(default = "default_pods_dir")]
    pub pods_dir: PathBuf,
    /// Namespaces to ship (exact names). Default: `velero`, `velero-manager`.
    #[serde(default = "default_namespaces")]
    pub namespaces: Vec<String>,
    /// Containers to ship (exact names); empty means all containers of those namespaces.
    #[serde(default)]
    pub containers: Vec<String>,
    /// The positions file (delivered offsets per file). Overridden by `--positions`.
    #[serde(default = "default_positions")]
    pub positions: PathBuf,
    /// Where to start a file that has no saved position: `beginning` (default) or `end`.
    #[serde(default)]
    pub start_at: StartAt,
    /// How often to look for new files and new data, as a duration, when change notifications
    /// are off or unavailable (polling).
    #[serde(default = "default_poll")]
    pub poll_interval: Dur,
    /// Use inotify change notifications: new files are picked up and written data read at once,
    /// and an idle reader sleeps. Falls back to polling (logged once) when inotify is unavailable.
    #[serde(default = "default_inotify")]
    pub inotify: bool,
    /// With notifications: the safety net, every file is checked for new data this often even
    /// when nothing was notified, and the directories are listed again every five times that
    /// (file systems that do not notify, lost events).
    #[serde(default = "default_rescan")]
    pub rescan_interval: Dur,
    /// How often to write the positions file, as a duration.
    #[serde(default = "default_sync")]
    pub sync_interval: Dur,
    /// Longest entry shipped; longer entries are truncated (and counted). Loki's default limit.
    #[serde(default = "default_max_line")]
    pub max_line_bytes: usize,
}

/// Where to start reading a file without a saved position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// From the first byte (no line is lost; the default).
    #[default]
    Beginning,
    /// From the current end (only new lines).
    End,
}

pub use crate::model::route::{default_routes, Route, RouteMatch};

/// Stream-label policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// Static labels added to every stream (e.g. `cluster`, `node`). Empty values are left out.
    #[serde(default)]
    pub r#static: BTreeMap<String, String>,
    /// Most distinct values of the `pod` label at once; further pods get `pod="other"`.
    #[serde(default = "default_pod_cap")]
    pub max_pods: usize,
}

/// Backup/restore outcome tracking.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcomes {
    /// Most backups/restores followed at once (least recently seen are forgotten first).
    #[serde(default = "default_tracked")]
    pub max_tracked: usize,
    /// A backup with no line for this long (log time) is forgotten.
    #[serde(default = "default_ttl")]
    pub ttl: Dur,
    /// Most distinct `schedule` metric label values; further schedules count as `other`.
    #[serde(default = "default_schedule_cap")]
    pub max_schedules: usize,
}

/// Secret redaction before lines leave the node.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redact {
    /// Query-parameter names whose values are replaced by `<redacted>` (exact, case-sensitive
    /// names, e.g. `token`). The list replaces the default
    /// ([`crate::enrich::redact::DEFAULT_PARAMS`]); an empty list redacts no query parameters.
    /// URL credentials, `Authorization:` values and AWS access key ids are always redacted.
    #[serde(default = "default_redact_params")]
    pub params: Vec<String>,
}

/// Where and how to push.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loki {
    /// Push URL (`…/loki/api/v1/push`; a bare host gets that path). Overridden by `--loki-url`.
    #[serde(default)]
    pub url: Option<HttpUrl>,
    /// `X-Scope-OrgID` tenant; empty means none.
    #[serde(default)]
    pub tenant: String,
    /// HTTP basic auth.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// A file holding a bearer token (re-read when it changes).
    #[serde(default)]
    pub bearer_token_file: Option<ExistingFile>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// TLS settings for `https://` URLs.
    #[serde(default)]
    pub tls: Tls,
    /// Request timeout.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// Batching.
    #[serde(default)]
    pub batch: Batch,
    /// Retries.
    #[serde(default)]
    pub retry: Retry,
    /// Send structured metadata (Loki ≥ 3). `false` drops it, for Loki 2.x (see also
    /// `structured_metadata_mode`).
    #[serde(default = "yes")]
    pub structured_metadata: bool,
    /// What to do with structured metadata: `send` (Loki ≥ 3), `drop`, or `append_to_line`
    /// (Loki 2.x: ` key=value …` logfmt-style at the end of the line, so it stays searchable).
    /// Absent: `send`, or `drop` when `structured_metadata` is `false`.
    #[serde(default)]
    pub structured_metadata_mode: Option<MetadataMode>,
    /// Request body format: `protobuf` (Loki's native format, always snappy-compressed) or
    /// `json` (Loki's JSON push format, for Loki-compatible gateways that only take JSON).
    #[serde(default)]
    pub encoding: Encoding,
    /// Body compression: `snappy` (the only one for `protobuf`), `gzip` or `none` (for `json`;
    /// gzip is sent as `Content-Encoding: gzip`). Absent: `snappy` for protobuf, `none` for json.
    #[serde(default)]
    pub compression: Option<Compression>,
    /// Requests in flight at once. Streams are spread over this many in-order send loops
    /// (shards): a stream always uses the same one, so its entries reach Loki in order, and a
    /// stream being retried does not hold back the streams of the other shards.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Most encoded bytes held by the client (sent, being retried or queued); reading pauses
    /// when it is reached.
    #[serde(default = "default_max_buffered")]
    pub max_buffered_bytes: usize,
    /// An HTTP(S) proxy for the requests to Loki (`http://proxy:3128`); absent: none, unless
    /// the usual `HTTPS_PROXY`/`HTTP_PROXY` variables say otherwise.
    #[serde(default)]
    pub proxy_url: Option<ProxyUrl>,
}

/// Request body format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// `logproto.PushRequest`, snappy raw block (`application/x-protobuf`).
    #[default]
    Protobuf,
    /// `{"streams":[{"stream":{…},"values":[["<ns>","<line>",{metadata}]]}]}`.
    Json,
}

/// Request body compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Snappy raw block (protobuf only).
    Snappy,
    /// `Content-Encoding: gzip` (json only).
    Gzip,
    /// Uncompressed (json only).
    None,
}

/// What happens to structured metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataMode {
    /// Sent as structured metadata (Loki ≥ 3).
    Send,
    /// Not sent.
    Drop,
    /// Appended to the line as ` key=value …` (logfmt quoting), not sent as metadata.
    AppendToLine,
}

impl Loki {
    /// The metadata mode in force (`structured_metadata_mode`, else from `structured_metadata`).
    pub fn metadata_mode(&self) -> MetadataMode {
        self.structured_metadata_mode
            .unwrap_or(if self.structured_metadata {
                MetadataMode::Send
            } else {
                MetadataMode::Drop
            })
    }

    /// True when batches must carry the metadata (sent, or appended to lines).
    pub fn keeps_metadata(&self) -> bool {
        self.metadata_mode() != MetadataMode::Drop
    }

    /// The compression in force.
    pub fn effective_compression(&self) -> Compression {
        self.compression.unwrap_or(match self.encoding {
            Encoding::Protobuf => Compression::Snappy,
            Encoding::Json => Compression::None,
        })
    }
}

/// An `http://` or `https://` proxy URL (used as given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyUrl(pub reqwest::Url);

impl<'de> Deserialize<'de> for ProxyUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let u = reqwest::Url::parse(s.trim())
            .map_err(|e| de::Error::custom(format!("invalid URL {s:?}: {e}")))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(de::Error::custom(format!(
                "invalid proxy URL {s:?}: scheme must be http or https"
            )));
        }
        if u.host_str().is_none_or(|h| h.is_empty()) {
            return Err(de::Error::custom(format!(
                "invalid proxy URL {s:?}: no host"
            )));
        }
        Ok(ProxyUrl(u))
    }
}

/// HTTP basic auth.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name (often the tenant id).
    pub username: String,
    /// Password, inline (prefer `password_file`).
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password.
    #[serde(default)]
    pub password_file: Option<ExistingFile>,
}

/// TLS settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// A PEM CA bundle to trust in addition to the system roots.
    #[serde(default)]
    pub ca_file: Option<ExistingFile>,
    /// A PEM client certificate (with `key_file`) for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<ExistingFile>,
    /// The PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<ExistingFile>,
    /// Accept any server certificate. Only for testing.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Batching.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Flush a batch when its line bytes reach this size.
    #[serde(default = "default_batch_bytes")]
    pub max_bytes: usize,
    /// Flush a batch when it holds this many entries.
    #[serde(default = "default_batch_entries")]
    pub max_entries: usize,
    /// Flush a batch this long after its first entry.
    #[serde(default = "default_batch_wait")]
    pub max_wait: Dur,
    /// Most streams in one request; a batch with more is sent as several requests.
    #[serde(default = "default_max_streams")]
    pub max_streams: usize,
    /// Most encoded (uncompressed) bytes in one request, so the body stays under Loki's and
    /// gateways' size limits whatever the compression; larger batches are split by streams,
    /// then by entries (each stream's entries stay in time order). A single larger entry is
    /// sent alone.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
}

/// Retries of 429, 5xx and transport errors.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// First backoff.
    #[serde(default = "default_min_backoff")]
    pub min_backoff: Dur,
    /// Longest backoff.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: Dur,
    /// Give up (drop and count) after this many retries; absent means retry until Loki accepts
    /// (reading pauses meanwhile: no data loss).
    #[serde(default)]
    pub max_retries: Option<u32>,
}

/// The metrics/health server.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Listen address for `/metrics`, `/healthz`, `/ready`. Overridden by `--listen`.
    #[serde(default = "default_listen")]
    pub listen: String,
}

/// Run-mode switches.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// Print entries as JSON lines instead of pushing (positions are not saved).
    #[serde(default)]
    pub dry_run: bool,
    /// Read everything present, deliver it, save positions and exit.
    #[serde(default)]
    pub once: bool,
}

fn yes() -> bool {
    true
}
fn default_pods_dir() -> PathBuf {
    PathBuf::from("/var/log/pods")
}
fn default_namespaces() -> Vec<String> {
    vec!["velero".into(), "velero-manager".into()]
}
fn default_positions() -> PathBuf {
    PathBuf::from("/var/lib/veloki/positions.json")
}
fn default_poll() -> Dur {
    Dur(Duration::from_millis(250))
}
fn default_inotify() -> bool {
    true
}
fn default_rescan() -> Dur {
    Dur(Duration::from_secs(2))
}
fn default_sync() -> Dur {
    Dur(Duration::from_secs(5))
}
fn default_max_line() -> usize {
    256 * 1024
}
fn default_pod_cap() -> usize {
    500
}
fn default_tracked() -> usize {
    10_000
}
fn default_ttl() -> Dur {
    Dur(Duration::from_secs(24 * 3600))
}
fn default_schedule_cap() -> usize {
    200
}
fn default_redact_params() -> Vec<String> {
    crate::enrich::redact::DEFAULT_PARAMS
        .iter()
        .map(|s| s.to_string())
        .collect()
}
fn default_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_batch_bytes() -> usize {
    1024 * 1024
}
fn default_batch_entries() -> usize {
    10_000
}
fn default_batch_wait() -> Dur {
    Dur(Duration::from_secs(1))
}
fn default_max_streams() -> usize {
    1000
}
fn default_max_request_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_concurrency() -> usize {
    4
}
fn default_max_buffered() -> usize {
    4 * 1024 * 1024
}
fn default_min_backoff() -> Dur {
    Dur(Duration::from_millis(500))
}
fn default_max_backoff() -> Dur {
    Dur(Duration::from_secs(300))
}
fn default_listen() -> String {
    "0.0.0.0:9080".into()
}

macro_rules! default_from_serde {
    ($($t:ty),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                // Every field has a serde default, so an empty map always deserializes.
                serde_json::from_value(serde_json::json!({}))
                    .unwrap_or_else(|e| unreachable!("defaults of {}: {e}", stringify!($t)))
            }
        }
    )*};
}
default_from_serde!(Sources, Labels, Outcomes, Redact, Loki, Batch, Retry, Metrics);

/// Values from the command line or `VELOKI_*` variables that override the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--pods-dir`.
    pub pods_dir: Option<PathBuf>,
    /// `--loki-url`.
    pub loki_url: Option<String>,
    /// `--positions`.
    pub positions: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--dry-run` (`None`: as the file says).
    pub dry_run: Option<bool>,
    /// `--once` (`None`: as the file says).
    pub once: Option<bool>,
}

impl Config {
    /// Reads, interpolates and validates a pipeline file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            field: None,
            message: format!("cannot read pipeline file: {e}"),
        })?;
        Config::from_str_named(&text, path, |k| std::env::var(k).ok())
    }

    /// Parses pipeline text; `path` is used in error messages and `env` resolves `${VAR}`.
    pub fn from_str_named(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = interpolate(text, &env).map_err(|(line, msg)| ConfigError {
            file: path.to_path_buf(),
            line: Some(line),
            column: None,
            field: None,
            message: msg,
        })?;
        let de = serde_yaml_ng::Deserializer::from_str(&text);
        let cfg: Config = match serde_path_to_error::deserialize(de) {
            Ok(c) => c,
            Err(e) => {
                let field = e.path().to_string();
                let inner = e.into_inner();
                let loc = inner.location();
                let message = strip_location(&inner.to_string());
                return Err(ConfigError {
                    file: path.to_path_buf(),
                    line: loc.as_ref().map(|l| l.line()),
                    column: loc.as_ref().map(|l| l.column()),
                    field: Some(field),
                    message,
                });
            }
        };
        cfg.validate(path, &text)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let err = |field: &str, message: String| {
            let line = locate(text, field);
            ConfigError {
                file: path.to_path_buf(),
                line,
                column: None,
                field: Some(field.to_string()),
                message,
            }
        };
        if self.sources.namespaces.is_empty() {
            return Err(err(
                "sources.namespaces",
                "at least one namespace is required".into(),
            ));
        }
        if self.sources.max_line_bytes < 1024 {
            return Err(err(
                "sources.max_line_bytes",
                "must be at least 1024".into(),
            ));
        }
        if self.sources.poll_interval.0.is_zero() || self.sources.rescan_interval.0.is_zero() {
            return Err(err(
                "sources.poll_interval",
                "poll_interval and rescan_interval must be greater than 0".into(),
            ));
        }
        if self.loki.batch.max_bytes == 0 || self.loki.batch.max_entries == 0 {
            return Err(err("loki.batch", "sizes must be greater than 0".into()));
        }
        if self.loki.batch.max_streams == 0 || self.loki.batch.max_request_bytes < 1024 {
            return Err(err(
                "loki.batch",
                "max_streams must be greater than 0 and max_request_bytes at least 1024".into(),
            ));
        }
        if self.loki.concurrency == 0 || self.loki.concurrency > 64 {
            return Err(err("loki.concurrency", "must be between 1 and 64".into()));
        }
        if self.loki.max_buffered_bytes < 64 * 1024
            || self.loki.max_buffered_bytes > u32::MAX as usize
        {
            return Err(err(
                "loki.max_buffered_bytes",
                "must be between 65536 and 4294967295".into(),
            ));
        }
        match (self.loki.encoding, self.loki.effective_compression()) {
            (Encoding::Protobuf, Compression::Snappy)
            | (Encoding::Json, Compression::Gzip | Compression::None) => {}
            (e, c) => {
                return Err(err(
                    "loki.compression",
                    format!("{c:?} does not go with encoding {e:?}: protobuf is always snappy, json is gzip or none").to_lowercase(),
                ))
            }
        }
        if !self.loki.structured_metadata
            && self.loki.structured_metadata_mode == Some(MetadataMode::Send)
        {
            return Err(err(
                "loki.structured_metadata_mode",
                "send contradicts structured_metadata: false".into(),
            ));
        }
        if self.loki.retry.min_backoff.0 > self.loki.retry.max_backoff.0 {
            return Err(err(
                "loki.retry.min_backoff",
                "must not exceed max_backoff".into(),
            ));
        }
        for name in self.labels.r#static.keys() {
            if !is_label_name(name) {
                return Err(err(
                    &format!("labels.static.{name}"),
                    format!("{name:?} is not a valid Loki label name ([a-zA-Z_][a-zA-Z0-9_]*)"),
                ));
            }
            if crate::model::labels::STREAM_LABELS.contains(&name.as_str()) {
                return Err(err(
                    &format!("labels.static.{name}"),
                    format!("{name:?} is set by veloki itself and cannot be a static label"),
                ));
            }
        }
        for (i, p) in self.redact.params.iter().enumerate() {
            if p.is_empty()
                || p.bytes()
                    .any(|b| matches!(b, b'=' | b'&' | b'?' | b'#') || b.is_ascii_whitespace())
            {
                return Err(err(
                    &format!("redact.params[{i}]"),
                    format!("{p:?} is not a query-parameter name (empty, or contains =, &, ?, # or whitespace)"),
                ));
            }
        }
        if let Some(b) = &self.loki.basic_auth {
            if b.password.is_some() == b.password_file.is_some() {
                return Err(err(
                    "loki.basic_auth",
                    "give exactly one of password and password_file".into(),
                ));
            }
        }
        if self.loki.tls.cert_file.is_some() != self.loki.tls.key_file.is_some() {
            return Err(err(
                "loki.tls.cert_file",
                "cert_file and key_file go together".into(),
            ));
        }
        if self.metrics.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(err(
                "metrics.listen",
                format!(
                    "{:?} is not an address like 0.0.0.0:9080",
                    self.metrics.listen
                ),
            ));
        }
        Ok(())
    }

    /// Applies command-line/environment overrides and checks the result.
    pub fn apply(&mut self, o: &Overrides) -> Result<(), String> {
        if let Some(p) = &o.pods_dir {
            self.sources.pods_dir = p.clone();
        }
        if let Some(u) = &o.loki_url {
            self.loki.url = Some(parse_http_url(u).map_err(|e| format!("--loki-url: {e}"))?);
        }
        if let Some(p) = &o.positions {
            self.sources.positions = p.clone();
        }
        if let Some(l) = &o.listen {
            l.parse::<std::net::SocketAddr>()
                .map_err(|_| format!("--listen: {l:?} is not an address like 0.0.0.0:9080"))?;
            self.metrics.listen = l.clone();
        }
        if let Some(d) = o.dry_run {
            self.run.dry_run = d;
        }
        if let Some(once) = o.once {
            self.run.once = once;
        }
        Ok(())
    }

    /// The routes in force (the file's, or the built-in ones).
    pub fn effective_routes(&self) -> Vec<Route> {
        if self.routes.is_empty() {
            default_routes()
        } else {
            self.routes.clone()
        }
    }
}

/// True for a valid Loki/Prometheus label name.
pub fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// serde_yaml appends " at line L column C"; we print the location ourselves.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Finds the line of a dotted field by walking the YAML keys' indentation (best effort).
fn locate(text: &str, field: &str) -> Option<usize> {
    let mut parts = field.split('.').peekable();
    let mut want = parts.next()?;
    let mut min_indent = 0usize;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with('#') || indent < min_indent {
            continue;
        }
        let key = trimmed.trim_start_matches("- ");
        if key.starts_with(want) && key[want.len()..].trim_start().starts_with(':') {
            match parts.next() {
                Some(next) => {
                    want = next;
                    min_indent = indent + 1;
                }
                None => return Some(i + 1),
            }
        }
    }
    None
}

/// Replaces `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. Errors carry the line.
pub fn interpolate(
    text: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(a) = after.strip_prefix('$') {
                out.push('$');
                rest = a;
            } else if let Some(body) = after.strip_prefix('{') {
                let end = body
                    .find('}')
                    .ok_or((n + 1, "unterminated ${ in interpolation".to_string()))?;
                let expr = &body[..end];
                let (name, default) = match expr.find(":-") {
                    Some(j) => (&expr[..j], Some(&expr[j + 2..])),
                    None => (expr, None),
                };
                if !is_label_name(name) {
                    return Err((n + 1, format!("invalid variable name {name:?} in ${{…}}")));
                }
                let val = match (env(name).filter(|v| !v.is_empty()), default) {
                    (Some(v), _) => v,
                    (None, Some(d)) => d.to_string(),
                    (None, None) => {
                        return Err((
                            n + 1,
                            format!(
                                "environment variable {name} is not set (write ${{{name}:-default}} to allow that)"
                            ),
                        ))
                    }
                };
                out.push_str(&val);
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_str_named(text, Path::new("p.yaml"), |k| match k {
            "HOST" => Some("loki:3100".into()),
            _ => None,
        })
    }

    #[test]
    fn defaults_and_interpolation() {
        let c = load(
            "# ${NOT_SET} in a comment\nloki:\n  url: http://${HOST}\n  tenant: ${T:-team-a}\n",
        )
        .unwrap();
        assert_eq!(
            c.loki.url.unwrap().0.as_str(),
            "http://loki:3100/loki/api/v1/push"
        );
        assert_eq!(c.loki.tenant, "team-a");
        assert_eq!(c.sources.namespaces, vec!["velero", "velero-manager"]);
        assert_eq!(c.loki.batch.max_wait.0, Duration::from_secs(1));
    }

    #[test]
    fn unknown_field_names_file_line_field() {
        let e = load("sources:\n  pods_dir: /x\n  namespacez: [a]\n").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("p.yaml:3:"), "{s}");
        assert!(s.contains("namespacez"), "{s}");
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn bad_type_and_bad_url_and_bad_duration() {
        let e = load("loki:\n  batch:\n    max_bytes: lots\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.field.as_deref(), Some("loki.batch.max_bytes"));
        let e = load("loki:\n  url: ftp://x\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(e.field.as_deref(), Some("loki.url"));
        assert!(e.message.contains("scheme"), "{}", e.message);
        let e = load("loki:\n  timeout: soon\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("loki.timeout"));
        assert!(e.message.contains("invalid duration"));
    }

    #[test]
    fn missing_file_and_unset_variable() {
        let e = load("loki:\n  tls:\n    ca_file: /nonexistent/ca.pem\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.field.as_deref(), Some("loki.tls.ca_file"));
        let e = load("a: 1\nloki:\n  url: ${NOPE}\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("NOPE"));
    }

    #[test]
    fn validation_errors_are_located() {
        let e = load("labels:\n  static:\n    severity: x\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let e = load("metrics:\n  listen: nowhere\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn redact_params() {
        let c = load("loki:\n  url: http://x\n").unwrap();
        assert_eq!(c.redact.params, default_redact_params());
        assert!(c.redact.params.iter().any(|p| p == "token"));
        let c = load("redact:\n  params: [sig, X-Amz-Signature]\n").unwrap();
        assert_eq!(c.redact.params, vec!["sig", "X-Amz-Signature"]);
        let c = load("redact:\n  params: []\n").unwrap();
        assert!(c.redact.params.is_empty());
        let e = load("redact:\n  param: [sig]\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("param"), "{e}");
        let e = load("redact:\n  params: sig\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("redact.params"), "{e}");
        // The shipped pipeline spells out the default list.
        let c = load(include_str!("../pipelines/velero.yaml")).unwrap();
        assert_eq!(c.redact.params, default_redact_params());
        let e = load("redact:\n  params:\n    - ok\n    - \"a=b\"\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("redact.params[1]"), "{e}");
    }

    #[test]
    fn loki_client_keys() {
        let c = load("loki:\n  url: http://x\n").unwrap();
        assert_eq!(c.loki.encoding, Encoding::Protobuf);
        assert_eq!(c.loki.effective_compression(), Compression::Snappy);
        assert_eq!(c.loki.metadata_mode(), MetadataMode::Send);
        assert_eq!(c.loki.concurrency, 4);
        assert_eq!(c.loki.batch.max_request_bytes, 4 << 20);
        let c = load("loki:\n  structured_metadata: false\n").unwrap();
        assert_eq!(c.loki.metadata_mode(), MetadataMode::Drop);
        assert!(!c.loki.keeps_metadata());
        let c = load(
            "loki:\n  encoding: json\n  compression: gzip\n  structured_metadata_mode: append_to_line\n  concurrency: 8\n  proxy_url: http://proxy:3128\n  max_buffered_bytes: 1048576\n  batch:\n    max_streams: 50\n    max_request_bytes: 65536\n",
        )
        .unwrap();
        assert_eq!(c.loki.encoding, Encoding::Json);
        assert_eq!(c.loki.effective_compression(), Compression::Gzip);
        assert!(c.loki.keeps_metadata());
        assert_eq!(c.loki.proxy_url.unwrap().0.as_str(), "http://proxy:3128/");
        assert_eq!(c.loki.batch.max_streams, 50);
        let e = load("loki:\n  compression: gzip\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("loki.compression"), "{e}");
        assert_eq!(e.line, Some(2), "{e}");
        let e = load("loki:\n  encoding: json\n  compression: snappy\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("loki.compression"), "{e}");
        let e = load("loki:\n  concurrency: 0\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("loki.concurrency"), "{e}");
        let e = load("loki:\n  structured_metadata: false\n  structured_metadata_mode: send\n")
            .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let e = load("loki:\n  encoding: xml\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("loki.encoding"), "{e}");
        let e = load("loki:\n  proxy_url: socks5://p:1080\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("loki.proxy_url"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("5 parsecs"), None);
    }
}
