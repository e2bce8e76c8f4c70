#![doc = include_str!("../README.md")]

mod config;
mod store;

pub use config::FsOptions;
pub use store::FsStore;

/// The name this store registers under.
pub const NAME: &str = "fs";

use std::sync::Arc;

use coda_core::{Result, SnapshotStore, StoreContext};

fn build(options: FsOptions, _ctx: &StoreContext) -> Result<Arc<dyn SnapshotStore>> {
    Ok(Arc::new(FsStore::open(options.dir)?))
}

coda_core::register_store!(NAME, FsOptions, build);
