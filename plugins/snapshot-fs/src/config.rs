//! `[stores.fs]` options.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Options of the `fs` snapshot store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsOptions {
    /// Directory holding `<snapshot_id>.json` files; created when missing.
    #[serde(default = "FsOptions::default_dir")]
    pub dir: PathBuf,
}

impl FsOptions {
    fn default_dir() -> PathBuf {
        PathBuf::from("data/memory/snapshots")
    }
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            dir: Self::default_dir(),
        }
    }
}
