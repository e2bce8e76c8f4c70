//! The file backend against the conformance kit, and its sync policies, compaction and
//! embedder changes.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use coda_backend_file::{
    FileBackend, FileOptions, IndexKind, OnEmbedderChange, SyncPolicy, LOG_FILE,
};
use coda_core::{Error, MemoryBackend};
use common::{ds, embedder, open, options, record, DIMS};
use uuid::Uuid;

fn conformance(sync: SyncPolicy) {
    let root = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    coda_core::testkit::backend_conformance(&|| {
        let dir = root
            .path()
            .join(n.fetch_add(1, Ordering::Relaxed).to_string());
        let options = FileOptions {
            sync,
            batch_ms: 5,
            ..options(&dir)
        };
        Arc::new(open(options))
    });
}

#[test]
fn passes_the_conformance_kit_with_sync_always() {
    conformance(SyncPolicy::Always);
}

#[test]
fn passes_the_conformance_kit_with_sync_batch() {
    conformance(SyncPolicy::Batch);
}

#[test]
fn passes_the_conformance_kit_with_sync_never() {
    conformance(SyncPolicy::Never);
}

#[test]
fn every_kind_of_change_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<Uuid> = (0..20).map(|_| Uuid::new_v4()).collect();
    let expected = {
        let backend = open(options(dir.path()));
        for id in &ids {
            backend.insert(&ds(), record(*id, 0)).unwrap();
        }
        backend.update(&ds(), record(ids[3], 1)).unwrap();
        assert!(backend.delete(&ds(), ids[4], coda_core::By::Api).unwrap());
        let mut with_extra = record(ids[5], 2);
        with_extra
            .memory
            .metadata
            .extra
            .insert("note".into(), "u1".into());
        backend.update(&ds(), with_extra).unwrap();
        backend.export(&ds()).unwrap()
    };
    let reopened = open(options(dir.path()));
    assert_eq!(reopened.export(&ds()).unwrap(), expected);
    assert_eq!(reopened.recovery().live, 19);
    reopened
        .replace_owner(&ds(), vec![record(ids[0], 9)])
        .unwrap();
    drop(reopened);
    let cleared = open(options(dir.path()));
    assert_eq!(cleared.export(&ds()).unwrap(), vec![record(ids[0], 9)]);
}

#[test]
fn concurrent_writers_share_fsyncs_with_sync_always() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(open(options(dir.path())));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let backend = Arc::clone(&backend);
            std::thread::spawn(move || {
                for _ in 0..40 {
                    backend.insert(&ds(), record(Uuid::new_v4(), 0)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let fsyncs = backend.fsyncs();
    assert!(fsyncs > 0, "sync = always fsyncs");
    assert!(
        fsyncs < 640,
        "640 writes from 16 threads took {fsyncs} fsyncs: no group commit"
    );
}

#[test]
fn sync_never_leaves_fsync_to_flush() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(FileOptions {
        sync: SyncPolicy::Never,
        ..options(dir.path())
    });
    for _ in 0..10 {
        backend.insert(&ds(), record(Uuid::new_v4(), 0)).unwrap();
    }
    assert_eq!(backend.fsyncs(), 0, "sync = never does not fsync writes");
    backend.flush().unwrap();
    assert_eq!(backend.fsyncs(), 1, "flush fsyncs");
}

#[test]
fn sync_batch_fsyncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(FileOptions {
        sync: SyncPolicy::Batch,
        batch_ms: 10,
        ..options(dir.path())
    });
    backend.insert(&ds(), record(Uuid::new_v4(), 0)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while backend.fsyncs() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no background fsync within 10 s"
        );
        std::thread::yield_now();
    }
}

#[test]
fn compaction_drops_dead_records_and_keeps_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileOptions {
        compact_min_dead: 50,
        ..options(dir.path())
    };
    let ids: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
    let expected = {
        let backend = open(opts.clone());
        for id in &ids {
            backend.insert(&ds(), record(*id, 0)).unwrap();
        }
        let size = |b: &FileBackend| std::fs::metadata(b.log_path()).unwrap().len();
        let before = size(&backend);
        // 160 updates: of the 200 records, compaction keeps 40 memories and 40 histories, so
        // dead (120) passes the minimum and live (80) times the ratio: it runs by itself.
        for version in 1..=4 {
            for id in &ids {
                backend.update(&ds(), record(*id, version)).unwrap();
            }
        }
        backend.wait_for_compaction();
        assert!(backend.compactions() >= 1, "compaction ran by itself");
        // Each memory's history (three versions, without vectors) stays; dead vectors go. With
        // 8-dimensional test vectors the history outweighs them, so count records, not bytes.
        assert!(size(&backend) > before, "history is kept");
        // Writes after (and during) compaction land in the new log.
        backend.delete(&ds(), ids[0], coda_core::By::Api).unwrap();
        let done = backend.compact().unwrap();
        assert_eq!(done.live, 39 + 40, "39 live records and 40 histories");
        backend.update(&ds(), record(ids[1], 7)).unwrap();
        backend.export(&ds()).unwrap()
    };
    let reopened = open(opts);
    assert_eq!(reopened.export(&ds()).unwrap(), expected);
    assert_eq!(
        reopened.recovery().replayed,
        80,
        "39 live records, 40 histories and one update: the dead updates are gone"
    );
    let history = reopened.history(&ds(), ids[0]).unwrap().unwrap();
    let actions: Vec<_> = history.iter().map(|v| v.action).collect();
    use coda_core::Action::*;
    assert_eq!(
        actions,
        [Add, Update, Update, Update, Update, Delete],
        "history survives compaction"
    );
    let updated = reopened.history(&ds(), ids[1]).unwrap().unwrap();
    assert_eq!(
        updated.len(),
        6,
        "an update after compaction adds a version"
    );
}

