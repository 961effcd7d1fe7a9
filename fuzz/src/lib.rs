//! Shared checks for the parser fuzz targets: every span a parser reports lies inside the line,
//! and every value unescapes without panicking.

use veloki::parse::{Format, Record, Span, MAX_FIELDS};

fn check_span(line: &[u8], s: Span) {
    assert!(
        s.start <= s.end && s.end as usize <= line.len(),
        "span {s:?} outside a {}-byte line",
        line.len()
    );
}

/// Checks the invariants of `rec` after a parser accepted (`accepted`) or rejected `line`.
pub fn check(line: &[u8], rec: &Record, accepted: bool) {
    assert!(rec.fields.len() <= MAX_FIELDS);
    if let Some(t) = rec.time {
        check_span(line, t);
    }
    if let Some(m) = rec.msg {
        check_span(line, m.span);
        let _ = m.text(line);
    }
    for f in &rec.fields {
        check_span(line, f.key);
        check_span(line, f.value.span);
        let _ = f.value.text(line);
    }
    if let Some(g) = rec.gin {
        for s in [g.time, g.latency, g.client_ip, g.method, g.path.span] {
            check_span(line, s);
        }
        let _ = g.path.text(line);
        if let Some(q) = g.query {
            check_span(line, q.span);
            let _ = q.text(line);
        }
        assert!(g.latency_seconds.is_finite());
    }
    if accepted {
        assert!(rec.format != Format::Plain || rec.unparsed.is_some());
    }
}
