//! `veloki parse`: runs decode → parse → enrich over files or stdin and prints one JSON object per
//! entry (`{"ts","labels","metadata","line","parsed"}`), for debugging pipelines and for golden
//! tests. `--summary` appends the decided outcomes and counters.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::StreamRegistry;
use crate::config::Config;
use crate::decode::multiline::Grouper;
use crate::decode::{self, partial::Joiner, partial::Push, Envelope};
use crate::discover::pod_path;
use crate::enrich::Enricher;
use crate::metrics::Metrics;
use crate::model::{FileCtx, StreamKind};
use crate::parse::{parse_into, CliEvent, Record};
use crate::pipeline::write_json_entry;
use crate::timefmt::format_rfc3339_nanos;

/// Options of `veloki parse`.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    /// Namespace for inputs whose path does not say it.
    pub namespace: String,
    /// Container for inputs whose path does not say it.
    pub container: String,
    /// Print the summary at the end.
    pub summary: bool,
    /// Inputs (`-` is stdin).
    pub inputs: Vec<PathBuf>,
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The parsed fields of a record as a JSON object.
pub fn parsed_json(line: &[u8], rec: &Record) -> String {
    let mut s = String::with_capacity(256);
    s.push_str("{\"format\":");
    s.push_str(&json(rec.format.as_str()));
    if let Some(l) = rec.level {
        s.push_str(",\"level\":");
        s.push_str(&json(l.as_str()));
    }
    if let Some(t) = rec.time {
        s.push_str(",\"time\":");
        s.push_str(&json(&String::from_utf8_lossy(t.get(line))));
    }
    if let Some(m) = rec.msg {
        s.push_str(",\"msg\":");
        s.push_str(&json(&m.text(line)));
    }
    if !rec.fields.is_empty() {
        s.push_str(",\"fields\":{");
        for (i, f) in rec.fields.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&json(&String::from_utf8_lossy(f.key.get(line))));
            s.push(':');
            s.push_str(&json(&f.value.text(line)));
        }
        s.push('}');
    }
    if let Some(g) = &rec.gin {
        s.push_str(&format!(
            ",\"gin\":{{\"status\":{},\"latency_seconds\":{},\"client_ip\":{},\"method\":{},\"path\":{}",
            g.status,
            g.latency_seconds,
            json(&String::from_utf8_lossy(g.client_ip.get(line))),
            json(&String::from_utf8_lossy(g.method.get(line))),
            json(&g.path.text(line)),
        ));
        if let Some(q) = g.query {
            s.push_str(",\"query\":");
            s.push_str(&json(&q.text(line)));
        }
        s.push('}');
    }
    if let Some(c) = rec.cli {
        let text = |sp: crate::parse::Span| json(&String::from_utf8_lossy(sp.get(line)));
        match c {
            CliEvent::BackupSubmitted { name } => s.push_str(&format!(
                ",\"cli\":{{\"event\":\"backup_submitted\",\"name\":{}}}",
                text(name)
            )),
            CliEvent::BackupCompleted { phase, name } => s.push_str(&format!(
                ",\"cli\":{{\"event\":\"backup_completed\",\"phase\":{},\"name\":{}}}",
                text(phase),
                name.map_or("null".into(), text)
            )),
            CliEvent::RestoreSubmitted { name } => s.push_str(&format!(
                ",\"cli\":{{\"event\":\"restore_submitted\",\"name\":{}}}",
                text(name)
            )),
            CliEvent::RestoreCompleted { phase, name } => s.push_str(&format!(
                ",\"cli\":{{\"event\":\"restore_completed\",\"phase\":{},\"name\":{}}}",
                text(phase),
                name.map_or("null".into(), text)
            )),
            CliEvent::Info => s.push_str(",\"cli\":{\"event\":\"info\"}"),
            CliEvent::Error => s.push_str(",\"cli\":{\"event\":\"error\"}"),
        }
    }
    if let Some(r) = rec.unparsed {
        s.push_str(",\"unparsed\":");
        s.push_str(&json(r.as_str()));
    }
    s.push('}');
    s
}

/// Passes one entry through multi-line grouping, processing what comes out.
fn feed<F>(
    g: &mut Grouper,
    ctx: &FileCtx,
    process: &mut F,
    ts: i64,
    stream: StreamKind,
    content: &[u8],
    out: &mut dyn Write,
) -> anyhow::Result<()>
where
    F: FnMut(i64, StreamKind, &[u8], &mut dyn Write) -> anyhow::Result<()>,
{
    let o = g.offer(0, ctx, ts, stream, content, 0, false);
    if let Some(h) = o.released {
        process(h.ts_ns, h.stream, &h.content, out)?;
    }
    if !o.taken {
        process(ts, stream, content, out)?;
    }
    Ok(())
}

