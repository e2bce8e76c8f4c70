//! Saved HNSW graphs (`index = "hnsw"`): one file per user with a graph, beside the log, so an
//! open loads a large user's graph instead of rebuilding it for minutes.
//!
//! A graph is saved after each compaction and at a clean shutdown (only when it changed since
//! it was last saved or loaded), written to a temp file, fsynced, renamed over the user's file
//! and the directory fsynced: a crash leaves the old file or the new one, never half of one.
//!
//! File layout (format version 2, little-endian): USearch's own serialized graph first, so
//! USearch reads it straight from the file at open (a 1M-memory graph is 1.7 GB, which is
//! then never held twice); then a trailer: magic `CODAHNSW`, format version (u32), tenant and
//! user (each a u32 length and UTF-8 bytes), the log's end offset and record units when the
//! save began (u64 each), the user's memory count the graph covers (u64), the graph's length
//! (u64) and its `xxh3` (u64), then the listing of the memory and vector hash behind each
//! point (see [`SavedGraph::parts`]); last a footer: the trailer's length (u64), its `xxh3`
//! (u64) and the magic `CODAHNS2`.
//!
//! Version 1 files (magic and header first, then the listing and the graph, one checksum
//! over both) are still read, whole, and replaced by version 2 at the next save.
//!
//! At open, while the log replays, each file is read, checked (magics, version, lengths,
//! checksums: the graph's streamed through a small buffer) and parsed on a thread of its own;
//! after the replay it is attached to its user's replayed memories: points of memories
//! deleted or changed since the save are removed and memories added since are inserted (see
//! [`InMemoryBackend::attach_graph`]). A damaged, truncated or stale file is ignored with a
//! warning and deleted; that user's graph is then built in the background as without a file.

mod layout;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use coda_backend_memory::{GraphSource, InMemoryBackend, ParsedGraph};
use coda_core::{Error, Owner, Result};
use twox_hash::XxHash3_64;

use crate::log::sync_dir;
pub(crate) use layout::LogPosition;
use layout::{decode_v1, encode, hash_prefix, read_trailer};

/// Names of graph files start with this.
pub const GRAPH_PREFIX: &str = "graph-";
/// And end with this.
pub const GRAPH_SUFFIX: &str = ".hnsw";
/// A graph being written, before its rename.
const TEMP_SUFFIX: &str = ".hnsw.tmp";

/// What opening did with the saved graphs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphsLoaded {
    /// Graphs loaded and attached: those users' searches use a graph from the start.
    pub loaded: usize,
    /// Files ignored (damaged, truncated, stale, or for a user now too small) and deleted.
    pub rejected: usize,
    /// Points removed from loaded graphs: memories deleted or changed after the save.
    pub removed: usize,
    /// Memories inserted into loaded graphs: added or changed after the save.
    pub added: usize,
}

/// The graph file of `owner` in `dir`: named by a hash of the owner, which the header holds.
pub(crate) fn path_of(dir: &Path, owner: &Owner) -> PathBuf {
    let mut key = Vec::with_capacity(owner.tenant.len() + owner.user_id.len() + 1);
    key.extend_from_slice(owner.tenant.as_bytes());
    key.push(0);
    key.extend_from_slice(owner.user_id.as_bytes());
    dir.join(format!(
        "{GRAPH_PREFIX}{:016x}{GRAPH_SUFFIX}",
        XxHash3_64::oneshot(&key)
    ))
}

/// Every graph file in `dir` (temp files of a save a crash interrupted are deleted).
fn graph_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(GRAPH_PREFIX) {
            continue;
        }
        if name.ends_with(TEMP_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        } else if name.ends_with(GRAPH_SUFFIX) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// A graph file read and parsed, waiting for its user's memories.
struct ReadGraph {
    owner: Owner,
    at: LogPosition,
    memories: u64,
    parsed: ParsedGraph,
}

/// Every graph file in `dir`, read and parsed by [`read_all`], for [`attach_all`].
pub(crate) struct ReadGraphs(Vec<(PathBuf, std::result::Result<ReadGraph, String>)>);

