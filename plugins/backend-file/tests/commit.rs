//! Commit markers (`Change::Commit`), which a cluster node writes after each operation it
//! applies from the cluster's log: a crash between an operation's changes and its marker must
//! not keep those changes, since the node applies the operation again.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::io::Write;

use coda_backend_file::FileOptions;
use coda_core::MemoryBackend;
use common::{ds, open, options, record};
use uuid::Uuid;

#[test]
fn changes_after_the_last_commit_are_cut_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (kept, lost) = (Uuid::new_v4(), Uuid::new_v4());
    {
        let backend = open(options(dir.path()));
        assert_eq!(backend.committed().unwrap(), 0);
        backend.commit(0).unwrap();
        backend.insert(&ds(), record(kept, 0)).unwrap();
        backend.commit(7).unwrap();
        // The next operation's change is logged, and the node dies before its marker.
        backend.insert(&ds(), record(lost, 0)).unwrap();
        assert!(backend.get(&ds(), lost).unwrap().is_some());
    }
    let reopened = open(options(dir.path()));
    assert_eq!(reopened.committed().unwrap(), 7);
    // Held until its marker was read, the write still has its vector.
    let replayed = reopened.get(&ds(), kept).unwrap().unwrap();
    assert_eq!(replayed.embedding, record(kept, 0).embedding);
    assert!(
        reopened.get(&ds(), lost).unwrap().is_none(),
        "an uncommitted change is cut, so re-applying its operation cannot repeat it"
    );
    // Appends continue after the cut: the lost id can be written again and survives.
    reopened.insert(&ds(), record(lost, 1)).unwrap();
    reopened.commit(8).unwrap();
    drop(reopened);
    let again = open(options(dir.path()));
    assert_eq!(again.committed().unwrap(), 8);
    assert_eq!(again.export(&ds()).unwrap().len(), 2);
}

#[test]
fn a_log_without_markers_keeps_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let id = Uuid::new_v4();
    open(options(dir.path()))
        .insert(&ds(), record(id, 0))
        .unwrap();
    let reopened = open(options(dir.path()));
    assert!(reopened.get(&ds(), id).unwrap().is_some());
    assert_eq!(reopened.committed().unwrap(), 0);
}

#[test]
fn compaction_keeps_the_commit_position() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileOptions {
        // Only the explicit compaction below runs.
        compact_min_dead: 1_000_000,
        ..options(dir.path())
    };
    let id = Uuid::new_v4();
    {
        let backend = open(opts.clone());
        backend.commit(0).unwrap();
        backend.insert(&ds(), record(id, 0)).unwrap();
        backend.commit(1).unwrap();
        for version in 1..=3 {
            backend.update(&ds(), record(id, version)).unwrap();
            backend.commit(1 + version).unwrap();
        }
        backend.compact().unwrap();
        backend.update(&ds(), record(id, 9)).unwrap();
        assert!(
            backend.compact().is_err(),
            "no compaction while an operation is open"
        );
    }
    let reopened = open(opts);
    assert_eq!(reopened.committed().unwrap(), 4);
    let stored = reopened.get(&ds(), id).unwrap().unwrap();
    assert_eq!(
        stored,
        record(id, 3),
        "the update after the compacted marker never committed"
    );
}

#[test]
fn a_torn_commit_marker_cuts_back_to_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let id = Uuid::new_v4();
    let path = {
        let backend = open(options(dir.path()));
        backend.commit(0).unwrap();
        backend.commit(1).unwrap();
        backend.insert(&ds(), record(id, 0)).unwrap();
        backend.log_path()
    };
    // Half a marker frame: the crash hit while writing it.
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&[17, 0, 0]).unwrap();
    drop(file);
    let reopened = open(options(dir.path()));
    assert_eq!(reopened.committed().unwrap(), 1);
    assert!(reopened.get(&ds(), id).unwrap().is_none());
}
