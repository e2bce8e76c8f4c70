#![doc = include_str!("../README.md")]

mod archive;
mod config;
mod rotate;
mod sink;

pub use archive::Archive;
pub use config::LogOptions;
pub use sink::LogSink;

/// The name this sink registers under.
pub const NAME: &str = "log";

use std::sync::Arc;

use coda_core::{EventSink, Result, SinkContext};

fn build(options: LogOptions, _ctx: &SinkContext) -> Result<Arc<dyn EventSink>> {
    Ok(Arc::new(LogSink::open(&options)?))
}

coda_core::register_sink!(NAME, LogOptions, build);
