//! `index = "hnsw"` in the file backend: the graph is rebuilt after open from the replayed
//! log, and searches before and after a reopen agree with the exact scan and with each other.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use coda_backend_file::{FileBackend, FileOptions, IndexKind};
use coda_core::vector::normalize;
use coda_core::{By, Memory, MemoryBackend, MemoryId, MemoryRecord, Metadata, Scope};

const DIMS: usize = 64;

/// A deterministic xorshift64 stream of unit vectors.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIMS)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        normalize(&mut v);
        v
    }
}

fn record(embedding: Vec<f32>, i: usize) -> MemoryRecord {
    let metadata = Metadata::new("fact", 0.5);
    MemoryRecord {
        memory: Memory::new(uuid::Uuid::new_v4(), format!("m{i}"), metadata),
        embedding,
    }
}

fn open(dir: &std::path::Path) -> FileBackend {
    let options = FileOptions {
        index: IndexKind::Hnsw,
        hnsw_min_vectors: 1_000,
        ..FileOptions::in_dir(dir)
    };
    FileBackend::open(options, common::embedder(DIMS)).unwrap()
}

fn top10(backend: &FileBackend, queries: &[Vec<f32>]) -> Vec<Vec<MemoryId>> {
    let scope = Scope::default();
    queries
        .iter()
        .map(|q| {
            let hits = backend.search(&scope, q, 10, -1.0, None).unwrap();
            hits.iter().map(|h| h.id).collect()
        })
        .collect()
}

/// The share of `want`'s ids that `got` has too.
fn overlap(got: &[Vec<MemoryId>], want: &[Vec<MemoryId>]) -> f64 {
    let mut found = 0;
    let mut total = 0;
    for (g, w) in got.iter().zip(want) {
        let w: HashSet<&MemoryId> = w.iter().collect();
        total += w.len();
        found += g.iter().filter(|id| w.contains(id)).count();
    }
    found as f64 / total.max(1) as f64
}

#[test]
fn a_reopened_log_rebuilds_the_graph_and_searches_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let scope = Scope::default();
    let mut rng = Rng(0xF11E);
    let records: Vec<MemoryRecord> = (0..2_000).map(|i| record(rng.unit(), i)).collect();
    let queries: Vec<Vec<f32>> = (0..40).map(|_| rng.unit()).collect();
    let deleted: Vec<MemoryId> = records.iter().step_by(5).map(|r| r.memory.id).collect();
    let (before, exact) = {
        let backend = open(dir.path());
        for r in &records {
            backend.insert(&scope, r.clone()).unwrap();
        }
        for id in &deleted {
            assert!(backend.delete(&scope, *id, By::Api).unwrap());
        }
        backend.wait_for_index();
        assert_eq!(backend.graphs_ready(), 1);
        let exact_dir = tempfile::tempdir().unwrap();
        let exact = FileBackend::open(
            FileOptions {
                index: IndexKind::Exact,
                ..FileOptions::in_dir(exact_dir.path())
            },
            common::embedder(DIMS),
        )
        .unwrap();
        for (r, _) in records.iter().zip(0..).filter(|(_, i)| i % 5 != 0) {
            exact.insert(&scope, r.clone()).unwrap();
        }
        (top10(&backend, &queries), top10(&exact, &queries))
    };
    assert!(overlap(&before, &exact) >= 0.95);
    let backend = open(dir.path());
    backend.wait_for_index();
    assert_eq!(backend.graphs_ready(), 1, "the graph is rebuilt after open");
    let after = top10(&backend, &queries);
    // The parallel build is not deterministic, so the graph may differ in a few links: the
    // results agree with those before the reopen, and with the exact scan, all but a few.
    assert!(
        overlap(&after, &before) >= 0.95,
        "{}",
        overlap(&after, &before)
    );
    assert!(overlap(&after, &exact) >= 0.95);
    let gone: HashSet<&MemoryId> = deleted.iter().collect();
    assert!(after.iter().flatten().all(|id| !gone.contains(id)));
    // Each deleted vector searched for itself still does not come back.
    for r in records.iter().step_by(5).take(100) {
        let hits = backend
            .search(&scope, &r.embedding, 10, -1.0, None)
            .unwrap();
        assert!(hits.iter().all(|h| !gone.contains(&h.id)));
    }
}

#[test]
fn hnsw_options_are_checked_and_name_their_key() {
    let bad = FileOptions {
        index: IndexKind::Hnsw,
        hnsw_ef: 0,
        ..FileOptions::default()
    };
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("backends.file.hnsw_ef"), "{err}");
    let factory =
        coda_core::registry::find::<coda_core::registry::BackendFactory>(coda_backend_file::NAME)
            .unwrap();
    let filled = factory
        .check_options(serde_json::json!({"index": "hnsw"}), "backends.file")
        .unwrap();
    assert_eq!(filled["hnsw_min_vectors"], 200_000);
}

