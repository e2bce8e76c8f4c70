//! One owner's memories: records in slots, embeddings in one contiguous array.

use std::collections::HashMap;

use coda_core::vector::{dot, TopK};
use coda_core::{Filter, Memory, MemoryId, MemoryRecord, Scope, ScoredMemory};

/// Memories in insertion order; embedding `i` lives at `vectors[i*dims..(i+1)*dims]`.
pub(crate) struct Slots {
    memories: Vec<Memory>,
    /// Insertion order stamp of each slot, so deletes (swap-remove) keep order recoverable.
    stamps: Vec<u64>,
    vectors: Vec<f32>,
    index: HashMap<MemoryId, usize>,
    next_stamp: u64,
    dims: usize,
}

impl Slots {
    pub(crate) fn new(dims: usize) -> Self {
        Slots {
            memories: Vec::new(),
            stamps: Vec::new(),
            vectors: Vec::new(),
            index: HashMap::new(),
            next_stamp: 0,
            dims,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.memories.len()
    }

    fn vector(&self, slot: usize) -> &[f32] {
        &self.vectors[slot * self.dims..(slot + 1) * self.dims]
    }

    pub(crate) fn push(&mut self, record: MemoryRecord) {
        self.index.insert(record.memory.id, self.memories.len());
        self.memories.push(record.memory);
        self.stamps.push(self.next_stamp);
        self.next_stamp += 1;
        self.vectors.extend_from_slice(&record.embedding);
    }

    fn record(&self, slot: usize) -> MemoryRecord {
        MemoryRecord {
            memory: self.memories[slot].clone(),
            embedding: self.vector(slot).to_vec(),
        }
    }

    pub(crate) fn get(&self, id: MemoryId) -> Option<MemoryRecord> {
        self.index.get(&id).map(|&s| self.record(s))
    }

    pub(crate) fn memory(&self, id: MemoryId) -> Option<&Memory> {
        self.index.get(&id).map(|&s| &self.memories[s])
    }

    /// Replaces the record with the same id; false when there is none.
    pub(crate) fn replace(&mut self, record: MemoryRecord) -> bool {
        let Some(&slot) = self.index.get(&record.memory.id) else {
            return false;
        };
        let dims = self.dims;
        self.vectors[slot * dims..(slot + 1) * dims].copy_from_slice(&record.embedding);
        self.memories[slot] = record.memory;
        true
    }

    pub(crate) fn remove(&mut self, id: MemoryId) -> bool {
        let Some(slot) = self.index.remove(&id) else {
            return false;
        };
        let last = self.memories.len() - 1;
        let dims = self.dims;
        if slot != last {
            self.vectors
                .copy_within(last * dims..(last + 1) * dims, slot * dims);
            let moved = self.memories[last].id;
            self.index.insert(moved, slot);
        }
        self.memories.swap_remove(slot);
        self.stamps.swap_remove(slot);
        self.vectors.truncate(last * dims);
        true
    }

    /// Slots in insertion order.
    fn in_order(&self) -> Vec<usize> {
        let mut slots: Vec<usize> = (0..self.memories.len()).collect();
        slots.sort_unstable_by_key(|&s| self.stamps[s]);
        slots
    }

    pub(crate) fn scan(&self, visit: &mut dyn FnMut(&MemoryRecord)) {
        for slot in self.in_order() {
            visit(&self.record(slot));
        }
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = MemoryId> + '_ {
        self.memories.iter().map(|m| m.id)
    }

    fn wanted(&self, slot: usize, scope: &Scope, filter: Option<&Filter>) -> bool {
        let memory = &self.memories[slot];
        scope.matches(memory) && filter.is_none_or(|f| f.matches(memory))
    }

    pub(crate) fn list(
        &self,
        scope: &Scope,
        offset: usize,
        limit: usize,
        filter: Option<&Filter>,
    ) -> Vec<Memory> {
        let mut matching: Vec<usize> = (0..self.memories.len())
            .filter(|&s| self.wanted(s, scope, filter))
            .collect();
        // Newest first; among equal timestamps, the later insertion first.
        matching.sort_unstable_by(|&a, &b| {
            let (ma, mb) = (&self.memories[a].metadata, &self.memories[b].metadata);
            mb.timestamp
                .cmp(&ma.timestamp)
                .then(self.stamps[b].cmp(&self.stamps[a]))
        });
        matching
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|s| self.memories[s].clone())
            .collect()
    }

    pub(crate) fn search(
        &self,
        scope: &Scope,
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
    ) -> Vec<ScoredMemory> {
        let mut top = TopK::new(limit);
        // Agent and session are narrower than the owner; check them only when asked for.
        let narrowed = scope.agent_id().is_some() || scope.session_id().is_some();
        if limit > 0 {
            for (slot, vector) in self.vectors.chunks_exact(self.dims).enumerate() {
                if (narrowed || filter.is_some()) && !self.wanted(slot, scope, filter) {
                    continue;
                }
                let score = dot(query, vector);
                if score >= min_similarity {
                    top.offer(slot, score);
                }
            }
        }
        top.into_sorted()
            .into_iter()
            .map(|(slot, score)| ScoredMemory::new(self.memories[slot].clone(), score))
            .collect()
    }
}
