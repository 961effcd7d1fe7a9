//! parse + enrich on a realistic mix (a `veloki gen` tree), and encode + compress per entry.
//!
//! `cargo bench --bench parse_enrich` reports lines/s (criterion `Throughput::Elements`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use veloki::batch::{BatchOptions, Batcher};
use veloki::config::default_routes;
use veloki::decode::{self, Envelope};
use veloki::discover::pod_path;
use veloki::enrich::{EnrichOptions, Enricher, FileCtx, StreamKind};
use veloki::metrics::Metrics;
use veloki::parse::{parse_into, Record};

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
        let route = routes
            .iter()
            .find(|r| r.matches.matches(p.namespace, p.container));
        let mut ctx = FileCtx::new(
            p.namespace,
            p.pod,
            p.container,
            route.map(|r| r.parser).unwrap_or_default(),
        );
        ctx.component = route.and_then(|r| r.component);
        ctxs.push(ctx);
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
                    black_box(batch.body.len());
                }
            }
            black_box(batcher.seal());
        })
    });
    g.finish();

    // Encode + compress alone, 250-byte lines (the Loki client's per-entry cost).
    let line = vec![b'x'; 250];
    let ctx = FileCtx::new("velero", "velero-abc", "velero", Default::default());
    let labels = veloki::enrich::labels::LineLabels {
        component: veloki::enrich::labels::Component::VeleroServer,
        severity: veloki::enrich::labels::Severity::Info,
        operation: veloki::enrich::labels::Operation::Backup,
        backup_status: None,
        priority: veloki::enrich::labels::Priority::Low,
    };
    let mut meta = veloki::enrich::Metadata::default();
    meta.push("stream", "stdout");
    meta.push("backup", "velero/daily-20260410020000");
    let mut g = c.benchmark_group("encode");
    const N: u64 = 10_000;
    g.throughput(Throughput::Elements(N));
    g.bench_function("encode+snappy 250-byte entries", |b| {
        let mut batcher = Batcher::new(
            BatchOptions {
                max_bytes: 1 << 20,
                max_entries: 100_000,
                max_wait: Duration::from_secs(1),
                structured_metadata: true,
                max_pods: 500,
            },
            &[],
        );
        b.iter(|| {
            for i in 0..N {
                if let Some(batch) = batcher.add(
                    1,
                    &ctx,
                    &labels,
                    1_775_786_400_000_000_000 + i as i64,
                    &line,
                    &meta,
                    i,
                ) {
                    black_box(batch.body.len());
                }
            }
            black_box(batcher.seal());
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
