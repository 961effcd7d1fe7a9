//! The Loki client's concurrency over loopback: shards keep each stream in order while a
//! throttled stream does not hold back the others, requests overlap, memory stays bounded with
//! backpressure to the sender, and split batches are acknowledged only when every piece is.

mod common;
mod loki_client_support;

use std::time::{Duration, Instant};

use common::loki::{LokiServer, Reply, Stream};
use loki_client_support::{eventually, lines, loki_cfg, Harness, StreamIn};

const A: &str = r#"{app="a", namespace="velero"}"#;
const B: &str = r#"{app="b", namespace="velero"}"#;
const WAIT: Duration = Duration::from_secs(10);

fn carries(streams: &[Stream], app: &str) -> bool {
    streams
        .iter()
        .any(|s| s.labels.get("app").is_some_and(|v| v == app))
}

fn carries_line(streams: &[Stream], line: &str) -> bool {
    streams
        .iter()
        .any(|s| s.entries.iter().any(|e| e.line == line))
}

fn accepted_lines_of(loki: &LokiServer, app: &str) -> Vec<String> {
    loki.accepted_entries()
        .into_iter()
        .filter(|e| e.labels.get("app").is_some_and(|v| v == app))
        .map(|e| e.line)
        .collect()
}

/// Stream A is throttled (429 on every request carrying it); stream B keeps flowing, and B's
/// file advances while A's waits. Once Loki takes A again, A arrives complete and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_stream_does_not_block_the_others() {
    let loki = LokiServer::start();
    loki.reply_when(|s| carries(s, "a"), Reply::rate_limited(None), None);
    let mut h = Harness::start(&loki_cfg(&loki.url()));
    for i in 0..5 {
        h.send(&[
            StreamIn {
                labels: A,
                file: 1,
                lines: lines("a", i * 10, 10),
            },
            StreamIn {
                labels: B,
                file: 2,
                lines: lines("b", i * 10, 10),
            },
        ])
        .await;
    }
    assert!(
        eventually(WAIT, || accepted_lines_of(&loki, "b").len() == 50).await,
        "B flows while A is throttled"
    );
    let a_tries = || {
        loki.push_requests()
            .iter()
            .filter(|r| {
                r.decoded.as_ref().is_ok_and(|s| {
                    s.iter()
                        .any(|s| s.labels.get("app").is_some_and(|v| v == "a"))
                })
            })
            .count()
    };
    assert!(
        eventually(WAIT, || a_tries() >= 3).await,
        "A is being retried"
    );
    assert_eq!(accepted_lines_of(&loki, "b").len(), 50);
    assert!(accepted_lines_of(&loki, "a").is_empty());
    assert!(h.retries() >= 1);
    assert_eq!(h.committed(2), h.sent_offset(2), "B's file advanced");
    assert_eq!(h.committed(1), 0, "A's file waits for Loki");
    assert_eq!(h.dropped_total(), 0);

    loki.clear_rules();
    h.finish().await;
    let a = accepted_lines_of(&loki, "a");
    let want: Vec<String> = lines("a", 0, 50).into_iter().map(|l| l.1).collect();
    assert_eq!(a, want, "A complete and in order");
    assert!(h.all_committed());
}

/// With `concurrency: 4`, requests of different shards overlap; with 1 they do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_run_concurrently() {
    let labels: Vec<String> = (0..8)
        .map(|i| format!("{{app=\"s{i}\", namespace=\"velero\"}}"))
        .collect();
    let mut took = Vec::new();
    for conc in [4usize, 1] {
        let loki = LokiServer::start();
        loki.set_default(Reply::slow(Duration::from_millis(150), Reply::Loki));
        let mut cfg = loki_cfg(&loki.url());
        cfg.concurrency = conc;
        cfg.batch.max_streams = 2;
        let mut h = Harness::start(&cfg);
        let t = Instant::now();
        for b in 0..2 {
            let streams: Vec<StreamIn<'_>> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| StreamIn {
                    labels: l,
                    file: i as u32 + 1,
                    lines: lines(&format!("s{i}"), b * 5, 5),
                })
                .collect();
            h.send(&streams).await;
        }
        h.finish().await;
        took.push(t.elapsed());
        assert_eq!(loki.entry_count(), 80);
        assert_eq!(loki.push_requests().len(), 8, "2 streams per request");
        assert!(h.all_committed());
    }
    // 8 requests of 150 ms: 4 shards need 2 rounds, one shard 8.
    assert!(
        took[0] < Duration::from_millis(900),
        "concurrent: {:?}",
        took[0]
    );
    assert!(
        took[1] >= Duration::from_millis(1150),
        "sequential: {:?}",
        took[1]
    );
}

