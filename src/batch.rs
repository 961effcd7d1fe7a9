//! Batch: groups enriched entries per stream and remembers which file offsets each batch
//! covers.
//!
//! **In:** enriched entries. **Out:** sealed [`Batch`]es: every entry already framed as a
//! protobuf `EntryAdapter`, grouped by stream ([`StreamSpan`]), its entry count, and
//! `(file, offset)` pairs for the ack tracker; the push stage turns them into requests
//! (splitting, encoding, compression). **Guarantees:** a batch is sealed when its line bytes
//! reach `max_bytes`, its entries `max_entries`, or its first entry is older than `max_wait`;
//! entries are time-sorted per stream (stable, so file order breaks ties); stream labels are
//! rendered once per stream and only from closed sets (plus the pod identity and configured
//! statics); the number of distinct `pod` values is capped.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::labels::LineLabels;
use crate::model::{FileCtx, Metadata};
use crate::push::encode;

/// A fast hasher for small integer-like keys (FxHash).
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// HashMap with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Batching limits.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// Seal at this many line bytes.
    pub max_bytes: usize,
    /// Seal at this many entries.
    pub max_entries: usize,
    /// Seal this long after the first entry.
    pub max_wait: Duration,
    /// Keep structured metadata in the batch (to send it, or to append it to the line); false
    /// drops it.
    pub structured_metadata: bool,
    /// Most distinct `pod` label values; further pods are `other`.
    pub max_pods: usize,
}

/// A sealed batch.
#[derive(Debug)]
pub struct Batch {
    /// Sequence number (ack order).
    pub seq: u64,
    /// Entries framed as `StreamAdapter.entries` (protobuf field 2), each stream's entries
    /// contiguous and time-sorted; [`Batch::streams`] says which bytes belong to which stream.
    pub body: Vec<u8>,
    /// Entries in the batch.
    pub entries: usize,
    /// Line bytes in the batch.
    pub line_bytes: usize,
    /// `(file id, offset)`: the batch completes these files up to these offsets.
    pub acks: Vec<(u32, u64)>,
    /// The streams of the batch, in `body` order.
    pub streams: Vec<StreamSpan>,
}

/// One stream's entries in a [`Batch::body`].
#[derive(Clone, Debug)]
pub struct StreamSpan {
    /// The rendered label string.
    pub labels: Arc<str>,
    /// First byte in the body.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// Entries.
    pub entries: usize,
    /// The files these entries came from (ids of [`Batch::acks`]).
    pub files: Vec<u32>,
}

/// (namespace, pod, container).
type PodIdentity = (Arc<str>, Arc<str>, Arc<str>);

/// Interns streams: (pod identity, derived labels) → id → rendered label string.
pub struct StreamRegistry {
    by_file: FxHashMap<u32, u32>,
    pods: HashMap<PodIdentity, u32>,
    pod_names: HashMap<Arc<str>, ()>,
    ids: FxHashMap<(u32, LineLabels), u32>,
    labels: Vec<Arc<str>>,
    /// The labels as a JSON object, rendered on first use (dry run, `veloki parse`).
    labels_json: Vec<Option<Arc<str>>>,
    pod_info: Vec<PodIdentity>,
    statics: Vec<(String, String)>,
    max_pods: usize,
}

impl StreamRegistry {
    /// A registry adding `statics` (empty values are left out) to every stream.
    pub fn new(statics: &[(String, String)], max_pods: usize) -> StreamRegistry {
        StreamRegistry {
            by_file: FxHashMap::default(),
            pods: HashMap::new(),
            pod_names: HashMap::new(),
            ids: FxHashMap::default(),
            labels: Vec::new(),
            labels_json: Vec::new(),
            pod_info: Vec::new(),
            statics: statics
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .cloned()
                .collect(),
            max_pods: max_pods.max(1),
        }
    }

