#![doc = include_str!("../README.md")]

mod codec;
mod config;

pub use codec::{SnapshotKey, ZstdCodec};
pub use config::ZstdOptions;

/// The name this store registers under.
pub const NAME: &str = "zstd";

use std::sync::Arc;

use coda_core::{Result, SnapshotStore, StoreContext};
use coda_snapshot_fs::DirStore;

/// Store `zstd`: `<dir>/<snapshot_id>.json.zst`.
pub type ZstdStore = DirStore<ZstdCodec>;

/// Opens a zstd store from its options (reading the key from the environment if configured).
pub fn open(options: &ZstdOptions) -> Result<ZstdStore> {
    let key = match options.key_env.as_str() {
        "" => None,
        var => Some(SnapshotKey::from_env(var)?),
    };
    DirStore::with_codec(NAME, &options.dir, ZstdCodec::new(options.level, key)?)
}

fn build(options: ZstdOptions, _ctx: &StoreContext) -> Result<Arc<dyn SnapshotStore>> {
    Ok(Arc::new(open(&options)?))
}

coda_core::register_store!(NAME, ZstdOptions, build);