/// While Loki is unreachable the client holds at most `max_buffered_bytes` (+ the channel);
/// then the sender blocks. Nothing is lost once Loki is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_bounds_memory_and_blocks_the_sender() {
    let loki = LokiServer::start();
    let mut cfg = loki_cfg(&loki.url());
    cfg.max_buffered_bytes = 64 * 1024;
    let mut h = Harness::start(&cfg);
    tokio::task::block_in_place(|| loki.stop_listening());
    let big = |i: usize| -> Vec<(i64, String)> {
        lines("a", i * 100, 100)
            .into_iter()
            .map(|(t, l)| (t, format!("{l} {}", "x".repeat(200))))
            .collect()
    };
    let mut sent = 0;
    let mut blocked = None;
    for i in 0..40 {
        let b = h.batch(&[StreamIn {
            labels: A,
            file: 1,
            lines: big(i),
        }]);
        match h.try_send_batch(b, Duration::from_millis(300)).await {
            Ok(()) => sent += 1,
            Err(b) => {
                blocked = Some(b);
                break;
            }
        }
    }
    let batch_bytes = 100 * 220;
    let blocked = blocked.expect("the sender blocks once the budget and the channel are full");
    assert!(
        sent <= 64 * 1024 / batch_bytes + 1 + 4 + 1,
        "{sent} batches taken"
    );
    let held = h.metrics.loki_buffered_bytes.get();
    assert!(
        held <= (64 * 1024 + 6 * batch_bytes) as i64,
        "buffered {held} bytes"
    );
    assert_eq!(h.committed(1), 0);
    tokio::task::block_in_place(|| loki.resume());
    h.send_batch(blocked).await;
    h.finish().await;
    assert_eq!(loki.entry_count(), (sent + 1) * 100);
    assert_eq!(loki.duplicate_count(), 0);
    assert!(h.all_committed());
    assert_eq!(h.metrics.loki_buffered_bytes.get(), 0);
}

/// A batch larger than `max_request_bytes` goes out as several requests, each stream's entries
/// in order; the file's position moves only once the last of them is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_batch_is_acked_only_when_every_request_is_answered() {
    let loki = LokiServer::start();
    // The request carrying the last entry of A fails until the rule is removed.
    loki.reply_when(|s| carries_line(s, "a-00059"), Reply::status(503), None);
    let mut cfg = loki_cfg(&loki.url());
    cfg.concurrency = 1;
    cfg.batch.max_request_bytes = 2048;
    cfg.batch.max_streams = 2;
    let mut h = Harness::start(&cfg);
    let streams: Vec<StreamIn<'_>> = vec![
        StreamIn {
            labels: A,
            file: 1,
            lines: lines("a", 0, 60),
        },
        StreamIn {
            labels: B,
            file: 1,
            lines: lines("b", 0, 3),
        },
        StreamIn {
            labels: r#"{app="c", namespace="velero"}"#,
            file: 1,
            lines: lines("c", 0, 3),
        },
        StreamIn {
            labels: r#"{app="d", namespace="velero"}"#,
            file: 1,
            lines: lines("d", 0, 3),
        },
    ];
    h.send(&streams).await;
    assert!(
        eventually(WAIT, || h.retries() >= 3).await,
        "the last piece is being retried"
    );
    let early = accepted_lines_of(&loki, "a");
    assert!(!early.is_empty(), "earlier pieces were accepted");
    assert_eq!(
        early,
        lines("a", 0, early.len())
            .into_iter()
            .map(|l| l.1)
            .collect::<Vec<_>>(),
        "a prefix of A, in order"
    );
    assert_eq!(h.committed(1), 0, "not every entry is answered yet");
    loki.clear_rules();
    h.finish().await;
    let reqs = loki.push_requests();
    assert!(reqs.len() >= 5, "{} requests", reqs.len());
    for r in &reqs {
        let streams = r.decoded.as_ref().expect("decoded");
        assert!(streams.len() <= 2, "max_streams");
        assert!(r.body_len <= 2048, "body {} bytes", r.body_len);
    }
    assert_eq!(
        accepted_lines_of(&loki, "a"),
        lines("a", 0, 60)
            .into_iter()
            .map(|l| l.1)
            .collect::<Vec<_>>()
    );
    assert_eq!(loki.entry_count(), 69);
    assert!(h.all_committed());
}
