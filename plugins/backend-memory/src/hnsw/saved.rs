//! A graph saved with the memories it stands for, and attached again to the memories of a
//! later day (`index = "hnsw"` in a durable backend): the blob [`GraphIndex::save`] writes
//! lists, for each point, its graph id, its memory and a hash of that vector, then USearch's
//! own serialized graph; [`ParsedGraph::parse`] reads it and [`GraphIndex::attach_parsed`]
//! checks every entry against the owner's memories now, removes the points of memories deleted or changed since and inserts the
//! memories added since.

use coda_core::{IdMap, MemoryId};
use twox_hash::XxHash3_64;

use super::{next_version, text, Graph, GraphIndex, GraphSource};
use crate::config::HnswOptions;
use crate::rows::Rows;

/// Opens the graph blob [`GraphIndex::save`] writes (version 1).
const BLOB_MAGIC: &[u8; 8] = b"CODAGRF1";

/// Bytes of one entry of a saved graph: graph id, memory id, hash of the vector.
const ENTRY_BYTES: usize = 8 + 16 + 8;

/// A saved graph is attached only when it still covers at least this share of the memories
/// (the rest are inserted into it); below, a fresh build is the better graph.
const ATTACH_MIN_KEPT: f64 = 0.5;

/// Entries checked per thread at least when attaching a graph on several threads.
const PARALLEL_CHECK_FROM: usize = 16_384;

/// The hash a saved graph keeps of each vector, to tell at attach time which memories
/// changed since: `xxh3` of the little-endian `f32` bytes (on a little-endian machine, the
/// vector's own memory, hashed without a copy).
fn vector_hash(vector: &[f32]) -> u64 {
    if cfg!(target_endian = "little") {
        XxHash3_64::oneshot(bytemuck::cast_slice(vector))
    } else {
        let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        XxHash3_64::oneshot(&bytes)
    }
}

/// For each saved entry, the slot of its memory now when that memory still has the vector
/// the entry was saved with; checked over every core for a large graph (each check hashes a
/// vector, and the caller holds the owner's write lock meanwhile).
fn unchanged_slots(
    entries: &[(u64, MemoryId, u64)],
    index: &IdMap<usize>,
    vectors: &Rows<f32>,
) -> Vec<Option<usize>> {
    let check = |part: &[(u64, MemoryId, u64)]| -> Vec<Option<usize>> {
        part.iter()
            .map(|&(_, id, hash)| {
                index
                    .get(&id)
                    .copied()
                    .filter(|&slot| vector_hash(vectors.row(slot)) == hash)
            })
            .collect()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(entries.len() / PARALLEL_CHECK_FROM)
        .max(1);
    if threads == 1 {
        return check(entries);
    }
    let per_thread = entries.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = entries
            .chunks(per_thread)
            .map(|part| (part, scope.spawn(move || check(part))))
            .collect();
        parts
            .into_iter()
            // A thread that could not finish (it panicked) is done again on this one.
            .flat_map(|(part, handle)| handle.join().unwrap_or_else(|_| check(part)))
            .collect()
    })
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

/// A saved graph read and checked on its own, before the memories it stands for are known:
/// the costly half of attaching one (USearch loading its graph), which a durable backend can
/// do while it replays its log.
pub struct ParsedGraph {
    dims: usize,
    /// Graph id, memory and vector hash of each point.
    entries: Vec<(u64, MemoryId, u64)>,
    graph: Graph,
}

impl ParsedGraph {
    /// Reads a blob [`GraphIndex::save`] wrote, for a graph of `dims` dimensions with
    /// `options`: refused (naming why) when it is damaged or does not match its own graph.
    pub(crate) fn parse(blob: &[u8], options: &HnswOptions, dims: usize) -> Result<Self, String> {
        let (listed, usearch) = listing_of(blob, dims)?;
        let graph = Graph::load(GraphSource::Bytes(usearch), options, dims)?;
        Self::check(listed, graph, dims)
    }

    /// Reads a blob [`GraphIndex::save`] wrote, in its two parts: the listing (the first
    /// [`listing_len`] bytes) and USearch's graph from `graph`, which may be a file.
    pub(crate) fn parse_parts(
        listing: &[u8],
        graph: GraphSource<'_>,
        options: &HnswOptions,
        dims: usize,
    ) -> Result<Self, String> {
        let (listed, rest) = listing_of(listing, dims)?;
        if !rest.is_empty() {
            return Err("the saved graph's listing is followed by other bytes".into());
        }
        let graph = Graph::load(graph, options, dims)?;
        Self::check(listed, graph, dims)
    }

    /// The entries `listed` (graph id, memory, vector hash each), checked against `graph`:
    /// one per point, none twice.
    fn check(listed: &[u8], graph: Graph, dims: usize) -> Result<Self, String> {
        let count = listed.len() / ENTRY_BYTES;
        if graph.points() != count {
            return Err(format!(
                "the saved graph holds {} points but lists {count}",
                graph.points()
            ));
        }
        let mut entries = Vec::with_capacity(count);
        for entry in listed.chunks_exact(ENTRY_BYTES) {
            let mut r = Reader(entry);
            let gid = r.u64()?;
            let id = MemoryId::from_slice(r.take(16)?).map_err(text)?;
            let hash = r.u64()?;
            if !graph.index.contains(gid) {
                return Err(format!("graph id {gid} is listed but not in the graph"));
            }
            entries.push((gid, id, hash));
        }
        let mut gids: Vec<u64> = entries.iter().map(|&(gid, _, _)| gid).collect();
        gids.sort_unstable();
        if let Some(twice) = gids.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(format!("graph id {} is listed twice", twice[0]));
        }
        Ok(ParsedGraph {
            dims,
            entries,
            graph,
        })
    }
}

