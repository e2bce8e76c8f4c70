//! The server behind `coda serve`: the WebSocket sink's `/ws`, the HTTP API under `/api/v1`,
//! `/metrics`, `/healthz` and the dashboard at `/` on one address. A library so tests and the
//! load tool can run it in-process:
//!
//! ```no_run
//! # async fn run() -> coda::Result<()> {
//! let server = coda_server::start(coda::Config::load(None)?).await?;
//! println!("listening on {}", server.addr());
//! server.run_until_signal().await
//! # }
//! ```

pub mod api;
pub mod dashboard;
pub mod metrics;
mod server;
pub mod state;

pub use server::{start, start_with, ServerHandle};
