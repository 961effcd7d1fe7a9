//! Self-tests of the Loki-contract test server (`tests/common/loki.rs`): real HTTP over
//! loopback with reqwest, so the other integration tests can trust what it says.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::loki::{
    encode_push, parse_labels, rfc3339_seconds, text, Answer, EntryAdapter, Limits, LokiServer,
    Reply, StreamAdapter,
};

const PROTOBUF: &str = "application/x-protobuf";
/// 2025-08-01T16:43:38.854444845Z
const TS: i128 = 1_754_066_618_854_444_845;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

async fn push_proto(
    client: &reqwest::Client,
    server: &LokiServer,
    body: Vec<u8>,
) -> reqwest::Result<(u16, String)> {
    let resp = client
        .post(server.push_url())
        .header("Content-Type", PROTOBUF)
        .body(body)
        .send()
        .await?;
    let code = resp.status().as_u16();
    Ok((code, resp.text().await?))
}

fn velero_stream(entries: Vec<EntryAdapter>) -> StreamAdapter {
    StreamAdapter::new(r#"{namespace="velero", app="velero"}"#, entries)
}

#[tokio::test]
async fn valid_push_is_204_and_decoded_with_metadata() {
    let server = LokiServer::start();
    let body = encode_push([velero_stream(vec![
        EntryAdapter::new(TS, "level=info msg=\"backup completed\"")
            .with_metadata(&[("backup", "daily-1"), ("stream", "stdout")]),
        EntryAdapter::new(TS + 1, "second line"),
    ])]);
    let resp = client()
        .post(server.push_url())
        .header("Content-Type", PROTOBUF)
        .header("X-Scope-OrgID", "tenant-a")
        .header("Authorization", "Bearer s3cret")
        .header("User-Agent", "veloki-test/0.1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);

    assert_eq!(server.entry_count(), 2);
    let entries = server.accepted_entries();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].labels["namespace"], "velero");
    assert_eq!(entries[0].labels["app"], "velero");
    assert_eq!(
        entries[0].raw_labels,
        r#"{namespace="velero", app="velero"}"#
    );
    assert_eq!(entries[0].ts_nanos, TS);
    assert_eq!(entries[0].line, "level=info msg=\"backup completed\"");
    assert_eq!(
        entries[0].metadata,
        vec![
            ("backup".to_string(), "daily-1".to_string()),
            ("stream".to_string(), "stdout".to_string())
        ]
    );
    assert_eq!(entries[1].ts_nanos, TS + 1);
    assert!(entries[1].metadata.is_empty());

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert!(r.is_push());
    assert_eq!(r.tenant(), Some("tenant-a"));
    assert_eq!(r.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(r.header("User-Agent"), Some("veloki-test/0.1"));
    assert_eq!(
        r.answer,
        Answer::Status {
            code: 204,
            body: String::new()
        }
    );
    assert_eq!(r.accepted, 2);
    assert_eq!(r.entry_count, 2);
    assert!(r.decoded.is_ok());
    assert_eq!(server.accepted_streams().len(), 1);
    assert_eq!(server.duplicate_count(), 0);
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let server = LokiServer::start();
    let c = client();
    for i in 0..3 {
        let body = encode_push([velero_stream(vec![EntryAdapter::new(TS + i, "x")])]);
        assert_eq!(push_proto(&c, &server, body).await.unwrap().0, 204);
    }
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert!(
        reqs.iter().all(|r| r.conn_id == reqs[0].conn_id),
        "{reqs:?}"
    );
}

#[tokio::test]
async fn missing_content_type_is_400() {
    let server = LokiServer::start();
    let body = encode_push([velero_stream(vec![EntryAdapter::new(TS, "x")])]);
    let resp = client()
        .post(server.push_url())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(
        resp.text().await.unwrap(),
        format!("{}\n", text::NO_MEDIA_TYPE)
    );
    assert_eq!(server.entry_count(), 0);
    assert_eq!(
        server.decode_errors(),
        vec![text::NO_MEDIA_TYPE.to_string()]
    );
}

#[tokio::test]
async fn framed_snappy_is_400() {
    use prost::Message as _;
    let server = LokiServer::start();
    let req = common::loki::PushRequest {
        streams: vec![velero_stream(vec![EntryAdapter::new(TS, "x")])],
        format: String::new(),
    };
    let mut framed = snap::write::FrameEncoder::new(Vec::new());
    framed.write_all(&req.encode_to_vec()).unwrap();
    let body = framed.into_inner().unwrap();
    let (code, _) = push_proto(&client(), &server, body).await.unwrap();
    assert_eq!(code, 400);
    assert_eq!(server.entry_count(), 0);
    assert_eq!(server.decode_errors().len(), 1);
}

#[tokio::test]
async fn unsupported_content_encoding_is_400_and_gzip_works() {
    let server = LokiServer::start();
    let c = client();
    let body = encode_push([velero_stream(vec![EntryAdapter::new(TS, "x")])]);
    let resp = c
        .post(server.push_url())
        .header("Content-Type", PROTOBUF)
        .header("Content-Encoding", "br")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(
        resp.text().await.unwrap(),
        "Content-Encoding \"br\" not supported\n"
    );

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).unwrap();
    let resp = c
        .post(server.push_url())
        .header("Content-Type", PROTOBUF)
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(server.entry_count(), 1);
}

