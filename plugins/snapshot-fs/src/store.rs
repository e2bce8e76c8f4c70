//! Snapshot files in one directory, one per snapshot, written atomically, listed from an index.

use std::path::{Path, PathBuf};

use coda_core::snapshot::{is_snapshot_id, sync_dir, write_atomically};
use coda_core::{Error, Result, Snapshot, SnapshotStore, StoredSnapshot};
use parking_lot::Mutex;

use crate::format::{Codec, JsonCodec};
use crate::index::{stamp, Index};

/// File suffixes of every Coda snapshot format, so a store lists and deletes files written by
/// the other store in the same directory too.
const SUFFIXES: [&str; 2] = [".json", ".json.zst"];

/// A directory of `<snapshot_id><suffix>` files in the format of codec `C`.
pub struct DirStore<C: Codec> {
    name: &'static str,
    dir: PathBuf,
    codec: C,
    index: Mutex<Index>,
}

/// Store `fs`: `<dir>/<snapshot_id>.json`, plain JSON in the seed format.
pub type FsStore = DirStore<JsonCodec>;

impl FsStore {
    /// A plain-JSON store over `dir`, creating it when missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<FsStore> {
        DirStore::with_codec(crate::NAME, dir, JsonCodec)
    }
}

impl<C: Codec> DirStore<C> {
    /// A store named `name` over `dir` writing with `codec`; creates `dir` when missing.
    pub fn with_codec(name: &'static str, dir: impl Into<PathBuf>, codec: C) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let index = Index::load(&dir);
        Ok(DirStore {
            name,
            dir,
            codec,
            index: Mutex::new(index),
        })
    }

    /// The directory holding the snapshots.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a snapshot id is saved in by this store.
    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{}", self.codec.extension()))
    }

    fn read(&self, path: &Path) -> Result<Snapshot> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                what: "snapshot file",
                id: path.display().to_string(),
            },
            _ => Error::io("read", path, e),
        })?;
        let json = self.codec.decode(bytes, path)?;
        Snapshot::from_json(&json, path)
    }

    /// The snapshot id a file name stands for, if it is a snapshot file.
    fn id_of(file: &str) -> Option<&str> {
        SUFFIXES
            .iter()
            .filter_map(|suffix| file.strip_suffix(suffix))
            .find(|id| is_snapshot_id(id))
    }
}

impl<C: Codec> SnapshotStore for DirStore<C> {
    fn name(&self) -> &str {
        self.name
    }

    fn save(&self, snapshot: &Snapshot) -> Result<String> {
        if !is_snapshot_id(&snapshot.snapshot_id) {
            return Err(Error::invalid(
                "snapshot_id",
                format!("`{}` is not a snapshot id", snapshot.snapshot_id),
            ));
        }
        let path = self.path_of(&snapshot.snapshot_id);
        let json = serde_json::to_vec_pretty(snapshot)
            .map_err(|e| Error::invalid("snapshot", e.to_string()))?;
        write_atomically(&path, &self.codec.encode(json)?)?;
        let file = format!("{}{}", snapshot.snapshot_id, self.codec.extension());
        if let Some(stamp) = stamp(&path) {
            let mut index = self.index.lock();
            index.put(file, stamp, snapshot.meta());
            index.store(&self.dir);
        }
        Ok(path.to_string_lossy().into_owned())
    }

    fn load(&self, location: &str) -> Result<Snapshot> {
        self.read(Path::new(location))
    }

