//! zstd compression and optional XChaCha20-Poly1305 encryption of snapshot files.

use std::path::Path;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use coda_core::{Error, Result};
use coda_snapshot_fs::format::{decompress, detect, Codec, Format, ENCRYPTED_MAGIC};

const NONCE_LEN: usize = 24;

/// A 32-byte snapshot encryption key.
#[derive(Clone)]
pub struct SnapshotKey([u8; 32]);

impl std::fmt::Debug for SnapshotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotKey(..)")
    }
}

impl SnapshotKey {
    /// Parses 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<SnapshotKey> {
        let hex = hex.trim().as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let digits = std::str::from_utf8(pair).ok()?;
            key[i] = u8::from_str_radix(digits, 16).ok()?;
        }
        Some(SnapshotKey(key))
    }

    /// Reads the key from the environment variable `var`.
    pub fn from_env(var: &str) -> Result<SnapshotKey> {
        let value = std::env::var(var).map_err(|_| {
            Error::config(
                "stores.zstd.key_env",
                format!(
                    "environment variable `{var}` is not set (it should hold the snapshot key)"
                ),
            )
        })?;
        SnapshotKey::from_hex(&value).ok_or_else(|| {
            Error::config(
                "stores.zstd.key_env",
                format!(
                    "`{var}` must hold 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`"
                ),
            )
        })
    }
}

/// Compresses with zstd at a level, and encrypts when given a key.
pub struct ZstdCodec {
    level: i32,
    cipher: Option<XChaCha20Poly1305>,
}

impl ZstdCodec {
    /// A codec at `level` (1..=22), encrypting with `key` if given.
    pub fn new(level: i32, key: Option<SnapshotKey>) -> Result<ZstdCodec> {
        if !(1..=22).contains(&level) {
            return Err(Error::config(
                "stores.zstd.level",
                format!("{level} is outside 1..=22"),
            ));
        }
        Ok(ZstdCodec {
            level,
            cipher: key.map(|k| XChaCha20Poly1305::new(&k.0.into())),
        })
    }

    fn decrypt(&self, bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
        let Some(cipher) = &self.cipher else {
            return Err(Error::corrupt(
                path,
                "the snapshot is encrypted; set `stores.zstd.key_env` to the variable holding its key",
            ));
        };
        let body = &bytes[ENCRYPTED_MAGIC.len()..];
        if body.len() < NONCE_LEN + 16 {
            return Err(Error::corrupt(path, "encrypted snapshot is truncated"));
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: ENCRYPTED_MAGIC,
                },
            )
            .map_err(|_| {
                Error::corrupt(
                    path,
                    "cannot decrypt: wrong key, or the file was changed after it was written",
                )
            })
    }
}

