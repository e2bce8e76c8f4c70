#![doc = include_str!("../README.md")]

mod cache;
mod config;
mod embedder;
pub mod eval;
mod kernels;
mod model;
mod tokenize;

pub use cache::CacheStats;
pub use config::MinilmOptions;
#[doc(hidden)]
pub use embedder::test_model_dir;
pub use embedder::{check_model_dir, MinilmEmbedder, REQUIRED_FILES};

/// The name this embedder registers under.
pub const NAME: &str = "minilm";

use std::sync::Arc;

use coda_core::{Embedder, EmbedderContext, Result};

fn build(options: MinilmOptions, _ctx: &EmbedderContext) -> Result<Arc<dyn Embedder>> {
    Ok(Arc::new(MinilmEmbedder::open(&options)?))
}

coda_core::register_embedder!(NAME, MinilmOptions, build);
