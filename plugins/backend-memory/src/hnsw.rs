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

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::HnswOptions;
use crate::rows::Rows;

mod graph;
mod saved;

pub use graph::GraphSource;
use graph::{text, Graph};

pub use saved::{listing_len, GraphAttached, ParsedGraph};

/// Graph id to slot, hashed with `foldhash` as the memory-id maps are (see `IdMap`).
type SlotMap = std::collections::HashMap<u64, usize, foldhash::fast::RandomState>;

/// A finished build takes the owner's write lock to install only once fewer than this many
/// vectors were added meanwhile; until then it copies the added ones out under a read lock and
/// inserts them without any lock, so a bulk load (a log replay at open) never ends in a long
/// catch-up that blocks the owner's writes and searches.
pub(crate) const MAX_CATCH_UP: usize = 1_000;

/// Stamps each change of any graph, so a durable backend can tell a graph it saved (or
/// loaded) from one changed since.
static VERSIONS: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    VERSIONS.fetch_add(1, Ordering::Relaxed)
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
    /// The slot of each live graph id, kept only while there is a graph (searches map its
    /// answers back through it): a replay of a million memories then does not fill a map the
    /// graph attached after it rebuilds anyway.
    slot_of: SlotMap,
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
            slot_of: SlotMap::default(),
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
        self.drop_graph();
    }

    /// No graph from now on (until a build or an attach); searches scan.
    fn drop_graph(&mut self) {
        self.graph = None;
        self.slot_of = SlotMap::default();
    }

    /// Maps `gid` to `slot` for the graph's searches, when there is a graph.
    fn map_slot(&mut self, gid: u64, slot: usize) {
        if self.graph.is_some() {
            self.slot_of.insert(gid, slot);
        }
    }

    /// The slot of every graph id, for a graph installed or attached now.
    fn slots_by_gid(gids: &[u64]) -> SlotMap {
        gids.iter()
            .enumerate()
            .map(|(slot, &gid)| (gid, slot))
            .collect()
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
        self.map_slot(gid, slot);
        self.insert(vector, gid);
    }

    /// The vector at `slot` replaced: the old point removed, the new one under a fresh id.
    pub(crate) fn replace(&mut self, slot: usize, vector: &[f32]) {
        let gid = self.fresh_gid();
        let old = std::mem::replace(&mut self.gids[slot], gid);
        self.forget(old);
        self.map_slot(gid, slot);
        self.insert(vector, gid);
    }

    /// The vector at `slot` removed and the last moved into it, as `Vec::swap_remove` does;
    /// `len` is the count left. Below half of `min_vectors` the graph is dropped.
    pub(crate) fn swap_remove(&mut self, slot: usize, len: usize) {
        let gid = self.gids.swap_remove(slot);
        self.forget(gid);
        if let Some(&moved) = self.gids.get(slot) {
            self.map_slot(moved, slot);
        }
        if len < self.options.min_vectors / 2 {
            self.drop_graph();
        }
    }

    /// A build to start now, if one is due: the owner reached `min_vectors` (and, after a
    /// failed build, `retry_at`) without a graph. `vectors` are the owner's, slot for slot.
    pub(crate) fn build_job(&mut self, vectors: &Rows<f32>) -> Option<BuildJob> {
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
    pub(crate) fn added_since(&self, built: &Built, vectors: &Rows<f32>) -> BuildJob {
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
                added.vectors.extend_from_slice(vectors.row(slot));
                added.gids.push(gid);
            }
        }
        added
    }

    /// Installs a finished build after applying what changed meanwhile (the caller catches up
    /// outside the lock first, see [`MAX_CATCH_UP`]). The build is dropped instead when the
    /// owner shrank below half of `min_vectors` meanwhile, or when it failed.
    pub(crate) fn install(&mut self, mut built: Built, vectors: &Rows<f32>) {
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
                self.slot_of = Self::slots_by_gid(&self.gids);
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

    /// Every slot's graph id is mapped back to that slot, and the graph holds exactly the live
    /// ids (for tests).
    #[cfg(test)]
    pub(crate) fn assert_in_step(&self) {
        if self.graph.is_none() {
            assert!(self.slot_of.is_empty(), "no graph, no map back to slots");
        }
        if let Some(graph) = &self.graph {
            assert_eq!(self.gids.len(), self.slot_of.len());
            for (slot, gid) in self.gids.iter().enumerate() {
                assert_eq!(self.slot_of.get(gid), Some(&slot));
            }
            assert_eq!(graph.points(), self.gids.len());
            for gid in &self.gids {
                assert!(graph.index.contains(*gid), "graph id {gid} missing");
            }
        }
    }
}