#[tokio::test]
async fn bad_labels_is_400_with_loki_text() {
    let server = LokiServer::start();
    let body = encode_push([StreamAdapter::new(
        r#"{ab""#,
        vec![EntryAdapter::new(TS, "x")],
    )]);
    let (code, text_body) = push_proto(&client(), &server, body).await.unwrap();
    assert_eq!(code, 400);
    assert_eq!(
        text_body,
        "Error parsing labels '{ab\"' with error: 1:4: parse error: unterminated quoted string\n"
    );
    assert_eq!(server.entry_count(), 0);
}

#[tokio::test]
async fn bad_labels_drop_only_their_stream() {
    let server = LokiServer::start();
    let body = encode_push([
        StreamAdapter::new("{app-name=\"x\"}", vec![EntryAdapter::new(TS, "dropped")]),
        velero_stream(vec![EntryAdapter::new(TS, "kept")]),
    ]);
    let (code, text_body) = push_proto(&client(), &server, body).await.unwrap();
    assert_eq!(code, 400);
    assert_eq!(
        text_body,
        "Error parsing labels '{app-name=\"x\"}' with error: 1:5: parse error: unexpected character inside braces: '-'\n"
    );
    assert_eq!(server.accepted_lines(), vec!["kept".to_string()]);
}

#[tokio::test]
async fn empty_labels_is_400() {
    let server = LokiServer::start();
    let c = client();
    for labels in ["{}", ""] {
        let body = encode_push([StreamAdapter::new(labels, vec![EntryAdapter::new(TS, "x")])]);
        let (code, text_body) = push_proto(&c, &server, body).await.unwrap();
        assert_eq!(code, 400, "labels {labels:?}");
        if labels == "{}" {
            assert_eq!(text_body, format!("{}\n", text::MISSING_LABELS));
        }
    }
    assert_eq!(server.entry_count(), 0);
}

#[tokio::test]
async fn push_without_streams_is_422() {
    let server = LokiServer::start();
    let (code, text_body) = push_proto(&client(), &server, encode_push([]))
        .await
        .unwrap();
    assert_eq!(code, 422);
    assert_eq!(text_body, format!("{}\n", text::NO_VALID_STREAMS));
}

#[tokio::test]
async fn invalid_utf8_line_fails_loudly() {
    let server = LokiServer::start();
    let mut e = EntryAdapter::new(TS, "");
    e.line = vec![b'o', b'k', 0xff];
    let (code, _) = push_proto(&client(), &server, encode_push([velero_stream(vec![e])]))
        .await
        .unwrap();
    assert_eq!(code, 400);
    let errs = server.decode_errors();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("not valid UTF-8"), "{errs:?}");
}