    /// Sorted label pairs of a stream (what the label string is rendered from).
    pub fn pairs<'a>(
        ns: &'a str,
        pod: &'a str,
        container: &'a str,
        job: &'a str,
        l: &LineLabels,
        statics: &'a [(String, String)],
    ) -> Vec<(&'a str, &'a str)> {
        let mut v: Vec<(&str, &str)> = vec![
            ("namespace", ns),
            ("pod", pod),
            ("container", container),
            ("job", job),
            ("component", l.component.as_str()),
            ("severity", l.severity.as_str()),
            ("operation", l.operation.as_str()),
            ("priority", l.priority.as_str()),
        ];
        if let Some(s) = l.backup_status {
            v.push(("backup_status", s.as_str()));
        }
        for (k, val) in statics {
            v.push((k.as_str(), val.as_str()));
        }
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    fn pod_key(&mut self, file_id: u32, ctx: &FileCtx) -> u32 {
        if let Some(&k) = self.by_file.get(&file_id) {
            return k;
        }
        let pod: Arc<str> =
            if self.pod_names.contains_key(&ctx.pod) || self.pod_names.len() < self.max_pods {
                self.pod_names.insert(ctx.pod.clone(), ());
                ctx.pod.clone()
            } else {
                Arc::from("other")
            };
        let key = (ctx.namespace.clone(), pod, ctx.container.clone());
        let next = self.pod_info.len() as u32;
        let k = *self.pods.entry(key.clone()).or_insert(next);
        if k == next {
            self.pod_info.push(key);
        }
        self.by_file.insert(file_id, k);
        k
    }

    /// The stream id for an entry of `file_id` with these labels.
    pub fn stream_id(&mut self, file_id: u32, ctx: &FileCtx, l: &LineLabels) -> u32 {
        let pk = self.pod_key(file_id, ctx);
        if let Some(&id) = self.ids.get(&(pk, *l)) {
            return id;
        }
        let (ns, pod, container) = &self.pod_info[pk as usize];
        let job = format!("{ns}/{container}");
        let s = encode::label_string(
            Self::pairs(ns, pod, container, &job, l, &self.statics).into_iter(),
        );
        let id = self.labels.len() as u32;
        self.labels.push(Arc::from(s));
        self.ids.insert((pk, *l), id);
        id
    }

    /// The rendered label string of a stream.
    pub fn label_string(&self, sid: u32) -> &Arc<str> {
        &self.labels[sid as usize]
    }

    /// The labels of a stream as a JSON object (`{"name":"value",…}`), rendered once.
    pub fn labels_json(&mut self, sid: u32) -> Arc<str> {
        let i = sid as usize;
        if self.labels_json.len() <= i {
            self.labels_json.resize(i + 1, None);
        }
        self.labels_json[i]
            .get_or_insert_with(|| {
                let mut out = Vec::new();
                encode::put_json_labels(&mut out, &self.labels[i]);
                Arc::from(String::from_utf8_lossy(&out).as_ref())
            })
            .clone()
    }

    /// Number of distinct streams created.
    pub fn stream_count(&self) -> usize {
        self.labels.len()
    }

    /// Forgets the pod key of a file (when the file is forgotten).
    pub fn forget_file(&mut self, file_id: u32) {
        self.by_file.remove(&file_id);
    }
}

/// The batcher.
///
/// Entries are encoded once into one arena per batch; an index of (stream slot, timestamp,
/// range) is sorted when the batch is sealed, so memory is one batch's bytes whatever the number
/// of streams.
pub struct Batcher {
    /// Stream interning.
    pub registry: StreamRegistry,
    opts: BatchOptions,
    arena: Vec<u8>,
    index: Vec<(u32, i64, u32, u32)>,
    slots: Vec<u32>,
    slot_files: Vec<Vec<u32>>,
    pos: FxHashMap<u32, u32>,
    sorted: bool,
    acks: Vec<(u32, u64)>,
    line_bytes: usize,
    first_at: Option<Instant>,
    seq: u64,
}

impl Batcher {
    /// A batcher with the given limits and static labels.
    pub fn new(opts: BatchOptions, statics: &[(String, String)]) -> Batcher {
        Batcher {
            registry: StreamRegistry::new(statics, opts.max_pods),
            opts,
            arena: Vec::new(),
            index: Vec::new(),
            slots: Vec::new(),
            slot_files: Vec::new(),
            pos: FxHashMap::default(),
            sorted: true,
            acks: Vec::new(),
            line_bytes: 0,
            first_at: None,
            seq: 0,
        }
    }