/// Runs `veloki parse`; writes to `out`.
pub fn run(cfg: &Config, opts: &ParseOptions, out: &mut impl Write) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let mut enricher = Enricher::new(metrics.clone(), &crate::pipeline::enrich_options(cfg, true));
    let mut registry = StreamRegistry::new(&crate::pipeline::statics(cfg), cfg.labels.max_pods);
    let routes = cfg.effective_routes();
    let mut rec = Record::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let inputs = if opts.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        opts.inputs.clone()
    };
    for (file_id, input) in inputs.iter().enumerate() {
        let (ns, pod, container) = match pod_path::parse(input) {
            Some(p) => (
                p.namespace.to_string(),
                p.pod.to_string(),
                p.container.to_string(),
            ),
            None => (
                opts.namespace.clone(),
                "-".to_string(),
                opts.container.clone(),
            ),
        };
        let ctx = FileCtx::routed(&routes, &ns, &pod, &container);
        let reader: Box<dyn BufRead> = if input == Path::new("-") {
            Box::new(std::io::BufReader::new(std::io::stdin()))
        } else {
            let f = std::fs::File::open(input)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", input.display()))?;
            if input.extension().is_some_and(|e| e == "gz") {
                Box::new(std::io::BufReader::new(flate2::read::GzDecoder::new(f)))
            } else {
                Box::new(std::io::BufReader::new(f))
            }
        };
        let mut joiner = Joiner::default();
        let mut grouper = Grouper::new(cfg.sources.max_line_bytes);
        let mut last_ts = 0i64;
        let mut envelope: Option<Envelope> = None;
        let mut process =
            |ts: i64, stream, content: &[u8], out: &mut dyn Write| -> anyhow::Result<()> {
                // A grouped (multi-line) entry is parsed by its first line.
                let first = memchr::memchr(b'\n', content).map_or(content, |i| &content[..i]);
                parse_into(first, ctx.hint, &mut rec);
                let en = enricher.enrich(&ctx, ts, stream, content, &rec);
                let line = if en.redacted {
                    enricher.redacted_line().to_vec()
                } else {
                    content.to_vec()
                };
                *counts
                    .entry(format!("format.{}", rec.format.as_str()))
                    .or_default() += 1;
                *counts
                    .entry(format!("severity.{}", en.labels.severity.as_str()))
                    .or_default() += 1;
                if let Some(r) = rec.unparsed {
                    *counts
                        .entry(format!("unparsed.{}", r.as_str()))
                        .or_default() += 1;
                }
                let sid = registry.stream_id(file_id as u32, &ctx, &en.labels);
                let labels = registry.labels_json(sid);
                let parsed = parsed_json(content, &rec);
                write_json_entry(out, ts, &labels, &enricher.meta, &line, Some(&parsed))?;
                Ok(())
            };
        for raw in reader.split(b'\n') {
            let raw = raw?;
            let raw = raw.strip_suffix(b"\r").unwrap_or(&raw);
            let env = *envelope.get_or_insert(if raw.first() == Some(&b'{') {
                Envelope::Docker
            } else {
                Envelope::Cri
            });
            let d = decode::decode(raw, env);
            let ts = d.ts_ns.unwrap_or(last_ts);
            last_ts = ts;
            match joiner.push(
                ts,
                d.stream,
                d.partial,
                &d.content,
                0,
                cfg.sources.max_line_bytes,
            ) {
                Push::Held => {}
                Push::Single => feed(
                    &mut grouper,
                    &ctx,
                    &mut process,
                    ts,
                    d.stream,
                    &d.content,
                    out,
                )?,
                Push::Complete(j) => feed(
                    &mut grouper,
                    &ctx,
                    &mut process,
                    j.ts_ns,
                    j.stream,
                    &j.content,
                    out,
                )?,
            }
        }
        let mut left = Vec::new();
        joiner.take_expired(std::time::Duration::ZERO, &mut left);
        for j in left {
            feed(
                &mut grouper,
                &ctx,
                &mut process,
                j.ts_ns,
                j.stream,
                &j.content,
                out,
            )?;
        }
        for h in grouper.release_all() {
            process(h.ts_ns, h.stream, &h.content, out)?;
        }
    }
    enricher.flush();
    if opts.summary {
        let outcomes: Vec<serde_json::Value> = enricher
            .decided()
            .iter()
            .map(|d| {
                serde_json::json!({
                    "kind": d.kind,
                    "name": d.name,
                    "schedule": d.schedule,
                    "outcome": d.outcome.as_str(),
                    "reason": d.reason.map(|r| r.as_str()),
                    "reason_text": d.reason_text,
                    "time": format_rfc3339_nanos(d.at_ns),
                    "duration_seconds": d.duration_seconds,
                })
            })
            .collect();
        let metrics_text = metrics.encode_text();
        let mut derived: Vec<&str> = metrics_text
            .lines()
            .filter(|l| {
                !l.starts_with('#')
                    && (l.starts_with("veloki_backup")
                        || l.starts_with("veloki_restore")
                        || l.starts_with("veloki_pod_volume")
                        || l.starts_with("veloki_http_requests_total")
                        || l.starts_with("veloki_redactions_total"))
                    && !l.ends_with(" 0")
                    && !l.contains("_bucket{")
            })
            .collect();
        derived.sort_unstable();
        let summary = serde_json::json!({
            "summary": {
                "counts": counts,
                "outcomes": outcomes,
                "metrics": derived,
            }
        });
        writeln!(out, "{summary}")?;
    }
    out.flush()?;
    Ok(())
}
