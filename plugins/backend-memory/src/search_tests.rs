//! The int8 index against the exact scan: recall, exact scores, thresholds, filters, and the
//! int8 copy kept in step through updates and swap-removes.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use coda_core::vector::{dot, normalize, quantize_i8};
use coda_core::{Filter, Memory, MemoryBackend, MemoryId, MemoryRecord, Metadata, Scope};

use super::Slots;
use crate::config::IndexOptions;
use crate::InMemoryBackend;

pub(super) const DIMS: usize = 384;

/// A deterministic xorshift64 stream, so every run sees the same vectors.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Roughly normal (a sum of four uniforms), which is what embedding components look like.
    fn gaussian(&mut self) -> f32 {
        (0..4)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .sum()
    }

    pub(super) fn unit(&mut self) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIMS).map(|_| self.gaussian()).collect();
        normalize(&mut v);
        v
    }

    /// `center` plus noise of relative size `spread`, normalised.
    pub(super) fn near(&mut self, center: &[f32], spread: f32) -> Vec<f32> {
        let noise = self.unit();
        let mut v: Vec<f32> = center
            .iter()
            .zip(&noise)
            .map(|(c, n)| c + spread * n)
            .collect();
        normalize(&mut v);
        v
    }
}

pub(super) fn record(scope: &Scope, embedding: Vec<f32>, source_type: &str) -> MemoryRecord {
    let metadata = Metadata::new(source_type, 0.5);
    let memory = Memory::new(uuid::Uuid::new_v4(), "m", metadata).in_scope(scope);
    MemoryRecord { memory, embedding }
}

/// The same records in an int8 backend and an exact one.
fn pair(scope: &Scope, vectors: &[Vec<f32>]) -> (InMemoryBackend, InMemoryBackend) {
    let int8 = InMemoryBackend::new(DIMS);
    let exact = InMemoryBackend::with_index(DIMS, IndexOptions::exact());
    for (i, v) in vectors.iter().enumerate() {
        let kind = if i % 100 == 0 { "rare" } else { "fact" };
        let r = record(scope, v.clone(), kind);
        int8.insert(scope, r.clone()).unwrap();
        exact.insert(scope, r).unwrap();
    }
    (int8, exact)
}

pub(super) fn ids(hits: &[coda_core::ScoredMemory]) -> Vec<MemoryId> {
    hits.iter().map(|h| h.id).collect()
}

/// Mean recall@10 of `int8` against `exact` over `queries`.
fn recall_at_10(
    int8: &InMemoryBackend,
    exact: &InMemoryBackend,
    scope: &Scope,
    queries: &[Vec<f32>],
) -> f64 {
    let mut found = 0;
    for q in queries {
        let want: HashSet<MemoryId> = ids(&exact.search(scope, q, 10, -1.0, None).unwrap())
            .into_iter()
            .collect();
        let got = int8.search(scope, q, 10, -1.0, None).unwrap();
        found += got.iter().filter(|h| want.contains(&h.id)).count();
    }
    found as f64 / (10 * queries.len()) as f64
}

/// Big enough that the default index takes the int8 path.
fn size() -> usize {
    IndexOptions::DEFAULT_EXACT_BELOW + 1_500
}

#[test]
fn recall_at_10_is_at_least_0_99_on_random_vectors() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let vectors: Vec<Vec<f32>> = (0..size()).map(|_| rng.unit()).collect();
    let scope = Scope::default();
    let (int8, exact) = pair(&scope, &vectors);
    // Random queries over random vectors: the scores are crowded, the hardest case.
    let queries: Vec<Vec<f32>> = (0..60).map(|_| rng.unit()).collect();
    let recall = recall_at_10(&int8, &exact, &scope, &queries);
    assert!(recall >= 0.99, "recall@10 {recall}");
}

