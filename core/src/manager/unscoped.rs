//! The calls without a scope: they act on user `default`, session `default`, exactly as
//! before scopes existed (SPEC §8).

use std::sync::Arc;

use super::{MemoryManager, MemoryPatch, SnapshotListing};
use crate::config::SearchMode;
use crate::diff::SnapshotDiff;
use crate::filter::Filter;
use crate::model::{Memory, MemoryId, NewMemory, ScoredMemory};
use crate::retention::{PrunePolicy, SnapshotFilter};
use crate::snapshot::{Snapshot, SnapshotMeta};
use crate::Result;

/// The unscoped calls: user `default`, as before scopes existed.
impl MemoryManager {
    /// Adds a long-term memory to user `default`.
    pub fn add_memory(&self, new: NewMemory) -> Result<Memory> {
        self.default_scope().add_memory(new)
    }

    /// Searches user `default`'s memories by the configured mode; publishes `memory_retrieve`.
    pub fn get_memories(
        &self,
        query: &str,
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
    ) -> Result<Vec<ScoredMemory>> {
        self.default_scope()
            .get_memories(query, limit, min_similarity, filter)
    }

    /// Searches user `default`'s memories by `mode` (the configured default when `None`).
    pub fn search_memories(
        &self,
        query: &str,
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
        mode: Option<SearchMode>,
    ) -> Result<Vec<ScoredMemory>> {
        self.default_scope()
            .search_memories(query, limit, min_similarity, filter, mode)
    }

    /// User `default`'s memory with `id`.
    pub fn get_memory(&self, id: MemoryId) -> Result<Memory> {
        self.default_scope().get_memory(id)
    }

    /// A page of user `default`'s memories, newest first.
    pub fn list_memories(
        &self,
        offset: usize,
        limit: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Memory>> {
        self.default_scope().list_memories(offset, limit, filter)
    }

    /// How many long-term memories are stored, over every user.
    pub fn memory_count(&self) -> Result<usize> {
        self.backend.len()
    }

    /// Applies `patch` to user `default`'s memory `id`.
    pub fn update_memory(&self, id: MemoryId, patch: MemoryPatch) -> Result<Memory> {
        self.default_scope().update_memory(id, patch)
    }

    /// Removes user `default`'s memory `id`.
    pub fn delete_memory(&self, id: MemoryId) -> Result<Memory> {
        self.default_scope().delete_memory(id)
    }

    /// Captures user `default` and session `default` in memory; returns its metadata.
    pub fn create_snapshot(&self) -> Result<SnapshotMeta> {
        self.default_scope().create_snapshot()
    }

    /// User `default` and session `default` as a snapshot, without keeping it.
    pub fn capture(&self) -> Result<Snapshot> {
        self.default_scope().capture()
    }

    /// User `default`'s snapshot with `id`.
    pub fn get_snapshot(&self, id: &str) -> Result<Arc<Snapshot>> {
        self.default_scope().get_snapshot(id)
    }

    /// Writes user `default`'s snapshot `id` to the store; returns its location.
    pub fn save_snapshot(&self, id: &str) -> Result<String> {
        self.default_scope().save_snapshot(id)
    }

    /// Removes user `default`'s saved snapshots as `policy` says.
    pub fn prune_snapshots(&self, policy: &PrunePolicy) -> Result<Vec<String>> {
        self.default_scope().prune_snapshots(policy)
    }

    /// Compares two of user `default`'s snapshots; either may be `current`.
    pub fn diff_snapshots(&self, a: &str, b: &str) -> Result<SnapshotDiff> {
        self.default_scope().diff_snapshots(a, b)
    }

    /// Reads a saved snapshot of user `default` from any location the store understands.
    pub fn load_snapshot(&self, location: &str) -> Result<String> {
        self.default_scope().load_snapshot(location)
    }

    /// Restores user `default` and session `default` to snapshot `id`, all or nothing.
    pub fn apply_snapshot(&self, id: &str) -> Result<()> {
        self.default_scope().apply_snapshot(id)
    }

    /// User `default`'s snapshots, newest first.
    pub fn list_snapshots(&self) -> Result<Vec<SnapshotListing>> {
        self.default_scope().list_snapshots()
    }

    /// User `default`'s snapshots passing `filter`, newest first.
    pub fn find_snapshots(&self, filter: &SnapshotFilter) -> Result<Vec<SnapshotListing>> {
        self.default_scope().find_snapshots(filter)
    }

    /// Removes user `default`'s snapshot `id` from memory and from the store.
    pub fn delete_snapshot(&self, id: &str) -> Result<()> {
        self.default_scope().delete_snapshot(id)
    }
}
