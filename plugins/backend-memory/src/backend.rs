//! The in-memory store: records in slots, embeddings in one contiguous array.

use std::collections::HashMap;

use coda_core::vector::{dot, TopK};
use coda_core::{
    Error, Filter, Memory, MemoryBackend, MemoryId, MemoryRecord, Result, ScoredMemory,
};
use parking_lot::RwLock;

/// Memories in insertion order; embedding `i` lives at `vectors[i*dims..(i+1)*dims]`.
struct Slots {
    memories: Vec<Memory>,
    /// Insertion order stamp of each slot, so deletes (swap-remove) keep order recoverable.
    stamps: Vec<u64>,
    vectors: Vec<f32>,
    index: HashMap<MemoryId, usize>,
    next_stamp: u64,
}

impl Slots {
    fn new() -> Self {
        Slots {
            memories: Vec::new(),
            stamps: Vec::new(),
            vectors: Vec::new(),
            index: HashMap::new(),
            next_stamp: 0,
        }
    }

    fn vector(&self, slot: usize, dims: usize) -> &[f32] {
        &self.vectors[slot * dims..(slot + 1) * dims]
    }

    fn push(&mut self, record: MemoryRecord) {
        self.index.insert(record.memory.id, self.memories.len());
        self.memories.push(record.memory);
        self.stamps.push(self.next_stamp);
        self.next_stamp += 1;
        self.vectors.extend_from_slice(&record.embedding);
    }

    fn record(&self, slot: usize, dims: usize) -> MemoryRecord {
        MemoryRecord {
            memory: self.memories[slot].clone(),
            embedding: self.vector(slot, dims).to_vec(),
        }
    }

    /// Slots in insertion order.
    fn in_order(&self) -> Vec<usize> {
        let mut slots: Vec<usize> = (0..self.memories.len()).collect();
        slots.sort_unstable_by_key(|&s| self.stamps[s]);
        slots
    }
}

/// Backend `memory`: everything in process memory, exact search.
pub struct InMemoryBackend {
    dims: usize,
    slots: RwLock<Slots>,
}

impl InMemoryBackend {
    /// An empty backend for embeddings of `dims`.
    pub fn new(dims: usize) -> Self {
        InMemoryBackend {
            dims,
            slots: RwLock::new(Slots::new()),
        }
    }

    fn check_dims(&self, record: &MemoryRecord) -> Result<()> {
        if record.embedding.len() != self.dims {
            return Err(Error::invalid(
                "embedding",
                format!(
                    "has {} dimensions; this backend holds {}",
                    record.embedding.len(),
                    self.dims
                ),
            ));
        }
        Ok(())
    }
}

impl MemoryBackend for InMemoryBackend {
    fn insert(&self, record: MemoryRecord) -> Result<()> {
        self.check_dims(&record)?;
        let mut slots = self.slots.write();
        if slots.index.contains_key(&record.memory.id) {
            return Err(Error::invalid(
                "id",
                format!("memory {} already exists", record.memory.id),
            ));
        }
        slots.push(record);
        Ok(())
    }

    fn get(&self, id: MemoryId) -> Result<Option<MemoryRecord>> {
        let slots = self.slots.read();
        Ok(slots.index.get(&id).map(|&s| slots.record(s, self.dims)))
    }

    fn update(&self, record: MemoryRecord) -> Result<()> {
        self.check_dims(&record)?;
        let mut slots = self.slots.write();
        let slot = *slots
            .index
            .get(&record.memory.id)
            .ok_or_else(|| Error::memory_not_found(record.memory.id))?;
        let dims = self.dims;
        slots.vectors[slot * dims..(slot + 1) * dims].copy_from_slice(&record.embedding);
        slots.memories[slot] = record.memory;
        Ok(())
    }

    fn delete(&self, id: MemoryId) -> Result<bool> {
        let mut slots = self.slots.write();
        let Some(slot) = slots.index.remove(&id) else {
            return Ok(false);
        };
        let last = slots.memories.len() - 1;
        let dims = self.dims;
        if slot != last {
            slots.vectors.copy_within(last * dims..(last + 1) * dims, slot * dims);
            let moved = slots.memories[last].id;
            slots.index.insert(moved, slot);
        }
        slots.memories.swap_remove(slot);
        slots.stamps.swap_remove(slot);
        slots.vectors.truncate(last * dims);
        Ok(true)
    }

    fn list(&self, offset: usize, limit: usize, filter: Option<&Filter>) -> Result<Vec<Memory>> {
        let slots = self.slots.read();
        let mut matching: Vec<usize> = (0..slots.memories.len())
            .filter(|&s| filter.is_none_or(|f| f.matches(&slots.memories[s].metadata)))
            .collect();
        // Newest first; among equal timestamps, the later insertion first.
        matching.sort_unstable_by(|&a, &b| {
            let (ma, mb) = (&slots.memories[a].metadata, &slots.memories[b].metadata);
            mb.timestamp
                .cmp(&ma.timestamp)
                .then(slots.stamps[b].cmp(&slots.stamps[a]))
        });
        Ok(matching
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|s| slots.memories[s].clone())
            .collect())
    }

    fn search(
        &self,
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
    ) -> Result<Vec<ScoredMemory>> {
        if query.len() != self.dims {
            return Err(Error::invalid(
                "query",
                format!("has {} dimensions; expected {}", query.len(), self.dims),
            ));
        }
        let slots = self.slots.read();
        let mut top = TopK::new(limit);
        if limit > 0 {
            for (slot, vector) in slots.vectors.chunks_exact(self.dims).enumerate() {
                if let Some(f) = filter {
                    if !f.matches(&slots.memories[slot].metadata) {
                        continue;
                    }
                }
                let score = dot(query, vector);
                if score >= min_similarity {
                    top.offer(slot, score);
                }
            }
        }
        Ok(top
            .into_sorted()
            .into_iter()
            .map(|(slot, score)| ScoredMemory::new(slots.memories[slot].clone(), score))
            .collect())
    }

    fn len(&self) -> Result<usize> {
        Ok(self.slots.read().memories.len())
    }

    fn scan(&self, visit: &mut dyn FnMut(&MemoryRecord)) -> Result<()> {
        let slots = self.slots.read();
        for slot in slots.in_order() {
            visit(&slots.record(slot, self.dims));
        }
        Ok(())
    }

    fn replace_all(&self, records: Vec<MemoryRecord>) -> Result<()> {
        let mut fresh = Slots::new();
        for record in records {
            self.check_dims(&record)?;
            if fresh.index.contains_key(&record.memory.id) {
                return Err(Error::invalid(
                    "id",
                    format!("memory {} appears twice", record.memory.id),
                ));
            }
            fresh.push(record);
        }
        *self.slots.write() = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn passes_the_backend_conformance_kit() {
        coda_core::testkit::backend_conformance(&|| Arc::new(InMemoryBackend::new(8)));
    }

    #[test]
    fn wrong_dimensions_are_refused() {
        let backend = InMemoryBackend::new(8);
        assert!(backend.search(&[1.0; 4], 1, 0.0, None).is_err());
    }
}