#[test]
fn compaction_with_concurrent_writers_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(open(FileOptions {
        compact_min_dead: u64::MAX,
        ..options(dir.path())
    }));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let backend = Arc::clone(&backend);
            std::thread::spawn(move || {
                let id = Uuid::new_v4();
                backend.insert(&ds(), record(id, 0)).unwrap();
                for version in 1..100 {
                    backend.update(&ds(), record(id, version)).unwrap();
                }
            })
        })
        .collect();
    while !writers.iter().all(|w| w.is_finished()) {
        backend.compact().unwrap();
    }
    for w in writers {
        w.join().unwrap();
    }
    let expected = backend.export(&ds()).unwrap();
    assert!(expected
        .iter()
        .all(|r| r.memory.content.ends_with("version 99")));
    drop(backend);
    assert_eq!(open(options(dir.path())).export(&ds()).unwrap(), expected);
}

#[test]
fn a_leftover_compaction_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let id = Uuid::new_v4();
    open(options(dir.path()))
        .insert(&ds(), record(id, 0))
        .unwrap();
    std::fs::write(
        dir.path().join(coda_backend_file::TEMP_FILE),
        b"half a rewrite",
    )
    .unwrap();
    let backend = open(options(dir.path()));
    assert_eq!(backend.get(&ds(), id).unwrap(), Some(record(id, 0)));
    assert!(!dir.path().join(coda_backend_file::TEMP_FILE).exists());
}

#[test]
fn an_embedder_change_reembeds_or_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let id = Uuid::new_v4();
    open(options(dir.path()))
        .insert(&ds(), record(id, 0))
        .unwrap();
    let refuse = FileOptions {
        on_embedder_change: OnEmbedderChange::Refuse,
        ..options(dir.path())
    };
    let err = FileBackend::open(refuse, embedder(16))
        .map(drop)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("hashing-v1/8") && msg.contains("hashing-v1/16"),
        "{msg}"
    );
    assert!(msg.contains("on_embedder_change"), "{msg}");
    assert_eq!(
        open(options(dir.path())).get(&ds(), id).unwrap(),
        Some(record(id, 0)),
        "refusal changed nothing"
    );
    let backend = FileBackend::open(options(dir.path()), embedder(16)).unwrap();
    assert_eq!(backend.recovery().reembedded, Some(1));
    let got = backend.get(&ds(), id).unwrap().unwrap();
    assert_eq!(
        got.embedding,
        embedder(16).embed(&got.memory.content).unwrap()
    );
    drop(backend);
    let again = FileBackend::open(options(dir.path()), embedder(16)).unwrap();
    assert_eq!(
        again.recovery().reembedded,
        None,
        "the rewritten log records the new embedder"
    );
    assert_eq!(again.get(&ds(), id).unwrap().unwrap().embedding.len(), 16);
    let log = std::fs::read(dir.path().join(LOG_FILE)).unwrap();
    assert!(
        log.windows(12).any(|w| w == b"hashing-v1/1"),
        "the header names the embedder"
    );
}

#[test]
fn a_second_open_of_the_same_directory_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(options(dir.path()));
    let err = FileBackend::open(options(dir.path()), embedder(DIMS))
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("locked"), "{err}");
    drop(first);
    open(options(dir.path()));
}

#[test]
fn the_live_set_searches_with_the_configured_index() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(open(options(dir.path())).index().kind(), IndexKind::Int8);
    let dir = tempfile::tempdir().unwrap();
    let exact = open(FileOptions {
        index: IndexKind::Exact,
        ..options(dir.path())
    });
    assert_eq!(exact.index().kind(), IndexKind::Exact);
    let dir = tempfile::tempdir().unwrap();
    let wide = open(FileOptions {
        oversample: 9,
        ..options(dir.path())
    });
    assert_eq!(wide.index().oversample(), 9);
}

#[test]
fn options_reject_unknown_keys_and_bad_values() {
    let factory =
        coda_core::registry::find::<coda_core::registry::BackendFactory>(coda_backend_file::NAME)
            .unwrap();
    let filled = factory
        .check_options(serde_json::json!({}), "backends.file")
        .unwrap();
    assert_eq!(filled["dir"], "data/memory");
    assert_eq!(filled["sync"], "always");
    assert_eq!(filled["batch_ms"], 1000);
    assert_eq!(filled["repair"], false);
    assert_eq!(filled["on_embedder_change"], "reembed");
    assert_eq!(filled["index"], "int8");
    assert_eq!(filled["oversample"], 4);
    let err = factory
        .check_options(serde_json::json!({"index": "flat"}), "backends.file")
        .unwrap_err();
    assert!(err.to_string().contains("`backends.file.index`"), "{err}");
    assert!(
        err.to_string()
            .contains("expected one of `int8`, `exact`, `hnsw`"),
        "{err}"
    );
    let bad = FileOptions {
        oversample: 0,
        ..FileOptions::default()
    };
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("backends.file.oversample"));
    let err = factory
        .check_options(serde_json::json!({"sink": "always"}), "backends.file")
        .unwrap_err();
    assert!(err.to_string().contains("unknown field `sink`"), "{err}");
    let err = factory
        .check_options(serde_json::json!({"sync": "sometimes"}), "backends.file")
        .unwrap_err();
    assert!(err.to_string().contains("`backends.file.sync`"), "{err}");
    let bad = FileOptions {
        batch_ms: 0,
        ..FileOptions::default()
    };
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("backends.file.batch_ms"));
}