#[tokio::test]
async fn json_push_works() {
    let server = LokiServer::start();
    let body = serde_json::json!({
        "streams": [{
            "stream": {"namespace": "velero", "app": "velero"},
            "values": [
                [TS.to_string(), "first", {"backup": "daily-1"}],
                [(TS + 5).to_string(), "second"]
            ]
        }]
    });
    let resp = client()
        .post(server.push_url())
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let entries = server.accepted_entries();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0].raw_labels,
        r#"{app="velero", namespace="velero"}"#
    );
    assert_eq!(entries[0].ts_nanos, TS);
    assert_eq!(entries[0].line, "first");
    assert_eq!(
        entries[0].metadata,
        vec![("backup".to_string(), "daily-1".to_string())]
    );
    assert_eq!(entries[1].ts_nanos, TS + 5);
}

#[tokio::test]
async fn scripted_429_with_retry_after_then_204() {
    let server = LokiServer::start();
    server.push_replies([Reply::rate_limited(Some(2)), Reply::status(204)]);
    let c = client();
    let body = encode_push([velero_stream(vec![EntryAdapter::new(TS, "x")])]);

    let resp = c
        .post(server.push_url())
        .header("Content-Type", PROTOBUF)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert!(resp
        .text()
        .await
        .unwrap()
        .starts_with("Ingestion rate limit exceeded for user fake"));
    assert_eq!(server.entry_count(), 0);

    assert_eq!(push_proto(&c, &server, body.clone()).await.unwrap().0, 204);
    assert_eq!(server.entry_count(), 1);
    // Queue empty: back to the default (Loki → 204).
    assert_eq!(push_proto(&c, &server, body).await.unwrap().0, 204);

    let codes: Vec<_> = server.requests().iter().map(|r| r.answer.code()).collect();
    assert_eq!(codes, vec![Some(429), Some(204), Some(204)]);
    assert_eq!(server.entry_count(), 2);
    assert_eq!(server.duplicate_count(), 1);
}

#[tokio::test]
async fn scripted_statuses_and_260_are_not_ingested() {
    let server = LokiServer::start();
    server.push_replies([
        Reply::ingestion_blocked(),
        Reply::status(500),
        Reply::status(502),
        Reply::status(503),
        Reply::error(413, "request too large"),
        Reply::no_org_id(),
    ]);
    let c = client();
    let body = encode_push([velero_stream(vec![EntryAdapter::new(TS, "x")])]);
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(push_proto(&c, &server, body.clone()).await.unwrap());
    }
    assert_eq!(codes[0].0, 260);
    assert_eq!(
        codes[0].1,
        "ingestion blocked for user fake until '2030-01-01T00:00:00Z' with status code '260'\n"
    );
    assert_eq!(
        codes.iter().map(|c| c.0).collect::<Vec<_>>(),
        vec![260, 500, 502, 503, 413, 401]
    );
    assert_eq!(codes[5].1, "no org id\n");
    assert_eq!(server.entry_count(), 0);
    assert_eq!(server.request_count(), 6);
}

// Multi-threaded: the blocking `wait_for_requests` below must not starve the client's
// connection task (it is what closes the socket after the timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reply_exceeds_client_timeout() {
    let server = LokiServer::start();
    server.push_replies([Reply::slow(Duration::from_millis(800), Reply::status(204))]);
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let body = encode_push([velero_stream(vec![EntryAdapter::new(TS, "x")])]);
    let started = Instant::now();
    let err = push_proto(&c, &server, body).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(700));
    // The client hung up during the delay: nothing is ingested.
    assert!(server.wait_for_requests(1, Duration::from_secs(5)));
    assert_eq!(server.requests()[0].answer, Answer::ClientGone);
    assert_eq!(server.entry_count(), 0);
}

#[tokio::test]
async fn reset_mid_body_is_a_transport_error() {
    let server = LokiServer::start();
    server.push_replies([Reply::Reset]);
    // ~2 MiB of incompressible lines, so the body is still being sent when the RST comes.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let lines: Vec<EntryAdapter> = (0..64)
        .map(|i| {
            let line: String = (0..32 * 1024)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    char::from(b'!' + (seed % 90) as u8)
                })
                .collect();
            EntryAdapter::new(TS + i, line)
        })
        .collect();
    let body = encode_push([velero_stream(lines)]);
    let err = push_proto(&client(), &server, body.clone())
        .await
        .unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");
    assert_eq!(server.requests()[0].answer, Answer::Reset);
    assert_eq!(server.entry_count(), 0);
    // The next push, on a new connection, works.
    assert_eq!(push_proto(&client(), &server, body).await.unwrap().0, 204);
    assert_eq!(server.entry_count(), 64);
}

