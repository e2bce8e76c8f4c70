//! A sidecar index of snapshot metadata, so listing never reads every snapshot file.
//!
//! The index is a cache: each entry records the file's size and modification time, and an entry
//! that no longer matches its file is re-read. A missing, stale or corrupt index is rebuilt; a
//! crash between writing a snapshot and the index loses nothing but a re-read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use coda_core::snapshot::{write_atomically, SnapshotMeta};
use serde::{Deserialize, Serialize};

/// The index file's name inside the store directory.
pub const INDEX_FILE: &str = ".coda-snapshots.index.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    size: u64,
    modified_ns: u128,
    meta: SnapshotMeta,
}

/// File name → what was read from it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Index {
    version: u32,
    entries: BTreeMap<String, Entry>,
    #[serde(skip)]
    dirty: bool,
}

const VERSION: u32 = 1;

/// A file's size and modification time, the index's freshness check.
pub fn stamp(path: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((meta.len(), modified.as_nanos()))
}

impl Index {
    /// Reads the index in `dir`; an unreadable one starts empty (and is rebuilt).
    pub fn load(dir: &Path) -> Index {
        let path = dir.join(INDEX_FILE);
        let Ok(bytes) = std::fs::read(&path) else {
            return Index::default();
        };
        match serde_json::from_slice::<Index>(&bytes) {
            Ok(index) if index.version == VERSION => index,
            _ => {
                tracing::warn!(path = %path.display(), "snapshot index unreadable; rebuilding");
                Index {
                    dirty: true,
                    ..Index::default()
                }
            }
        }
    }

    /// The cached metadata of `file`, if its size and time still match.
    pub fn get(&self, file: &str, stamp: (u64, u128)) -> Option<SnapshotMeta> {
        self.entries
            .get(file)
            .filter(|e| (e.size, e.modified_ns) == stamp)
            .map(|e| e.meta.clone())
    }

    /// Records what was read from `file`.
    pub fn put(&mut self, file: String, stamp: (u64, u128), meta: SnapshotMeta) {
        let entry = Entry {
            size: stamp.0,
            modified_ns: stamp.1,
            meta,
        };
        if self.entries.get(&file) != Some(&entry) {
            self.entries.insert(file, entry);
            self.dirty = true;
        }
    }

    /// Forgets files that are gone.
    pub fn retain(&mut self, present: &dyn Fn(&str) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|file, _| present(file));
        self.dirty |= self.entries.len() != before;
    }

    /// Writes the index back if it changed. Failure only costs a re-read next time.
    pub fn store(&mut self, dir: &Path) {
        if !self.dirty {
            return;
        }
        self.version = VERSION;
        let path: PathBuf = dir.join(INDEX_FILE);
        let written = serde_json::to_vec(self)
            .map_err(|e| e.to_string())
            .and_then(|bytes| write_atomically(&path, &bytes).map_err(|e| e.to_string()));
        match written {
            Ok(()) => self.dirty = false,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot write snapshot index")
            }
        }
    }
}