#[test]
fn recall_at_10_is_at_least_0_99_on_clustered_vectors() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let centers: Vec<Vec<f32>> = (0..20).map(|_| rng.unit()).collect();
    let vectors: Vec<Vec<f32>> = (0..size())
        .map(|i| {
            let center = &centers[i % centers.len()];
            rng.near(center, 0.6)
        })
        .collect();
    let scope = Scope::default();
    let (int8, exact) = pair(&scope, &vectors);
    let queries: Vec<Vec<f32>> = (0..60)
        .map(|i| {
            let center = &centers[i % centers.len()];
            rng.near(center, 0.6)
        })
        .collect();
    let recall = recall_at_10(&int8, &exact, &scope, &queries);
    assert!(recall >= 0.99, "recall@10 {recall}");
}

#[test]
fn returned_scores_are_exact_and_thresholds_apply_to_them() {
    let mut rng = Rng(42);
    let vectors: Vec<Vec<f32>> = (0..size()).map(|_| rng.unit()).collect();
    let scope = Scope::default();
    let (int8, exact) = pair(&scope, &vectors);
    for _ in 0..10 {
        // A query close to a stored vector, so the top of the ranking is well separated.
        let target = rng.next() as usize % vectors.len();
        let q = rng.near(&vectors[target], 0.3);
        let want = exact.search(&scope, &q, 10, -1.0, None).unwrap();
        let got = int8.search(&scope, &q, 10, -1.0, None).unwrap();
        for hit in &got {
            let stored = int8.get(&scope, hit.id).unwrap().unwrap();
            assert_eq!(hit.similarity, dot(&q, &stored.embedding));
        }
        assert_eq!(ids(&got)[..3], ids(&want)[..3]);
        // A threshold between the 3rd and 4th exact scores keeps exactly those three.
        let min = (want[2].similarity + want[3].similarity) / 2.0;
        let above = int8.search(&scope, &q, 10, min, None).unwrap();
        assert_eq!(above, exact.search(&scope, &q, 10, min, None).unwrap());
        assert_eq!(above.len(), 3);
        let none = int8.search(&scope, &q, 10, want[0].similarity + 1e-3, None);
        assert!(none.unwrap().is_empty());
    }
}

#[test]
fn filters_apply_before_the_candidates_are_chosen() {
    let mut rng = Rng(7);
    let vectors: Vec<Vec<f32>> = (0..size()).map(|_| rng.unit()).collect();
    let scope = Scope::default();
    let (int8, exact) = pair(&scope, &vectors);
    // One memory in a hundred is "rare": fewer than the candidates kept, so the int8 scan
    // must find them all and the result is exactly the exact one.
    let rare = Filter::parse(&serde_json::json!({"source_type": "rare"})).unwrap();
    let common = Filter::parse(&serde_json::json!({"source_type": "fact"})).unwrap();
    for _ in 0..10 {
        let q = rng.unit();
        let got = int8.search(&scope, &q, 10, -1.0, Some(&rare)).unwrap();
        assert_eq!(
            got,
            exact.search(&scope, &q, 10, -1.0, Some(&rare)).unwrap()
        );
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|h| h.metadata.source_type == "rare"));
        let got = int8.search(&scope, &q, 10, -1.0, Some(&common)).unwrap();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|h| h.metadata.source_type == "fact"));
    }
}

#[test]
fn each_owners_index_has_its_own_int8_copy() {
    let mut rng = Rng(99);
    let (alice, bob) = (Scope::user("alice").unwrap(), Scope::user("bob").unwrap());
    let int8 = InMemoryBackend::new(DIMS);
    let exact = InMemoryBackend::with_index(DIMS, IndexOptions::exact());
    let n = size();
    for i in 0..2 * n {
        let scope = if i % 2 == 0 { &alice } else { &bob };
        let r = record(scope, rng.unit(), "fact");
        int8.insert(scope, r.clone()).unwrap();
        exact.insert(scope, r).unwrap();
    }
    // f32 plus one code byte per dimension and one f32 multiplier per vector.
    assert_eq!(int8.vector_bytes(), 2 * n * (4 * DIMS + DIMS + 4));
    assert_eq!(exact.vector_bytes(), 2 * n * 4 * DIMS);
    let queries: Vec<Vec<f32>> = (0..30).map(|_| rng.unit()).collect();
    for scope in [&alice, &bob] {
        for q in &queries {
            let hits = int8.search(scope, q, 10, -1.0, None).unwrap();
            assert!(hits.iter().all(|h| h.user_id == scope.user_id()));
        }
        assert!(recall_at_10(&int8, &exact, scope, &queries) >= 0.99);
    }
}

