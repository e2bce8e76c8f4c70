//! The memory backend's HNSW graphs (`index = "hnsw"`): waiting for builds, holding them, and
//! saving and attaching graphs for a durable backend in front of it.

use coda_core::{Error, Owner, Result};

use crate::backend::InMemoryBackend;
use crate::config::HnswOptions;
use crate::hnsw::{listing_len, GraphAttached, GraphSource, ParsedGraph};

/// One user's HNSW graph as [`InMemoryBackend::save_graphs`] hands it over.
#[derive(Debug, Clone)]
pub struct SavedGraph {
    /// Whose graph.
    pub owner: Owner,
    /// Its change stamp when saved.
    pub version: u64,
    /// The user's memories it covers.
    pub memories: usize,
    /// The graph, for [`InMemoryBackend::attach_graph`].
    pub bytes: Vec<u8>,
}

impl SavedGraph {
    /// The graph's two parts, for [`InMemoryBackend::parse_graph_parts`]: the listing of the
    /// memory behind each point, and USearch's own serialized graph (which a durable backend
    /// may write first in a file, so USearch can read it from there).
    pub fn parts(&self) -> (&[u8], &[u8]) {
        let at = listing_len(&self.bytes).unwrap_or(self.bytes.len());
        self.bytes.split_at(at)
    }
}

impl InMemoryBackend {
    /// Waits until every HNSW graph whose build has started is built and serving searches
    /// (with `index = "hnsw"`; returns at once otherwise). Searches are correct meanwhile, by
    /// scanning; this is for benches, tests, and a caller that wants graph speed from the start.
    pub fn wait_for_index(&self) {
        self.owners.wait_for_builds();
    }

    /// Sets the HNSW search breadth (`hnsw_ef`) of every user's graph from now on, without a
    /// rebuild: for sweeping the speed–recall trade-off (the bench) or tuning a running store.
    /// Users that appear later get the configured value.
    pub fn set_hnsw_ef(&self, ef: usize) {
        for (_, slots) in self.owners.all() {
            slots.write().set_hnsw_ef(ef);
        }
    }

    /// How many users' searches an HNSW graph serves now.
    pub fn graphs_ready(&self) -> usize {
        self.owners.graphs_ready()
    }

    /// HNSW graph builds started since creation (a graph attached from a save is not built).
    pub fn graph_builds(&self) -> u64 {
        self.owners.builds_started()
    }

    /// Holds HNSW graph builds until [`release_graph_builds`](Self::release_graph_builds): a
    /// durable backend replays its log first, then attaches the graphs it saved, then lets the
    /// other users' graphs build.
    pub fn hold_graph_builds(&self) {
        self.owners.hold_builds(true);
    }

    /// Lets graph builds start again, and starts every build due now.
    pub fn release_graph_builds(&self) {
        self.owners.hold_builds(false);
    }

    /// The change stamp of each user's HNSW graph now: a graph [`save_graphs`] or
    /// [`attach_graph`] reported with the same stamp has not changed since.
    ///
    /// [`save_graphs`]: Self::save_graphs
    /// [`attach_graph`]: Self::attach_graph
    pub fn graph_versions(&self) -> Vec<(Owner, u64)> {
        self.owners
            .all()
            .into_iter()
            .filter_map(|(owner, slots)| Some(((*owner).clone(), slots.read().graph_version()?)))
            .collect()
    }

    /// Saves the HNSW graph of each user that has one and for whom `wanted(owner, stamp)` says
    /// so, handing each to `visit` (serialised under that user's read lock, handed over
    /// without it). A graph that fails to serialise is skipped with a logged warning.
    pub fn save_graphs(
        &self,
        wanted: &dyn Fn(&Owner, u64) -> bool,
        visit: &mut dyn FnMut(SavedGraph),
    ) {
        for (owner, slots) in self.owners.all() {
            let saved = {
                let slots = slots.read();
                let Some(version) = slots.graph_version() else {
                    continue;
                };
                if !wanted(&owner, version) {
                    continue;
                }
                slots
                    .save_graph()
                    .map(|bytes| (version, slots.len(), bytes))
            };
            match saved {
                Some((version, memories, Ok(bytes))) => visit(SavedGraph {
                    owner: (*owner).clone(),
                    version,
                    memories,
                    bytes,
                }),
                Some((_, _, Err(e))) => tracing::warn!(
                    tenant = %owner.tenant,
                    user = %owner.user_id,
                    error = %e,
                    "could not serialise the user's HNSW graph; it is not saved"
                ),
                None => {}
            }
        }
    }

    /// Attaches a graph [`save_graphs`](Self::save_graphs) produced to `owner`'s memories as
    /// they are now: points of memories deleted or changed since are removed, memories added
    /// or changed since are inserted. Returns what it did and the graph's change stamp.
    /// Refused when the bytes are damaged or do not match, when they cover less than half of
    /// the memories, or when the user has no memories, too few for a graph, or a graph already.
    pub fn attach_graph(&self, owner: &Owner, bytes: &[u8]) -> Result<(GraphAttached, u64)> {
        self.attach_parsed_graph(owner, self.parse_graph(bytes)?)
    }

    /// Reads a graph [`save_graphs`](Self::save_graphs) produced without attaching it, for
    /// [`attach_parsed_graph`](Self::attach_parsed_graph): the costly half of
    /// [`attach_graph`](Self::attach_graph), which takes no lock, so a durable backend can
    /// run it on a thread of its own while it replays its log. Refused when the bytes are
    /// damaged or do not match, or the index is not `hnsw`.
    pub fn parse_graph(&self, bytes: &[u8]) -> Result<ParsedGraph> {
        self.parse_saved(|options, dims| ParsedGraph::parse(bytes, options, dims))
    }

    /// [`parse_graph`](Self::parse_graph) of a graph in the two parts [`SavedGraph::parts`]
    /// gives, the second maybe read from a file (see [`GraphSource`]).
    pub fn parse_graph_parts(&self, listing: &[u8], graph: GraphSource<'_>) -> Result<ParsedGraph> {
        self.parse_saved(|options, dims| ParsedGraph::parse_parts(listing, graph, options, dims))
    }

    /// Runs `parse` with this index's HNSW options and dimensions; refused unless it is `hnsw`.
    fn parse_saved(
        &self,
        parse: impl FnOnce(&HnswOptions, usize) -> std::result::Result<ParsedGraph, String>,
    ) -> Result<ParsedGraph> {
        let refused = |e: String| Error::invalid("saved graph", e);
        if self.index.kind() != crate::IndexKind::Hnsw {
            return Err(refused("the index is not hnsw".into()));
        }
        parse(&self.index.hnsw_options(), self.dims).map_err(refused)
    }

    /// [`attach_graph`](Self::attach_graph) of a graph [`parse_graph`](Self::parse_graph) read.
    pub fn attach_parsed_graph(
        &self,
        owner: &Owner,
        parsed: ParsedGraph,
    ) -> Result<(GraphAttached, u64)> {
        let refused = |e: String| Error::invalid("saved graph", e);
        let _writes = self.writer.lock();
        let slots = self
            .owners
            .get(owner)
            .ok_or_else(|| refused("the user has no memories".into()))?;
        let mut slots = slots.write();
        let attached = slots.attach_parsed_graph(parsed).map_err(refused)?;
        Ok((attached, slots.graph_version().unwrap_or(0)))
    }
}
