//! The Loki client's request formats over loopback: Loki's JSON push format (plain and gzip),
//! and structured metadata appended to the line for Loki 2.x.

mod common;
mod loki_client_support;

use common::loki::LokiServer;
use loki_client_support::{lines, loki_cfg, Harness, StreamIn};
use veloki::config::{Compression, Encoding, MetadataMode};

const A: &str = r#"{app="a\"q", namespace="velero"}"#;

async fn push(cfg: &veloki::config::Loki) {
    let mut h = Harness::start(cfg);
    let mut l = lines("a", 0, 3);
    l[1].1 = "tab\there \"quoted\" \\ ünï €".to_string();
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: l,
    }])
    .await;
    h.finish().await;
    assert!(h.all_committed());
    assert_eq!(h.dropped_total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_encoding_plain_and_gzip() {
    for (compression, encoding_header) in [(None, None), (Some(Compression::Gzip), Some("gzip"))] {
        let loki = LokiServer::start();
        let mut cfg = loki_cfg(&loki.url());
        cfg.encoding = Encoding::Json;
        cfg.compression = compression;
        push(&cfg).await;
        let r = &loki.push_requests()[0];
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("content-encoding"), encoding_header);
        let e = loki.accepted_entries();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].labels.get("app").map(String::as_str), Some("a\"q"));
        assert_eq!(e[1].line, "tab\there \"quoted\" \\ ünï €");
        assert_eq!(e[1].ts_nanos, 1_775_786_400_000_001_000);
        assert_eq!(
            e[0].metadata,
            vec![("stream".to_string(), "stdout".to_string())],
            "structured metadata as the third value element"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_appended_to_the_line_for_loki_2() {
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        let loki = LokiServer::start();
        let mut cfg = loki_cfg(&loki.url());
        cfg.encoding = encoding;
        cfg.structured_metadata_mode = Some(MetadataMode::AppendToLine);
        push(&cfg).await;
        let e = loki.accepted_entries();
        assert_eq!(e[0].line, "a-00000 stream=stdout", "{encoding:?}");
        assert!(e.iter().all(|e| e.metadata.is_empty()), "{encoding:?}");
    }
}