#[tokio::test]
async fn close_and_reset_mid_response_are_transport_errors() {
    let server = LokiServer::start();
    server.push_replies([Reply::Close, Reply::ResetMidResponse]);
    let body = encode_push([velero_stream(vec![EntryAdapter::new(TS, "x")])]);
    for _ in 0..2 {
        let err = push_proto(&client(), &server, body.clone())
            .await
            .unwrap_err();
        assert!(err.status().is_none(), "{err:?}");
    }
    let answers: Vec<_> = server.requests().into_iter().map(|r| r.answer).collect();
    assert_eq!(answers, vec![Answer::Close, Answer::ResetMidResponse]);
    assert_eq!(server.entry_count(), 0);
}

#[tokio::test]
async fn reset_after_ingest_loses_the_ack_and_replay_is_a_duplicate() {
    let server = LokiServer::start();
    server.push_replies([Reply::ResetAfterIngest]);
    let body = encode_push([velero_stream(vec![EntryAdapter::new(TS, "x")])]);
    assert!(push_proto(&client(), &server, body.clone()).await.is_err());
    assert_eq!(server.entry_count(), 1);
    assert_eq!(push_proto(&client(), &server, body).await.unwrap().0, 204);
    assert_eq!(server.entry_count(), 2);
    assert_eq!(server.duplicate_count(), 1);
}

