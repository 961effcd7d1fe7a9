//! Tests of `veloki gen`.

use veloki::gen::{generate, GenOptions};

#[test]
#[ignore]
fn dump() {
    let dir = std::env::var("GEN_OUT").unwrap_or_else(|_| "/tmp/vg".into());
    let _ = std::fs::remove_dir_all(&dir);
    let mut o = GenOptions::new(&dir);
    o.lines = std::env::var("GEN_LINES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    o.seed = std::env::var("GEN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    o.velero_minor = std::env::var("GEN_MINOR").ok().and_then(|s| s.parse().ok());
    let t = std::time::Instant::now();
    let s = generate(&o).unwrap();
    eprintln!("{} lines {} bytes in {:?}", s.lines, s.bytes, t.elapsed());
}
