//! `[stores.zstd]` options.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Options of the `zstd` snapshot store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZstdOptions {
    /// Directory holding `<snapshot_id>.json.zst` files; created when missing.
    #[serde(default = "ZstdOptions::default_dir")]
    pub dir: PathBuf,
    /// zstd compression level, 1 (fastest) to 22 (smallest).
    #[serde(default = "ZstdOptions::default_level")]
    pub level: i32,
    /// Name of an environment variable holding a 64-hex-digit key; empty = no encryption.
    #[serde(default)]
    pub key_env: String,
}

impl ZstdOptions {
    fn default_dir() -> PathBuf {
        PathBuf::from("data/memory/snapshots")
    }

    fn default_level() -> i32 {
        3
    }
}

impl Default for ZstdOptions {
    fn default() -> Self {
        ZstdOptions {
            dir: Self::default_dir(),
            level: Self::default_level(),
            key_env: String::new(),
        }
    }
}