    /// Adds an entry; returns a sealed batch when this entry filled one.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        file_id: u32,
        ctx: &FileCtx,
        labels: &LineLabels,
        ts_ns: i64,
        line: &[u8],
        meta: &Metadata,
        commit_offset: u64,
    ) -> Option<Batch> {
        let sid = self.registry.stream_id(file_id, ctx, labels);
        let slot = match self.pos.get(&sid) {
            Some(&p) => p,
            None => {
                let p = self.slots.len() as u32;
                self.slots.push(sid);
                self.slot_files.push(Vec::new());
                self.pos.insert(sid, p);
                p
            }
        };
        let files = &mut self.slot_files[slot as usize];
        if !files.contains(&file_id) {
            files.push(file_id);
        }
        let start = self.arena.len();
        if self.opts.structured_metadata {
            encode::put_entry(&mut self.arena, ts_ns, line, meta.iter());
        } else {
            encode::put_entry(&mut self.arena, ts_ns, line, std::iter::empty());
        }
        if let Some(&(last_slot, last_ts, _, _)) = self.index.last() {
            if (slot, ts_ns) < (last_slot, last_ts) {
                self.sorted = false;
            }
        }
        self.index
            .push((slot, ts_ns, start as u32, self.arena.len() as u32));
        match self.acks.iter_mut().find(|(f, _)| *f == file_id) {
            Some(a) => a.1 = a.1.max(commit_offset),
            None => self.acks.push((file_id, commit_offset)),
        }
        self.line_bytes += line.len();
        if self.first_at.is_none() {
            self.first_at = Some(Instant::now());
        }
        if self.line_bytes >= self.opts.max_bytes || self.index.len() >= self.opts.max_entries {
            self.seal()
        } else {
            None
        }
    }

    /// True when no entry is waiting.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// True when the open batch is older than `max_wait`.
    pub fn due(&self) -> bool {
        self.first_at
            .is_some_and(|t| t.elapsed() >= self.opts.max_wait)
    }

    /// Seals the open batch (if it has entries).
    pub fn seal(&mut self) -> Option<Batch> {
        if self.index.is_empty() {
            return None;
        }
        if !self.sorted {
            // Stable: entries with equal timestamps keep file order.
            self.index.sort_by_key(|e| (e.0, e.1));
        }
        let mut body = Vec::with_capacity(self.arena.len());
        let mut streams = Vec::with_capacity(self.slots.len());
        let arena = &self.arena;
        let mut i = 0;
        while i < self.index.len() {
            let slot = self.index[i].0;
            let j = i + self.index[i..].partition_point(|e| e.0 == slot);
            let start = body.len();
            for &(_, _, a, b) in &self.index[i..j] {
                body.extend_from_slice(&arena[a as usize..b as usize]);
            }
            streams.push(StreamSpan {
                labels: self
                    .registry
                    .label_string(self.slots[slot as usize])
                    .clone(),
                start,
                end: body.len(),
                entries: j - i,
                files: std::mem::take(&mut self.slot_files[slot as usize]),
            });
            i = j;
        }
        self.seq += 1;
        let batch = Batch {
            seq: self.seq,
            body,
            entries: self.index.len(),
            line_bytes: self.line_bytes,
            acks: std::mem::take(&mut self.acks),
            streams,
        };
        self.index.clear();
        self.slots.clear();
        self.slot_files.clear();
        self.pos.clear();
        self.arena.clear();
        self.sorted = true;
        self.line_bytes = 0;
        self.first_at = None;
        // Keep the arena for the next batch, but never more than a couple of batches' worth.
        let keep = 2 * self.opts.max_bytes + (1 << 20);
        if self.arena.capacity() > keep {
            self.arena = Vec::new();
        }
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::labels::{Component, Operation, Priority, Severity};
    use crate::model::Hint;
    use crate::push::proto::PushRequest;
    use prost::Message;

    fn labels(sev: Severity) -> LineLabels {
        LineLabels {
            component: Component::VeleroServer,
            severity: sev,
            operation: Operation::Backup,
            backup_status: None,
            priority: Priority::Low,
        }
    }

    #[test]
    fn groups_sorts_and_seals() {
        let opts = BatchOptions {
            max_bytes: 1 << 20,
            max_entries: 3,
            max_wait: Duration::from_secs(1),
            structured_metadata: true,
            max_pods: 10,
        };
        let mut b = Batcher::new(
            opts,
            &[
                ("cluster".into(), "c1".into()),
                ("node".into(), String::new()),
            ],
        );
        let ctx = FileCtx::new("velero", "velero-abc", "velero", Hint::Velero);
        let mut meta = Metadata::default();
        meta.push("stream", "stdout");
        assert!(b
            .add(1, &ctx, &labels(Severity::Info), 20, b"second", &meta, 10)
            .is_none());
        assert!(b
            .add(1, &ctx, &labels(Severity::Error), 15, b"err", &meta, 20)
            .is_none());
        let batch = b
            .add(1, &ctx, &labels(Severity::Info), 10, b"first", &meta, 30)
            .unwrap();
        assert_eq!(batch.entries, 3);
        assert_eq!(batch.acks, vec![(1, 30)]);
        assert_eq!(batch.streams[0].files, vec![1]);
        let req = PushRequest::decode(
            crate::push::request::protobuf_body(&batch.body, &batch.streams).as_slice(),
        )
        .unwrap();
        assert_eq!(req.streams.len(), 2);
        let info = &req.streams[0];
        assert_eq!(
            info.labels,
            r#"{cluster="c1", component="velero-server", container="velero", job="velero/velero", namespace="velero", operation="backup", pod="velero-abc", priority="low", severity="info"}"#
        );
        let lines: Vec<&str> = info.entries.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines, vec!["first", "second"]);
        assert!(b.seal().is_none());
    }

    #[test]
    fn pod_cap() {
        let mut r = StreamRegistry::new(&[], 2);
        let l = labels(Severity::Info);
        for i in 0..10u32 {
            let ctx = FileCtx::new("velero", &format!("p{i}"), "c", Hint::Auto);
            r.stream_id(i, &ctx, &l);
        }
        assert_eq!(r.stream_count(), 3);
        assert!(r.label_string(2).contains("pod=\"other\""));
    }
}
