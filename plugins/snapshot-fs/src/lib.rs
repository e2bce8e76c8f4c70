#![doc = include_str!("../README.md")]

mod config;
pub mod format;
mod index;
mod store;

pub use config::FsOptions;
pub use index::INDEX_FILE;
pub use store::{DirStore, FsStore};

/// The name this store registers under.
pub const NAME: &str = "fs";

use std::sync::Arc;

use coda_core::{Result, SnapshotStore, StoreContext};

fn build(options: FsOptions, _ctx: &StoreContext) -> Result<Arc<dyn SnapshotStore>> {
    Ok(Arc::new(FsStore::open(options.dir)?))
}

coda_core::register_store!(NAME, FsOptions, build);
