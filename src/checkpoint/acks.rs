//! The ordered ack tracker: a file's committed offset moves only when Loki has answered for the
//! batch holding that offset *and for every earlier batch* holding entries of the same file.

use std::collections::VecDeque;

/// Per-file queue of (batch sequence, offset, answered).
#[derive(Clone, Debug, Default)]
pub struct AckQueue {
    queue: VecDeque<(u64, u64, bool)>,
    committed: u64,
}

impl AckQueue {
    /// A queue whose committed offset starts at `committed`.
    pub fn new(committed: u64) -> AckQueue {
        AckQueue {
            queue: VecDeque::new(),
            committed,
        }
    }

    /// The offset every byte before which has been delivered.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Batches not yet answered.
    pub fn outstanding(&self) -> usize {
        self.queue.len()
    }

    /// Records that batch `seq` carries this file's entries up to `offset` (in batch order).
    pub fn expect(&mut self, seq: u64, offset: u64) {
        self.queue.push_back((seq, offset, false));
    }

    /// Records Loki's answer for batch `seq`; returns true when the committed offset moved.
    pub fn ack(&mut self, seq: u64) -> bool {
        if let Some(e) = self.queue.iter_mut().find(|e| e.0 == seq) {
            e.2 = true;
        }
        let mut moved = false;
        while let Some(&(_, off, true)) = self.queue.front() {
            self.queue.pop_front();
            if off > self.committed {
                self.committed = off;
                moved = true;
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_a_contiguous_prefix() {
        let mut q = AckQueue::new(0);
        q.expect(1, 100);
        q.expect(2, 200);
        q.expect(3, 300);
        assert!(!q.ack(2));
        assert_eq!(q.committed(), 0);
        assert!(q.ack(1));
        assert_eq!(q.committed(), 200);
        assert!(q.ack(3));
        assert_eq!(q.committed(), 300);
        assert_eq!(q.outstanding(), 0);
    }
}
