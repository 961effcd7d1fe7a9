//! The Loki client's auth and transport over loopback: basic auth (password and file), a
//! bearer token file rotated between requests, `X-Scope-OrgID`, extra headers, a forward proxy,
//! and TLS against a CA generated here with `rcgen` (server verification, mutual TLS),
//! through a small TLS-terminating proxy in front of the plain Loki-contract server.

mod common;
mod loki_client_support;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::loki::{Limits, LokiServer};
use loki_client_support::{eventually, lines, loki_cfg, Harness, StreamIn};
use veloki::config::{self, BasicAuth, ExistingFile};

const A: &str = r#"{app="a", namespace="velero"}"#;
const WAIT: Duration = Duration::from_secs(10);

fn one(from: usize, n: usize) -> Vec<StreamIn<'static>> {
    vec![StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", from, n),
    }]
}

fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn write(dir: &Path, name: &str, content: &str) -> ExistingFile {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    ExistingFile(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_with_password_and_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiServer::start();
    let mut cfg = loki_cfg(&loki.url());
    cfg.basic_auth = Some(BasicAuth {
        username: "12345".into(),
        password: Some("s3cret".into()),
        password_file: None,
    });
    let mut h = Harness::start(&cfg);
    h.send(&one(0, 2)).await;
    h.finish().await;
    cfg.basic_auth = Some(BasicAuth {
        username: "12345".into(),
        password: None,
        password_file: Some(write(dir.path(), "pw", "from-file\n")),
    });
    let mut h = Harness::start(&cfg);
    h.send(&one(2, 2)).await;
    h.finish().await;
    let auth: Vec<String> = loki
        .push_requests()
        .iter()
        .map(|r| r.header("authorization").unwrap_or("").to_string())
        .collect();
    assert_eq!(
        auth,
        vec![
            format!("Basic {}", base64("12345:s3cret")),
            format!("Basic {}", base64("12345:from-file")),
        ]
    );
    assert_eq!(loki.entry_count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_file_is_reread_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiServer::start();
    let token = write(dir.path(), "token", "first-token\n");
    let mut cfg = loki_cfg(&loki.url());
    cfg.bearer_token_file = Some(token.clone());
    let mut h = Harness::start(&cfg);
    h.send(&one(0, 2)).await;
    assert!(eventually(WAIT, || h.all_committed()).await);
    // Rotate like a projected service-account token: write a new file, rename over the old.
    let tmp = dir.path().join("token.new");
    std::fs::write(&tmp, "second-token").unwrap();
    std::fs::rename(&tmp, &token.0).unwrap();
    h.send(&one(2, 2)).await;
    h.finish().await;
    let auth: Vec<String> = loki
        .push_requests()
        .iter()
        .map(|r| r.header("authorization").unwrap_or("").to_string())
        .collect();
    assert_eq!(auth, vec!["Bearer first-token", "Bearer second-token"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_and_extra_headers() {
    let loki = LokiServer::start();
    loki.set_limits(Limits {
        require_tenant: true,
        ..Limits::default()
    });
    let mut cfg = loki_cfg(&loki.url());
    cfg.tenant = "team-a".into();
    cfg.headers.insert("X-Cluster".into(), "prod-1".into());
    cfg.headers.insert("X-Gateway-Key".into(), "k".into());
    let mut h = Harness::start(&cfg);
    h.send(&one(0, 3)).await;
    h.finish().await;
    let r = &loki.push_requests()[0];
    assert_eq!(r.tenant(), Some("team-a"));
    assert_eq!(r.header("x-cluster"), Some("prod-1"));
    assert_eq!(r.header("x-gateway-key"), Some("k"));
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    assert!(r.header("user-agent").unwrap().starts_with("veloki/"));
    assert_eq!(loki.entry_count(), 3, "Loki with auth_enabled took it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_through_the_configured_proxy() {
    let loki = LokiServer::start();
    // The Loki host does not resolve; only the proxy (the test server) is reachable.
    let mut cfg = loki_cfg("http://loki.invalid:3100");
    cfg.proxy_url = Some(config::ProxyUrl(loki.url().parse().unwrap()));
    let mut h = Harness::start(&cfg);
    h.send(&one(0, 3)).await;
    h.finish().await;
    let r = &loki.push_requests()[0];
    assert_eq!(r.target, "http://loki.invalid:3100/loki/api/v1/push");
    assert_eq!(loki.entry_count(), 3);
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

struct Pki {
    ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: Vec<u8>,
    ca_der: rustls::pki_types::CertificateDer<'static>,
    client_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "veloki test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let srv_key = KeyPair::generate().unwrap();
    let mut srv =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    srv.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let srv_cert = srv.signed_by(&srv_key, &ca_cert, &ca_key).unwrap();
    let cli_key = KeyPair::generate().unwrap();
    let mut cli = CertificateParams::new(vec!["veloki".to_string()]).unwrap();
    cli.distinguished_name.push(DnType::CommonName, "veloki");
    cli.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cli_cert = cli.signed_by(&cli_key, &ca_cert, &ca_key).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server_chain: vec![srv_cert.der().clone()],
        server_key: srv_key.serialize_der(),
        ca_der: ca_cert.der().clone(),
        client_pem: cli_cert.pem(),
        client_key_pem: cli_key.serialize_pem(),
    }
}

fn server_config(p: &Pki, require_client_cert: bool) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.server_key.clone()));
    let cfg = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(p.ca_der.clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(p.server_chain.clone(), key)
            .unwrap()
    } else {
        builder
            .with_no_client_auth()
            .with_single_cert(p.server_chain.clone(), key)
            .unwrap()
    };
    Arc::new(cfg)
}

/// A TLS-terminating loopback proxy: each TLS connection is relayed in plain text to
/// `backend`. Dropping it stops it.
struct TlsFront {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TlsFront {
    fn start(backend: SocketAddr, cfg: Arc<rustls::ServerConfig>) -> TlsFront {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = thread::spawn(move || {
            let mut conns = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((tcp, _)) => {
                        let (cfg, s) = (cfg.clone(), s.clone());
                        conns.push(thread::spawn(move || {
                            let _ = relay(tcp, backend, cfg, &s);
                        }));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        TlsFront {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn relay(
    mut tcp: TcpStream,
    backend: SocketAddr,
    cfg: Arc<rustls::ServerConfig>,
    stop: &AtomicBool,
) -> io::Result<()> {
    tcp.set_nonblocking(true)?;
    let mut conn = rustls::ServerConnection::new(cfg).map_err(io::Error::other)?;
    let mut be = TcpStream::connect(backend)?;
    be.set_read_timeout(Some(Duration::from_millis(1)))?;
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        match conn.read_tls(&mut tcp) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                idle = false;
                if let Err(e) = conn.process_new_packets() {
                    // Send the alert (e.g. a missing client certificate), then hang up.
                    let _ = conn.write_tls(&mut tcp);
                    return Err(io::Error::other(e));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    idle = false;
                    be.write_all(&buf[..n])?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        match be.read(&mut buf) {
            Ok(0) => {
                conn.send_close_notify();
                let _ = conn.write_tls(&mut tcp);
                return Ok(());
            }
            Ok(n) => {
                idle = false;
                conn.writer().write_all(&buf[..n])?;
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
            }
            Err(e) => return Err(e),
        }
        while conn.wants_write() {
            match conn.write_tls(&mut tcp) {
                Ok(_) => idle = false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(1))
                }
                Err(e) => return Err(e),
            }
        }
        if idle {
            thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki();
    let loki = LokiServer::start();
    let front = TlsFront::start(loki.addr(), server_config(&p, false));
    let url = format!("https://{}", front.addr);

    // Trusting the CA: delivered.
    let mut cfg = loki_cfg(&url);
    cfg.tls.ca_file = Some(write(dir.path(), "ca.pem", &p.ca_pem));
    let mut h = Harness::start(&cfg);
    h.send(&one(0, 3)).await;
    h.finish().await;
    assert_eq!(loki.entry_count(), 3);
    assert!(h.all_committed());

    // Not trusting it: the handshake fails, which is retried (here: given up and counted).
    let mut cfg = loki_cfg(&url);
    cfg.retry.max_retries = Some(1);
    let mut h = Harness::start(&cfg);
    h.send(&one(3, 2)).await;
    h.finish().await;
    assert_eq!(h.requests("transport"), 2);
    assert_eq!(h.dropped("other"), 2);
    assert_eq!(loki.entry_count(), 3);

    // insecure_skip_verify: delivered without the CA.
    let mut cfg = loki_cfg(&url);
    cfg.tls.insecure_skip_verify = true;
    let mut h = Harness::start(&cfg);
    h.send(&one(5, 2)).await;
    h.finish().await;
    assert_eq!(loki.entry_count(), 5);
    drop(front);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki();
    let loki = LokiServer::start();
    let front = TlsFront::start(loki.addr(), server_config(&p, true));
    let url = format!("https://{}", front.addr);
    let ca = write(dir.path(), "ca.pem", &p.ca_pem);

    let mut cfg = loki_cfg(&url);
    cfg.tls.ca_file = Some(ca.clone());
    cfg.tls.cert_file = Some(write(dir.path(), "client.pem", &p.client_pem));
    cfg.tls.key_file = Some(write(dir.path(), "client.key", &p.client_key_pem));
    let mut h = Harness::start(&cfg);
    h.send(&one(0, 3)).await;
    h.finish().await;
    assert_eq!(loki.entry_count(), 3, "with the client certificate");

    let mut cfg = loki_cfg(&url);
    cfg.tls.ca_file = Some(ca);
    cfg.retry.max_retries = Some(1);
    let mut h = Harness::start(&cfg);
    h.send(&one(3, 2)).await;
    h.finish().await;
    assert_eq!(h.requests("transport"), 2, "refused without one");
    assert_eq!(loki.entry_count(), 3);
    drop(front);
}
