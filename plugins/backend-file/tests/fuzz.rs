//! Fuzzing the log open path (issue 14): a valid log cut at any length or with bits flipped
//! anywhere never panics an open, with `repair` off or on; a cut log replays exactly the records
//! wholly before the cut, and whatever a damaged log replays is intact. Property-based
//! (proptest) because the stable toolchain has no libFuzzer; `CODA_FUZZ_CASES` raises the count.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use coda_backend_file::{FileBackend, FileOptions, LOG_FILE};
use coda_core::{MemoryBackend, MemoryRecord};
use common::{ds, embedder, intact_version, options, record, DIMS};
use proptest::prelude::*;
use uuid::Uuid;

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("CODA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A valid log of a few records: its bytes, where its header ends, the records, and where each
/// record ends.
struct Valid {
    bytes: Vec<u8>,
    header_end: usize,
    records: Vec<MemoryRecord>,
    ends: Vec<usize>,
}

fn valid() -> &'static Valid {
    static VALID: OnceLock<Valid> = OnceLock::new();
    VALID.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let backend = common::open(options(dir.path()));
        let mut records = Vec::new();
        let mut ends = Vec::new();
        let header_end = fs::metadata(backend.log_path()).unwrap().len() as usize;
        for i in 0..6 {
            let r = record(Uuid::new_v4(), i);
            backend.insert(&ds(), r.clone()).unwrap();
            ends.push(fs::metadata(backend.log_path()).unwrap().len() as usize);
            records.push(r);
        }
        drop(backend);
        let bytes = fs::read(dir.path().join(LOG_FILE)).unwrap();
        Valid {
            bytes,
            header_end,
            records,
            ends,
        }
    })
}

/// Opens `bytes` as the log of a fresh directory; the records it replays, or the error.
fn open(bytes: &[u8], repair: bool) -> Result<Vec<MemoryRecord>, String> {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(LOG_FILE), bytes).unwrap();
    opened(dir.path(), repair)
}

fn opened(dir: &Path, repair: bool) -> Result<Vec<MemoryRecord>, String> {
    let options = FileOptions {
        repair,
        ..options(dir)
    };
    match FileBackend::open(options, embedder(DIMS)) {
        Ok(backend) => Ok(backend.export(&ds()).unwrap()),
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
            Err(message)
        }
    }
}

/// Whether every replayed record is one that was written, unchanged.
fn all_intact(replayed: &[MemoryRecord]) -> bool {
    let valid = valid();
    replayed
        .iter()
        .all(|r| intact_version(r).is_some() && valid.records.contains(r))
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn a_cut_log_replays_the_records_before_the_cut(cut in any::<prop::sample::Index>()) {
        let valid = valid();
        let len = cut.index(valid.bytes.len() + 1);
        for repair in [false, true] {
            let replayed = open(&valid.bytes[..len], repair);
            if len >= valid.header_end {
                let whole = valid.ends.iter().filter(|&&end| end <= len).count();
                prop_assert_eq!(replayed, Ok(valid.records[..whole].to_vec()), "cut at {}", len);
            } else if let Ok(replayed) = replayed {
                // A cut inside the file header leaves no records to replay.
                prop_assert!(replayed.is_empty(), "cut at {}", len);
            }
        }
    }

    #[test]
    fn a_flipped_log_opens_or_refuses_and_replays_only_intact_records(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let valid = valid();
        let mut bytes = valid.bytes.clone();
        let len = bytes.len();
        for (at, bit) in &flips {
            bytes[at.index(len)] ^= 1 << bit;
        }
        for repair in [false, true] {
            if let Ok(replayed) = open(&bytes, repair) {
                prop_assert!(all_intact(&replayed), "repair {}: a damaged record replayed", repair);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_prefix_never_panic(
        keep in any::<prop::sample::Index>(),
        tail in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let valid = valid();
        let mut bytes = valid.bytes[..keep.index(valid.bytes.len())].to_vec();
        bytes.extend(tail);
        for repair in [false, true] {
            if let Ok(replayed) = open(&bytes, repair) {
                prop_assert!(all_intact(&replayed));
            }
        }
    }
}

/// Interesting logs, pinned as regressions.
#[test]
fn edge_logs_open_or_refuse_cleanly() {
    let valid = valid();
    let mut doubled = valid.bytes.clone();
    doubled.extend_from_slice(&valid.bytes[..8]);
    for bytes in [
        &b""[..],
        b"CODALOG",
        b"CODALOG\x01",
        b"CODALOG\x02",
        b"CODALOG\x01\xC0\xDA\x4C\x47\xFF\xFF\xFF\xFF",
        &valid.bytes[..valid.bytes.len() - 1],
        &doubled,
    ] {
        for repair in [false, true] {
            if let Ok(replayed) = open(bytes, repair) {
                assert!(all_intact(&replayed), "{bytes:?}");
            }
        }
    }
}
