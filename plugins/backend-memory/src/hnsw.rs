//! The HNSW graph of one owner's vectors (`index = "hnsw"`), over the `usearch` crate.
//!
//! Deletes are native: a deleted or replaced memory's point is removed from the graph (USearch
//! marks its node free and reuses it for the next insertion), so the graph holds exactly the
//! live points and never needs a rebuild. An update removes the old point and inserts the new
//! vector under a fresh graph id. Searches still check every candidate against the live map and
//! the wanted filter, so a deleted, replaced or filtered-out memory is never returned.
//!
//! Points are named by a graph id (USearch's key) that never changes (slots move on
//! swap-remove), mapped to the slot holding them now.
//!
//! Every USearch call returns a `Result`; a failure (out of memory, no search context to be
//! had) never panics: a search falls back to the scan, a failed write drops the graph (searches
//! scan, and a rebuild is due), a failed build is retried only once the owner has doubled.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use coda_core::MemoryId;
use twox_hash::XxHash3_64;
use usearch::{Index, MetricKind, ScalarKind};

use crate::config::HnswOptions;

/// A finished build takes the owner's write lock to install only once fewer than this many
/// vectors were added meanwhile; until then it copies the added ones out under a read lock and
/// inserts them without any lock, so a bulk load (a log replay at open) never ends in a long
/// catch-up that blocks the owner's writes and searches.
pub(crate) const MAX_CATCH_UP: usize = 1_000;

/// Search contexts the graph keeps: USearch needs one per concurrent search (a search finding
/// none fails, and then scans), and each is small until used.
const CONTEXTS: usize = 64;

/// Rows below which a batch is inserted on the calling thread alone.
const PARALLEL_FROM: usize = 256;

/// Opens the graph blob [`GraphIndex::save`] writes (version 1).
const BLOB_MAGIC: &[u8; 8] = b"CODAGRF1";

/// Bytes of one entry of a saved graph: graph id, memory id, hash of the vector.
const ENTRY_BYTES: usize = 8 + 16 + 8;

/// A saved graph is attached only when it still covers at least this share of the memories
/// (the rest are inserted into it); below, a fresh build is the better graph.
const ATTACH_MIN_KEPT: f64 = 0.5;

/// Stamps each change of any graph, so a durable backend can tell a graph it saved (or
/// loaded) from one changed since.
static VERSIONS: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    VERSIONS.fetch_add(1, Ordering::Relaxed)
}

/// The hash a saved graph keeps of each vector, to tell at attach time which memories
/// changed since: `xxh3` of the little-endian `f32` bytes.
fn vector_hash(vector: &[f32], buf: &mut Vec<u8>) -> u64 {
    buf.clear();
    for x in vector {
        buf.extend_from_slice(&x.to_le_bytes());
    }
    XxHash3_64::oneshot(buf)
}

/// What attaching a saved graph did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GraphAttached {
    /// Points of the saved graph kept (their memory is live with the same vector).
    pub kept: usize,
    /// Points removed from it: memories deleted, or whose vector changed, since the save.
    pub removed: usize,
    /// Memories inserted into it: added, or changed, since the save.
    pub added: usize,
}

/// A bounds-checked reader over a saved blob: a damaged one is an error, never a panic.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("the saved graph is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
}

/// A USearch error as text.
fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// One graph, and how many of its nodes are in use or free (removed, to be reused).
pub(crate) struct Graph {
    index: Index,
    /// Nodes allocated: live points plus `free` ones.
    nodes: usize,
    /// Nodes freed by removal that the next insertions reuse.
    free: usize,
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

