//! Conformance for `MemoryBackend`.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::backend::MemoryBackend;
use crate::filter::Filter;
use crate::model::{By, Memory, MemoryRecord, Metadata};
use crate::scope::Scope;
use crate::vector::normalize;
use crate::Error;

const DIMS: usize = 8;

fn base_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

/// A record whose embedding points mostly along axis `axis`, stamped `age` seconds after a
/// fixed base time.
pub(super) fn record(content: &str, source_type: &str, axis: usize, age: i64) -> MemoryRecord {
    let mut embedding = vec![0.05f32; DIMS];
    embedding[axis % DIMS] = 1.0;
    normalize(&mut embedding);
    let metadata = Metadata {
        source_type: source_type.to_owned(),
        importance: 0.5,
        timestamp: base_time() + Duration::seconds(age),
        topics: vec![source_type.to_owned()],
        extra: Default::default(),
    };
    MemoryRecord {
        memory: Memory::new(Uuid::new_v4(), content, metadata),
        embedding,
    }
}

/// [`record`] owned by `scope`'s user (and its agent and session, when it names them).
pub(super) fn scoped(scope: &Scope, content: &str, axis: usize, age: i64) -> MemoryRecord {
    let mut r = record(content, "fact", axis, age);
    r.memory = r.memory.in_scope(scope);
    r
}

pub(super) fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; DIMS];
    v[i] = 1.0;
    v
}

/// Runs every rule of the `MemoryBackend` contract against fresh backends from `make`: memories,
/// scopes (isolation between users, agent and session narrowing, erasure) and sessions.
pub fn backend_conformance(make: &dyn Fn() -> Arc<dyn MemoryBackend>) {
    crud(make());
    listing(make());
    search(make());
    replace_owner(make());
    concurrent_inserts(make());
    super::scopes::isolation(make());
    super::scopes::narrowing(make());
    super::scopes::erasure(make());
    super::scopes::sessions(make());
    super::scopes::session_conflicts(make());
    super::history::versions(make());
    super::history::persisted(make());
}

fn crud(backend: Arc<dyn MemoryBackend>) {
    let s = Scope::default();
    assert!(
        backend.is_empty().expect("is_empty"),
        "a new backend is empty"
    );
    let a = record("alpha", "fact", 0, 0);
    backend.insert(&s, a.clone()).expect("insert");
    assert_eq!(backend.len().expect("len"), 1);
    assert_eq!(backend.get(&s, a.memory.id).expect("get"), Some(a.clone()));
    assert!(
        matches!(backend.insert(&s, a.clone()), Err(Error::Invalid { .. })),
        "inserting an existing id is Error::Invalid"
    );
    let mut changed = a.clone();
    changed.memory.content = "alpha two".into();
    changed.embedding = {
        let mut v = axis(1);
        normalize(&mut v);
        v
    };
    backend.update(&s, changed.clone()).expect("update");
    assert_eq!(
        backend.get(&s, a.memory.id).expect("get"),
        Some(changed.clone())
    );
    let ghost = record("ghost", "fact", 2, 0);
    assert!(
        matches!(
            backend.update(&s, ghost.clone()),
            Err(Error::NotFound { .. })
        ),
        "updating a missing id is Error::NotFound"
    );
    assert!(backend.delete(&s, a.memory.id, By::Api).expect("delete"));
    assert!(!backend
        .delete(&s, a.memory.id, By::Api)
        .expect("delete again"));
    assert_eq!(backend.get(&s, a.memory.id).expect("get"), None);
    assert_eq!(backend.len().expect("len"), 0);
    backend.flush().expect("flush");
}

