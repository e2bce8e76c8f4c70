#![doc = include_str!("../README.md")]

pub mod access_log;
pub mod api;
pub mod cluster;
pub mod dashboard;
pub mod http_semantics;
pub mod mcp;
pub mod metrics;
pub mod rate;
pub mod readiness;
pub mod restore;
mod routes;
mod server;
pub mod state;

pub use server::{bind, start, start_with, ServerHandle, Starting};
