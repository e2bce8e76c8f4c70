#![doc = include_str!("../README.md")]

mod backend;
mod config;
mod graphs;
mod history_import;
mod hnsw;
mod int8_copy;
mod memory_backend;
mod owners;
mod rows;
mod slots;
mod validate;

pub use backend::InMemoryBackend;
pub use config::{HnswOptions, IndexKind, IndexOptions, MemoryOptions};
pub use graphs::SavedGraph;
pub use hnsw::{GraphAttached, GraphSource, ParsedGraph};

/// The name this backend registers under.
pub const NAME: &str = "memory";

use std::sync::Arc;

use coda_core::{BackendContext, MemoryBackend, Result};

fn build(options: MemoryOptions, ctx: &BackendContext) -> Result<Arc<dyn MemoryBackend>> {
    Ok(Arc::new(InMemoryBackend::with_index(
        ctx.embedder.dims(),
        options.index_options()?,
    )))
}

coda_core::register_backend!(NAME, MemoryOptions, build);