fn listing(backend: Arc<dyn MemoryBackend>) {
    let s = Scope::default();
    let records: Vec<_> = (0..10)
        .map(|i| {
            let kind = if i % 2 == 0 { "fact" } else { "preference" };
            // Inserted out of time order: listing must sort by timestamp.
            record(&format!("m{i}"), kind, i, ((i * 7) % 10) as i64)
        })
        .collect();
    for r in &records {
        backend.insert(&s, r.clone()).expect("insert");
    }
    let all = backend.list(&s, 0, 100, None).expect("list");
    assert_eq!(all.len(), 10);
    assert!(
        all.windows(2)
            .all(|w| w[0].metadata.timestamp >= w[1].metadata.timestamp),
        "list is newest first"
    );
    let page = backend.list(&s, 3, 4, None).expect("page");
    assert_eq!(
        page,
        all[3..7].to_vec(),
        "offset and limit page the same order"
    );
    assert!(backend
        .list(&s, 20, 5, None)
        .expect("past the end")
        .is_empty());
    let facts = backend
        .list(&s, 0, 100, Some(&Filter::source_type("fact")))
        .expect("filtered");
    assert_eq!(facts.len(), 5);
    assert!(facts.iter().all(|m| m.metadata.source_type == "fact"));
    let exported = backend.export(&s).expect("export");
    let ids: Vec<_> = exported.iter().map(|r| r.memory.id).collect();
    let inserted: Vec<_> = records.iter().map(|r| r.memory.id).collect();
    assert_eq!(ids, inserted, "export is in insertion order");
}

fn search(backend: Arc<dyn MemoryBackend>) {
    let s = Scope::default();
    let records: Vec<_> = (0..DIMS)
        .map(|i| {
            record(
                &format!("axis {i}"),
                if i < 4 { "fact" } else { "note" },
                i,
                i as i64,
            )
        })
        .collect();
    for r in &records {
        backend.insert(&s, r.clone()).expect("insert");
    }
    let hits = backend.search(&s, &axis(3), 3, -1.0, None).expect("search");
    assert_eq!(hits.len(), 3, "search returns `limit` results");
    assert_eq!(
        hits[0].id, records[3].memory.id,
        "the most similar comes first"
    );
    assert!(
        (hits[0].similarity - crate::vector::dot(&axis(3), &records[3].embedding)).abs() < 1e-5
    );
    assert!(
        hits.windows(2).all(|w| w[0].similarity >= w[1].similarity),
        "results are sorted by similarity"
    );
    let strict = backend
        .search(&s, &axis(3), 10, 0.5, None)
        .expect("threshold");
    assert_eq!(strict.len(), 1, "min_similarity drops weaker matches");
    let notes = backend
        .search(&s, &axis(3), 10, -1.0, Some(&Filter::source_type("note")))
        .expect("filtered search");
    assert_eq!(notes.len(), 4);
    assert!(notes.iter().all(|h| h.metadata.source_type == "note"));
    assert!(backend
        .search(&s, &axis(0), 0, -1.0, None)
        .expect("k = 0")
        .is_empty());
}

fn replace_owner(backend: Arc<dyn MemoryBackend>) {
    let s = Scope::default();
    for i in 0..5 {
        backend
            .insert(&s, record(&format!("old {i}"), "fact", i, i as i64))
            .expect("insert");
    }
    let fresh: Vec<_> = (0..3)
        .map(|i| record(&format!("new {i}"), "fact", i, 0))
        .collect();
    backend
        .replace_owner(&s, fresh.clone())
        .expect("replace_owner");
    assert_eq!(backend.len().expect("len"), 3);
    assert_eq!(backend.export(&s).expect("export"), fresh);
    let hits = backend
        .search(&s, &axis(1), 1, -1.0, None)
        .expect("search after replace");
    assert_eq!(hits[0].content, "new 1");
    backend.replace_owner(&s, Vec::new()).expect("clear");
    assert!(backend.is_empty().expect("is_empty"));
}

fn concurrent_inserts(backend: Arc<dyn MemoryBackend>) {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let backend = Arc::clone(&backend);
            std::thread::spawn(move || {
                let s = Scope::default();
                for i in 0..50 {
                    backend
                        .insert(&s, record(&format!("t{t} m{i}"), "fact", i, i as i64))
                        .expect("concurrent insert");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("insert thread");
    }
    assert_eq!(
        backend.len().expect("len"),
        200,
        "no concurrent insert is lost"
    );
}
