//! Redaction of secrets before a line leaves the node.
//!
//! Replaces the values of sensitive query parameters (`token=…` → `token=<redacted>`), URL
//! credentials (`https://user:pass@host` → `https://<redacted>@host`), `Authorization:` header
//! values and AWS access key ids. Keys stay, so dashboard substring filters (`|= "token"`) still
//! match. Lines without any of the trigger bytes are not copied.

use memchr::memmem;

/// Sensitive query parameter names redacted by default.
pub const DEFAULT_PARAMS: &[&str] = &[
    "token",
    "code",
    "state",
    "id_token",
    "access_token",
    "refresh_token",
    "password",
    "secret",
    "session_state",
    "client_secret",
];

const MARK: &[u8] = b"<redacted>";

/// Counts of what one call redacted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Redactions {
    /// Query parameter values.
    pub query_param: u32,
    /// `user:pass@` in URLs.
    pub url_credentials: u32,
    /// `Authorization:` values.
    pub authorization: u32,
    /// AWS access key ids.
    pub aws_key: u32,
}

impl Redactions {
    /// True when nothing was redacted.
    pub fn is_empty(&self) -> bool {
        *self == Redactions::default()
    }
}

/// The redactor; build once, use per line.
pub struct Redactor {
    params: Vec<Vec<u8>>,
    scheme: memmem::Finder<'static>,
    auth: memmem::Finder<'static>,
    auth_lower: memmem::Finder<'static>,
    akia: memmem::Finder<'static>,
}

impl Redactor {
    /// A redactor for the given parameter names.
    pub fn new(params: &[String]) -> Redactor {
        Redactor {
            params: params.iter().map(|p| p.as_bytes().to_vec()).collect(),
            scheme: memmem::Finder::new(b"://"),
            auth: memmem::Finder::new(b"Authorization:"),
            auth_lower: memmem::Finder::new(b"authorization:"),
            akia: memmem::Finder::new(b"AKIA"),
        }
    }

