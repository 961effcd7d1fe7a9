//! The Loki client against every answer Loki (or a gateway) gives, over loopback: what is
//! retried, what is dropped and counted under which reason, and that positions advance only
//! when Loki has answered for every entry.

mod common;
mod loki_client_support;

use std::time::{Duration, Instant};

use common::loki::{text, Answer, Limits, LokiServer, Reply};
use loki_client_support::{eventually, lines, loki_cfg, Harness, StreamIn};

const A: &str = r#"{app="a", namespace="velero"}"#;
const B: &str = r#"{app="b", namespace="velero"}"#;
const WAIT: Duration = Duration::from_secs(10);

fn two_streams(from: usize, n: usize) -> Vec<StreamIn<'static>> {
    vec![
        StreamIn {
            labels: A,
            file: 1,
            lines: lines("a", from, n),
        },
        StreamIn {
            labels: B,
            file: 2,
            lines: lines("b", from, n),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_204_and_260() {
    let loki = LokiServer::start();
    loki.push_replies([Reply::status(204), Reply::ingestion_blocked()]);
    let mut h = Harness::start(&loki_cfg(&loki.url()));
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", 0, 5),
    }])
    .await;
    assert!(eventually(WAIT, || h.all_committed()).await);
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", 5, 3),
    }])
    .await;
    h.finish().await;
    assert!(h.all_committed(), "260 is final: positions advance");
    assert_eq!(loki.push_requests().len(), 2, "no retry of a 2xx");
    assert_eq!(h.requests("204"), 1);
    assert_eq!(h.requests("260"), 1);
    assert_eq!(h.dropped("other"), 3, "Loki drops a 260's entries");
    assert_eq!(h.metrics.loki_sent_entries.get(), 8);
    assert_eq!(h.retries(), 0);
    assert_eq!(loki.entry_count(), 5);
    let exposition = h.metrics.encode_text();
    assert!(exposition.contains("veloki_loki_dropped_entries_total{reason=\"other\"} 3"));
    assert!(exposition.contains("veloki_loki_requests_total{code=\"260\"} 1"));
}

/// Each of Loki's 400 texts: never retried, counted under its reason, positions advance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_400_by_reason_are_final() {
    let ts = 1_775_786_400_000_000_000i128;
    type Case = (&'static str, String, Vec<(&'static str, u64)>);
    let cases: Vec<Case> = vec![
        (
            "line too long",
            text::line_too_long(262_144, A, 300_000),
            vec![("line_too_long", 1)],
        ),
        (
            "too old",
            text::too_old(A, ts, ts + 1),
            vec![("too_old", 1)],
        ),
        ("too new", text::too_new(A, ts), vec![("too_new", 1)]),
        (
            "invalid labels",
            text::invalid_labels(A, "1:5: parse error: unexpected character inside braces: '-'"),
            vec![("invalid_labels", 4)],
        ),
        (
            "too many labels",
            text::too_many_labels(B, 16, 15),
            vec![("invalid_labels", 4)],
        ),
        (
            "duplicate label",
            text::duplicate_label(A, "app"),
            vec![("invalid_labels", 4)],
        ),
        (
            "grouped",
            text::grouped(&[
                text::line_too_long(100, A, 200),
                text::line_too_long(100, A, 200),
                text::too_old(B, ts, ts + 1),
            ]),
            vec![("line_too_long", 2), ("too_old", 1)],
        ),
        (
            "structured metadata disallowed",
            format!("stream '{A}' includes structured metadata, but this feature is disallowed. Please see `limits_config.structured_metadata` or contact your Loki administrator to enable it."),
            vec![("structured_metadata", 4)],
        ),
        (
            "ingester too far behind",
            format!("entry with timestamp 2026-04-10 02:00:00 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2026-04-10T02:00:00Z, oldest acceptable timestamp is: 2026-04-10T03:00:00Z',\nuser 'fake', total ignored: 2 out of 4 for stream: {A}"),
            vec![("too_far_behind", 2)],
        ),
        (
            "unparseable body",
            "proto: wrong wireType = 2 for field Entries".to_string(),
            vec![("other", 8)],
        ),
    ];
    for (name, body, want) in cases {
        let loki = LokiServer::start();
        loki.push_replies([Reply::error(400, &body)]);
        let mut cfg = loki_cfg(&loki.url());
        cfg.concurrency = 1; // one request for both streams
        let mut h = Harness::start(&cfg);
        h.send(&two_streams(0, 4)).await;
        h.finish().await;
        assert_eq!(
            loki.push_requests().len(),
            1,
            "{name}: a 400 is never retried"
        );
        for (reason, n) in &want {
            assert_eq!(h.dropped(reason), *n, "{name}: {reason}");
        }
        assert_eq!(
            h.dropped_total(),
            want.iter().map(|w| w.1).sum::<u64>(),
            "{name}: nothing else counted"
        );
        assert!(
            h.all_committed(),
            "{name}: positions advance past a final answer"
        );
        assert_eq!(h.retries(), 0, "{name}");
        assert_eq!(h.requests("400"), 1, "{name}");
    }
}