#[tokio::test]
async fn refuse_then_resume_on_the_same_port() {
    let server = LokiServer::start();
    let url = server.url();
    let c = client();
    let body = encode_push([velero_stream(vec![EntryAdapter::new(TS, "x")])]);
    assert_eq!(push_proto(&c, &server, body.clone()).await.unwrap().0, 204);

    server.stop_listening();
    let err = TcpStream::connect(server.addr()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    // The pooled keep-alive connection was closed too: the client sees Loki down.
    let err = push_proto(&c, &server, body.clone()).await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    let err = push_proto(&c, &server, body.clone()).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    server.resume();
    assert_eq!(server.url(), url);
    assert_eq!(push_proto(&c, &server, body.clone()).await.unwrap().0, 204);

    server.refuse_for(Duration::from_millis(300));
    assert!(push_proto(&client(), &server, body.clone()).await.is_err());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(push_proto(&client(), &server, body).await.unwrap().0, 204);
    assert_eq!(server.entry_count(), 3);
}

#[tokio::test]
async fn partial_success_with_max_line_size() {
    let server = LokiServer::start();
    server.set_max_line_size(Some(262_144));
    let long = "x".repeat(300_000);
    let body = encode_push([velero_stream(vec![
        EntryAdapter::new(TS, long.clone()),
        EntryAdapter::new(TS + 1, "fits"),
        EntryAdapter::new(TS + 2, long),
    ])]);
    let (code, text_body) = push_proto(&client(), &server, body).await.unwrap();
    assert_eq!(code, 400);
    assert_eq!(
        text_body,
        "2 errors like: Max entry size '262144' bytes exceeded for stream '{app=\"velero\", namespace=\"velero\"}' while adding an entry with length '300000' bytes\n"
    );
    assert_eq!(server.accepted_lines(), vec!["fits".to_string()]);
    let r = &server.requests()[0];
    assert_eq!((r.entry_count, r.accepted, r.errors.len()), (3, 1, 2));

    // A single error has no "N errors like" prefix (Loki's GroupedErrors).
    let body = encode_push([velero_stream(vec![EntryAdapter::new(
        TS,
        "y".repeat(262_145),
    )])]);
    let (code, text_body) = push_proto(&client(), &server, body).await.unwrap();
    assert_eq!(code, 400);
    assert!(
        text_body.starts_with("Max entry size '262144'"),
        "{text_body}"
    );
}

#[tokio::test]
async fn too_old_and_stream_limit() {
    let server = LokiServer::start();
    server.set_limits(Limits {
        reject_old_samples_max_age: Some(Duration::from_secs(7 * 24 * 3600)),
        max_streams: Some(1),
        ..Limits::default()
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128;
    let body = encode_push([velero_stream(vec![
        EntryAdapter::new(TS, "old"),
        EntryAdapter::new(now, "new"),
    ])]);
    let (code, text_body) = push_proto(&client(), &server, body).await.unwrap();
    assert_eq!(code, 400);
    assert!(
        text_body.starts_with(
            "entry for stream '{app=\"velero\", namespace=\"velero\"}' has timestamp too old: 2025-08-01T16:43:38Z, oldest acceptable timestamp is: "
        ),
        "{text_body}"
    );
    assert_eq!(server.accepted_lines(), vec!["new".to_string()]);

    let body = encode_push([
        StreamAdapter::new(
            r#"{namespace="velero-manager"}"#,
            vec![EntryAdapter::new(now, "a")],
        ),
        velero_stream(vec![EntryAdapter::new(now + 1, "b")]),
    ]);
    let (code, text_body) = push_proto(&client(), &server, body).await.unwrap();
    assert_eq!(code, 429);
    assert_eq!(
        text_body,
        format!(
            "{}\n",
            text::stream_limit(r#"{namespace="velero-manager"}"#, "fake")
        )
    );
    // The stream that already existed was still ingested.
    assert_eq!(
        server.accepted_lines(),
        vec!["new".to_string(), "b".to_string()]
    );
}

#[test]
fn chunked_request_over_a_raw_socket() {
    let server = LokiServer::start();
    let body = encode_push([velero_stream(vec![EntryAdapter::new(TS, "chunked")])]);
    let mut s = TcpStream::connect(server.addr()).unwrap();
    let (a, b) = body.split_at(body.len() / 2);
    let mut req = format!(
        "POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for part in [a, b] {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    s.write_all(&req).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 204 No Content\r\n"), "{resp}");
    assert_eq!(server.accepted_lines(), vec!["chunked".to_string()]);
}

#[test]
fn wait_for_entries_and_count_only_mode() {
    let server = LokiServer::start();
    server.set_keep_entries(false);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = client();
    let started = Instant::now();
    rt.block_on(async {
        for batch in 0..20i128 {
            let entries: Vec<EntryAdapter> = (0..5_000i128)
                .map(|i| EntryAdapter::new(TS + batch * 10_000 + i, format!("line {i}")))
                .collect();
            let body = encode_push([velero_stream(entries)]);
            assert_eq!(push_proto(&c, &server, body).await.unwrap().0, 204);
        }
    });
    assert!(server.wait_for_entries(100_000, Duration::from_secs(5)));
    assert!(!server.wait_for_entries(100_001, Duration::from_millis(50)));
    assert_eq!(server.entry_count(), 100_000);
    assert_eq!(
        server.accepted_counts_by_label("namespace")["velero"],
        100_000
    );
    assert!(server.accepted_entries().is_empty());
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn label_parser_follows_go_quoting() {
    let p = parse_labels(r#"{a="x\"y", b="c\\d", c="l1\nl2", d=`raw\n`, e="\u00e9\x41"}"#).unwrap();
    assert_eq!(
        p,
        vec![
            ("a".into(), "x\"y".into()),
            ("b".into(), "c\\d".into()),
            ("c".into(), "l1\nl2".into()),
            ("d".into(), "raw\\n".into()),
            ("e".into(), "éA".into()),
        ]
    );
    assert_eq!(parse_labels("{}").unwrap(), vec![]);
    assert!(parse_labels(r#"{1a="x"}"#).is_err());
    assert!(parse_labels(r#"{a!="x"}"#).is_err());
    assert!(parse_labels(r#"{a="x"} extra"#).is_err());
    assert!(parse_labels(r#"{a="\q"}"#).is_err());
    assert!(parse_labels(r#"{a="x""#).is_err());
    assert_eq!(rfc3339_seconds(TS), "2025-08-01T16:43:38Z");
    assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
}
