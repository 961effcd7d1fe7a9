//! `veloki gen`: writes a realistic kubelet-style pods tree (scaffold; the generator replaces it).

use std::path::PathBuf;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Root of the pods tree to write (created if missing).
    pub out: PathBuf,
    /// Total number of log lines (entries) to write across all files.
    pub lines: u64,
    /// Seed: the same options and seed give byte-identical trees.
    pub seed: u64,
}

/// What was generated.
#[derive(Clone, Debug, Default)]
pub struct GenSummary {
    /// Entries written.
    pub lines: u64,
}

/// Writes the tree.
pub fn generate(opts: &GenOptions) -> std::io::Result<GenSummary> {
    let _ = opts;
    Ok(GenSummary::default())
}
