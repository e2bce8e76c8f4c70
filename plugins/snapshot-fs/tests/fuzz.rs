//! Fuzzing snapshot loading (issue 14): arbitrary bytes, every truncation and bit flips of valid
//! plain and zstd snapshot files never panic a load; every failure is a `Corrupt` error naming
//! the file. Property-based (proptest) because the stable toolchain has no libFuzzer;
//! `CODA_FUZZ_CASES` raises the case count for longer runs.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::OnceLock;

use coda_core::{Error, Snapshot, SnapshotStore};
use coda_snapshot_fs::format::{Codec, JsonCodec, ENCRYPTED_MAGIC, ZSTD_MAGIC};
use coda_snapshot_fs::FsStore;
use proptest::prelude::*;

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

/// One snapshot for the whole run (the testkit's have random ids).
fn sample() -> Snapshot {
    static SAMPLE: OnceLock<Snapshot> = OnceLock::new();
    SAMPLE
        .get_or_init(|| coda_core::testkit::sample_snapshot(chrono::Utc::now()))
        .clone()
}

fn plain() -> Vec<u8> {
    serde_json::to_vec_pretty(&sample()).unwrap()
}

fn packed() -> Vec<u8> {
    zstd::encode_all(&plain()[..], 3).unwrap()
}

/// Decodes `bytes` as a load does, in memory; a failure must be `Corrupt` naming the file.
fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
    let path = Path::new("/fuzz/snap.json");
    let loaded = JsonCodec
        .decode(bytes.to_vec(), path)
        .and_then(|json| Snapshot::from_json(&json, path));
    match loaded {
        Ok(snapshot) => Ok(snapshot),
        Err(e @ Error::Corrupt { .. }) if e.to_string().contains("/fuzz/snap.json") => {
            Err(e.to_string())
        }
        Err(e) => panic!("not a clear corrupt-file error: {e:?}"),
    }
}

/// Loads `bytes` through the store from a real file; a failure must name the file.
fn load_file(store: &FsStore, bytes: &[u8]) -> Result<Snapshot, String> {
    let path = store.dir().join("fuzz.json");
    std::fs::write(&path, bytes).unwrap();
    let location = path.to_string_lossy().into_owned();
    store.load(&location).map_err(|e| {
        let message = e.to_string();
        assert!(
            message.contains(&location),
            "error names no file: {message}"
        );
        message
    })
}

fn flip(mut bytes: Vec<u8>, flips: &[(usize, u8)]) -> Vec<u8> {
    let len = bytes.len();
    for &(at, bit) in flips {
        bytes[at % len] ^= 1 << (bit % 8);
    }
    bytes
}

/// Bytes that often start like one of the formats, so the decoders behind the magic are reached.
fn arbitrary_file() -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop_oneof![
        Just(Vec::new()),
        Just(ZSTD_MAGIC.to_vec()),
        Just(ENCRYPTED_MAGIC.to_vec()),
        Just(b"{".to_vec()),
        Just(b"  \n{\"snapshot_id\":".to_vec()),
    ];
    (prefix, prop::collection::vec(any::<u8>(), 0..512)).prop_map(|(mut head, tail)| {
        head.extend(tail);
        head
    })
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn arbitrary_bytes_never_panic_a_load(bytes in arbitrary_file()) {
        let _ = decode(&bytes);
    }

    #[test]
    fn bit_flips_of_a_plain_file_never_panic(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let _ = decode(&flip(plain(), &flips));
    }

    #[test]
    fn bit_flips_of_a_zstd_file_never_panic(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let _ = decode(&flip(packed(), &flips));
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// The same through real files and the store's `load`.
    #[test]
    fn files_of_arbitrary_or_damaged_bytes_load_or_name_the_file(
        bytes in arbitrary_file(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let _ = load_file(&store, &bytes);
        let _ = load_file(&store, &flip(plain(), &flips));
        let _ = load_file(&store, &flip(packed(), &flips));
    }
}

#[test]
fn every_truncation_of_a_plain_or_zstd_snapshot_is_an_error() {
    let snapshot = sample();
    for full in [plain(), packed()] {
        assert_eq!(decode(&full).unwrap(), snapshot, "the untouched file loads");
        for len in 0..full.len() {
            assert!(
                decode(&full[..len]).is_err(),
                "a cut at {len} of {} loaded",
                full.len()
            );
        }
    }
}

#[test]
fn truncated_files_through_the_store_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    for full in [plain(), packed()] {
        assert!(load_file(&store, &full).is_ok());
        for len in (0..full.len()).step_by(full.len() / 50 + 1) {
            assert!(load_file(&store, &full[..len]).is_err(), "cut at {len}");
        }
    }
}

/// Interesting inputs, pinned as regressions.
#[test]
fn edge_inputs_are_clear_errors() {
    let frame_with_huge_window = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0xF8, 0, 0, 0];
    for bytes in [
        &b""[..],
        b" ",
        b"{",
        b"{}",
        b"null",
        &ZSTD_MAGIC,
        &frame_with_huge_window,
        ENCRYPTED_MAGIC,
        b"\xEF\xBB\xBF{}",
    ] {
        assert!(decode(bytes).is_err(), "{bytes:?} loaded");
    }
}
