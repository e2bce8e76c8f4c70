//! The HNSW graph of one owner's vectors (`index = "hnsw"`), over the `hnsw_rs` crate.
//!
//! The graph has no delete: a deleted memory's point stays in it as a tombstone, and every
//! search passes the graph a filter that accepts only live, wanted points, so a deleted,
//! replaced or filtered-out memory is never returned. An update inserts the new vector as a
//! new point (the old one becomes a tombstone). Once tombstones outnumber the live points the
//! graph is rebuilt in the background; until a rebuilt graph is installed the old one serves.
//!
//! Points are named by a graph id that never changes (slots move on swap-remove), mapped to
//! the slot holding them now.

use std::collections::HashMap;

use hnsw_rs::prelude::{Distance, FilterT, Hnsw};

use crate::config::HnswOptions;

/// Layers of the graph at most (the crate's own limit is 16).
const MAX_LAYERS: usize = 16;

/// Tombstones tolerated before a rebuild, whatever the live count.
const MIN_TOMBSTONES: usize = 1_000;

/// A finished build takes the owner's write lock to install only once fewer than this many
/// vectors were added meanwhile; until then it copies the added ones out under a read lock and
/// inserts them without any lock, so a bulk load (a log replay at open) never ends in a long
/// catch-up that blocks the owner's writes and searches.
pub(crate) const MAX_CATCH_UP: usize = 1_000;

/// `1 − dot`, floored at 0: the crate asserts that distances are not negative, which rounding
/// (or a vector longer than 1) would break; a NaN also becomes 0. Ranking is that of `dot`
/// between unit vectors; returned scores never come from here (they are rescored exactly).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CosineDistance;

impl Distance<f32> for CosineDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        let d = 1.0 - graph_dot(a, b);
        if d > 0.0 {
            d
        } else {
            0.0
        }
    }
}

/// The dot product the graph ranks by, in eight lanes (which the compiler vectorises): most of
/// a build's and a search's time is here. Kept in this crate, not `coda_core::vector::dot`, so
/// the dev profile's `opt-level` for this crate covers it (tests build real graphs).
fn graph_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// One graph and how many points it holds (live and tombstones).
pub(crate) struct Graph {
    hnsw: Hnsw<'static, f32, CosineDistance>,
    points: usize,
}

impl Graph {
    fn new(options: &HnswOptions, capacity: usize) -> Self {
        Graph {
            hnsw: Hnsw::new(
                options.links,
                capacity.max(1_024),
                MAX_LAYERS,
                options.ef_construction,
                CosineDistance,
            ),
            points: 0,
        }
    }

    fn insert(&mut self, vector: &[f32], gid: usize) {
        self.hnsw.insert_slice((vector, gid));
        self.points += 1;
    }

    /// Inserts every row, on every core for a large batch.
    fn insert_all(&mut self, rows: &[(&[f32], usize)]) {
        if rows.len() < 256 {
            for &(vector, gid) in rows {
                self.insert(vector, gid);
            }
        } else {
            self.hnsw.parallel_insert_slice(&rows.to_vec());
            self.points += rows.len();
        }
    }
}

/// The vectors a background build starts from, copied out under the owner's lock.
pub(crate) struct BuildJob {
    options: HnswOptions,
    dims: usize,
    vectors: Vec<f32>,
    gids: Vec<usize>,
    /// Graph ids from here on were assigned after the copy.
    upto: usize,
}

impl BuildJob {
    /// Builds the graph (on every core, through rayon).
    pub(crate) fn run(self) -> Built {
        let mut graph = Graph::new(&self.options, self.gids.len());
        if self.dims > 0 {
            let rows: Vec<(&[f32], usize)> = self
                .vectors
                .chunks_exact(self.dims)
                .zip(self.gids.iter().copied())
                .collect();
            graph.insert_all(&rows);
        }
        Built {
            graph,
            upto: self.upto,
        }
    }
}

impl BuildJob {
    /// Vectors copied.
    pub(crate) fn len(&self) -> usize {
        self.gids.len()
    }
}

/// A graph built in the background, to install.
pub(crate) struct Built {
    graph: Graph,
    upto: usize,
}

impl Built {
    /// Inserts vectors added since the build's copy (from [`GraphIndex::added_since`]).
    pub(crate) fn extend(&mut self, added: BuildJob) {
        if added.dims > 0 {
            let rows: Vec<(&[f32], usize)> = added
                .vectors
                .chunks_exact(added.dims)
                .zip(added.gids.iter().copied())
                .collect();
            self.graph.insert_all(&rows);
        }
        self.upto = added.upto;
    }
}

/// One owner's graph, its id mapping, and whether a build is under way.
pub(crate) struct GraphIndex {
    options: HnswOptions,
    /// Graph id of each slot, slot for slot.
    gids: Vec<usize>,
    /// The slot of each live graph id; a point missing here is a tombstone.
    slot_of: HashMap<usize, usize>,
    next_gid: usize,
    /// `None` until the owner first reaches `min_vectors` and the build finishes; while set,
    /// every live slot's point is in it.
    graph: Option<Graph>,
    /// A build thread is under way (at most one per owner).
    building: bool,
}

impl GraphIndex {
    pub(crate) fn new(options: HnswOptions) -> Self {
        GraphIndex {
            options,
            gids: Vec::new(),
            slot_of: HashMap::new(),
            next_gid: 0,
            graph: None,
            building: false,
        }
    }

    /// Sets the search breadth from now on.
    pub(crate) fn set_ef_search(&mut self, ef: usize) {
        self.options.ef_search = ef.max(1);
    }

    /// Whether a graph serves searches now.
    pub(crate) fn is_ready(&self) -> bool {
        self.graph.is_some()
    }

