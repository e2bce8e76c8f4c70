//! Plain JSON snapshot files in one directory.

use std::path::{Path, PathBuf};

use coda_core::snapshot::{is_snapshot_id, write_atomically};
use coda_core::{Error, Result, Snapshot, SnapshotStore, StoredSnapshot};

/// Store `fs`: `<dir>/<snapshot_id>.json`.
pub struct FsStore {
    dir: PathBuf,
}

impl FsStore {
    /// A store over `dir`, creating it when missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<FsStore> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        Ok(FsStore { dir })
    }

    /// The file a snapshot id is saved in.
    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn read(path: &Path) -> Result<Snapshot> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                what: "snapshot file",
                id: path.display().to_string(),
            },
            _ => Error::io("read", path, e),
        })?;
        Snapshot::from_json(&bytes, path)
    }
}

impl SnapshotStore for FsStore {
    fn name(&self) -> &str {
        crate::NAME
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
        write_atomically(&path, &json)?;
        Ok(path.to_string_lossy().into_owned())
    }

    fn load(&self, location: &str) -> Result<Snapshot> {
        Self::read(Path::new(location))
    }

    fn list(&self) -> Result<Vec<StoredSnapshot>> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| Error::io("list", &self.dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &self.dir, e))?;
            let path = entry.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            if !is_snapshot_id(id) {
                continue;
            }
            match Self::read(&path) {
                Ok(snapshot) => out.push(StoredSnapshot {
                    meta: snapshot.meta(),
                    location: path.to_string_lossy().into_owned(),
                }),
                // One bad file must not hide the others; it is reported, not listed.
                Err(e) => tracing::warn!(error = %e, "skipping unreadable snapshot"),
            }
        }
        out.sort_by(|a, b| {
            (b.meta.timestamp, &b.meta.snapshot_id).cmp(&(a.meta.timestamp, &a.meta.snapshot_id))
        });
        Ok(out)
    }

    fn delete(&self, id: &str) -> Result<bool> {
        if !is_snapshot_id(id) {
            return Ok(false);
        }
        let path = self.path_of(id);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                coda_core::snapshot::sync_dir(&self.dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("delete", &path, e)),
        }
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
        let err = store.load("/nonexistent/snapshot.json").expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/snapshot.json"), "{err}");
    }

    #[test]
    fn seed_format_files_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("seed.json");
        std::fs::write(&path, SEED_SNAPSHOT).expect("write");
        let store = FsStore::open(dir.path()).expect("open");
        let snapshot = store.load(&path.to_string_lossy()).expect("seed snapshot loads");
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