/// The graph files beside the log in `dir`.
fn graph_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(coda_backend_file::GRAPH_PREFIX)
                && name.ends_with(coda_backend_file::GRAPH_SUFFIX)
        })
        .collect();
    files.sort();
    files
}

/// A log of `n` memories whose graph was built and saved at a clean shutdown; the records
/// and the top 10 of `queries` before the shutdown.
fn saved_graph(
    dir: &std::path::Path,
    n: usize,
    rng: &mut Rng,
    queries: &[Vec<f32>],
) -> (Vec<MemoryRecord>, Vec<Vec<MemoryId>>) {
    let scope = Scope::default();
    let records: Vec<MemoryRecord> = (0..n).map(|i| record(rng.unit(), i)).collect();
    let backend = open(dir);
    for r in &records {
        backend.insert(&scope, r.clone()).unwrap();
    }
    backend.wait_for_index();
    assert_eq!(backend.graphs_ready(), 1);
    assert_eq!(backend.graph_builds(), 1);
    let before = top10(&backend, queries);
    drop(backend);
    assert_eq!(graph_files(dir).len(), 1, "the shutdown saved the graph");
    (records, before)
}

#[test]
fn a_saved_graph_is_loaded_at_reopen_instead_of_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5A7E);
    let queries: Vec<Vec<f32>> = (0..40).map(|_| rng.unit()).collect();
    let (_, before) = saved_graph(dir.path(), 2_000, &mut rng, &queries);
    let backend = open(dir.path());
    let loaded = backend.recovery().graphs;
    assert_eq!((loaded.loaded, loaded.rejected), (1, 0));
    assert_eq!((loaded.added, loaded.removed), (0, 0));
    // Serving from the open on, with no build started: the very graph that was saved.
    assert_eq!(backend.graphs_ready(), 1);
    assert_eq!(backend.graph_builds(), 0);
    assert_eq!(top10(&backend, &queries), before);
    // Unchanged since it was loaded: nothing to write again.
    assert_eq!(backend.save_graphs(), 0);
}

#[test]
fn a_compaction_saves_the_graph_beside_the_new_log() {
    let dir = tempfile::tempdir().unwrap();
    let scope = Scope::default();
    let mut rng = Rng(0xC0C0);
    let backend = open(dir.path());
    let records: Vec<MemoryRecord> = (0..1_500).map(|i| record(rng.unit(), i)).collect();
    for r in &records {
        backend.insert(&scope, r.clone()).unwrap();
    }
    backend.wait_for_index();
    for r in records.iter().step_by(4) {
        backend.delete(&scope, r.memory.id, By::Api).unwrap();
    }
    assert!(graph_files(dir.path()).is_empty());
    backend.compact().unwrap();
    assert_eq!(graph_files(dir.path()).len(), 1);
    // Saved at the compaction and unchanged since: the shutdown writes nothing new.
    assert_eq!(backend.save_graphs(), 0);
}

#[test]
fn a_damaged_or_truncated_graph_file_is_rejected_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0xBAD0);
    let queries: Vec<Vec<f32>> = (0..20).map(|_| rng.unit()).collect();
    saved_graph(dir.path(), 1_500, &mut rng, &queries);
    type Damage<'a> = &'a dyn Fn(&mut Vec<u8>);
    let damages: [Damage; 6] = [
        // In USearch's graph, which leads the file.
        &|bytes| {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
        },
        // In the trailer's listing, and in the footer's trailer length.
        &|bytes| {
            let listing = bytes.len() - 40;
            bytes[listing] ^= 0x01;
        },
        &|bytes| {
            let footer = bytes.len() - 24;
            bytes[footer + 2] ^= 0x10;
        },
        &|bytes| bytes.truncate(bytes.len() / 3),
        &|bytes| bytes.truncate(bytes.len() - 1),
        &|bytes| bytes.truncate(20),
    ];
    for damage in damages {
        let file = graph_files(dir.path()).pop().unwrap();
        let mut bytes = std::fs::read(&file).unwrap();
        damage(&mut bytes);
        std::fs::write(&file, bytes).unwrap();
        let backend = open(dir.path());
        let loaded = backend.recovery().graphs;
        assert_eq!((loaded.loaded, loaded.rejected), (0, 1));
        assert!(graph_files(dir.path()).is_empty(), "the bad file is gone");
        backend.wait_for_index();
        assert_eq!(backend.graph_builds(), 1, "rebuilt in the background");
        assert_eq!(backend.graphs_ready(), 1);
        drop(backend);
        assert_eq!(graph_files(dir.path()).len(), 1, "and saved again");
    }
}