    /// A graph restored from USearch's serialized form (as [`Graph::save`] wrote it).
    fn load(bytes: &[u8], options: &HnswOptions, dims: usize) -> Result<Self, String> {
        let meta = Index::metadata_from_buffer(bytes).map_err(text)?;
        if meta.dimensions != dims as u64 || meta.metric != MetricKind::IP || meta.multi {
            return Err(format!(
                "the graph holds {} dimensions ({:?}, multi {}); {dims} (IP) expected",
                meta.dimensions, meta.metric, meta.multi
            ));
        }
        let graph = Graph::new(options, dims, 0)?;
        graph.index.load_from_buffer(bytes).map_err(text)?;
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
    fn save(&self) -> Result<Vec<u8>, String> {
        let mut bytes = vec![0u8; self.index.serialized_length()];
        self.index.save_to_buffer(&mut bytes).map_err(text)?;
        Ok(bytes)
    }

    fn reserve(&self, capacity: usize) -> Result<(), String> {
        self.index
            .reserve_capacity_and_threads(capacity, CONTEXTS)
            .map_err(text)
    }

    /// Room for `more` insertions, growing by half at least so growth stays amortised.
    fn make_room(&mut self, more: usize) -> Result<(), String> {
        let needed = self.nodes + more.saturating_sub(self.free);
        if needed > self.index.capacity() {
            self.reserve(needed.max(self.index.capacity() * 3 / 2))?;
        }
        Ok(())
    }

    /// Counts `added` insertions, which reuse free nodes first.
    fn count_added(&mut self, added: usize) {
        let reused = added.min(self.free);
        self.free -= reused;
        self.nodes += added - reused;
    }

    /// Live points.
    pub(crate) fn points(&self) -> usize {
        self.index.size()
    }

    fn set_ef_search(&self, ef: usize) {
        self.index.change_expansion_search(ef);
    }

    fn insert(&mut self, vector: &[f32], gid: u64) -> Result<(), String> {
        self.make_room(1)?;
        self.index.add(gid, vector).map_err(text)?;
        self.count_added(1);
        Ok(())
    }

    fn remove(&mut self, gid: u64) -> Result<(), String> {
        let removed = self.index.remove(gid).map_err(text)?;
        self.free += removed;
        Ok(())
    }

    /// Inserts every row, over every core (two threads at least) for a large batch: USearch's
    /// insertion is thread-safe once capacity is reserved.
    fn insert_all(&mut self, rows: &[(&[f32], u64)]) -> Result<(), String> {
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

/// The vectors a background build starts from, copied out under the owner's lock.
pub(crate) struct BuildJob {
    options: HnswOptions,
    dims: usize,
    vectors: Vec<f32>,
    gids: Vec<u64>,
    /// Graph ids removed since the last copy (only in a catch-up).
    removed: Vec<u64>,
    /// Graph ids from here on were assigned after the copy.
    upto: u64,
    /// Entries of the owner's removal list seen by this copy.
    removed_upto: usize,
}

impl BuildJob {
    fn rows(&self) -> Vec<(&[f32], u64)> {
        if self.dims == 0 {
            return Vec::new();
        }
        self.vectors
            .chunks_exact(self.dims)
            .zip(self.gids.iter().copied())
            .collect()
    }

    /// Builds the graph (over every core).
    pub(crate) fn run(self) -> Built {
        let graph = Graph::new(&self.options, self.dims, self.gids.len()).and_then(|mut graph| {
            graph.insert_all(&self.rows())?;
            Ok(graph)
        });
        Built {
            graph,
            upto: self.upto,
            removed_upto: self.removed_upto,
        }
    }

    /// Vectors copied.
    pub(crate) fn len(&self) -> usize {
        self.gids.len()
    }
}

/// A graph built in the background, to install (or the error that stopped the build).
pub(crate) struct Built {
    graph: Result<Graph, String>,
    upto: u64,
    removed_upto: usize,
}

impl Built {
    /// Inserts vectors added and removes points removed since the build's copy (from
    /// [`GraphIndex::added_since`]). A graph id is never reused, so a removed one is dead for
    /// good, and one copied as added was live at the copy: the order of the two does not matter.
    pub(crate) fn extend(&mut self, added: BuildJob) {
        if let Ok(graph) = &mut self.graph {
            let outcome = graph
                .insert_all(&added.rows())
                .and_then(|()| added.removed.iter().try_for_each(|&gid| graph.remove(gid)));
            if let Err(e) = outcome {
                self.graph = Err(e);
            }
        }
        self.upto = added.upto;
        self.removed_upto = added.removed_upto;
    }
}

/// One owner's graph, its id mapping, and whether a build is under way.
pub(crate) struct GraphIndex {
    options: HnswOptions,
    dims: usize,
    /// Graph id of each slot, slot for slot.
    gids: Vec<u64>,
    /// The slot of each live graph id.
    slot_of: HashMap<u64, usize>,
    next_gid: u64,
    /// `None` until the owner first reaches `min_vectors` and the build finishes; while set,
    /// it holds exactly the live slots' points.
    graph: Option<Graph>,
    /// A build thread is under way (at most one per owner; only while there is no graph).
    building: bool,
    /// Graph ids removed while a build is under way, for its catch-up.
    removed: Vec<u64>,
    /// After a failed build, no other is started before the owner holds this many vectors.
    retry_at: usize,
    /// Stamp of the graph's last change (see [`VERSIONS`]).
    version: u64,
}

impl GraphIndex {
    pub(crate) fn new(options: HnswOptions, dims: usize) -> Self {
        GraphIndex {
            options,
            dims,
            gids: Vec::new(),
            slot_of: HashMap::new(),
            next_gid: 0,
            graph: None,
            building: false,
            removed: Vec::new(),
            retry_at: 0,
            version: 0,
        }
    }

    /// Sets the search breadth from now on.
    pub(crate) fn set_ef_search(&mut self, ef: usize) {
        self.options.ef_search = ef.max(1);
        if let Some(graph) = &self.graph {
            graph.set_ef_search(self.options.ef_search);
        }
    }

    /// Whether a graph serves searches now.
    pub(crate) fn is_ready(&self) -> bool {
        self.graph.is_some()
    }

    /// Points in the graph (0 without a graph).
    #[cfg(test)]
    pub(crate) fn points(&self) -> usize {
        self.graph.as_ref().map_or(0, Graph::points)
    }

    /// Bytes of the graph, as USearch counts them (its own `f32` copy of each vector, links).
    pub(crate) fn bytes(&self) -> usize {
        self.graph.as_ref().map_or(0, |g| g.index.memory_usage())
    }

    fn fresh_gid(&mut self) -> u64 {
        let gid = self.next_gid;
        self.next_gid += 1;
        gid
    }

    /// Drops the graph after a failed write to it: searches scan, and a rebuild is due.
    fn fail(&mut self, error: String) {
        tracing::warn!(
            error = %error,
            memories = self.gids.len(),
            "the HNSW graph failed a write and was dropped; searches scan until it is rebuilt"
        );
        self.graph = None;
    }

    /// A point dead from now on: out of the graph, or noted for the build under way.
    fn forget(&mut self, gid: u64) {
        self.slot_of.remove(&gid);
        if let Some(graph) = &mut self.graph {
            self.version = next_version();
            if let Err(e) = graph.remove(gid) {
                self.fail(e);
            }
        } else if self.building {
            self.removed.push(gid);
        }
    }

    fn insert(&mut self, vector: &[f32], gid: u64) {
        if let Some(graph) = &mut self.graph {
            self.version = next_version();
            if let Err(e) = graph.insert(vector, gid) {
                self.fail(e);
            }
        }
    }

    /// A vector added at `slot` (the new last one).
    pub(crate) fn push(&mut self, slot: usize, vector: &[f32]) {
        let gid = self.fresh_gid();
        self.gids.push(gid);
        self.slot_of.insert(gid, slot);
        self.insert(vector, gid);
    }

    /// The vector at `slot` replaced: the old point removed, the new one under a fresh id.
    pub(crate) fn replace(&mut self, slot: usize, vector: &[f32]) {
        let gid = self.fresh_gid();
        let old = std::mem::replace(&mut self.gids[slot], gid);
        self.forget(old);
        self.slot_of.insert(gid, slot);
        self.insert(vector, gid);
    }

    /// The vector at `slot` removed and the last moved into it, as `Vec::swap_remove` does;
    /// `len` is the count left. Below half of `min_vectors` the graph is dropped.
    pub(crate) fn swap_remove(&mut self, slot: usize, len: usize) {
        let gid = self.gids.swap_remove(slot);
        self.forget(gid);
        if let Some(&moved) = self.gids.get(slot) {
            self.slot_of.insert(moved, slot);
        }
        if len < self.options.min_vectors / 2 {
            self.graph = None;
        }
    }

    /// A build to start now, if one is due: the owner reached `min_vectors` (and, after a
    /// failed build, `retry_at`) without a graph. `vectors` are the owner's, slot for slot.
    pub(crate) fn build_job(&mut self, vectors: &[f32]) -> Option<BuildJob> {
        let len = self.gids.len();
        let due = self.graph.is_none() && len >= self.options.min_vectors.max(1).max(self.retry_at);
        if self.building || !due {
            return None;
        }
        self.building = true;
        self.removed.clear();
        Some(BuildJob {
            options: self.options,
            dims: self.dims,
            vectors: vectors.to_vec(),
            gids: self.gids.clone(),
            removed: Vec::new(),
            upto: self.next_gid,
            removed_upto: 0,
        })
    }

    /// The vectors added (or replaced) and the ids removed since `built` copied its own.
    pub(crate) fn added_since(&self, built: &Built, vectors: &[f32]) -> BuildJob {
        let dims = self.dims;
        let mut added = BuildJob {
            options: self.options,
            dims,
            vectors: Vec::new(),
            gids: Vec::new(),
            removed: self
                .removed
                .get(built.removed_upto..)
                .unwrap_or_default()
                .to_vec(),
            upto: self.next_gid,
            removed_upto: self.removed.len(),
        };
        for (slot, &gid) in self.gids.iter().enumerate() {
            if gid >= built.upto {
                added
                    .vectors
                    .extend_from_slice(&vectors[slot * dims..(slot + 1) * dims]);
                added.gids.push(gid);
            }
        }
        added
    }

    /// Installs a finished build after applying what changed meanwhile (the caller catches up
    /// outside the lock first, see [`MAX_CATCH_UP`]). The build is dropped instead when the
    /// owner shrank below half of `min_vectors` meanwhile, or when it failed.
    pub(crate) fn install(&mut self, mut built: Built, vectors: &[f32]) {
        self.building = false;
        let added = self.added_since(&built, vectors);
        self.removed.clear();
        if self.gids.len() < self.options.min_vectors / 2 {
            return;
        }
        built.extend(added);
        match built.graph {
            Ok(graph) => {
                graph.set_ef_search(self.options.ef_search);
                self.graph = Some(graph);
                self.version = next_version();
            }
            Err(e) => {
                self.retry_at = self.gids.len().saturating_mul(2);
                tracing::warn!(
                    error = %e,
                    memories = self.gids.len(),
                    retry_at = self.retry_at,
                    "building the HNSW graph failed; searches scan"
                );
            }
        }
    }

    /// The graph's best `limit` live points that `wanted` accepts, as slots; `None` without a
    /// graph or when the graph fails the search (the caller scans). Fewer than `limit` means
    /// the graph could not find more.
    ///
    /// First an unfiltered search keeps its best `ef` points, of which the live, wanted ones
    /// are taken: with a filter most memories pass (the manager's visibility filter is on every
    /// search), that is the unfiltered search's speed and recall. Only when that leaves fewer
    /// than `limit` does the graph search again, filtering as it walks.
    pub(crate) fn candidates(
        &self,
        query: &[f32],
        limit: usize,
        wanted: Option<&dyn Fn(usize) -> bool>,
    ) -> Option<Vec<usize>> {
        let graph = self.graph.as_ref()?;
        let ef = self.options.ef_search.max(limit);
        let accepted = |gid: u64| {
            self.slot_of
                .get(&gid)
                .copied()
                .filter(|&slot| wanted.is_none_or(|w| w(slot)))
        };
        let found = graph.index.search(query, ef).ok()?;
        let first: Vec<usize> = found
            .keys
            .iter()
            .filter_map(|&gid| accepted(gid))
            .take(limit)
            .collect();
        if first.len() >= limit || found.keys.len() < ef.min(graph.points()) {
            return Some(first);
        }
        let found = graph
            .index
            .filtered_search(query, limit, |gid| accepted(gid).is_some())
            .ok()?;
        Some(found.keys.iter().filter_map(|&gid| accepted(gid)).collect())
    }

    /// The change stamp of the graph as it stands (`None` without a graph).
    pub(crate) fn version(&self) -> Option<u64> {
        self.graph.as_ref().map(|_| self.version)
    }

    /// The graph with, for each of its points, the memory it stands for and a hash of that
    /// vector, so [`attach`](Self::attach) can check it against the memories of another day.
    /// `ids` and `vectors` are the owner's, slot for slot. `None` without a graph.
    pub(crate) fn save(
        &self,
        ids: &[MemoryId],
        vectors: &[f32],
    ) -> Option<Result<Vec<u8>, String>> {
        let graph = self.graph.as_ref()?;
        Some(graph.save().map(|usearch| {
            let mut out = Vec::with_capacity(24 + ids.len() * ENTRY_BYTES + usearch.len());
            out.extend_from_slice(BLOB_MAGIC);
            out.extend_from_slice(&(self.dims as u64).to_le_bytes());
            out.extend_from_slice(&(ids.len() as u64).to_le_bytes());
            let mut buf = Vec::with_capacity(self.dims * 4);
            for (slot, id) in ids.iter().enumerate() {
                let vector = &vectors[slot * self.dims..(slot + 1) * self.dims];
                out.extend_from_slice(&self.gids[slot].to_le_bytes());
                out.extend_from_slice(id.as_bytes());
                out.extend_from_slice(&vector_hash(vector, &mut buf).to_le_bytes());
            }
            out.extend_from_slice(&usearch);
            out
        }))
    }

    /// Attaches a graph [`save`](Self::save) wrote, once checked against the owner's memories
    /// now (`index` maps each to its slot; `vectors` slot for slot): a point whose memory is
    /// gone or whose vector changed is removed, a memory the graph lacks is inserted. Refused
    /// (an error naming why) when the blob is damaged, does not match its own graph, covers
    /// less than half of the memories, or the owner already has a graph or a build under way.
    pub(crate) fn attach(
        &mut self,
        blob: &[u8],
        index: &HashMap<MemoryId, usize>,
        vectors: &[f32],
    ) -> Result<GraphAttached, String> {
        if self.graph.is_some() || self.building {
            return Err("the user already has a graph or a build under way".into());
        }
        let len = self.gids.len();
        if len < self.options.min_vectors / 2 {
            return Err(format!(
                "the user holds {len} memories, too few for a graph (hnsw_min_vectors {})",
                self.options.min_vectors
            ));
        }
        let mut reader = Reader(blob);
        if reader.take(8)? != BLOB_MAGIC {
            return Err("not a saved graph (bad magic)".into());
        }
        if reader.u64()? != self.dims as u64 {
            return Err("the saved graph has other dimensions".into());
        }
        let count = usize::try_from(reader.u64()?).map_err(text)?;
        let entries = reader.take(count.checked_mul(ENTRY_BYTES).ok_or("bad count")?)?;
        let mut graph = Graph::load(reader.0, &self.options, self.dims)?;
        if graph.points() != count {
            return Err(format!(
                "the saved graph holds {} points but lists {count}",
                graph.points()
            ));
        }
        let mut gids: Vec<Option<u64>> = vec![None; len];
        let mut seen = HashSet::with_capacity(count);
        let mut dead = Vec::new();
        let mut buf = Vec::with_capacity(self.dims * 4);
        let mut next_gid = 0u64;
        for entry in entries.chunks_exact(ENTRY_BYTES) {
            let mut r = Reader(entry);
            let gid = r.u64()?;
            let id = MemoryId::from_slice(r.take(16)?).map_err(text)?;
            let hash = r.u64()?;
            if !seen.insert(gid) || !graph.index.contains(gid) {
                return Err(format!(
                    "graph id {gid} is listed twice or not in the graph"
                ));
            }
            next_gid = next_gid.max(gid.saturating_add(1));
            let slot = index.get(&id).copied().filter(|&slot| {
                gids[slot].is_none()
                    && vector_hash(&vectors[slot * self.dims..(slot + 1) * self.dims], &mut buf)
                        == hash
            });
            match slot {
                Some(slot) => gids[slot] = Some(gid),
                None => dead.push(gid),
            }
        }
        let kept = count - dead.len();
        if (kept as f64) < ATTACH_MIN_KEPT * len as f64 {
            return Err(format!(
                "the saved graph covers {kept} of {len} memories; a fresh build is better"
            ));
        }
        for &gid in &dead {
            graph.remove(gid)?;
        }
        let mut added_gids = Vec::new();
        let gids: Vec<u64> = gids
            .into_iter()
            .map(|gid| {
                gid.unwrap_or_else(|| {
                    let gid = next_gid;
                    next_gid += 1;
                    added_gids.push(gid);
                    gid
                })
            })
            .collect();
        let rows: Vec<(&[f32], u64)> = gids
            .iter()
            .enumerate()
            .filter(|&(_, gid)| added_gids.binary_search(gid).is_ok())
            .map(|(slot, &gid)| (&vectors[slot * self.dims..(slot + 1) * self.dims], gid))
            .collect();
        graph.insert_all(&rows)?;
        self.slot_of = gids.iter().enumerate().map(|(s, &g)| (g, s)).collect();
        self.gids = gids;
        self.next_gid = next_gid;
        self.graph = Some(graph);
        self.version = next_version();
        Ok(GraphAttached {
            kept,
            removed: dead.len(),
            added: rows.len(),
        })
    }

    /// Every slot's graph id is mapped back to that slot, and the graph holds exactly the live
    /// ids (for tests).
    #[cfg(test)]
    pub(crate) fn assert_in_step(&self) {
        assert_eq!(self.gids.len(), self.slot_of.len());
        for (slot, gid) in self.gids.iter().enumerate() {
            assert_eq!(self.slot_of.get(gid), Some(&slot));
        }
        if let Some(graph) = &self.graph {
            assert_eq!(graph.points(), self.gids.len());
            for gid in &self.gids {
                assert!(graph.index.contains(*gid), "graph id {gid} missing");
            }
        }
    }
}
