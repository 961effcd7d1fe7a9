//! Black-box tests of `veloki gen`: exact counts, CRI well-formedness, determinism, complete
//! lifecycles (checked by an independent mini outcome tracker) and kubelet-style rotation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use veloki::gen::{generate, GenOptions, GenSummary, Outcome, MANIFEST_NAME};

fn opts(dir: &Path, lines: u64, seed: u64) -> GenOptions {
    let mut o = GenOptions::new(dir);
    o.lines = lines;
    o.seed = seed;
    o
}

/// A sortable timestamp and the decoded entries of one file.
type Stamp = (String, u32);
type Entries = Vec<(String, Vec<u8>)>;

/// One CRI record.
struct Rec {
    /// `(YYYY-MM-DDTHH:MM:SS, nanoseconds)`: orders like the timestamp.
    ts: (String, u32),
    stream: String,
    tag: u8,
    content: Vec<u8>,
}

fn read_bytes(path: &Path) -> Vec<u8> {
    let raw = fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        raw
    }
}

/// Parses a CRI file strictly; panics with the line on any malformation.
fn read_cri(path: &Path) -> Vec<Rec> {
    let data = read_bytes(path);
    assert!(
        data.is_empty() || data.ends_with(b"\n"),
        "{path:?} does not end with a newline"
    );
    let mut out = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue; // only the split after the final newline: CRI lines are never empty
        }
        let text = String::from_utf8_lossy(line);
        let mut parts = line.splitn(4, |&b| b == b' ');
        let ts = std::str::from_utf8(parts.next().unwrap()).unwrap();
        let stream = std::str::from_utf8(parts.next().expect("stream")).unwrap();
        let tag = parts.next().expect("tag");
        let content = parts.next().unwrap_or_else(|| panic!("no content: {text}"));
        assert!(
            stream == "stdout" || stream == "stderr",
            "bad stream: {text}"
        );
        assert!(tag == b"P" || tag == b"F", "bad tag: {text}");
        out.push(Rec {
            ts: parse_ts(ts).unwrap_or_else(|| panic!("bad timestamp {ts:?} in {text}")),
            stream: stream.to_string(),
            tag: tag[0],
            content: content.to_vec(),
        });
    }
    out
}

/// RFC3339Nano in UTC as Go prints it (fraction without trailing zeros, none when zero).
fn parse_ts(ts: &str) -> Option<(String, u32)> {
    let b = ts.as_bytes();
    if b.len() < 20 || !ts.ends_with('Z') {
        return None;
    }
    let head = &ts[..19];
    let shape = head.bytes().enumerate().all(|(i, c)| match i {
        4 | 7 => c == b'-',
        10 => c == b'T',
        13 | 16 => c == b':',
        _ => c.is_ascii_digit(),
    });
    if !shape {
        return None;
    }
    let rest = &ts[19..ts.len() - 1];
    let nanos = if rest.is_empty() {
        0
    } else {
        let frac = rest.strip_prefix('.')?;
        if frac.is_empty()
            || frac.len() > 9
            || frac.ends_with('0')
            || !frac.bytes().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        format!("{frac:0<9}").parse().ok()?
    };
    Some((head.to_string(), nanos))
}

/// Entries of a file: `P` parts joined to their `F` (per stream).
fn entries(recs: &[Rec]) -> Vec<(String, Vec<u8>)> {
    entries_split(recs, Some(16 * 1024))
}

fn entries_split(recs: &[Rec], p_len: Option<usize>) -> Vec<(String, Vec<u8>)> {
    let mut open: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::new();
    for r in recs {
        let buf = open.entry(r.stream.clone()).or_default();
        if r.tag == b'P' {
            if let Some(n) = p_len {
                assert_eq!(r.content.len(), n, "P part is not 16 KiB");
            }
            buf.extend_from_slice(&r.content);
        } else {
            buf.extend_from_slice(&r.content);
            out.push((r.stream.clone(), std::mem::take(buf)));
        }
    }
    assert!(open.values().all(|b| b.is_empty()), "dangling P part");
    out
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(dir.join(MANIFEST_NAME)).unwrap()).unwrap()
}

