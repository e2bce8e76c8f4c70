//! One owner's memories: records in slots, embeddings in one contiguous array (and, with
//! `index = "int8"` or `"hnsw"`, an int8 copy beside it that searches scan first; with
//! `"hnsw"`, a graph over the vectors once the owner is large enough).

use std::sync::Arc;

use coda_core::vector::{dot, QuantizedQuery, TopK};
use coda_core::{Filter, IdMap, Memory, MemoryId, MemoryRecord, Scope, ScoredMemory};

use crate::config::{IndexKind, IndexOptions};
use crate::hnsw::{BuildJob, Built, GraphAttached, GraphIndex, ParsedGraph};
use crate::int8_copy::Int8Copy;
use crate::rows::Rows;

/// The int8 scan keeps at least this many candidates, so a small `limit` (1, 2) still has a
/// margin for quantisation error; rescoring a few dozen vectors costs microseconds.
const MIN_CANDIDATES: usize = 32;

/// Memories in insertion order; embedding `i` is `vectors.row(i)`.
pub(crate) struct Slots {
    /// Shared with the backend's history, whose latest version of each is the same memory.
    memories: Vec<Arc<Memory>>,
    /// Insertion order stamp of each slot, so deletes (swap-remove) keep order recoverable.
    stamps: Vec<u64>,
    vectors: Rows<f32>,
    index: IdMap<usize>,
    next_stamp: u64,
    dims: usize,
    /// The int8 copy, slot for slot; `None` with `index = "exact"`.
    int8: Option<Int8Copy>,
    /// The graph and its ids, slot for slot; `None` unless `index = "hnsw"`.
    graph: Option<GraphIndex>,
    options: IndexOptions,
}

impl Slots {
    pub(crate) fn new(dims: usize, index: IndexOptions) -> Self {
        Slots {
            memories: Vec::new(),
            stamps: Vec::new(),
            vectors: Rows::new(dims),
            index: IdMap::default(),
            next_stamp: 0,
            dims,
            int8: match index.kind() {
                IndexKind::Int8 | IndexKind::Hnsw => Some(Int8Copy::new(dims)),
                IndexKind::Exact => None,
            },
            graph: (index.kind() == IndexKind::Hnsw)
                .then(|| GraphIndex::new(index.hnsw_options(), dims)),
            options: index,
        }
    }

    /// Bytes the vectors take: the `f32` array plus the int8 copy, if any, plus the graph's
    /// estimated size, if any.
    pub(crate) fn vector_bytes(&self) -> usize {
        self.vectors.bytes()
            + self.int8.as_ref().map_or(0, Int8Copy::bytes)
            + self.graph.as_ref().map_or(0, GraphIndex::bytes)
    }

    /// Whether a graph serves this owner's searches now.
    pub(crate) fn graph_ready(&self) -> bool {
        self.graph.as_ref().is_some_and(GraphIndex::is_ready)
    }

    /// Sets the graph's search breadth (HNSW's `ef`) from now on.
    pub(crate) fn set_hnsw_ef(&mut self, ef: usize) {
        if let Some(graph) = &mut self.graph {
            graph.set_ef_search(ef);
        }
    }

    /// A graph build to start in the background, if one is due (see [`GraphIndex::build_job`]).
    pub(crate) fn build_job(&mut self) -> Option<BuildJob> {
        let vectors = &self.vectors;
        self.graph.as_mut()?.build_job(vectors)
    }

    /// The vectors added since `built` copied its own; `None` without a graph index.
    pub(crate) fn added_since(&self, built: &Built) -> Option<BuildJob> {
        let graph = self.graph.as_ref()?;
        Some(graph.added_since(built, &self.vectors))
    }

