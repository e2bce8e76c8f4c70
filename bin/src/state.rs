//! What every route shares.

use std::sync::Arc;
use std::time::Instant;

use coda::sink_websocket::{Access, WebSocketHub};
use coda::{Config, MemoryManager};
use http::HeaderMap;

use crate::metrics::Metrics;

/// The server's shared state.
pub struct State {
    /// The configuration in force.
    pub config: Config,
    /// Coda itself.
    pub manager: Arc<MemoryManager>,
    /// The WebSocket sink's connections, if a `websocket` sink is configured.
    pub hub: Option<Arc<WebSocketHub>>,
    /// Tokens and origins.
    pub access: Arc<Access>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// When the server started.
    pub started: Instant,
}

impl State {
    /// Whether the request carries a valid token (always, when no tokens are configured).
    pub fn authorized(&self, headers: &HeaderMap, query_token: Option<&str>) -> bool {
        let token = coda::sink_websocket::bearer(headers).or(query_token);
        self.access.token_ok(token)
    }
}