/// Reads and parses one graph file, of either version.
fn read_one(
    dir: &Path,
    path: &Path,
    inner: &InMemoryBackend,
) -> std::result::Result<ReadGraph, String> {
    let named_for = |owner: &Owner| {
        if path == path_of(dir, owner) {
            Ok(())
        } else {
            Err("the file is named for another user".to_string())
        }
    };
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let Some(trailer) = read_trailer(&mut file, len)? else {
        drop(file);
        let bytes = fs::read(path).map_err(|e| e.to_string())?;
        let old = decode_v1(&bytes)?;
        named_for(&old.owner)?;
        let parsed = inner.parse_graph(old.payload).map_err(|e| e.to_string())?;
        return Ok(ReadGraph {
            owner: old.owner,
            at: old.at,
            memories: old.memories,
            parsed,
        });
    };
    named_for(&trailer.owner)?;
    let checked = |hash: u64| {
        if hash == trailer.graph_hash {
            Ok(())
        } else {
            Err("checksum mismatch (damaged)".to_string())
        }
    };
    let parsed = match path.to_str() {
        // USearch reads the graph itself, from the path.
        Some(name) => {
            checked(hash_prefix(&mut file, trailer.graph_len).map_err(|e| e.to_string())?)?;
            inner.parse_graph_parts(&trailer.listing, GraphSource::File(name))
        }
        // It takes UTF-8 paths only: the graph is read here instead.
        None => {
            let mut graph =
                vec![0u8; usize::try_from(trailer.graph_len).map_err(|e| e.to_string())?];
            file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
            file.read_exact(&mut graph).map_err(|e| e.to_string())?;
            checked(XxHash3_64::oneshot(&graph))?;
            inner.parse_graph_parts(&trailer.listing, GraphSource::Bytes(&graph))
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(ReadGraph {
        owner: trailer.owner,
        at: trailer.at,
        memories: trailer.memories,
        parsed,
    })
}

/// Reads and parses every graph file in `dir` for `inner` (with `index = "hnsw"`), without
/// touching its memories, so this can run while the log replays into it: loading a large
/// user's graph costs about as much as replaying their memories.
pub(crate) fn read_all(dir: &Path, inner: &InMemoryBackend) -> Result<ReadGraphs> {
    let mut out = Vec::new();
    for path in graph_files(dir)? {
        let read = read_one(dir, &path, inner);
        out.push((path, read));
    }
    Ok(ReadGraphs(out))
}

/// Attaches the graphs [`read_all`] read to `inner`'s replayed memories (whose graph builds
/// are held); rejected files are deleted with a warning. Returns what it did and the change
/// stamp of each loaded graph (which is then what is on disk).
pub(crate) fn attach_all(
    read: ReadGraphs,
    inner: &InMemoryBackend,
) -> (GraphsLoaded, HashMap<Owner, u64>) {
    let mut report = GraphsLoaded::default();
    let mut on_disk = HashMap::new();
    for (path, read) in read.0 {
        let started = std::time::Instant::now();
        let attached = read.and_then(|file| {
            let (attached, version) = inner
                .attach_parsed_graph(&file.owner, file.parsed)
                .map_err(|e| e.to_string())?;
            Ok((file.owner, file.at, file.memories, attached, version))
        });
        match attached {
            Ok((owner, at, memories, attached, version)) => {
                tracing::info!(
                    graph = %path.display(),
                    tenant = %owner.tenant,
                    user = %owner.user_id,
                    saved_memories = memories,
                    saved_at_log_offset = at.offset,
                    saved_at_log_units = at.units,
                    removed = attached.removed,
                    added = attached.added,
                    attach_ms = started.elapsed().as_millis() as u64,
                    "loaded the user's saved HNSW graph"
                );
                report.loaded += 1;
                report.removed += attached.removed;
                report.added += attached.added;
                on_disk.insert(owner, version);
            }
            Err(reason) => {
                tracing::warn!(
                    graph = %path.display(),
                    reason = %reason,
                    "ignored a saved HNSW graph; the user's graph is rebuilt in the background"
                );
                report.rejected += 1;
                let _ = fs::remove_file(&path);
            }
        }
    }
    (report, on_disk)
}

/// Writes `bytes` to `path` atomically: a temp file, fsynced, renamed over `path`.
fn write_atomically(dir: &Path, path: &Path, parts: &[&[u8]]) -> Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        for part in parts {
            file.write_all(part)?;
        }
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(Error::io("write", &temp, e));
    }
    fs::rename(&temp, path).map_err(|e| Error::io("rename", &temp, e))?;
    sync_dir(dir)
}

/// Saves every graph that changed since `on_disk` last recorded it, updates `on_disk`, and
/// deletes the files of users that no longer have a graph. Returns how many were written;
/// a file that cannot be written is logged and left as it was.
pub(crate) fn save_all(
    dir: &Path,
    inner: &InMemoryBackend,
    at: LogPosition,
    on_disk: &mut HashMap<Owner, u64>,
) -> usize {
    let mut written = 0;
    let mut with_graph: HashSet<Owner> = HashSet::new();
    for (owner, _) in inner.graph_versions() {
        with_graph.insert(owner);
    }
    let saved = std::cell::RefCell::new(Vec::new());
    inner.save_graphs(
        &|owner, version| on_disk.get(owner) != Some(&version),
        &mut |graph| {
            let path = path_of(dir, &graph.owner);
            let (trailer, footer) = encode(&graph, at);
            match write_atomically(dir, &path, &[graph.parts().1, &trailer, &footer]) {
                Ok(()) => saved.borrow_mut().push((graph.owner, graph.version)),
                Err(e) => tracing::warn!(
                    graph = %path.display(),
                    error = %e,
                    "could not save the user's HNSW graph; the next open rebuilds or catches up"
                ),
            }
        },
    );
    for (owner, version) in saved.into_inner() {
        with_graph.insert(owner.clone());
        on_disk.insert(owner, version);
        written += 1;
    }
    // A user without a graph now (erased, shrunk, or a graph that failed) loses its file.
    let gone: Vec<Owner> = on_disk
        .keys()
        .filter(|o| !with_graph.contains(*o))
        .cloned()
        .collect();
    for owner in gone {
        on_disk.remove(&owner);
        let path = path_of(dir, &owner);
        if let Err(e) = fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(graph = %path.display(), error = %e, "could not delete a graph file");
            }
        }
    }
    written
}