    /// Installs a finished build (see [`GraphIndex::install`]).
    pub(crate) fn install(&mut self, built: Built) {
        let vectors = &self.vectors;
        if let Some(graph) = &mut self.graph {
            graph.install(built, vectors);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.memories.len()
    }

    /// The change stamp of this owner's graph, `None` without one.
    pub(crate) fn graph_version(&self) -> Option<u64> {
        self.graph.as_ref()?.version()
    }

    /// This owner's graph, saved with the memory and vector hash behind each point (see
    /// [`GraphIndex::save`]); `None` without a graph.
    pub(crate) fn save_graph(&self) -> Option<Result<Vec<u8>, String>> {
        let ids: Vec<MemoryId> = self.memories.iter().map(|m| m.id).collect();
        self.graph.as_ref()?.save(&ids, &self.vectors)
    }

    /// Attaches a graph [`save_graph`](Self::save_graph) wrote, parsed (see
    /// [`GraphIndex::attach_parsed`]).
    pub(crate) fn attach_parsed_graph(
        &mut self,
        parsed: ParsedGraph,
    ) -> Result<GraphAttached, String> {
        let (index, vectors) = (&self.index, &self.vectors);
        match &mut self.graph {
            Some(graph) => graph.attach_parsed(parsed, index, vectors),
            None => Err("the index is not hnsw".into()),
        }
    }

    fn vector(&self, slot: usize) -> &[f32] {
        self.vectors.row(slot)
    }

    /// Adds a memory whose id this owner does not hold.
    pub(crate) fn push(&mut self, memory: Arc<Memory>, embedding: &[f32]) {
        self.index.insert(memory.id, self.memories.len());
        self.memories.push(memory);
        self.stamps.push(self.next_stamp);
        self.next_stamp += 1;
        if let Some(int8) = &mut self.int8 {
            int8.push(embedding);
        }
        if let Some(graph) = &mut self.graph {
            graph.push(self.memories.len() - 1, embedding);
        }
        self.vectors.push(embedding);
    }

    fn record(&self, slot: usize) -> MemoryRecord {
        MemoryRecord {
            memory: Memory::clone(&self.memories[slot]),
            embedding: self.vector(slot).to_vec(),
        }
    }

    pub(crate) fn get(&self, id: MemoryId) -> Option<MemoryRecord> {
        self.index.get(&id).map(|&s| self.record(s))
    }

    pub(crate) fn memory(&self, id: MemoryId) -> Option<&Memory> {
        self.index.get(&id).map(|&s| &*self.memories[s])
    }

    /// Replaces the memory with the same id; false when there is none.
    pub(crate) fn replace(&mut self, memory: Arc<Memory>, embedding: &[f32]) -> bool {
        let Some(&slot) = self.index.get(&memory.id) else {
            return false;
        };
        let row = self.vectors.row_mut(slot);
        let n = row.len().min(embedding.len());
        row[..n].copy_from_slice(&embedding[..n]);
        if let Some(int8) = &mut self.int8 {
            int8.set(slot, embedding);
        }
        if let Some(graph) = &mut self.graph {
            graph.replace(slot, embedding);
        }
        self.memories[slot] = memory;
        true
    }

    pub(crate) fn remove(&mut self, id: MemoryId) -> bool {
        let Some(slot) = self.index.remove(&id) else {
            return false;
        };
        let last = self.memories.len() - 1;
        if slot != last {
            let moved = self.memories[last].id;
            self.index.insert(moved, slot);
        }
        self.memories.swap_remove(slot);
        self.stamps.swap_remove(slot);
        self.vectors.swap_remove(slot);
        if let Some(int8) = &mut self.int8 {
            int8.swap_remove(slot);
        }
        if let Some(graph) = &mut self.graph {
            graph.swap_remove(slot, last);
        }
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
            .map(|s| Memory::clone(&self.memories[s]))
            .collect()
    }

    /// The `limit` best wanted memories scoring at least `min_similarity`, best first, with
    /// exact scores; ties go to the earlier slot, as an exact scan gives them.
    pub(crate) fn search(
        &self,
        scope: &Scope,
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
    ) -> Vec<ScoredMemory> {
        // Agent and session are narrower than the owner; check them only when asked for.
        let narrowed = scope.agent_id().is_some() || scope.session_id().is_some();
        let check = |slot: usize| self.wanted(slot, scope, filter);
        // Filters run before any scoring, in both scans, so the best `limit` are the best of
        // the wanted memories however selective the filter is.
        let wanted: Option<&dyn Fn(usize) -> bool> = if narrowed || filter.is_some() {
            Some(&check)
        } else {
            None
        };
        let top = if limit == 0 {
            TopK::new(0)
        } else {
            self.graph_then_exact(query, limit, min_similarity, wanted)
                .or_else(|| self.approximate_then_exact(query, limit, min_similarity, wanted))
                .unwrap_or_else(|| self.exact(query, limit, min_similarity, wanted))
        };
        top.into_sorted()
            .into_iter()
            .map(|(slot, score)| ScoredMemory::new(Memory::clone(&self.memories[slot]), score))
            .collect()
    }

    /// Every wanted vector scored in `f32`.
    fn exact(
        &self,
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        wanted: Option<&dyn Fn(usize) -> bool>,
    ) -> TopK {
        let mut top = TopK::new(limit);
        for (slot, vector) in self.vectors.iter().enumerate() {
            if wanted.is_some_and(|w| !w(slot)) {
                continue;
            }
            let score = dot(query, vector);
            if score >= min_similarity {
                top.offer(slot, score);
            }
        }
        top
    }

    /// The graph's best `limit` wanted candidates rescored exactly; `None` when a scan must
    /// answer instead: no graph (yet), a non-finite query, or fewer than `limit` wanted
    /// candidates found (a selective filter: the scan then finds every match).
    fn graph_then_exact(
        &self,
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        wanted: Option<&dyn Fn(usize) -> bool>,
    ) -> Option<TopK> {
        if !query.iter().all(|x| x.is_finite()) {
            return None;
        }
        let candidates = self.graph.as_ref()?.candidates(query, limit, wanted)?;
        if candidates.len() < limit {
            return None;
        }
        Some(self.rescored(query, limit, min_similarity, candidates))
    }

    /// The int8 scan's best `limit × oversample` candidates rescored exactly; `None` when the
    /// exact scan is the better choice (no int8 copy, a small index, a non-finite query).
    fn approximate_then_exact(
        &self,
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        wanted: Option<&dyn Fn(usize) -> bool>,
    ) -> Option<TopK> {
        let int8 = self.int8.as_ref()?;
        let keep = limit
            .saturating_mul(self.options.oversample())
            .max(MIN_CANDIDATES);
        if self.len() < self.options.exact_below() || self.len() <= keep || self.dims == 0 {
            return None;
        }
        let quantized = QuantizedQuery::new(query);
        if !quantized.is_finite() {
            return None;
        }
        let candidates: Vec<usize> = int8
            .candidates(&quantized, keep, wanted)
            .into_sorted()
            .into_iter()
            .map(|(slot, _)| slot)
            .collect();
        Some(self.rescored(query, limit, min_similarity, candidates))
    }

    /// The best `limit` of `candidates` by exact score, at least `min_similarity` (the
    /// threshold applies to exact scores only, never to approximate ones).
    fn rescored(
        &self,
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        mut candidates: Vec<usize>,
    ) -> TopK {
        // In slot order, so among equal exact scores the earlier slot wins as in `exact`.
        candidates.sort_unstable();
        candidates.dedup();
        let mut top = TopK::new(limit);
        for slot in candidates {
            let score = dot(query, self.vector(slot));
            if score >= min_similarity {
                top.offer(slot, score);
            }
        }
        top
    }
}

#[cfg(test)]
impl Slots {
    /// [`push`](Self::push) of a whole record.
    pub(crate) fn push_record(&mut self, record: MemoryRecord) {
        self.push(Arc::new(record.memory), &record.embedding);
    }

    /// [`replace`](Self::replace) with a whole record.
    pub(crate) fn replace_record(&mut self, record: MemoryRecord) -> bool {
        self.replace(Arc::new(record.memory), &record.embedding)
    }
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod search_tests;

#[cfg(test)]
#[path = "hnsw_tests.rs"]
mod hnsw_tests;
