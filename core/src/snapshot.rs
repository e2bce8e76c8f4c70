//! Snapshots: the seed's snapshot structure, its metadata, and the `SnapshotStore` trait.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::{timestamp, Turn};
use crate::stats::MemoryStats;
use crate::{Error, Result};

/// What a store factory is given besides its options (nothing yet; kept for growth).
#[non_exhaustive]
#[derive(Default)]
pub struct StoreContext {}

/// A snapshot id: `snapshot_YYYYMMDD_HHMMSS_<8 hex>`.
pub fn new_snapshot_id(at: DateTime<Utc>) -> String {
    let hex = crate::stamp::new_id().simple().to_string();
    format!("snapshot_{}_{}", at.format("%Y%m%d_%H%M%S"), &hex[..8])
}

/// Whether `id` has the snapshot id shape; stores use it to refuse path tricks like `../x`.
pub fn is_snapshot_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("snapshot_") else {
        return false;
    };
    let bytes = rest.as_bytes();
    bytes.len() == 24
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[8] == b'_'
        && bytes[9..15].iter().all(u8::is_ascii_digit)
        && bytes[15] == b'_'
        && bytes[16..].iter().all(|b| b.is_ascii_hexdigit())
}

/// The whole memory state at one moment, in the seed's structure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `snapshot_YYYYMMDD_HHMMSS_<8 hex>`.
    pub snapshot_id: String,
    /// When it was taken.
    #[serde(with = "timestamp")]
    pub timestamp: DateTime<Utc>,
    /// The conversation window.
    pub short_term: ShortTermState,
    /// Long-term memory.
    pub long_term: LongTermState,
    /// Stats at the moment of the snapshot.
    pub memory_stats: MemoryStats,
    /// Whose memory it holds; snapshots written before scopes read as user and session
    /// `default`.
    #[serde(default)]
    pub scope: SnapshotScope,
}

/// The user and session a snapshot captured (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotScope {
    /// The user whose memories it holds.
    pub user_id: String,
    /// The session whose window it holds.
    pub session_id: String,
    /// The tenant; absent (and `default`) on the wire without tenants.
    #[serde(default = "default_id", skip_serializing_if = "is_default_id")]
    pub tenant: String,
}

fn default_id() -> String {
    crate::scope::DEFAULT_ID.to_owned()
}

fn is_default_id(s: &str) -> bool {
    s == crate::scope::DEFAULT_ID
}

impl Default for SnapshotScope {
    fn default() -> Self {
        SnapshotScope {
            user_id: default_id(),
            session_id: default_id(),
            tenant: default_id(),
        }
    }
}

impl SnapshotScope {
    /// The user and session `scope`'s session operations act on.
    pub fn of(scope: &crate::scope::Scope) -> Self {
        SnapshotScope {
            user_id: scope.user_id().to_owned(),
            session_id: scope.session_or_default().to_owned(),
            tenant: scope.tenant().to_owned(),
        }
    }

    /// Whether a snapshot of this scope is visible from `scope`: same tenant and user, and the
    /// same session when `scope` names one.
    pub fn visible_from(&self, scope: &crate::scope::Scope) -> bool {
        self.tenant == scope.tenant()
            && self.user_id == scope.user_id()
            && scope.session_id().is_none_or(|s| s == self.session_id)
    }
}

/// `short_term` of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShortTermState {
    /// The turns in the window, oldest first.
    pub turns: Vec<Turn>,
    /// Turns in the session so far (may exceed `turns.len()`).
    pub turn_count: u64,
    /// When the session started.
    #[serde(with = "timestamp")]
    pub session_start: DateTime<Utc>,
}

/// `long_term` of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LongTermState {
    /// Memories by id, in insertion order.
    pub memories: IndexMap<String, SnapshotMemory>,
    /// Every distinct topic.
    pub topics: Vec<String>,
    /// `memories.len()`.
    pub memory_count: usize,
}

/// One memory inside a snapshot: the seed keeps timestamp and importance beside `metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMemory {
    /// The text.
    pub content: String,
    /// When it was added.
    #[serde(with = "timestamp")]
    pub timestamp: DateTime<Utc>,
    /// Its importance.
    pub importance: f64,
    /// `source_type`, `topics` and the caller's keys.
    pub metadata: Map<String, Value>,
    /// Slot, superseding, expiry and provenance (SPEC §10); absent in seed snapshots.
    #[serde(flatten, default)]
    pub lifecycle: Lifecycle,
}