fn all_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, p: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// `<ns>_<pod>_<uid>/<container>/<N>.log[.<YYYYMMDD-hhmmss>[.gz]]`.
fn path_ok(p: &str) -> bool {
    let parts: Vec<&str> = p.split('/').collect();
    if parts.len() != 3 {
        return false;
    }
    let dir: Vec<&str> = parts[0].split('_').collect();
    let dns = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    };
    let uid_ok = dir.len() == 3 && {
        let u: Vec<&str> = dir[2].split('-').collect();
        u.iter().map(|s| s.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
            && u.iter().all(|s| s.bytes().all(|c| c.is_ascii_hexdigit()))
    };
    if !(uid_ok && dns(dir[0]) && dns(dir[1]) && dns(parts[1])) {
        return false;
    }
    let file = parts[2];
    let Some((n, rest)) = file.split_once(".log") else {
        return false;
    };
    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let rest = rest.strip_suffix(".gz").unwrap_or(rest);
    rest.is_empty()
        || (rest.len() == 16
            && rest.as_bytes()[0] == b'.'
            && rest.as_bytes()[9] == b'-'
            && rest[1..9]
                .bytes()
                .chain(rest[10..].bytes())
                .all(|c| c.is_ascii_digit()))
}

/// Checks every file of a generated tree against the manifest; returns the entries per
/// container directory in file order (oldest rotated file first).
fn check_tree(dir: &Path, s: &GenSummary) -> BTreeMap<String, Vec<(String, Vec<u8>)>> {
    let m = manifest(dir);
    assert_eq!(m["lines"].as_u64(), Some(s.lines));
    assert_eq!(m["files"].as_array().unwrap().len(), s.files.len());
    let on_disk: BTreeMap<String, Vec<u8>> = all_files(dir);
    let listed: HashSet<&str> = s.files.iter().map(|f| f.path.as_str()).collect();
    for p in on_disk.keys() {
        if p == MANIFEST_NAME {
            continue;
        }
        assert!(path_ok(p), "bad path {p}");
        assert!(listed.contains(p.as_str()), "{p} not in the manifest");
    }
    let mut total = 0;
    let mut per_dir: BTreeMap<String, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    let mut last_ts: HashMap<String, (String, u32)> = HashMap::new();
    // Oldest first: rotated files sort by their timestamp suffix, the live 0.log comes last.
    let mut files = s.files.clone();
    files.sort_by_key(|f| {
        let (d, name) = f.path.rsplit_once('/').unwrap();
        (d.to_string(), name == "0.log", name.to_string())
    });
    for f in &files {
        let path = dir.join(&f.path);
        let recs = read_cri(&path);
        let d = f.path.rsplit_once('/').unwrap().0.to_string();
        for r in &recs {
            if let Some(prev) = last_ts.get(&d) {
                assert!(r.ts > *prev, "timestamps not increasing in {}", f.path);
            }
            last_ts.insert(d.clone(), r.ts.clone());
        }
        let e = entries(&recs);
        assert_eq!(e.len() as u64, f.entries, "entries of {}", f.path);
        total += f.entries;
        per_dir.entry(d).or_default().extend(e);
        assert_eq!(f.namespace, f.path.split('_').next().unwrap());
    }
    let removed: u64 = s.removed_files.iter().map(|f| f.entries).sum();
    assert_eq!(total + removed, s.lines, "entries across files");
    per_dir
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(" {key}=");
    let i = line.find(&pat)? + pat.len();
    let rest = &line[i..];
    if let Some(q) = rest.strip_prefix('"') {
        let mut esc = false;
        for (j, c) in q.char_indices() {
            match c {
                '\\' if !esc => esc = true,
                '"' if !esc => return Some(&q[..j]),
                _ => esc = false,
            }
        }
        None
    } else {
        Some(rest.split(' ').next().unwrap_or(""))
    }
}

/// Undoes the Go quoting of a logrus value (enough for `\"` and `\\`).
fn unquote(v: &str) -> String {
    v.replace("\\\"", "\"").replace("\\\\", "\\")
}