    fn list(&self) -> Result<Vec<StoredSnapshot>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io("list", &self.dir, e))?;
        let mut index = self.index.lock();
        let mut out = Vec::new();
        let mut present = std::collections::HashSet::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &self.dir, e))?;
            let Ok(file) = entry.file_name().into_string() else {
                continue;
            };
            if Self::id_of(&file).is_none() {
                continue;
            }
            let path = entry.path();
            let Some(stamp) = stamp(&path) else {
                continue;
            };
            present.insert(file.clone());
            let meta = match index.get(&file, stamp) {
                Some(meta) => meta,
                None => match self.read(&path) {
                    Ok(snapshot) => {
                        let meta = snapshot.meta();
                        index.put(file, stamp, meta.clone());
                        meta
                    }
                    // One bad file must not hide the others; it is reported, not listed.
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping unreadable snapshot");
                        continue;
                    }
                },
            };
            out.push(StoredSnapshot {
                meta,
                location: path.to_string_lossy().into_owned(),
            });
        }
        index.retain(&|file| present.contains(file));
        index.store(&self.dir);
        drop(index);
        out.sort_by(|a, b| {
            (b.meta.timestamp, &b.meta.snapshot_id).cmp(&(a.meta.timestamp, &a.meta.snapshot_id))
        });
        Ok(out)
    }

    fn delete(&self, id: &str) -> Result<bool> {
        if !is_snapshot_id(id) {
            return Ok(false);
        }
        let mut removed = false;
        for suffix in SUFFIXES {
            let path = self.dir.join(format!("{id}{suffix}"));
            match std::fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("delete", &path, e)),
            }
        }
        if removed {
            sync_dir(&self.dir)?;
            let mut index = self.index.lock();
            index.retain(&|file| Self::id_of(file) != Some(id));
            index.store(&self.dir);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn passes_the_store_conformance_kit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counter = std::sync::atomic::AtomicUsize::new(0);
        coda_core::testkit::store_conformance(&|| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Arc::new(FsStore::open(dir.path().join(n.to_string())).expect("open"))
        });
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsStore::open(dir.path()).expect("open");
        let snapshot = coda_core::testkit::sample_snapshot(chrono::Utc::now());
        let location = store.save(&snapshot).expect("save");
        let bytes = std::fs::read(&location).expect("read");
        std::fs::write(&location, &bytes[..bytes.len() / 2]).expect("truncate");
        let err = store.load(&location).expect_err("truncated");
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(&location), "{err}");
        assert!(store.list().expect("list skips bad files").is_empty());
        let err = store
            .load("/nonexistent/snapshot.json")
            .expect_err("missing");
        assert!(
            err.to_string().contains("/nonexistent/snapshot.json"),
            "{err}"
        );
    }

    #[test]
    fn listing_uses_the_index_and_survives_its_loss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsStore::open(dir.path()).expect("open");
        let snapshot = coda_core::testkit::sample_snapshot(chrono::Utc::now());
        let location = store.save(&snapshot).expect("save");
        let index = dir.path().join(crate::index::INDEX_FILE);
        assert!(index.exists(), "saving writes the index");
        // A listing served from the index does not read the snapshot: garble it without
        // changing its size or modification time, and it is still listed.
        let before = std::fs::metadata(&location).expect("stat");
        let garbage = vec![b'x'; before.len() as usize];
        std::fs::write(&location, &garbage).expect("garble");
        let file = std::fs::File::options()
            .write(true)
            .open(&location)
            .expect("open");
        file.set_modified(before.modified().expect("mtime"))
            .expect("restore mtime");
        drop(file);
        let listed = store.list().expect("list");
        assert_eq!(listed[0].meta, snapshot.meta());
        // Once the file really changes (new time), it is re-read: now unreadable, so skipped.
        std::fs::write(&location, b"{ broken").expect("change");
        assert!(store.list().expect("list").is_empty());
        store.save(&snapshot).expect("save again");

        std::fs::write(&index, b"garbage").expect("corrupt index");
        let fresh = FsStore::open(dir.path()).expect("reopen");
        assert_eq!(fresh.list().expect("rebuilt").len(), 1);
        std::fs::remove_file(&index).expect("lose index");
        let fresh = FsStore::open(dir.path()).expect("reopen");
        assert_eq!(fresh.list().expect("rebuilt").len(), 1);
        assert!(index.exists(), "the index is written back");

        // A file the index does not know (written by another process) is picked up.
        let other = coda_core::testkit::sample_snapshot(chrono::Utc::now());
        FsStore::open(dir.path())
            .expect("other")
            .save(&other)
            .expect("save");
        assert_eq!(fresh.list().expect("list").len(), 2);
    }

    #[test]
    fn seed_format_files_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("seed.json");
        std::fs::write(&path, SEED_SNAPSHOT).expect("write");
        let store = FsStore::open(dir.path()).expect("open");
        let snapshot = store
            .load(&path.to_string_lossy())
            .expect("seed snapshot loads");
        assert_eq!(snapshot.long_term.memory_count, 2);
        assert_eq!(snapshot.short_term.turns.len(), 3);
        assert_eq!(snapshot.memory_stats.long_term.source_types["fact"], 1);
    }

    /// The example from the seed document, verbatim.
    const SEED_SNAPSHOT: &str = r#"{
  "snapshot_id": "snapshot_20250426_123456_abcd1234",
  "timestamp": "2025-04-26T12:34:56.789012",
  "short_term": {
    "turns": [
      {"role": "system", "content": "You are Coda."},
      {"role": "user", "content": "Hello, who are you?"},
      {"role": "assistant", "content": "I'm Coda, your voice assistant."}
    ],
    "turn_count": 3,
    "session_start": "2025-04-26T12:00:00.000000"
  },
  "long_term": {
    "memories": {
      "memory_1": {
        "content": "The user's name is Alice.",
        "timestamp": "2025-04-26T12:05:00.000000",
        "importance": 0.8,
        "metadata": {"source_type": "fact", "topics": ["user", "name"]}
      },
      "memory_2": {
        "content": "The user prefers brief responses.",
        "timestamp": "2025-04-26T12:10:00.000000",
        "importance": 0.7,
        "metadata": {"source_type": "preference", "topics": ["user", "preference", "communication"]}
      }
    },
    "topics": ["user", "name", "preference", "communication"],
    "memory_count": 2
  },
  "memory_stats": {
    "short_term": {"turn_count": 3, "session_duration": 2100.0},
    "long_term": {
      "total_memories": 2,
      "source_types": {"fact": 1, "preference": 1},
      "average_importance": 0.75,
      "oldest_memory": "2025-04-26T12:05:00.000000",
      "newest_memory": "2025-04-26T12:10:00.000000",
      "topics": 4,
      "user_summary_keys": []
    },
    "recent_topics": ["user", "name", "preference", "communication"],
    "last_tool_used": null
  }
}"#;
}