impl Lifecycle {
    /// `memory`'s lifecycle fields.
    pub fn of(memory: &crate::model::Memory) -> Self {
        Lifecycle {
            slot: memory.slot.clone(),
            superseded_by: memory.superseded_by,
            expires_at: memory.expires_at,
            updated_at: memory.updated_at,
            source_turns: memory.source_turns.clone(),
        }
    }

    /// Whether every field is unset (most memories).
    pub fn is_unset(&self) -> bool {
        *self == Lifecycle::default()
    }

    /// Sets `memory`'s lifecycle fields to these.
    pub fn apply_to(self, memory: &mut crate::model::Memory) {
        memory.slot = self.slot;
        memory.superseded_by = self.superseded_by;
        memory.expires_at = self.expires_at;
        memory.updated_at = self.updated_at;
        memory.source_turns = self.source_turns;
    }
}

/// The lifecycle of a memory in a snapshot: keys beside the seed's, each absent when unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// Its slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// The memory that replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<uuid::Uuid>,
    /// When it expires.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "timestamp::option"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    /// When it last changed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "timestamp::option"
    )]
    pub updated_at: Option<DateTime<Utc>>,
    /// The turns it was distilled from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_turns: Vec<u64>,
}

/// The seed's snapshot metadata, as listings and `memory_snapshot` events carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The snapshot's id.
    pub snapshot_id: String,
    /// When it was taken.
    #[serde(with = "timestamp")]
    pub timestamp: DateTime<Utc>,
    /// Turns in its window.
    pub short_term_turns: usize,
    /// Memories in it.
    pub long_term_memories: usize,
    /// Distinct topics in it.
    pub topics: usize,
    /// Whose memory it holds.
    #[serde(default)]
    pub scope: SnapshotScope,
}

impl Snapshot {
    /// The snapshot's metadata.
    pub fn meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            snapshot_id: self.snapshot_id.clone(),
            timestamp: self.timestamp,
            short_term_turns: self.short_term.turns.len(),
            long_term_memories: self.long_term.memories.len(),
            topics: self.long_term.topics.len(),
            scope: self.scope.clone(),
        }
    }

    /// Parses a snapshot from JSON, naming `origin` (a file) in errors.
    pub fn from_json(bytes: &[u8], origin: &Path) -> Result<Snapshot> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(origin, format!("not a Coda snapshot: {e}")))
    }
}

/// A snapshot held by a store: its metadata and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSnapshot {
    /// The seed's metadata.
    #[serde(flatten)]
    pub meta: SnapshotMeta,
    /// What [`SnapshotStore::load`] takes to read it back (for file stores, a path).
    pub location: String,
}

/// Where saved snapshots live.
pub trait SnapshotStore: Send + Sync + 'static {
    /// The store's registered name.
    fn name(&self) -> &str;

    /// Writes `snapshot` durably (replacing one with the same id) and returns its location.
    fn save(&self, snapshot: &Snapshot) -> Result<String>;

    /// Reads the snapshot at `location`; a missing, corrupt or foreign file is an error naming it.
    fn load(&self, location: &str) -> Result<Snapshot>;

    /// Metadata of every saved snapshot, newest first.
    fn list(&self) -> Result<Vec<StoredSnapshot>>;

    /// Removes the snapshot with `id`; returns whether it existed.
    fn delete(&self, id: &str) -> Result<bool>;
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one: a temp
/// file beside it is written and fsynced, renamed over `path`, and the directory fsynced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", Uuid::new_v4().simple()));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("write", &tmp, e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("rename", path, e));
    }
    sync_dir(dir)
}

/// Fsyncs a directory so a rename or create inside it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("fsync directory", dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_documented_shape() {
        let at = DateTime::parse_from_rfc3339("2025-04-26T12:34:56Z")
            .expect("time")
            .with_timezone(&Utc);
        let id = new_snapshot_id(at);
        assert!(id.starts_with("snapshot_20250426_123456_"), "{id}");
        assert!(is_snapshot_id(&id), "{id}");
        assert!(!is_snapshot_id("snapshot_20250426_123456_../../x"));
        assert!(!is_snapshot_id("../etc/passwd"));
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.json");
        write_atomically(&path, b"one").expect("first write");
        write_atomically(&path, b"two").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}