/// A real partial success: Loki keeps the valid entries and says which it dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_success_from_loki_limits() {
    let loki = LokiServer::start();
    loki.set_limits(Limits {
        max_line_size: Some(40),
        ..Limits::default()
    });
    let mut cfg = loki_cfg(&loki.url());
    cfg.concurrency = 1;
    let mut h = Harness::start(&cfg);
    let mut l = lines("a", 0, 6);
    l[2].1 = "x".repeat(100);
    l[4].1 = "y".repeat(100);
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: l,
    }])
    .await;
    h.finish().await;
    assert_eq!(loki.push_requests().len(), 1);
    assert_eq!(loki.entry_count(), 4, "the valid part was ingested");
    assert_eq!(h.dropped("line_too_long"), 2);
    assert_eq!(h.dropped_total(), 2);
    assert!(h.all_committed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_413_422_501_are_final() {
    for code in [413u16, 422, 404, 501] {
        let loki = LokiServer::start();
        loki.push_replies([Reply::error(code, "no")]);
        let mut h = Harness::start(&loki_cfg(&loki.url()));
        h.send(&[StreamIn {
            labels: A,
            file: 1,
            lines: lines("a", 0, 7),
        }])
        .await;
        h.finish().await;
        assert_eq!(loki.push_requests().len(), 1, "{code} is not retried");
        assert_eq!(h.dropped("other"), 7, "{code}");
        assert!(h.all_committed(), "{code}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_429_honours_retry_after() {
    let loki = LokiServer::start();
    loki.push_replies([Reply::rate_limited(Some(1))]);
    let mut cfg = loki_cfg(&loki.url());
    cfg.retry.max_backoff = veloki::config::Dur(Duration::from_secs(3));
    let mut h = Harness::start(&cfg);
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", 0, 3),
    }])
    .await;
    h.finish().await;
    let reqs = loki.push_requests();
    assert_eq!(reqs.len(), 2);
    let waited = reqs[1].received_at - reqs[0].received_at;
    assert!(
        waited >= Duration::from_millis(990) && waited < Duration::from_millis(2500),
        "Retry-After: 1 → waited {waited:?}"
    );
    assert_eq!(loki.entry_count(), 3);
    assert_eq!(h.requests("429"), 1);
    assert_eq!(h.retries(), 1);
    assert_eq!(h.dropped_total(), 0);
    assert!(h.all_committed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_429_without_retry_after_backs_off() {
    let loki = LokiServer::start();
    loki.push_replies([
        Reply::rate_limited(None),
        Reply::rate_limited(None),
        Reply::error(429, text::stream_rate_limited("3MB", A, "4MB")),
    ]);
    let mut h = Harness::start(&loki_cfg(&loki.url()));
    let t = Instant::now();
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", 0, 3),
    }])
    .await;
    h.finish().await;
    let reqs = loki.push_requests();
    assert_eq!(reqs.len(), 4);
    for w in reqs.windows(2) {
        let gap = w[1].received_at - w[0].received_at;
        assert!(gap >= Duration::from_millis(9), "backoff ≥ min/2: {gap:?}");
    }
    assert!(t.elapsed() < Duration::from_secs(2), "small test backoffs");
    assert_eq!(h.requests("429"), 3);
    assert_eq!(h.retries(), 3);
    assert_eq!(loki.entry_count(), 3);
    assert_eq!(loki.duplicate_count(), 0);
    assert!(h.all_committed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_5xx_are_retried_until_success() {
    let loki = LokiServer::start();
    loki.push_replies([
        Reply::error(500, "at least 2 live replicas required, could only find 1"),
        Reply::status(502),
        Reply::status(503),
        Reply::status(504),
    ]);
    let mut h = Harness::start(&loki_cfg(&loki.url()));
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", 0, 4),
    }])
    .await;
    assert_eq!(h.committed(1), 0);
    h.finish().await;
    assert_eq!(loki.push_requests().len(), 5);
    for c in ["500", "502", "503", "504", "204"] {
        assert_eq!(h.requests(c), 1, "{c}");
    }
    assert_eq!(h.retries(), 4);
    assert_eq!(loki.entry_count(), 4);
    assert_eq!(loki.duplicate_count(), 0);
    assert!(h.all_committed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answer_past_the_timeout_is_retried() {
    let loki = LokiServer::start();
    loki.push_replies([Reply::slow(Duration::from_millis(800), Reply::status(204))]);
    let mut cfg = loki_cfg(&loki.url());
    cfg.timeout = veloki::config::Dur(Duration::from_millis(250));
    let mut h = Harness::start(&cfg);
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", 0, 2),
    }])
    .await;
    h.finish().await;
    // The slow reply is recorded when its delay ends, after the retry got its 204.
    assert!(eventually(WAIT, || loki.push_requests().len() == 2).await);
    let reqs = loki.push_requests();
    assert!(
        reqs.iter().any(|r| r.answer == Answer::ClientGone),
        "the client hung up on the slow answer"
    );
    assert_eq!(h.requests("timeout"), 1);
    assert_eq!(loki.entry_count(), 2);
    assert!(h.all_committed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_then_resumed_loses_nothing() {
    let loki = LokiServer::start();
    let mut h = Harness::start(&loki_cfg(&loki.url()));
    tokio::task::block_in_place(|| loki.stop_listening());
    for i in 0..5 {
        h.send(&two_streams(i * 10, 10)).await;
    }
    assert!(eventually(WAIT, || h.requests("transport") >= 3).await);
    assert_eq!(h.committed(1), 0, "nothing answered: nothing committed");
    assert_eq!(h.committed(2), 0);
    tokio::task::block_in_place(|| loki.resume());
    h.finish().await;
    assert_eq!(loki.entry_count(), 100);
    assert_eq!(loki.duplicate_count(), 0);
    assert_eq!(h.dropped_total(), 0);
    assert!(h.all_committed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_closes_are_retried() {
    let loki = LokiServer::start();
    loki.push_replies([Reply::Reset, Reply::ResetMidResponse, Reply::Close]);
    let mut cfg = loki_cfg(&loki.url());
    cfg.concurrency = 1;
    let mut h = Harness::start(&cfg);
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", 0, 50),
    }])
    .await;
    h.finish().await;
    let reqs = loki.push_requests();
    assert_eq!(reqs[0].answer, Answer::Reset);
    assert_eq!(reqs.len(), 4);
    assert_eq!(h.requests("transport"), 3);
    assert_eq!(loki.entry_count(), 50);
    assert!(h.all_committed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_ack_is_replayed_as_a_duplicate_not_a_loss() {
    let loki = LokiServer::start();
    loki.push_replies([Reply::ResetAfterIngest]);
    let mut h = Harness::start(&loki_cfg(&loki.url()));
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", 0, 5),
    }])
    .await;
    h.finish().await;
    assert_eq!(loki.entry_count(), 10, "at least once");
    assert_eq!(loki.duplicate_count(), 5, "Loki de-duplicates the replay");
    assert!(h.all_committed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_refusals_keep_the_data_and_retry() {
    let loki = LokiServer::start();
    loki.push_replies([Reply::no_org_id(), Reply::error(403, "forbidden")]);
    let mut h = Harness::start(&loki_cfg(&loki.url()));
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", 0, 3),
    }])
    .await;
    h.finish().await;
    assert_eq!(h.requests("401"), 1);
    assert_eq!(h.requests("403"), 1);
    assert_eq!(h.dropped_total(), 0);
    assert_eq!(loki.entry_count(), 3);
    assert!(h.all_committed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_retries_drops_and_counts() {
    let loki = LokiServer::start();
    loki.set_default(Reply::status(503));
    let mut cfg = loki_cfg(&loki.url());
    cfg.retry.max_retries = Some(2);
    let mut h = Harness::start(&cfg);
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", 0, 6),
    }])
    .await;
    h.finish().await;
    assert_eq!(loki.push_requests().len(), 3, "first try + 2 retries");
    assert_eq!(h.dropped("other"), 6);
    assert!(
        h.all_committed(),
        "given up: counted, and positions move on"
    );

    let loki = LokiServer::start();
    loki.set_default(Reply::rate_limited(None));
    let mut cfg = loki_cfg(&loki.url());
    cfg.retry.max_retries = Some(1);
    let mut h = Harness::start(&cfg);
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", 0, 4),
    }])
    .await;
    h.finish().await;
    assert_eq!(h.dropped("rate_limited"), 4);
}