/// Bytes before a saved blob's listing entries: magic, dimensions, count.
const LISTING_HEAD: usize = 24;

/// The dimensions a saved blob declares, its listing's entries, and what follows the listing.
fn split_listing(blob: &[u8]) -> Result<(u64, &[u8], &[u8]), String> {
    let mut reader = Reader(blob);
    if reader.take(BLOB_MAGIC.len())? != BLOB_MAGIC {
        return Err("not a saved graph (bad magic)".into());
    }
    let dims = reader.u64()?;
    let count = usize::try_from(reader.u64()?).map_err(text)?;
    let listed = reader.take(count.checked_mul(ENTRY_BYTES).ok_or("bad count")?)?;
    Ok((dims, listed, reader.0))
}

/// [`split_listing`] of a blob that must be of `dims` dimensions.
fn listing_of(blob: &[u8], dims: usize) -> Result<(&[u8], &[u8]), String> {
    let (saved_dims, listed, rest) = split_listing(blob)?;
    if saved_dims != dims as u64 {
        return Err("the saved graph has other dimensions".into());
    }
    Ok((listed, rest))
}

/// How many bytes of a blob [`GraphIndex::save`] wrote are its listing (the memory and
/// vector hash behind each point), before USearch's own graph; `None` when `blob` is not one.
pub fn listing_len(blob: &[u8]) -> Option<usize> {
    let (_, listed, _) = split_listing(blob).ok()?;
    Some(LISTING_HEAD + listed.len())
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

impl GraphIndex {
    /// The graph with, for each of its points, the memory it stands for and a hash of that
    /// vector, so [`attach_parsed`](Self::attach_parsed) can check it against the memories of another day.
    /// `ids` and `vectors` are the owner's, slot for slot. `None` without a graph.
    pub(crate) fn save(
        &self,
        ids: &[MemoryId],
        vectors: &Rows<f32>,
    ) -> Option<Result<Vec<u8>, String>> {
        let graph = self.graph.as_ref()?;
        Some(graph.save().map(|usearch| {
            let mut out =
                Vec::with_capacity(LISTING_HEAD + ids.len() * ENTRY_BYTES + usearch.len());
            out.extend_from_slice(BLOB_MAGIC);
            out.extend_from_slice(&(self.dims as u64).to_le_bytes());
            out.extend_from_slice(&(ids.len() as u64).to_le_bytes());
            for (slot, id) in ids.iter().enumerate() {
                let vector = vectors.row(slot);
                out.extend_from_slice(&self.gids[slot].to_le_bytes());
                out.extend_from_slice(id.as_bytes());
                out.extend_from_slice(&vector_hash(vector).to_le_bytes());
            }
            out.extend_from_slice(&usearch);
            out
        }))
    }

    /// Whether a saved graph may be attached now: no graph or build yet, and memories enough.
    fn can_attach(&self) -> Result<(), String> {
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
        Ok(())
    }

    /// Attaches a graph [`save`](Self::save) wrote (parsed by [`ParsedGraph::parse`]), once
    /// checked against the owner's memories now (`index` maps each to its slot; `vectors` slot
    /// for slot): a point whose memory is
    /// gone or whose vector changed is removed, a memory the graph lacks is inserted. Refused
    /// (an error naming why) when the blob is damaged, does not match its own graph, covers
    /// less than half of the memories, or the owner already has a graph or a build under way.
    pub(crate) fn attach_parsed(
        &mut self,
        parsed: ParsedGraph,
        index: &IdMap<usize>,
        vectors: &Rows<f32>,
    ) -> Result<GraphAttached, String> {
        self.can_attach()?;
        if parsed.dims != self.dims {
            return Err("the saved graph has other dimensions".into());
        }
        let len = self.gids.len();
        let ParsedGraph {
            entries, mut graph, ..
        } = parsed;
        // Parsed with the options of its day: the search breadth may have changed since.
        graph.set_ef_search(self.options.ef_search);
        let count = entries.len();
        let mut gids: Vec<Option<u64>> = vec![None; len];
        let mut dead = Vec::new();
        let mut next_gid = 0u64;
        let unchanged = unchanged_slots(&entries, index, vectors);
        for (&(gid, _, _), slot) in entries.iter().zip(unchanged) {
            next_gid = next_gid.max(gid.saturating_add(1));
            // A memory listed twice keeps its first point.
            match slot.filter(|&slot| gids[slot].is_none()) {
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
            .map(|(slot, &gid)| (vectors.row(slot), gid))
            .collect();
        graph.insert_all(&rows)?;
        self.slot_of = Self::slots_by_gid(&gids);
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
}
