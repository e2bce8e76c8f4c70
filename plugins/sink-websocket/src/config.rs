//! `[[sinks]] type = "websocket"` options (SPEC §2).

use serde::{Deserialize, Serialize};

/// What happens when a connection's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Drop queued events, lowest priority first, and tell the client with a `lagged` frame.
    DropOldest,
    /// Close that connection with status 1008.
    Disconnect,
}

/// Options of the WebSocket sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketOptions {
    /// Events each connection may have waiting to be written.
    pub queue: usize,
    /// What a full queue does: `drop_oldest` or `disconnect`.
    pub overflow: Overflow,
    /// Events sent to a new connection that gives no `since` (its `replay` overrides it).
    pub replay_on_connect: usize,
    /// Open connections at most; further upgrades get HTTP 503.
    pub max_connections: usize,
    /// Largest client frame; a larger one closes the connection with 1009.
    pub max_message_bytes: usize,
    /// Seconds between pings; a connection silent for three intervals is closed.
    pub ping_interval_s: u64,
}

impl Default for WebSocketOptions {
    fn default() -> Self {
        WebSocketOptions {
            queue: 1024,
            overflow: Overflow::DropOldest,
            replay_on_connect: 100,
            max_connections: 10_000,
            max_message_bytes: 65_536,
            ping_interval_s: 20,
        }
    }
}

impl WebSocketOptions {
    /// Checks the values a sink cannot run with; errors name the key.
    pub fn check(&self) -> coda_core::Result<()> {
        let positive = [
            ("queue", self.queue),
            ("max_connections", self.max_connections),
            ("max_message_bytes", self.max_message_bytes),
            ("ping_interval_s", self.ping_interval_s as usize),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(coda_core::Error::config(
                    format!("sinks.websocket.{key}"),
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}