impl Codec for ZstdCodec {
    fn extension(&self) -> &'static str {
        ".json.zst"
    }

    fn encode(&self, json: Vec<u8>) -> Result<Vec<u8>> {
        let packed = zstd::bulk::compress(&json, self.level)
            .map_err(|e| Error::Unavailable(format!("zstd compression failed: {e}")))?;
        let Some(cipher) = &self.cipher else {
            return Ok(packed);
        };
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &packed,
                    aad: ENCRYPTED_MAGIC,
                },
            )
            .map_err(|_| Error::Unavailable("snapshot encryption failed".into()))?;
        let mut out = Vec::with_capacity(ENCRYPTED_MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(ENCRYPTED_MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn decode(&self, bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
        match detect(&bytes) {
            Some(Format::Json) => Ok(bytes),
            Some(Format::Zstd) => decompress(&bytes, path),
            Some(Format::Encrypted) => {
                let packed = self.decrypt(&bytes, path)?;
                match detect(&packed) {
                    Some(Format::Zstd) => decompress(&packed, path),
                    Some(Format::Json) => Ok(packed),
                    _ => Err(Error::corrupt(path, "decrypted data is not a snapshot")),
                }
            }
            None => Err(Error::corrupt(path, "not a Coda snapshot (unknown format)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coda_core::SnapshotStore;
    use coda_snapshot_fs::{DirStore, FsStore};
    use std::sync::Arc;

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const OTHER: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    fn key(hex: &str) -> Option<SnapshotKey> {
        SnapshotKey::from_hex(hex)
    }

    #[test]
    fn passes_the_store_conformance_kit_plain_and_encrypted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counter = std::sync::atomic::AtomicUsize::new(0);
        for k in [None, key(KEY)] {
            coda_core::testkit::store_conformance(&|| {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let codec = ZstdCodec::new(3, k.clone()).expect("codec");
                Arc::new(
                    DirStore::with_codec("zstd", dir.path().join(n.to_string()), codec)
                        .expect("open"),
                )
            });
        }
    }

    #[test]
    fn each_store_reads_the_others_files_by_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zstd =
            DirStore::with_codec("zstd", dir.path(), ZstdCodec::new(3, None).expect("codec"))
                .expect("open");
        let fs = FsStore::open(dir.path()).expect("open");
        let a = coda_core::testkit::sample_snapshot(chrono::Utc::now());
        let packed = zstd.save(&a).expect("save zstd");
        assert!(packed.ends_with(".json.zst"));
        assert_eq!(
            std::fs::read(&packed).expect("read")[..4],
            coda_snapshot_fs::format::ZSTD_MAGIC
        );
        assert_eq!(fs.load(&packed).expect("fs reads zstd"), a);
        let b = coda_core::testkit::sample_snapshot(chrono::Utc::now());
        let plain = fs.save(&b).expect("save fs");
        // Renamed files are still told apart by content, not name.
        let renamed = dir.path().join("renamed.bin");
        std::fs::copy(&plain, &renamed).expect("copy");
        assert_eq!(
            zstd.load(&renamed.to_string_lossy())
                .expect("zstd reads json"),
            b
        );
        assert_eq!(
            zstd.list().expect("list").len(),
            2,
            "one directory, both formats listed"
        );
    }

    #[test]
    fn wrong_key_tampering_truncation_and_missing_key_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = |k: Option<SnapshotKey>| {
            DirStore::with_codec("zstd", dir.path(), ZstdCodec::new(3, k).expect("codec"))
                .expect("open")
        };
        let store = open(key(KEY));
        let snapshot = coda_core::testkit::sample_snapshot(chrono::Utc::now());
        let location = store.save(&snapshot).expect("save");
        let bytes = std::fs::read(&location).expect("read");
        assert!(bytes.starts_with(ENCRYPTED_MAGIC));
        assert!(
            !String::from_utf8_lossy(&bytes).contains("Alice"),
            "content is not readable"
        );

        let err = open(key(OTHER)).load(&location).expect_err("wrong key");
        assert!(
            err.to_string().contains("wrong key") && err.to_string().contains(&location),
            "{err}"
        );
        let err = open(None).load(&location).expect_err("no key");
        assert!(err.to_string().contains("key_env"), "{err}");
        let err = FsStore::open(dir.path())
            .expect("fs")
            .load(&location)
            .expect_err("fs has no key");
        assert!(err.to_string().contains("encrypted"), "{err}");

        let mut tampered = bytes.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 0x01;
        std::fs::write(&location, &tampered).expect("tamper");
        let err = store.load(&location).expect_err("tampered");
        assert!(
            err.to_string().contains("changed after it was written"),
            "{err}"
        );
        std::fs::write(&location, &bytes[..30]).expect("truncate");
        assert!(store.load(&location).is_err());

        let plain = open(None);
        let location = plain.save(&snapshot).expect("save plain");
        let bytes = std::fs::read(&location).expect("read");
        std::fs::write(&location, &bytes[..bytes.len() / 2]).expect("truncate");
        let err = plain.load(&location).expect_err("truncated zstd");
        assert!(err.to_string().contains(&location), "{err}");
    }

    #[test]
    fn keys_come_from_the_environment_and_bad_ones_name_the_key() {
        assert!(SnapshotKey::from_hex(KEY).is_some());
        assert!(SnapshotKey::from_hex("abc").is_none());
        assert!(SnapshotKey::from_hex(&"zz".repeat(32)).is_none());
        let err = SnapshotKey::from_env("CODA_TEST_SURELY_UNSET_VARIABLE").expect_err("unset");
        assert!(err.to_string().contains("`stores.zstd.key_env`"), "{err}");
        assert!(ZstdCodec::new(0, None).is_err());
    }
}
