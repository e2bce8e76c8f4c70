//! The `MemoryBackend` trait: where long-term memories and their embeddings live.

use std::sync::Arc;

use crate::embed::Embedder;
use crate::filter::Filter;
use crate::model::{Memory, MemoryId, MemoryRecord, ScoredMemory};
use crate::Result;

/// What a backend factory is given besides its options.
#[non_exhaustive]
pub struct BackendContext {
    /// The configured embedder; a backend that persists vectors compares its name and dims with
    /// what it stored, and re-embeds or refuses when they differ.
    pub embedder: Arc<dyn Embedder>,
}

impl BackendContext {
    /// A context for `embedder`.
    pub fn new(embedder: Arc<dyn Embedder>) -> Self {
        BackendContext { embedder }
    }
}

/// One change to long-term memory, as a durable backend logs it.
///
/// This is the seam for replication: a backend's log is a sequence of `Change`s, so a future
/// shared store (one JetStream stream per deployment) can carry exactly these records.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new memory.
    Insert(MemoryRecord),
    /// A memory replaced by a new version with the same id.
    Update(MemoryRecord),
    /// A memory removed.
    Delete(MemoryId),
    /// Every memory replaced at once (snapshot apply, clear).
    ReplaceAll(Vec<MemoryRecord>),
}

/// Storage for long-term memories.
///
/// Implementations are shared between threads and must make each call atomic: a reader sees a
/// change entirely or not at all. Embeddings arrive L2-normalised, all of one length.
pub trait MemoryBackend: Send + Sync + 'static {
    /// Adds a memory; an existing id is an [`Error::Invalid`](crate::Error::Invalid).
    fn insert(&self, record: MemoryRecord) -> Result<()>;

    /// The memory with `id`, if any.
    fn get(&self, id: MemoryId) -> Result<Option<MemoryRecord>>;

    /// Replaces the memory with the record's id; a missing id is [`Error::NotFound`](crate::Error::NotFound).
    fn update(&self, record: MemoryRecord) -> Result<()>;

    /// Removes the memory with `id`; returns whether it existed.
    fn delete(&self, id: MemoryId) -> Result<bool>;

    /// A page of memories matching `filter`, newest first (by timestamp).
    fn list(&self, offset: usize, limit: usize, filter: Option<&Filter>) -> Result<Vec<Memory>>;

    /// The `limit` memories most similar to `query` with similarity at least `min_similarity`
    /// and matching `filter`, most similar first.
    fn search(
        &self,
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
    ) -> Result<Vec<ScoredMemory>>;

    /// How many memories are stored.
    fn len(&self) -> Result<usize>;

    /// Whether no memory is stored.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Visits every stored record, oldest insertion first, without copying them.
    fn scan(&self, visit: &mut dyn FnMut(&MemoryRecord)) -> Result<()>;

    /// Every stored record, oldest insertion first (for snapshots).
    fn export(&self) -> Result<Vec<MemoryRecord>> {
        let mut out = Vec::with_capacity(self.len()?);
        self.scan(&mut |record| out.push(record.clone()))?;
        Ok(out)
    }

    /// Replaces every memory with `records`, atomically: on error nothing changed.
    fn replace_all(&self, records: Vec<MemoryRecord>) -> Result<()>;

    /// Makes every acknowledged change durable.
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}