    /// The default redactor.
    pub fn default_params() -> Redactor {
        Redactor::new(
            &DEFAULT_PARAMS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
    }

    /// Redacts `line` into `out` and returns what was redacted; when nothing was, `out` is left
    /// empty and the caller ships `line` itself.
    pub fn redact(&self, line: &[u8], out: &mut Vec<u8>) -> Redactions {
        out.clear();
        let mut r = Redactions::default();
        let has_eq = memchr::memchr(b'=', line).is_some();
        let has_scheme = self.scheme.find(line).is_some();
        let has_auth = self.auth.find(line).is_some() || self.auth_lower.find(line).is_some();
        let has_akia = self.akia.find(line).is_some();
        if !(has_eq || has_scheme || has_auth || has_akia) {
            return r;
        }
        let mut spans: Vec<(usize, usize, u8)> = Vec::new();
        if has_eq {
            self.query_spans(line, &mut spans);
        }
        if has_scheme {
            for i in self.scheme.find_iter(line) {
                let start = i + 3;
                let end = line[start..]
                    .iter()
                    .position(|&b| b == b'/' || b == b' ' || b == b'"' || b == b'\\' || b == b'?')
                    .map_or(line.len(), |p| start + p);
                if let Some(at) = line[start..end].iter().rposition(|&b| b == b'@') {
                    if line[start..start + at].contains(&b':') {
                        spans.push((start, start + at, 1));
                    }
                }
            }
        }
        if has_auth {
            for f in [&self.auth, &self.auth_lower] {
                for i in f.find_iter(line) {
                    let mut s = i + b"Authorization:".len();
                    while line.get(s) == Some(&b' ') {
                        s += 1;
                    }
                    // Keep the scheme word (Bearer/Basic), redact the credential.
                    let word_end = line[s..]
                        .iter()
                        .position(|&b| b == b' ')
                        .map_or(line.len(), |p| s + p);
                    let cred_start = if matches!(
                        &line[s..word_end],
                        b"Bearer" | b"Basic" | b"bearer" | b"basic"
                    ) {
                        word_end + 1
                    } else {
                        s
                    };
                    let end = line
                        .get(cred_start..)
                        .and_then(|r| {
                            r.iter().position(|&b| {
                                b == b' ' || b == b'"' || b == b'\\' || b == b',' || b == b'\n'
                            })
                        })
                        .map_or(line.len(), |p| cred_start + p);
                    if cred_start < end && end <= line.len() {
                        spans.push((cred_start, end, 2));
                    }
                }
            }
        }
        if has_akia {
            for i in self.akia.find_iter(line) {
                let key = line.get(i..i + 20);
                let boundary_before = i == 0 || !line[i - 1].is_ascii_alphanumeric();
                let boundary_after = line.get(i + 20).is_none_or(|b| !b.is_ascii_alphanumeric());
                if let Some(k) = key {
                    if boundary_before
                        && boundary_after
                        && k[4..]
                            .iter()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                    {
                        spans.push((i, i + 20, 3));
                    }
                }
            }
        }
        if spans.is_empty() {
            return r;
        }
        spans.sort_unstable();
        let mut pos = 0;
        for (s, e, kind) in spans {
            if s < pos {
                continue; // overlapping with a previous redaction
            }
            out.extend_from_slice(&line[pos..s]);
            out.extend_from_slice(MARK);
            pos = e;
            match kind {
                0 => r.query_param += 1,
                1 => r.url_credentials += 1,
                2 => r.authorization += 1,
                _ => r.aws_key += 1,
            }
        }
        out.extend_from_slice(&line[pos..]);
        r
    }

    /// Finds `name=value` where `name` is sensitive and is preceded by `?` or `&` (a query).
    fn query_spans(&self, line: &[u8], spans: &mut Vec<(usize, usize, u8)>) {
        for i in memchr::memchr2_iter(b'?', b'&', line) {
            let rest = &line[i + 1..];
            for p in &self.params {
                if rest.len() > p.len() && rest.starts_with(p) && rest[p.len()] == b'=' {
                    let vs = i + 1 + p.len() + 1;
                    let ve = line[vs..]
                        .iter()
                        .position(|&c| matches!(c, b'&' | b'"' | b' ' | b'#' | b'\\'))
                        .map_or(line.len(), |q| vs + q);
                    if ve > vs {
                        spans.push((vs, ve, 0));
                    }
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(line: &str) -> (String, Redactions) {
        let r = Redactor::default_params();
        let mut out = Vec::new();
        let n = r.redact(line.as_bytes(), &mut out);
        if n.is_empty() {
            (line.to_string(), n)
        } else {
            (String::from_utf8(out).unwrap(), n)
        }
    }

    #[test]
    fn query_values_keep_keys() {
        let (s, n) = red(
            r#"[GIN] 2025/09/13 - 10:17:00 | 302 |  312.845119ms |    192.168.1.25 | GET      "/api/v1/auth/oidc/callback?state=Zm9vYmFy&code=2b1c7e0a-3f2d-4c55.9e1f""#,
        );
        assert!(
            s.ends_with(r#""/api/v1/auth/oidc/callback?state=<redacted>&code=<redacted>""#),
            "{s}"
        );
        assert_eq!(n.query_param, 2);
        let (s, _) =
            red(r#"GET      "/?token=eyJhbGciOi.x.sig&auth=oidc&username=alice&role=admin""#);
        assert_eq!(
            s,
            r#"GET      "/?token=<redacted>&auth=oidc&username=alice&role=admin""#
        );
    }

    #[test]
    fn urls_auth_and_keys() {
        let (s, n) = red("failed to reach https://admin:hunter2@minio.local:9000/bucket");
        assert_eq!(
            s,
            "failed to reach https://<redacted>@minio.local:9000/bucket"
        );
        assert_eq!(n.url_credentials, 1);
        let (s, _) = red("Authorization: Bearer abc.def.ghi sent");
        assert_eq!(s, "Authorization: Bearer <redacted> sent");
        let (s, n) = red("key AKIAIOSFODNN7EXAMPLE used");
        assert_eq!(s, "key <redacted> used");
        assert_eq!(n.aws_key, 1);
    }

    #[test]
    fn untouched_lines_are_not_copied() {
        let (s, n) = red(
            r#"time="2026-04-10T02:00:00Z" level=info msg="Setting up backup log" backup=velero/daily-20260410020000"#,
        );
        assert!(n.is_empty());
        assert!(s.contains("daily-20260410020000"));
        let (_, n) = red("https://minio.local:9000/bucket and ?codex=1 &stateful=2");
        assert!(n.is_empty());
    }
}
