#![doc = include_str!("../README.md")]

pub mod api;
pub mod cluster;
pub mod dashboard;
pub mod http_semantics;
pub mod mcp;
pub mod metrics;
pub mod rate;
mod server;
pub mod state;

pub use server::{start, start_with, ServerHandle};
