#![doc = include_str!("../README.md")]

mod closing;
#[cfg(test)]
mod coalesce_tests;
mod config;
mod connection;
mod filter;
#[cfg(test)]
mod fuzz_tests;
mod ops;
mod protocol;
mod queue;
mod reader;
mod route;
mod sink;
#[cfg(test)]
mod test_events;

pub use config::{Overflow, WebSocketOptions};
pub use route::{bearer, error_response, route, Access};
pub use sink::{WebSocketHub, WebSocketSink, WebSocketStats};

/// The name this sink registers under.
pub const NAME: &str = "websocket";

use std::sync::Arc;

use coda_core::{EventSink, Result, SinkContext};

fn build(options: WebSocketOptions, ctx: &SinkContext) -> Result<Arc<dyn EventSink>> {
    Ok(Arc::new(WebSocketSink::new(
        options,
        ctx.epoch,
        Arc::clone(&ctx.replay),
    )))
}

coda_core::register_sink!(NAME, WebSocketOptions, build);
