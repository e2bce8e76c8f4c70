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
