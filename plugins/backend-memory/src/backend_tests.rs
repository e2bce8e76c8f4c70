//! The store through the [`MemoryBackend`] trait: conformance, lock isolation, dimensions.

use std::sync::Arc;

use coda_core::{Memory, MemoryBackend, MemoryRecord, Scope};

use super::*;

#[test]
fn passes_the_backend_conformance_kit() {
    coda_core::testkit::backend_conformance(&|| Arc::new(InMemoryBackend::new(8)));
}

#[test]
fn passes_the_backend_conformance_kit_with_the_exact_index() {
    coda_core::testkit::backend_conformance(&|| {
        Arc::new(InMemoryBackend::with_index(8, IndexOptions::exact()))
    });
}

#[test]
#[allow(clippy::unwrap_used)]
fn a_write_holding_one_users_index_never_blocks_another_users_search() {
    let backend = Arc::new(InMemoryBackend::new(2));
    let (alice, bob) = (Scope::user("alice").unwrap(), Scope::user("bob").unwrap());
    for (scope, text) in [(&alice, "a"), (&bob, "b")] {
        let metadata = coda_core::Metadata::new("fact", 0.5);
        let memory = Memory::new(uuid::Uuid::new_v4(), text, metadata).in_scope(scope);
        let record = MemoryRecord {
            memory,
            embedding: vec![1.0, 0.0],
        };
        backend.insert(scope, record).unwrap();
    }
    // Hold bob's index as a long write into it would (growing it, rehashing its map).
    let bobs = backend.owners.get(bob.owner()).unwrap();
    let _writing = bobs.write();
    let (done, wait) = std::sync::mpsc::channel();
    let reader = Arc::clone(&backend);
    std::thread::spawn(move || {
        let hits = reader.search(&alice, &[1.0, 0.0], 5, -1.0, None).unwrap();
        let _ = done.send(hits.len());
    });
    let found = wait
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("alice's search finishes while bob's index is locked");
    assert_eq!(found, 1);
}

#[test]
fn wrong_dimensions_are_refused() {
    let backend = InMemoryBackend::new(8);
    assert!(backend
        .search(&Scope::default(), &[1.0; 4], 1, 0.0, None)
        .is_err());
}