/// Without `max_retries` nothing is ever dropped: the data waits (and positions with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_retries_forever_without_loss() {
    let loki = LokiServer::start();
    loki.set_default(Reply::status(503));
    let mut h = Harness::start(&loki_cfg(&loki.url()));
    h.send(&[StreamIn {
        labels: A,
        file: 1,
        lines: lines("a", 0, 4),
    }])
    .await;
    assert!(eventually(WAIT, || h.retries() >= 8).await);
    assert_eq!(h.committed(1), 0);
    assert_eq!(h.dropped_total(), 0);
    loki.set_default(Reply::Loki);
    h.finish().await;
    assert_eq!(loki.entry_count(), 4);
    assert!(h.all_committed());
}

/// Several streams, several shards, failures sprinkled over the requests: each stream's
/// entries reach Loki complete and in timestamp order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_per_stream_holds_under_failures() {
    let loki = LokiServer::start();
    let mut script = Vec::new();
    for i in 0..40 {
        script.push(match i % 5 {
            0 => Reply::status(500),
            1 => Reply::Reset,
            2 => Reply::rate_limited(None),
            _ => Reply::Loki,
        });
    }
    loki.push_replies(script);
    let mut cfg = loki_cfg(&loki.url());
    cfg.concurrency = 4;
    let mut h = Harness::start(&cfg);
    let labels: Vec<String> = (0..6)
        .map(|i| format!("{{app=\"s{i}\", namespace=\"velero\"}}"))
        .collect();
    for b in 0..20 {
        let streams: Vec<StreamIn<'_>> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| StreamIn {
                labels: l,
                file: i as u32 + 1,
                lines: lines(&format!("s{i}"), b * 10, 10),
            })
            .collect();
        h.send(&streams).await;
    }
    h.finish().await;
    assert_eq!(loki.entry_count(), 6 * 200);
    assert_eq!(loki.duplicate_count(), 0);
    let mut last: std::collections::HashMap<String, i128> = Default::default();
    for e in loki.accepted_entries() {
        let prev = last.insert(e.raw_labels.clone(), e.ts_nanos);
        assert!(
            prev.is_none_or(|p| p < e.ts_nanos),
            "{}: {} after {:?}",
            e.raw_labels,
            e.ts_nanos,
            prev
        );
    }
    assert!(h.all_committed());
    assert_eq!(h.metrics.loki_buffered_bytes.get(), 0);
    assert_eq!(h.metrics.loki_inflight.get(), 0);
}