/// Derives backup and restore outcomes from the log lines alone (rules of the format
/// reference §1.6–1.7) and from the CLI's `Backup completed with status:` lines.
fn derive(
    per_dir: &BTreeMap<String, Vec<(String, Vec<u8>)>>,
) -> (HashMap<String, String>, HashMap<String, String>) {
    let mut backups: HashMap<String, String> = HashMap::new();
    let mut errors: HashSet<String> = HashSet::new();
    let mut failed: HashSet<String> = HashSet::new();
    let mut restores: HashMap<String, String> = HashMap::new();
    let mut restore_err: HashSet<String> = HashSet::new();
    for (d, es) in per_dir {
        let container = d.rsplit('/').next().unwrap();
        let mut cli_name = String::new();
        for (_, c) in es {
            let line = String::from_utf8_lossy(c);
            if container == "velero-backup" || container == "velero-cli" {
                if let Some(r) = line.strip_prefix("Backup request \"") {
                    cli_name = r.split('"').next().unwrap().to_string();
                }
                if let Some(r) = line.strip_prefix("Backup completed with status: ") {
                    let phase = r.split('.').next().unwrap();
                    backups
                        .entry(cli_name.clone())
                        .or_insert_with(|| phase.to_string());
                    if phase == "FailedValidation" {
                        backups.insert(cli_name.clone(), phase.to_string());
                    }
                }
                continue;
            }
            if container != "velero" {
                continue;
            }
            let (msg, level, b, r);
            let json: serde_json::Value;
            if line.starts_with('{') {
                json = serde_json::from_str(&line).unwrap();
                let g = |k: &str| json.get(k).and_then(|v| v.as_str());
                msg = g("msg").unwrap_or("").to_string();
                level = g("level").unwrap_or("").to_string();
                b = g("backup")
                    .or_else(|| g("backuprequest"))
                    .and_then(|v| v.strip_prefix("velero/"))
                    .map(str::to_string);
                r = g("restore")
                    .and_then(|v| v.strip_prefix("velero/"))
                    .map(str::to_string);
            } else if line.starts_with("time=") {
                msg = unquote(field(&line, "msg").unwrap_or(""));
                level = field(&line, "level").unwrap_or("").to_string();
                b = field(&line, "backup")
                    .or_else(|| field(&line, "backuprequest"))
                    .and_then(|v| v.strip_prefix("velero/"))
                    .map(str::to_string);
                r = field(&line, "restore")
                    .and_then(|v| v.strip_prefix("velero/"))
                    .map(str::to_string);
            } else {
                continue;
            }
            let (msg, level) = (msg.as_str(), level.as_str());
            if let Some(b) = b {
                if msg == "Setting up backup log" {
                    errors.remove(&b);
                }
                if level == "error" && msg != "backup failed" {
                    errors.insert(b.clone());
                }
                if msg == "backup failed" {
                    failed.insert(b.clone());
                }
                if msg == "Backup completed" {
                    let o = if errors.contains(&b) {
                        "PartiallyFailed"
                    } else {
                        "Completed"
                    };
                    backups.insert(b.clone(), o.into());
                }
                if let Some(p) = msg.strip_prefix("Initial backup processing complete, moving to ")
                {
                    let o = match p {
                        "Finalizing" => "Completed",
                        "FinalizingPartiallyFailed" => "PartiallyFailed",
                        "Failed" => "Failed",
                        _ => "pending",
                    };
                    backups.insert(b.clone(), o.into());
                }
                if let Some(p) = msg.strip_prefix(&format!("Marking backup {b} ")) {
                    let o = if p == "FinalizingPartiallyFailed" {
                        "PartiallyFailed"
                    } else {
                        "Completed"
                    };
                    backups.insert(b.clone(), o.into());
                }
            }
            if let Some(r) = r {
                if msg.contains("restore error: ") {
                    restore_err.insert(r.clone());
                }
                if msg == "restore completed" || msg.starts_with("Marking restore ") {
                    let o = if restore_err.contains(&r) || msg == "Marking restore PartiallyFailed"
                    {
                        "PartiallyFailed"
                    } else {
                        "Completed"
                    };
                    restores.insert(r, o.into());
                }
            }
        }
    }
    for b in failed {
        backups.insert(b, "Failed".into());
    }
    (backups, restores)
}

