#![doc = include_str!("../README.md")]

mod backend;
mod backup;
mod compact;
mod config;
mod format;
mod graphs;
mod lock;
mod log;
mod open;
mod recover;
mod syncer;

pub use backend::FileBackend;
/// The live set's vector index, chosen by `index` and `oversample` as in backend `memory`.
pub use coda_backend_memory::{IndexKind, IndexOptions};
pub use compact::{Compacted, LOG_FILE, TEMP_FILE};
pub use config::{FileOptions, OnEmbedderChange, SyncPolicy};
pub use graphs::{GraphsLoaded, GRAPH_PREFIX, GRAPH_SUFFIX};
pub use lock::LOCK_FILE;
pub use open::Recovery;
pub use recover::Dropped;

/// The name this backend registers under.
pub const NAME: &str = "file";

use std::sync::Arc;

use coda_core::{BackendContext, MemoryBackend, Result};

fn build(options: FileOptions, ctx: &BackendContext) -> Result<Arc<dyn MemoryBackend>> {
    Ok(Arc::new(FileBackend::open(
        options,
        Arc::clone(&ctx.embedder),
    )?))
}

coda_core::register_backend!(NAME, FileOptions, build);
