//! Structured metadata of one entry (Loki 3): the high-cardinality facts, in one reusable buffer.

/// Structured metadata of one entry: key/value pairs in one reusable buffer.
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    pairs: Vec<(&'static str, u32, u32)>,
    buf: String,
}

/// Longest metadata value kept (bytes); longer values are cut at a character boundary.
pub const MAX_METADATA_VALUE: usize = 4096;

impl Metadata {
    /// Removes every pair, keeping capacity.
    pub fn clear(&mut self) {
        self.pairs.clear();
        self.buf.clear();
    }

    /// Adds a pair (empty values are skipped).
    pub fn push(&mut self, key: &'static str, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut end = value.len().min(MAX_METADATA_VALUE);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        let start = self.buf.len();
        self.buf.push_str(&value[..end]);
        self.pairs.push((key, start as u32, self.buf.len() as u32));
    }

    /// Adds a pair formatted in place.
    pub fn push_fmt(&mut self, key: &'static str, args: std::fmt::Arguments<'_>) {
        use std::fmt::Write;
        let start = self.buf.len();
        let _ = self.buf.write_fmt(args);
        if self.buf.len() > start {
            self.pairs.push((key, start as u32, self.buf.len() as u32));
        }
    }

    /// The pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> + Clone + '_ {
        self.pairs
            .iter()
            .map(|(k, s, e)| (*k, self.buf.get(*s as usize..*e as usize).unwrap_or("")))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}
