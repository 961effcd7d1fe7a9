//! parse + enrich on a realistic mix (a `veloki gen` tree), then with batching, request
//! encoding and snappy (what the Loki client adds; alone in `benches/push.rs`).
//!
//! `cargo bench --bench parse_enrich` reports lines/s (criterion `Throughput::Elements`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use veloki::batch::{Batch, BatchOptions, Batcher};
use veloki::config::default_routes;
use veloki::config::{Compression, Encoding, MetadataMode};
use veloki::decode::{self, Envelope};
use veloki::discover::pod_path;
use veloki::enrich::{EnrichOptions, Enricher};
use veloki::metrics::Metrics;
use veloki::model::{FileCtx, StreamKind};
use veloki::parse::{parse_into, Record};
use veloki::push::request;

/// Encodes and compresses a sealed batch as the Loki client does; returns the body bytes.
fn encode(enc: &mut request::Encoder, batch: &Batch) -> usize {
    request::plan(&batch.body, &batch.streams, 1000, 4 << 20)
        .iter()
        .map(|p| enc.encode(&batch.body, p).bytes.len())
        .sum()
}

struct Line {
    ctx: usize,
    ts: i64,
    stream: StreamKind,
    content: Vec<u8>,
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "log") {
            out.push(p);
        }
    }
}

/// Decoded entries of a generated tree (the realistic mix), and their per-file contexts.
fn corpus(lines: u64) -> (Vec<FileCtx>, Vec<Line>) {
    let dir = tempfile::tempdir().unwrap();
    veloki::gen::generate(&veloki::gen::GenOptions {
        lines,
        seed: 7,
        ..veloki::gen::GenOptions::new(dir.path())
    })
    .unwrap();
    let mut files = Vec::new();
    walk(dir.path(), &mut files);
    files.sort();
    let routes = default_routes();
    let mut ctxs = Vec::new();
    let mut out = Vec::new();
    for f in files {
        let Some(p) = pod_path::parse(&f) else {
            continue;
        };
        ctxs.push(FileCtx::routed(&routes, p.namespace, p.pod, p.container));
        let data = std::fs::read(&f).unwrap();
        for raw in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let d = decode::decode(raw, Envelope::Cri);
            out.push(Line {
                ctx: ctxs.len() - 1,
                ts: d.ts_ns.unwrap_or(0),
                stream: d.stream,
                content: d.content.into_owned(),
            });
        }
    }
    (ctxs, out)
}

fn bench(c: &mut Criterion) {
    let (ctxs, lines) = corpus(20_000);
    let metrics = Arc::new(Metrics::new());
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse+enrich (gen mix)", |b| {
        let mut enricher = Enricher::new(metrics.clone(), &EnrichOptions::default());
        let mut rec = Record::new();
        b.iter(|| {
            for l in &lines {
                let ctx = &ctxs[l.ctx];
                parse_into(&l.content, ctx.hint, &mut rec);
                black_box(enricher.enrich(ctx, l.ts, l.stream, &l.content, &rec));
            }
        })
    });
    g.bench_function("parse+enrich+encode+compress (gen mix)", |b| {
        let mut enricher = Enricher::new(metrics.clone(), &EnrichOptions::default());
        let mut rec = Record::new();
        let mut batcher = Batcher::new(
            BatchOptions {
                max_bytes: 1 << 20,
                max_entries: 10_000,
                max_wait: Duration::from_secs(1),
                structured_metadata: true,
                max_pods: 500,
            },
            &[("cluster".into(), "bench".into())],
        );
        let mut enc =
            request::Encoder::new(Encoding::Protobuf, Compression::Snappy, MetadataMode::Send);
        b.iter(|| {
            for (i, l) in lines.iter().enumerate() {
                let ctx = &ctxs[l.ctx];
                parse_into(&l.content, ctx.hint, &mut rec);
                let en = enricher.enrich(ctx, l.ts, l.stream, &l.content, &rec);
                if let Some(batch) = batcher.add(
                    l.ctx as u32,
                    ctx,
                    &en.labels,
                    l.ts,
                    &l.content,
                    &enricher.meta,
                    i as u64,
                ) {
                    black_box(encode(&mut enc, &batch));
                }
            }
            if let Some(batch) = batcher.seal() {
                black_box(encode(&mut enc, &batch));
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(10);
    targets = bench
}
criterion_main!(benches);
