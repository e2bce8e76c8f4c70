//! `[backends.file]` options.

use std::path::PathBuf;

use coda_backend_memory::{HnswOptions, IndexKind, IndexOptions};
use coda_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// When a write's bytes are forced to disk, and so how much a power loss can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncPolicy {
    /// A write returns only after its bytes are fsynced; concurrent writers share one fsync.
    /// Loses nothing that was acknowledged.
    Always,
    /// A background thread fsyncs every `batch_ms`; writes return at once. A power loss can take
    /// the last `batch_ms` (plus one fsync) of acknowledged writes; a process crash loses nothing.
    Batch,
    /// Never fsync; the OS writes back when it likes (on Linux, typically within 30 s). A
    /// process crash loses nothing, a power loss can take whatever the OS had not written.
    Never,
}

/// What to do when the log's vectors came from a different embedder (or `dims`) than the one
/// configured now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnEmbedderChange {
    /// Re-embed every memory with the new embedder and rewrite the log, logging progress.
    Reembed,
    /// Refuse to open, naming both embedders; nothing is changed.
    Refuse,
}

/// Options of the `file` backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOptions {
    /// Directory holding the log (`memory.log`) and its lock file (`LOCK`); created when missing.
    #[serde(default = "FileOptions::default_dir")]
    pub dir: PathBuf,
    /// `always`, `batch` or `never`: when writes are fsynced (see [`SyncPolicy`]).
    #[serde(default = "FileOptions::default_sync")]
    pub sync: SyncPolicy,
    /// With `sync = "batch"`: the longest a write waits for fsync, in milliseconds (at least 1).
    #[serde(default = "FileOptions::default_batch_ms")]
    pub batch_ms: u64,
    /// Open past corruption in the middle of the log, keeping every valid record before and
    /// after the damage (the log is then rewritten without it). Off: such a log refuses to open.
    #[serde(default)]
    pub repair: bool,
    /// Compact when dead records (overwritten or deleted) exceed this many times the live ones.
    #[serde(default = "FileOptions::default_compact_ratio")]
    pub compact_ratio: f64,
    /// ... and there are at least this many dead records; small logs are not worth rewriting.
    #[serde(default = "FileOptions::default_compact_min_dead")]
    pub compact_min_dead: u64,
    /// `reembed` or `refuse`: what to do when the stored vectors came from another embedder.
    #[serde(default = "FileOptions::default_on_embedder_change")]
    pub on_embedder_change: OnEmbedderChange,
    /// `int8` (default), `exact` or `hnsw`: how searches find the best live vectors, as in
    /// backend `memory` (see [`IndexKind`]). The log always holds the exact `f32` vectors; an
    /// HNSW graph is not stored but rebuilt in the background after open (searches scan until
    /// it is ready).
    #[serde(default)]
    pub index: IndexKind,
    /// With `index = "int8"` or `"hnsw"`: candidates kept per result wanted by the int8 scan,
    /// rescored exactly (at least 1).
    #[serde(default = "FileOptions::default_oversample")]
    pub oversample: usize,
    /// With `index = "hnsw"`: a user's graph is built from this many memories on.
    #[serde(default = "FileOptions::default_hnsw_min_vectors")]
    pub hnsw_min_vectors: usize,
    /// With `index = "hnsw"`: search breadth, 1 to 10000 (higher: better recall, slower).
    #[serde(default = "FileOptions::default_hnsw_ef")]
    pub hnsw_ef: usize,
}

impl FileOptions {
    fn default_dir() -> PathBuf {
        PathBuf::from("data/memory")
    }

    fn default_sync() -> SyncPolicy {
        SyncPolicy::Always
    }

    fn default_batch_ms() -> u64 {
        1000
    }

    fn default_compact_ratio() -> f64 {
        1.0
    }

    fn default_compact_min_dead() -> u64 {
        1000
    }

    fn default_on_embedder_change() -> OnEmbedderChange {
        OnEmbedderChange::Reembed
    }

    fn default_oversample() -> usize {
        IndexOptions::DEFAULT_OVERSAMPLE
    }

    fn default_hnsw_min_vectors() -> usize {
        HnswOptions::DEFAULT_MIN_VECTORS
    }

    fn default_hnsw_ef() -> usize {
        HnswOptions::DEFAULT_EF_SEARCH
    }

    /// The checked index options for the live set.
    pub fn index_options(&self) -> Result<IndexOptions> {
        IndexOptions::new(self.index, self.oversample, "backends.file")?.with_hnsw_settings(
            self.hnsw_min_vectors,
            self.hnsw_ef,
            "backends.file",
        )
    }

    /// Options for a log in `dir`, every other option at its default.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        FileOptions {
            dir: dir.into(),
            ..FileOptions::default()
        }
    }

    /// Checks values serde cannot: ranges.
    pub fn validate(&self) -> Result<()> {
        if self.batch_ms == 0 {
            return Err(Error::config(
                "backends.file.batch_ms",
                "must be at least 1",
            ));
        }
        if !(self.compact_ratio.is_finite() && self.compact_ratio >= 0.0) {
            return Err(Error::config(
                "backends.file.compact_ratio",
                format!("{} is not a non-negative number", self.compact_ratio),
            ));
        }
        self.index_options().map(drop)
    }
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            dir: Self::default_dir(),
            sync: Self::default_sync(),
            batch_ms: Self::default_batch_ms(),
            repair: false,
            compact_ratio: Self::default_compact_ratio(),
            compact_min_dead: Self::default_compact_min_dead(),
            on_embedder_change: Self::default_on_embedder_change(),
            index: IndexKind::default(),
            oversample: Self::default_oversample(),
            hnsw_min_vectors: Self::default_hnsw_min_vectors(),
            hnsw_ef: Self::default_hnsw_ef(),
        }
    }
}
