//! Fuzzing snapshot loading in store `zstd` (issue 14): arbitrary bytes, every truncation and
//! bit flips of zstd and encrypted files never panic a load; damage to an encrypted file is
//! always refused; a wrong or missing key is a clear error. Property-based (proptest) because
//! the stable toolchain has no libFuzzer; `CODA_FUZZ_CASES` raises the case count.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::OnceLock;

use coda_core::{Error, Snapshot, SnapshotStore};
use coda_snapshot_fs::format::{Codec, ENCRYPTED_MAGIC, ZSTD_MAGIC};
use coda_snapshot_fs::DirStore;
use coda_snapshot_zstd::{SnapshotKey, ZstdCodec};
use proptest::prelude::*;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const OTHER: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

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

fn codec(key: Option<&str>) -> ZstdCodec {
    ZstdCodec::new(3, key.map(|k| SnapshotKey::from_hex(k).unwrap())).unwrap()
}

/// One snapshot for the whole run (the testkit's have random ids).
fn sample() -> Snapshot {
    static SAMPLE: OnceLock<Snapshot> = OnceLock::new();
    SAMPLE
        .get_or_init(|| coda_core::testkit::sample_snapshot(chrono::Utc::now()))
        .clone()
}

/// The sample as store `zstd` writes it: compressed, and encrypted under `key` if given.
fn file(key: Option<&str>) -> Vec<u8> {
    codec(key)
        .encode(serde_json::to_vec_pretty(&sample()).unwrap())
        .unwrap()
}

/// Decodes `bytes` as a load does, in memory; a failure must be `Corrupt` naming the file.
fn decode(key: Option<&str>, bytes: &[u8]) -> Result<Snapshot, String> {
    let path = Path::new("/fuzz/snap.json.zst");
    let loaded = codec(key)
        .decode(bytes.to_vec(), path)
        .and_then(|json| Snapshot::from_json(&json, path));
    match loaded {
        Ok(snapshot) => Ok(snapshot),
        Err(e @ Error::Corrupt { .. }) if e.to_string().contains("/fuzz/snap.json.zst") => {
            Err(e.to_string())
        }
        Err(e) => panic!("not a clear corrupt-file error: {e:?}"),
    }
}

fn flip(mut bytes: Vec<u8>, flips: &[(usize, u8)]) -> Vec<u8> {
    let len = bytes.len();
    for &(at, bit) in flips {
        bytes[at % len] ^= 1 << (bit % 8);
    }
    bytes
}

fn flips() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)
}

fn arbitrary_file() -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop_oneof![
        Just(Vec::new()),
        Just(ZSTD_MAGIC.to_vec()),
        Just(ENCRYPTED_MAGIC.to_vec()),
        Just(b"{".to_vec()),
    ];
    (prefix, prop::collection::vec(any::<u8>(), 0..512)).prop_map(|(mut head, tail)| {
        head.extend(tail);
        head
    })
}

fn key_choice() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![None, Some(KEY), Some(OTHER)])
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn arbitrary_bytes_never_panic_a_load(key in key_choice(), bytes in arbitrary_file()) {
        let _ = decode(key, &bytes);
    }

    #[test]
    fn bit_flips_of_a_zstd_file_never_panic(flips in flips()) {
        let _ = decode(None, &flip(file(None), &flips));
    }

    #[test]
    fn bit_flips_of_an_encrypted_file_are_always_refused(flips in flips()) {
        let damaged = flip(file(Some(KEY)), &flips);
        // Flips that cancel out leave the file whole; anything else must fail authentication.
        let whole = decode(Some(KEY), &damaged).is_ok();
        let untouched = {
            let mut net = std::collections::HashMap::new();
            let len = damaged.len();
            for &(at, bit) in &flips {
                *net.entry((at % len, bit % 8)).or_insert(0u8) ^= 1;
            }
            net.values().all(|&n| n == 0)
        };
        prop_assert_eq!(whole, untouched);
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// The same through real files and the store's `load`.
    #[test]
    fn files_of_damaged_bytes_through_the_store_name_the_file(bytes in arbitrary_file(), flips in flips()) {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::with_codec("zstd", dir.path(), codec(Some(KEY))).unwrap();
        let path = dir.path().join("fuzz.json.zst");
        let location = path.to_string_lossy().into_owned();
        for bytes in [bytes, flip(file(Some(KEY)), &flips), flip(file(None), &flips)] {
            std::fs::write(&path, &bytes).unwrap();
            if let Err(e) = store.load(&location) {
                prop_assert!(e.to_string().contains(&location), "{}", e);
            }
        }
    }
}

#[test]
fn every_truncation_of_a_zstd_or_encrypted_snapshot_is_an_error() {
    for key in [None, Some(KEY)] {
        let full = file(key);
        assert_eq!(
            decode(key, &full).unwrap(),
            sample(),
            "the untouched file loads"
        );
        for len in 0..full.len() {
            assert!(decode(key, &full[..len]).is_err(), "a cut at {len} loaded");
        }
    }
}

#[test]
fn a_wrong_or_missing_key_is_a_clear_error() {
    let sealed = file(Some(KEY));
    let wrong = decode(Some(OTHER), &sealed).unwrap_err();
    assert!(wrong.contains("wrong key"), "{wrong}");
    let missing = decode(None, &sealed).unwrap_err();
    assert!(missing.contains("key_env"), "{missing}");
}

/// Interesting inputs, pinned as regressions.
#[test]
fn edge_inputs_are_clear_errors() {
    let mut short_nonce = ENCRYPTED_MAGIC.to_vec();
    short_nonce.extend([0u8; 39]);
    let mut empty_sealed = ENCRYPTED_MAGIC.to_vec();
    empty_sealed.extend([0u8; 40]);
    for bytes in [
        &b""[..],
        ENCRYPTED_MAGIC,
        &short_nonce,
        &empty_sealed,
        &ZSTD_MAGIC,
        &[0x28, 0xB5, 0x2F, 0xFD, 0x00, 0xF8, 0, 0, 0],
    ] {
        for key in [None, Some(KEY)] {
            assert!(decode(key, bytes).is_err(), "{bytes:?} loaded");
        }
    }
}
