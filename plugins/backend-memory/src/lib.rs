#![doc = include_str!("../README.md")]

mod backend;
mod config;
mod history_import;
mod owners;
mod slots;
mod validate;

pub use backend::InMemoryBackend;
pub use config::MemoryOptions;

/// The name this backend registers under.
pub const NAME: &str = "memory";

use std::sync::Arc;

use coda_core::{BackendContext, MemoryBackend, Result};

fn build(_options: MemoryOptions, ctx: &BackendContext) -> Result<Arc<dyn MemoryBackend>> {
    Ok(Arc::new(InMemoryBackend::new(ctx.embedder.dims())))
}

coda_core::register_backend!(NAME, MemoryOptions, build);
