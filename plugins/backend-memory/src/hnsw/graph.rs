//! One USearch graph: its options, capacity kept ahead of insertions, and a parallel bulk
//! insert. Every USearch call's `Result` is passed on as text, never unwrapped.

use usearch::{Index, MetricKind, ScalarKind};

use crate::config::HnswOptions;

/// Search contexts the graph keeps: USearch needs one per concurrent search (a search finding
/// none fails, and then scans), and each is small until used.
const CONTEXTS: usize = 64;

/// Rows below which a batch is inserted on the calling thread alone.
const PARALLEL_FROM: usize = 256;

/// A USearch error as text.
pub(super) fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Where a saved USearch graph is read from.
#[derive(Debug, Clone, Copy)]
pub enum GraphSource<'a> {
    /// Its bytes, in memory.
    Bytes(&'a [u8]),
    /// A file that begins with them (USearch reads it itself, in pieces, so the graph is not
    /// held twice while it loads).
    File(&'a str),
}

/// One graph, and how many of its nodes are in use or free (removed, to be reused).
pub(crate) struct Graph {
    pub(super) index: Index,
    /// Nodes allocated: live points plus `free` ones.
    pub(super) nodes: usize,
    /// Nodes freed by removal that the next insertions reuse.
    pub(super) free: usize,
}

impl Graph {
    pub(crate) fn new(options: &HnswOptions, dims: usize, capacity: usize) -> Result<Self, String> {
        let index = Index::new(&usearch::IndexOptions {
            dimensions: dims,
            metric: MetricKind::IP,
            quantization: ScalarKind::F32,
            connectivity: options.links,
            expansion_add: options.ef_construction,
            expansion_search: options.ef_search,
            multi: false,
        })
        .map_err(text)?;
        let graph = Graph {
            index,
            nodes: 0,
            free: 0,
        };
        graph.reserve(capacity.max(1_024))?;
        Ok(graph)
    }

    /// A graph restored from USearch's serialized form (as [`Graph::save`] wrote it), from
    /// memory or read straight from a file (whose bytes after the graph are ignored).
    pub(super) fn load(
        source: GraphSource<'_>,
        options: &HnswOptions,
        dims: usize,
    ) -> Result<Self, String> {
        let meta = match source {
            GraphSource::Bytes(bytes) => Index::metadata_from_buffer(bytes),
            GraphSource::File(path) => Index::metadata(path),
        }
        .map_err(text)?;
        if meta.dimensions != dims as u64 || meta.metric != MetricKind::IP || meta.multi {
            return Err(format!(
                "the graph holds {} dimensions ({:?}, multi {}); {dims} (IP) expected",
                meta.dimensions, meta.metric, meta.multi
            ));
        }
        let graph = Graph::new(options, dims, 0)?;
        match source {
            GraphSource::Bytes(bytes) => graph.index.load_from_buffer(bytes),
            GraphSource::File(path) => graph.index.load(path),
        }
        .map_err(text)?;
        graph.index.change_expansion_add(options.ef_construction);
        graph.index.change_expansion_search(options.ef_search);
        let free = usize::try_from(meta.count_deleted).map_err(text)?;
        let graph = Graph {
            nodes: graph.index.size() + free,
            free,
            index: graph.index,
        };
        graph.reserve(graph.nodes.max(1_024))?;
        Ok(graph)
    }

    /// The graph in USearch's serialized form.
    pub(super) fn save(&self) -> Result<Vec<u8>, String> {
        let mut bytes = vec![0u8; self.index.serialized_length()];
        self.index.save_to_buffer(&mut bytes).map_err(text)?;
        Ok(bytes)
    }

    pub(super) fn reserve(&self, capacity: usize) -> Result<(), String> {
        self.index
            .reserve_capacity_and_threads(capacity, CONTEXTS)
            .map_err(text)
    }

    /// Room for `more` insertions, growing by half at least so growth stays amortised.
    pub(super) fn make_room(&mut self, more: usize) -> Result<(), String> {
        let needed = self.nodes + more.saturating_sub(self.free);
        if needed > self.index.capacity() {
            self.reserve(needed.max(self.index.capacity() * 3 / 2))?;
        }
        Ok(())
    }

    /// Counts `added` insertions, which reuse free nodes first.
    pub(super) fn count_added(&mut self, added: usize) {
        let reused = added.min(self.free);
        self.free -= reused;
        self.nodes += added - reused;
    }

    /// Live points.
    pub(crate) fn points(&self) -> usize {
        self.index.size()
    }

    pub(super) fn set_ef_search(&self, ef: usize) {
        self.index.change_expansion_search(ef);
    }

    pub(super) fn insert(&mut self, vector: &[f32], gid: u64) -> Result<(), String> {
        self.make_room(1)?;
        self.index.add(gid, vector).map_err(text)?;
        self.count_added(1);
        Ok(())
    }

    pub(super) fn remove(&mut self, gid: u64) -> Result<(), String> {
        let removed = self.index.remove(gid).map_err(text)?;
        self.free += removed;
        Ok(())
    }

    /// Inserts every row, over every core (two threads at least) for a large batch: USearch's
    /// insertion is thread-safe once capacity is reserved.
    pub(super) fn insert_all(&mut self, rows: &[(&[f32], u64)]) -> Result<(), String> {
        self.make_room(rows.len())?;
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get().max(2))
            .min(rows.len() / PARALLEL_FROM)
            .max(1);
        let index = &self.index;
        let insert = |part: &[(&[f32], u64)]| -> Result<(), String> {
            for &(vector, gid) in part {
                index.add(gid, vector).map_err(text)?;
            }
            Ok(())
        };
        let outcome = if threads == 1 {
            insert(rows)
        } else {
            let per_thread = rows.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = rows
                    .chunks(per_thread)
                    .map(|part| scope.spawn(move || insert(part)))
                    .collect();
                handles.into_iter().try_for_each(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("an insertion thread panicked".into()))
                })
            })
        };
        // After a failure the caller drops the graph; the counts no longer matter.
        if outcome.is_ok() {
            self.count_added(rows.len());
        }
        outcome
    }
}