fn check_outcomes(dir: &Path, s: &GenSummary) {
    let per_dir = check_tree(dir, s);
    let (b, r) = derive(&per_dir);
    for x in &s.backups {
        assert_eq!(
            b.get(&x.name).map(String::as_str),
            Some(x.outcome.as_str()),
            "backup {} ({:?})",
            x.name,
            x.reason_class
        );
        assert_eq!(x.outcome == Outcome::Completed, x.reason_class.is_none());
    }
    assert_eq!(
        b.len(),
        s.backups.len(),
        "backups in the log but not in the manifest"
    );
    for x in &s.restores {
        assert_eq!(
            r.get(&x.name).map(String::as_str),
            Some(x.outcome.as_str()),
            "restore {}",
            x.name
        );
    }
    assert_eq!(r.len(), s.restores.len());
}

#[test]
fn exact_count_well_formed_and_outcomes_for_every_version() {
    for minor in 11..=18 {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path(), 5_000, 7 + u64::from(minor));
        o.velero_minor = Some(minor);
        let s = generate(&o).unwrap();
        assert_eq!(s.lines, 5_000);
        assert_eq!(
            s.velero_version.split('.').nth(1),
            Some(minor.to_string().as_str())
        );
        check_outcomes(dir.path(), &s);
        let seen: HashSet<Outcome> = s.backups.iter().map(|b| b.outcome).collect();
        assert_eq!(seen.len(), 4, "v1.{minor}: outcomes {seen:?}");
    }
}

#[test]
fn all_four_outcomes_in_small_trees_for_many_seeds() {
    for seed in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let s = generate(&opts(dir.path(), 5_000, seed)).unwrap();
        let seen: HashSet<Outcome> = s.backups.iter().map(|b| b.outcome).collect();
        assert_eq!(seen.len(), 4, "seed {seed}: {seen:?}");
        assert!(!s.restores.is_empty(), "seed {seed}: no restore");
        let m = manifest(dir.path());
        let outcomes: HashSet<&str> = m["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes.len(), 4);
        for b in m["backups"].as_array().unwrap() {
            assert_eq!(b["namespace"], "velero");
            assert!(b.get("schedule").is_some() && b.get("reason_class").is_some());
        }
    }
}

#[test]
fn deterministic_by_seed() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let sa = generate(&opts(a.path(), 8_000, 42)).unwrap();
    let sb = generate(&opts(b.path(), 8_000, 42)).unwrap();
    let sc = generate(&opts(c.path(), 8_000, 43)).unwrap();
    assert_eq!(sa, sb);
    assert_eq!(all_files(a.path()), all_files(b.path()));
    assert_ne!(all_files(a.path()), all_files(c.path()));
    assert_ne!(sa.backups, sc.backups);
}

#[test]
fn tiny_and_empty_trees_are_exact() {
    for n in [0u64, 1, 2, 9, 25, 60, 333] {
        let dir = tempfile::tempdir().unwrap();
        let s = generate(&opts(dir.path(), n, 5)).unwrap();
        assert_eq!(s.lines, n);
        check_outcomes(dir.path(), &s);
    }
}

#[test]
fn mix_partials_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let s = generate(&opts(dir.path(), 20_000, 3)).unwrap();
    let per_dir = check_tree(dir.path(), &s);
    let (mut server, mut na, mut gin, mut other, mut long) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut statuses = HashSet::new();
    let mut saw = HashSet::new();
    for (d, es) in &per_dir {
        let container = d.rsplit('/').next().unwrap();
        for (stream, c) in es {
            if c.len() > 16 * 1024 {
                long += 1;
            }
            let line = String::from_utf8_lossy(c);
            match container {
                "velero" if line.starts_with("time=\"") => server += 1,
                "node-agent" => na += 1,
                "velero-manager" if line.starts_with("[GIN] ") || line.starts_with("Error #") => {
                    gin += 1;
                    if let Some(st) = line.get(30..33) {
                        statuses.insert(st.to_string());
                    }
                }
                _ => other += 1,
            }
            for probe in [
                "Error #01: ",
                "?state=",
                "/?token=",
                "| fd00:10:244:1::1a2b |",
                "µs |",
                "worker count=1",
                "progress= ",
                "\\\"",
                "\\n\\t",
                "expiration=\"",
                "pluginName=velero-plugin-for-aws",
            ] {
                if line.contains(probe) {
                    saw.insert(probe);
                }
            }
            if container == "velero-manager" && stream == "stderr" {
                saw.insert("gin-stderr");
            }
        }
    }
    let total = (server + na + gin + other) as f64;
    let pct = |x: u64| x as f64 * 100.0 / total;
    assert!(
        (45.0..65.0).contains(&pct(server)),
        "server {}",
        pct(server)
    );
    assert!((5.0..16.0).contains(&pct(na)), "node-agent {}", pct(na));
    assert!((22.0..38.0).contains(&pct(gin)), "gin {}", pct(gin));
    assert!((2.0..10.0).contains(&pct(other)), "other {}", pct(other));
    assert!(long >= 1, "no line longer than 16 KiB");
    for st in [
        "200", "201", "204", "302", "401", "403", "404", "408", "500",
    ] {
        assert!(statuses.contains(st), "no Gin {st}");
    }
    assert_eq!(saw.len(), 12, "missing: {saw:?}");
    // A namespace a shipper must filter out.
    assert!(s.files.iter().any(|f| f.namespace == "kube-system"));
}

