//! Writes run inside `coda_core::durability::defer` (as the server runs them): with
//! `sync = "always"` they hand their fsync wait to the caller, which resolves once the bytes
//! are on disk; the fsync thread shares fsyncs among them and settles what is left at close.
#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use coda_backend_file::{FileOptions, SyncPolicy};
use coda_core::durability::{self, Waits};
use coda_core::MemoryBackend;
use common::{ds, open, options, record};
use uuid::Uuid;

/// Polls `future` on this thread until it is ready, failing after 10 s.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        assert!(
            Instant::now() < deadline,
            "the wait did not resolve in 10 s"
        );
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

fn insert_deferred(backend: &coda_backend_file::FileBackend) -> Waits {
    let (inserted, waits) = durability::defer(|| backend.insert(&ds(), record(Uuid::new_v4(), 0)));
    inserted.unwrap();
    waits
}

#[test]
fn a_deferred_write_hands_off_its_fsync_and_the_wait_resolves_once_it_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(options(dir.path()));
    let waits = insert_deferred(&backend);
    assert!(!waits.is_empty(), "sync = always hands the fsync wait off");
    block_on(waits.wait()).unwrap();
    assert!(
        backend.all_durable(),
        "resolved before the write was fsynced"
    );
    assert!(backend.fsyncs() >= 1);
}

#[test]
fn outside_a_deferral_scope_a_write_waits_for_its_fsync_itself() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(options(dir.path()));
    backend.insert(&ds(), record(Uuid::new_v4(), 0)).unwrap();
    assert!(backend.all_durable(), "returned before its fsync");
}

#[test]
fn sync_batch_and_never_hand_off_nothing() {
    for sync in [SyncPolicy::Batch, SyncPolicy::Never] {
        let dir = tempfile::tempdir().unwrap();
        let backend = open(FileOptions {
            sync,
            ..options(dir.path())
        });
        assert!(insert_deferred(&backend).is_empty(), "{sync:?}");
    }
}

#[test]
fn concurrent_deferred_writers_share_fsyncs_and_all_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(open(options(dir.path())));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let backend = Arc::clone(&backend);
            std::thread::spawn(move || {
                let waits: Vec<Waits> = (0..40).map(|_| insert_deferred(&backend)).collect();
                for waits in waits {
                    block_on(waits.wait()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(backend.all_durable());
    let fsyncs = backend.fsyncs();
    assert!(
        fsyncs < 640,
        "640 deferred writes took {fsyncs} fsyncs: no group commit"
    );
    assert_eq!(backend.len().unwrap(), 640);
}

#[test]
fn closing_the_backend_settles_every_outstanding_wait_with_the_writes_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(options(dir.path()));
    let waits: Vec<Waits> = (0..100).map(|_| insert_deferred(&backend)).collect();
    drop(backend);
    for waits in waits {
        block_on(waits.wait()).unwrap();
    }
    assert_eq!(open(options(dir.path())).len().unwrap(), 100);
}

#[test]
fn while_a_compaction_runs_quick_writes_are_not_offered_to_async_threads() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(open(options(dir.path())));
    assert!(backend.quick_when_deferred());
    // After a commit marker, a change with none after it holds a compaction off (it waits up
    // to a second for a moment between two replicated operations): a compaction caught
    // under way.
    backend.commit(1).unwrap();
    backend.insert(&ds(), record(Uuid::new_v4(), 0)).unwrap();
    let compacting = {
        let backend = Arc::clone(&backend);
        std::thread::spawn(move || backend.compact())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.quick_when_deferred() {
        assert!(
            Instant::now() < deadline,
            "the compaction never showed as under way"
        );
        std::thread::yield_now();
    }
    assert!(
        compacting.join().unwrap().is_err(),
        "the open operation holds it off"
    );
    assert!(backend.quick_when_deferred(), "the compaction is over");
}