    /// Points in the graph, live and tombstones (0 without a graph).
    pub(crate) fn points(&self) -> usize {
        self.graph.as_ref().map_or(0, |g| g.points)
    }

    /// Estimated bytes of the graph: the crate's own copy of each point's `f32` vector and
    /// its links (layer 0 keeps `2 × links`, each a pointer and a distance).
    pub(crate) fn bytes(&self, dims: usize) -> usize {
        let per_point = dims * std::mem::size_of::<f32>() + 2 * self.options.links * 16;
        self.points() * per_point
    }

    fn fresh_gid(&mut self) -> usize {
        let gid = self.next_gid;
        self.next_gid += 1;
        gid
    }

    /// A vector added at `slot` (the new last one).
    pub(crate) fn push(&mut self, slot: usize, vector: &[f32]) {
        let gid = self.fresh_gid();
        self.gids.push(gid);
        self.slot_of.insert(gid, slot);
        if let Some(graph) = &mut self.graph {
            graph.insert(vector, gid);
        }
    }

    /// The vector at `slot` replaced: a new point, the old one a tombstone.
    pub(crate) fn replace(&mut self, slot: usize, vector: &[f32]) {
        let gid = self.fresh_gid();
        self.slot_of.remove(&self.gids[slot]);
        self.gids[slot] = gid;
        self.slot_of.insert(gid, slot);
        if let Some(graph) = &mut self.graph {
            graph.insert(vector, gid);
        }
    }

    /// The vector at `slot` removed and the last moved into it, as `Vec::swap_remove` does;
    /// `len` is the count left. Below half of `min_vectors` the graph is dropped.
    pub(crate) fn swap_remove(&mut self, slot: usize, len: usize) {
        self.slot_of.remove(&self.gids[slot]);
        self.gids.swap_remove(slot);
        if let Some(&moved) = self.gids.get(slot) {
            self.slot_of.insert(moved, slot);
        }
        if len < self.options.min_vectors / 2 {
            self.graph = None;
        }
    }

    /// A build to start now, if one is due: the owner reached `min_vectors` without a graph,
    /// or tombstones outnumber live points. `vectors` are the owner's, slot for slot.
    pub(crate) fn build_job(&mut self, vectors: &[f32], dims: usize) -> Option<BuildJob> {
        let len = self.gids.len();
        let due = match &self.graph {
            None => len >= self.options.min_vectors.max(1),
            Some(graph) => graph.points.saturating_sub(len) > len.max(MIN_TOMBSTONES),
        };
        if self.building || !due {
            return None;
        }
        self.building = true;
        Some(self.job(vectors, dims))
    }

    fn job(&self, vectors: &[f32], dims: usize) -> BuildJob {
        BuildJob {
            options: self.options,
            dims,
            vectors: vectors.to_vec(),
            gids: self.gids.clone(),
            upto: self.next_gid,
        }
    }

    /// The vectors added (or replaced) since `built` copied its own, copied out.
    pub(crate) fn added_since(&self, built: &Built, vectors: &[f32], dims: usize) -> BuildJob {
        let mut added = BuildJob {
            options: self.options,
            dims,
            vectors: Vec::new(),
            gids: Vec::new(),
            upto: self.next_gid,
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

    /// Installs a finished build after inserting what was added meanwhile (the caller catches
    /// up outside the lock first, see [`MAX_CATCH_UP`]). The build is dropped instead when the
    /// owner shrank below half of `min_vectors` meanwhile.
    pub(crate) fn install(&mut self, mut built: Built, vectors: &[f32], dims: usize) {
        self.building = false;
        if self.gids.len() < self.options.min_vectors / 2 {
            return;
        }
        let added = self.added_since(&built, vectors, dims);
        built.extend(added);
        self.graph = Some(built.graph);
    }

    /// The graph's best `limit` live points that `wanted` accepts, as slots; `None` without a
    /// graph. Fewer than `limit` means the graph could not find more.
    ///
    /// First an unfiltered search keeps its best `ef` points, of which the live, wanted ones
    /// are taken: with few tombstones and a filter most memories pass (the manager's visibility
    /// filter is on every search), that is the unfiltered search's speed and recall. Only when
    /// that leaves fewer than `limit` does the graph search again, filtering as it walks.
    pub(crate) fn candidates(
        &self,
        query: &[f32],
        limit: usize,
        wanted: Option<&dyn Fn(usize) -> bool>,
    ) -> Option<Vec<usize>> {
        let graph = self.graph.as_ref()?;
        let ef = self.options.ef_search.max(limit);
        let accepted = |gid: usize| {
            self.slot_of
                .get(&gid)
                .copied()
                .filter(|&slot| wanted.is_none_or(|w| w(slot)))
        };
        let found = graph.hnsw.search(query, ef, ef);
        let first: Vec<usize> = found
            .iter()
            .filter_map(|n| accepted(n.get_origin_id()))
            .take(limit)
            .collect();
        if first.len() >= limit || found.len() < ef.min(graph.points) {
            return Some(first);
        }
        let live = |gid: &usize| accepted(*gid).is_some();
        let found = graph
            .hnsw
            .search_filter(query, limit, ef, Some(&live as &dyn FilterT));
        Some(
            found
                .iter()
                .filter_map(|n| accepted(n.get_origin_id()))
                .collect(),
        )
    }

    /// Every slot's graph id is mapped back to that slot (for tests).
    #[cfg(test)]
    pub(crate) fn assert_in_step(&self) {
        assert_eq!(self.gids.len(), self.slot_of.len());
        for (slot, gid) in self.gids.iter().enumerate() {
            assert_eq!(self.slot_of.get(gid), Some(&slot));
        }
    }
}
