//! Recently created or loaded snapshots, kept in memory by id.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::snapshot::Snapshot;

/// A cached snapshot and where it is saved, if it is.
pub(super) struct Cached {
    pub(super) snapshot: Arc<Snapshot>,
    pub(super) location: Option<String>,
}

/// Recently created or loaded snapshots, by id, at most `capacity`.
pub(super) struct SnapshotCache {
    capacity: usize,
    order: VecDeque<String>,
    pub(super) entries: HashMap<String, Cached>,
}

impl SnapshotCache {
    pub(super) fn new(capacity: usize) -> Self {
        SnapshotCache {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            entries: HashMap::new(),
        }
    }

    pub(super) fn put(&mut self, snapshot: Arc<Snapshot>, location: Option<String>) {
        let id = snapshot.snapshot_id.clone();
        if self
            .entries
            .insert(id.clone(), Cached { snapshot, location })
            .is_none()
        {
            self.order.push_back(id);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }

    pub(super) fn remove(&mut self, id: &str) -> bool {
        self.order.retain(|o| o != id);
        self.entries.remove(id).is_some()
    }
}