/// Every slot's codes are what quantising its current `f32` vector gives.
fn assert_in_step(slots: &Slots) {
    let int8 = slots.int8.as_ref().unwrap();
    assert_eq!(int8.len(), slots.len());
    let mut codes = vec![0i8; DIMS];
    for slot in 0..slots.len() {
        let m = quantize_i8(slots.vector(slot), &mut codes);
        assert_eq!(int8.row(slot), (&codes[..], m), "slot {slot}");
    }
}

#[test]
fn updates_and_deletes_keep_the_int8_copy_in_step() {
    let mut rng = Rng(5);
    let scope = Scope::default();
    let mut slots = Slots::new(DIMS, IndexOptions::default());
    let mut live: Vec<MemoryRecord> = Vec::new();
    for _ in 0..size() {
        let r = record(&scope, rng.unit(), "fact");
        live.push(r.clone());
        slots.push_record(r);
    }
    assert_in_step(&slots);
    // Deletes from the middle and the end: swap-removes move the last vector each time.
    for _ in 0..300 {
        let i = rng.next() as usize % live.len();
        assert!(slots.remove(live.swap_remove(i).memory.id));
    }
    let last = live.pop().unwrap();
    assert!(slots.remove(last.memory.id));
    for _ in 0..300 {
        let i = rng.next() as usize % live.len();
        live[i].embedding = rng.unit();
        assert!(slots.replace_record(live[i].clone()));
    }
    assert_in_step(&slots);
    // Searching for a record's own (new) vector finds it first, with its exact score.
    for r in live.iter().step_by(97) {
        let hits = slots.search(&scope, &r.embedding, 10, -1.0, None);
        assert_eq!(hits[0].id, r.memory.id);
        assert_eq!(hits[0].similarity, dot(&r.embedding, &r.embedding));
    }
    let hits = slots.search(&scope, &last.embedding, 10, -1.0, None);
    assert!(hits.iter().all(|h| h.id != last.memory.id));
}

#[test]
fn vectors_with_nan_or_infinity_score_as_an_exact_scan_scores_them() {
    let mut rng = Rng(11);
    let mut vectors: Vec<Vec<f32>> = (0..size()).map(|_| rng.unit()).collect();
    vectors[10][0] = f32::INFINITY;
    vectors[20][5] = f32::NAN;
    let scope = Scope::default();
    let (int8, exact) = pair(&scope, &vectors);
    let mut q = rng.unit();
    q[0] = q[0].abs() + 0.1;
    let got = int8.search(&scope, &q, 10, -1.0, None).unwrap();
    assert_eq!(
        ids(&got),
        ids(&exact.search(&scope, &q, 10, -1.0, None).unwrap())
    );
    assert_eq!(got[0].similarity, f32::INFINITY);
}

#[test]
fn options_name_the_index_and_reject_unknown_values() {
    let factory =
        coda_core::registry::find::<coda_core::registry::BackendFactory>(crate::NAME).unwrap();
    let filled = factory
        .check_options(serde_json::json!({}), "backends.memory")
        .unwrap();
    assert_eq!(filled["index"], "int8");
    assert_eq!(filled["oversample"], IndexOptions::DEFAULT_OVERSAMPLE);
    let exact = factory
        .check_options(serde_json::json!({"index": "exact"}), "backends.memory")
        .unwrap();
    assert_eq!(exact["index"], "exact");
    let err = factory
        .check_options(serde_json::json!({"index": "annoy"}), "backends.memory")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`backends.memory.index`"), "{err}");
    assert!(
        err.contains("unknown variant `annoy`, expected one of `int8`, `exact`, `hnsw`"),
        "{err}"
    );
    let zero = crate::MemoryOptions {
        oversample: 0,
        ..Default::default()
    };
    let err = zero.index_options().unwrap_err().to_string();
    assert!(err.contains("backends.memory.oversample"), "{err}");
}
