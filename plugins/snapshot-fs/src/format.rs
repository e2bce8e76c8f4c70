//! Snapshot file formats, told apart by their first bytes rather than their names.

use std::io::Read;
use std::path::Path;

use coda_core::{Error, Result};

/// The first bytes of every zstd frame.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// The first bytes of an encrypted Coda snapshot (see `coda-snapshot-zstd`).
pub const ENCRYPTED_MAGIC: &[u8; 8] = b"CODAENC1";

/// Decompressed snapshots larger than this are refused, so a hostile file cannot exhaust memory.
pub const MAX_DECODED_BYTES: u64 = 4 << 30;

/// What a snapshot file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain JSON (store `fs`).
    Json,
    /// zstd-compressed JSON (store `zstd`).
    Zstd,
    /// Encrypted, compressed JSON (store `zstd` with `key_env`).
    Encrypted,
}

/// Tells the format of a snapshot file from its content; `None` if it is none of Coda's.
pub fn detect(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&ZSTD_MAGIC) {
        return Some(Format::Zstd);
    }
    if bytes.starts_with(ENCRYPTED_MAGIC) {
        return Some(Format::Encrypted);
    }
    let first = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| bytes[i]);
    (first == Some(b'{')).then_some(Format::Json)
}

/// Decompresses a zstd file, refusing output over [`MAX_DECODED_BYTES`].
pub fn decompress(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let decoder = zstd::stream::read::Decoder::new(bytes)
        .map_err(|e| Error::corrupt(path, format!("bad zstd data: {e}")))?;
    let mut out = Vec::with_capacity(bytes.len() * 4);
    decoder
        .take(MAX_DECODED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::corrupt(path, format!("truncated or corrupt zstd data: {e}")))?;
    if out.len() as u64 > MAX_DECODED_BYTES {
        return Err(Error::corrupt(path, "decompresses to more than 4 GiB"));
    }
    Ok(out)
}

/// How a store writes snapshot files and reads any of Coda's formats back.
pub trait Codec: Send + Sync + 'static {
    /// File name suffix after the snapshot id, e.g. `.json` or `.json.zst`.
    fn extension(&self) -> &'static str;

    /// Turns snapshot JSON into file bytes.
    fn encode(&self, json: Vec<u8>) -> Result<Vec<u8>>;

    /// Turns file bytes of any Coda format into snapshot JSON; `path` names the file in errors.
    fn decode(&self, bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>>;
}

/// Plain JSON files; reads compressed ones too, but not encrypted ones (they need a key).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    fn extension(&self) -> &'static str {
        ".json"
    }

    fn encode(&self, json: Vec<u8>) -> Result<Vec<u8>> {
        Ok(json)
    }

    fn decode(&self, bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
        match detect(&bytes) {
            Some(Format::Json) => Ok(bytes),
            Some(Format::Zstd) => decompress(&bytes, path),
            Some(Format::Encrypted) => Err(Error::corrupt(
                path,
                "the snapshot is encrypted; read it with store `zstd` and its `key_env` key",
            )),
            None => Err(Error::corrupt(path, "not a Coda snapshot (unknown format)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_content() {
        assert_eq!(detect(b"  {\"a\":1}"), Some(Format::Json));
        let packed = zstd::encode_all(&b"{}"[..], 3).expect("compress");
        assert_eq!(detect(&packed), Some(Format::Zstd));
        assert_eq!(detect(b"CODAENC1...."), Some(Format::Encrypted));
        assert_eq!(detect(b"PK\x03\x04"), None);
        assert_eq!(detect(b""), None);
        let back = JsonCodec
            .decode(packed, Path::new("x"))
            .expect("zstd is readable");
        assert_eq!(back, b"{}");
    }
}