#[test]
fn rotation_produces_rotated_and_gz_files_and_counts_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), 30_000, 11);
    o.rotate_bytes = Some(256 * 1024);
    let s = generate(&o).unwrap();
    check_tree(dir.path(), &s);
    let names: Vec<&str> = s
        .files
        .iter()
        .map(|f| f.path.rsplit('/').next().unwrap())
        .collect();
    assert!(names
        .iter()
        .any(|n| n.starts_with("0.log.") && !n.ends_with(".gz")));
    assert!(names.iter().any(|n| n.ends_with(".gz")));
    let mut per_dir: HashMap<&str, usize> = HashMap::new();
    for f in &s.files {
        *per_dir
            .entry(f.path.rsplit_once('/').unwrap().0)
            .or_default() += 1;
        assert_eq!(f.compressed, f.path.ends_with(".gz"));
    }
    assert!(per_dir.values().all(|&n| n <= 5));
    // At most one uncompressed rotated file per container (the newest).
    for d in per_dir.keys() {
        let plain = s
            .files
            .iter()
            .filter(|f| f.path.starts_with(d) && f.path.contains(".log.") && !f.compressed)
            .count();
        assert!(plain <= 1, "{d}: {plain} plain rotated files");
    }
    // No leftover temporary files.
    assert!(all_files(dir.path()).keys().all(|p| !p.ends_with(".tmp")));
}

#[test]
fn rotation_keeps_at_most_five_files_and_reports_removed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), 30_000, 12);
    o.rotate_bytes = Some(64 * 1024);
    let s = generate(&o).unwrap();
    assert!(!s.removed_files.is_empty());
    let removed: u64 = s.removed_files.iter().map(|f| f.entries).sum();
    let present: u64 = s.files.iter().map(|f| f.entries).sum();
    assert_eq!(present + removed, 30_000);
    check_tree(dir.path(), &s);
    for f in &s.removed_files {
        assert!(!dir.path().join(&f.path).exists());
    }
}

#[test]
fn start_time_and_rate() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), 300, 2);
    o.start_unix = 1_700_000_000; // 2023-11-14T22:13:20Z
    o.rate = Some(3_000);
    let t = std::time::Instant::now();
    let s = generate(&o).unwrap();
    assert!(t.elapsed() >= std::time::Duration::from_millis(80));
    assert_eq!(s.lines, 300);
    let per_dir = check_tree(dir.path(), &s);
    assert!(!per_dir.is_empty());
    let server = s.files.iter().find(|f| f.container == "velero").unwrap();
    let recs = read_cri(&dir.path().join(&server.path));
    assert!(recs[0].ts.0.starts_with("2023-11-14T22:13:2"));
    // Log time advances by 1/rate per entry: 300 entries span about 0.1 s.
    assert_eq!(s.start_unix, 1_700_000_000);
    assert!(s.end_unix - s.start_unix <= 1);
}

#[test]
fn invalid_version_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), 10, 1);
    o.velero_minor = Some(9);
    assert_eq!(
        generate(&o).unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
}

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pods")
}

