//! Opening damaged logs: torn tails are cut, mid-log damage refuses unless `repair`.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use coda_backend_file::{FileBackend, FileOptions, LOG_FILE};
use coda_core::{Error, MemoryBackend, MemoryRecord};
use common::{ds, embedder, open, options, record, DIMS};
use uuid::Uuid;

/// Writes `n` records to a log in `dir` and returns them with the offset where each starts.
fn write_log(dir: &Path, n: usize) -> (Vec<MemoryRecord>, Vec<u64>) {
    let backend = open(options(dir));
    let mut records = Vec::new();
    let mut starts = Vec::new();
    for i in 0..n {
        starts.push(fs::metadata(backend.log_path()).unwrap().len());
        let r = record(Uuid::new_v4(), i as u64);
        backend.insert(&ds(), r.clone()).unwrap();
        records.push(r);
    }
    (records, starts)
}

fn copy_log(from: &Path, to: &Path, len: u64) {
    fs::create_dir_all(to).unwrap();
    let mut bytes = fs::read(from.join(LOG_FILE)).unwrap();
    bytes.truncate(len as usize);
    fs::write(to.join(LOG_FILE), bytes).unwrap();
}

#[test]
fn a_torn_tail_is_cut_at_every_byte_of_the_last_record() {
    let root = tempfile::tempdir().unwrap();
    let source = root.path().join("source");
    let (records, starts) = write_log(&source, 5);
    let last = *starts.last().unwrap();
    let end = fs::metadata(source.join(LOG_FILE)).unwrap().len();
    for cut in last..end {
        let dir = root.path().join(format!("cut-{cut}"));
        copy_log(&source, &dir, cut);
        let backend = open(options(&dir));
        assert_eq!(
            backend.export(&ds()).unwrap(),
            records[..4].to_vec(),
            "cut at {cut}"
        );
        let torn = backend.recovery().torn_tail.clone();
        if cut == last {
            assert_eq!(torn, None, "a log cut between records is whole");
        } else {
            let torn = torn.unwrap_or_else(|| panic!("cut at {cut}: no torn tail reported"));
            assert_eq!(
                (torn.offset, torn.bytes, torn.records),
                (last, cut - last, 1)
            );
        }
        assert_eq!(
            fs::metadata(backend.log_path()).unwrap().len(),
            last,
            "cut at {cut}"
        );
        // Appends continue cleanly after the cut.
        backend.insert(&ds(), records[4].clone()).unwrap();
        drop(backend);
        let reopened = open(options(&dir));
        assert_eq!(reopened.export(&ds()).unwrap(), records, "cut at {cut}");
        assert_eq!(reopened.recovery().torn_tail, None);
        drop(reopened);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_corrupt_last_record_is_cut_like_a_torn_one() {
    let dir = tempfile::tempdir().unwrap();
    let (records, starts) = write_log(dir.path(), 3);
    let path = dir.path().join(LOG_FILE);
    let mut bytes = fs::read(&path).unwrap();
    let i = starts[2] as usize + 40;
    bytes[i] ^= 0x55;
    fs::write(&path, bytes).unwrap();
    let backend = open(options(dir.path()));
    assert_eq!(backend.export(&ds()).unwrap(), records[..2].to_vec());
    let torn = backend.recovery().torn_tail.clone().unwrap();
    assert_eq!(torn.offset, starts[2]);
    assert!(torn.reason.contains("checksum"), "{}", torn.reason);
}

#[test]
fn damage_in_the_middle_refuses_to_open_and_repair_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (records, starts) = write_log(dir.path(), 10);
    let path = dir.path().join(LOG_FILE);
    let mut bytes = fs::read(&path).unwrap();
    for i in 0..3 {
        bytes[starts[4] as usize + 30 + i] ^= 0xFF;
    }
    fs::write(&path, &bytes).unwrap();

    let err = FileBackend::open(options(dir.path()), embedder(DIMS))
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "names the file: {msg}"
    );
    assert!(
        msg.contains(&format!("offset {}", starts[4])),
        "names the offset: {msg}"
    );
    assert!(msg.contains("repair"), "says how to open anyway: {msg}");
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "a refused open changes nothing"
    );

    let repaired = open(FileOptions {
        repair: true,
        ..options(dir.path())
    });
    let mut expected = records.clone();
    expected.remove(4);
    assert_eq!(
        repaired.export(&ds()).unwrap(),
        expected,
        "every valid record before and after"
    );
    let damage = &repaired.recovery().repaired;
    assert_eq!(damage.len(), 1);
    assert_eq!(
        (damage[0].offset, damage[0].bytes),
        (starts[4], starts[5] - starts[4])
    );
    drop(repaired);
    // The repaired log was rewritten without the damage: it opens without `repair`.
    let reopened = open(options(dir.path()));
    assert_eq!(reopened.export(&ds()).unwrap(), expected);
    assert!(reopened.recovery().repaired.is_empty());
}

#[test]
fn a_damaged_length_field_in_the_middle_is_found_too() {
    let dir = tempfile::tempdir().unwrap();
    let (records, starts) = write_log(dir.path(), 6);
    let path = dir.path().join(LOG_FILE);
    let mut bytes = fs::read(&path).unwrap();
    // The length field of record 2 claims far more than is there.
    bytes[starts[2] as usize + 7] = 0x7F;
    fs::write(&path, &bytes).unwrap();
    assert!(FileBackend::open(options(dir.path()), embedder(DIMS)).is_err());
    let repaired = open(FileOptions {
        repair: true,
        ..options(dir.path())
    });
    let ids: Vec<_> = repaired
        .export(&ds())
        .unwrap()
        .iter()
        .map(|r| r.memory.id)
        .collect();
    let want: Vec<_> = records
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, r)| r.memory.id)
        .collect();
    assert_eq!(ids, want);
}

#[test]
fn a_file_that_is_not_a_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(LOG_FILE), b"{\"not\": \"a log\"}").unwrap();
    let err = FileBackend::open(options(dir.path()), embedder(DIMS))
        .map(drop)
        .unwrap_err();
    assert!(err.to_string().contains("bad magic at offset 0"), "{err}");
}