/// The version 1 layout of a version 2 graph file (see `graphs.rs`): the header first, then
/// the listing and USearch's graph under one checksum.
fn as_version_1(v2: &[u8]) -> Vec<u8> {
    let n = v2.len();
    assert_eq!(&v2[n - 8..], b"CODAHNS2", "a version 2 file was written");
    let trailer_len = u64::from_le_bytes(v2[n - 24..n - 16].try_into().unwrap()) as usize;
    let graph_len = n - 24 - trailer_len;
    let trailer = &v2[graph_len..n - 24];
    // Magic and version, then the tenant and user, each after its u32 length.
    let mut at = 12;
    for _ in 0..2 {
        at += 4 + u32::from_le_bytes(trailer[at..at + 4].try_into().unwrap()) as usize;
    }
    // Log offset, units and memories; the graph's length and checksum; then the listing.
    let (names, counts, listing) = (&trailer[12..at], &trailer[at..at + 24], &trailer[at + 40..]);
    let payload = [listing, &v2[..graph_len]].concat();
    let mut v1 = b"CODAHNSW".to_vec();
    v1.extend_from_slice(&1u32.to_le_bytes());
    v1.extend_from_slice(names);
    v1.extend_from_slice(counts);
    v1.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    v1.extend_from_slice(&twox_hash::XxHash3_64::oneshot(&payload).to_le_bytes());
    v1.extend_from_slice(&payload);
    v1
}

#[test]
fn a_graph_file_of_format_version_1_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x0001);
    let queries: Vec<Vec<f32>> = (0..20).map(|_| rng.unit()).collect();
    let (_, before) = saved_graph(dir.path(), 1_500, &mut rng, &queries);
    let file = graph_files(dir.path()).pop().unwrap();
    let v1 = as_version_1(&std::fs::read(&file).unwrap());
    std::fs::write(&file, v1).unwrap();
    let backend = open(dir.path());
    let loaded = backend.recovery().graphs;
    assert_eq!((loaded.loaded, loaded.rejected), (1, 0));
    assert_eq!(backend.graph_builds(), 0, "loaded, not rebuilt");
    assert_eq!(top10(&backend, &queries), before);
}

#[test]
fn a_graph_from_an_older_log_state_gets_the_later_appends_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let scope = Scope::default();
    let mut rng = Rng(0x01D5);
    let queries: Vec<Vec<f32>> = (0..20).map(|_| rng.unit()).collect();
    let (records, _) = saved_graph(dir.path(), 2_000, &mut rng, &queries);
    let file = graph_files(dir.path()).pop().unwrap();
    let old_graph = std::fs::read(&file).unwrap();
    // More writes, then a shutdown that saves them; the older graph is put back after it.
    let added: Vec<MemoryRecord> = (0..300).map(|i| record(rng.unit(), 5_000 + i)).collect();
    let deleted: Vec<MemoryId> = records.iter().step_by(10).map(|r| r.memory.id).collect();
    let moved: Vec<MemoryRecord> = records
        .iter()
        .skip(1)
        .step_by(40)
        .map(|r| MemoryRecord {
            embedding: rng.unit(),
            ..r.clone()
        })
        .collect();
    {
        let backend = open(dir.path());
        for r in &added {
            backend.insert(&scope, r.clone()).unwrap();
        }
        for id in &deleted {
            assert!(backend.delete(&scope, *id, By::Api).unwrap());
        }
        for r in &moved {
            backend.update(&scope, r.clone()).unwrap();
        }
    }
    std::fs::write(&file, &old_graph).unwrap();
    let backend = open(dir.path());
    let loaded = backend.recovery().graphs;
    assert_eq!((loaded.loaded, loaded.rejected), (1, 0));
    assert_eq!(loaded.added, added.len() + moved.len());
    assert_eq!(loaded.removed, deleted.len() + moved.len());
    assert_eq!(backend.graph_builds(), 0, "caught up, not rebuilt");
    assert_eq!(backend.graphs_ready(), 1);
    let gone: HashSet<MemoryId> = deleted.iter().copied().collect();
    for r in added.iter().chain(&moved) {
        let hits = backend
            .search(&scope, &r.embedding, 10, -1.0, None)
            .unwrap();
        assert_eq!(hits[0].id, r.memory.id, "a later append or update is found");
        assert!(hits.iter().all(|h| !gone.contains(&h.id)));
    }
    for r in records.iter().step_by(10).take(100) {
        let hits = backend
            .search(&scope, &r.embedding, 10, -1.0, None)
            .unwrap();
        assert!(hits.iter().all(|h| !gone.contains(&h.id)), "a deleted one");
    }
}

#[test]
fn erasing_a_user_deletes_its_saved_graph_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0xE7A5);
    let queries: Vec<Vec<f32>> = (0..4).map(|_| rng.unit()).collect();
    saved_graph(dir.path(), 1_500, &mut rng, &queries);
    let backend = open(dir.path());
    assert_eq!(backend.graphs_ready(), 1);
    let erased = backend.erase_owner(&Scope::default()).unwrap();
    assert_eq!(erased.memories, 1_500);
    // Gone when the call returns, not at the next shutdown: the file holds the user's vectors.
    assert!(graph_files(dir.path()).is_empty());
    drop(backend);
    assert!(graph_files(dir.path()).is_empty());
}