/// Reads a docker json-file log: entries are records joined until one ends with `\n`.
fn read_docker(path: &Path) -> Vec<((String, u32), String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut open: HashMap<String, Vec<u8>> = HashMap::new();
    for line in fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts = parse_ts(v["time"].as_str().unwrap()).unwrap();
        let stream = v["stream"].as_str().unwrap().to_string();
        let log = v["log"].as_str().unwrap();
        let buf = open.entry(stream.clone()).or_default();
        buf.extend_from_slice(log.as_bytes());
        if buf.ends_with(b"\n") {
            buf.pop();
            out.push((ts, stream, std::mem::take(buf)));
        }
    }
    assert!(open.values().all(|b| b.is_empty()));
    out
}

#[test]
fn fixtures_are_well_formed_and_match_expected_md() {
    let root = fixture_root();
    let files = all_files(&root);
    // (pod directory, physical lines, entries after joining partial lines). veloki also keeps
    // multi-line records together (EXPECTED.md counts those); this decoder does not.
    let want: &[(&str, usize, usize)] = &[
        ("velero_velero-7d9f8c6b5-x2x9k_", 147, 145),
        ("velero_velero-json-5c4b7d8f9-q7w2e_", 21, 21),
        ("velero_node-agent-abcde_", 35, 35),
        ("velero_daily-backup-29071234-xk2lp_", 4, 4),
        ("velero-manager_velero-manager-6b8d9c7f4-p9l2m_", 50, 50),
        ("velero_velero-docker-6f7d8c9b4-m3n8p_", 8, 7),
        ("kube-system_coredns-7db6d8ff4d-kx8vq_", 6, 6),
    ];
    assert_eq!(files.len(), want.len());
    let window = ("2026-04-10T02:00:00".to_string(), 0);
    let end = ("2026-04-10T03:00:00".to_string(), 0);
    let mut per_dir: BTreeMap<String, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    for (p, bytes) in &files {
        assert!(path_ok(p), "bad path {p}");
        let &(_, physical, n) = want
            .iter()
            .find(|w| p.starts_with(w.0))
            .unwrap_or_else(|| panic!("unexpected fixture {p}"));
        assert_eq!(
            bytes.iter().filter(|&&b| b == b'\n').count(),
            physical,
            "{p}"
        );
        let d = p.rsplit_once('/').unwrap().0.to_string();
        let (stamps, es): (Vec<Stamp>, Entries) = if p.contains("-docker-") {
            let e = read_docker(&root.join(p));
            // Timestamps of every record, joined or not.
            let stamps = fs::read_to_string(root.join(p))
                .unwrap()
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    parse_ts(v["time"].as_str().unwrap()).unwrap()
                })
                .collect();
            (stamps, e.into_iter().map(|(_, s, c)| (s, c)).collect())
        } else {
            let recs = read_cri(&root.join(p));
            (
                recs.iter().map(|r| r.ts.clone()).collect(),
                entries_split(&recs, None),
            )
        };
        assert_eq!(es.len(), n, "entries of {p}");
        assert!(
            stamps.windows(2).all(|w| w[0] < w[1]),
            "{p}: not increasing"
        );
        assert!(
            stamps.iter().all(|t| *t >= window && *t < end),
            "{p}: outside window"
        );
        per_dir.insert(d, es);
    }
    let (b, r) = derive(&per_dir);
    let want_b = [
        ("daily-20260410020005", "Completed"),
        ("hourly-apps-20260410021003", "PartiallyFailed"),
        ("weekly-full-20260410022003", "Failed"),
        ("pre-upgrade-shop-1", "PartiallyFailed"),
        ("hourly-apps-20260410024002", "Completed"),
        ("adhoc-full-2", "Failed"),
        ("manual-billing-1", "Failed"),
        ("nightly-db-20260410023000", "Failed"),
        ("dev-smoke-1", "Completed"),
        ("core-cl1-daily-backup-20260410020001", "PartiallyFailed"),
    ];
    for (name, outcome) in want_b {
        assert_eq!(b.get(name).map(String::as_str), Some(outcome), "{name}");
    }
    assert_eq!(b.len(), want_b.len(), "{b:?}");
    assert_eq!(
        r.get("daily-20260410020005-20260410024510")
            .map(String::as_str),
        Some("Completed")
    );
    assert_eq!(
        r.get("hourly-apps-20260410021003-20260410025020")
            .map(String::as_str),
        Some("PartiallyFailed")
    );
    assert_eq!(r.len(), 2);
}
