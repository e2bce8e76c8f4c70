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
    #[serde(deserialize_with = "at_least_one")]
    pub queue: usize,
    /// What a full queue does: `drop_oldest` or `disconnect`.
    pub overflow: Overflow,
    /// Events sent to a new connection that gives no `since` (its `replay` overrides it).
    pub replay_on_connect: usize,
    /// Open connections at most; further upgrades get HTTP 503.
    #[serde(deserialize_with = "at_least_one")]
    pub max_connections: usize,
    /// Largest client message, all its fragments together; a larger one closes the connection
    /// with 1009.
    #[serde(deserialize_with = "at_least_one")]
    pub max_message_bytes: usize,
    /// Seconds between pings; a connection silent for three intervals is closed.
    #[serde(deserialize_with = "at_least_one")]
    pub ping_interval_s: u64,
    /// Milliseconds a connection that has just written holds further events back, to send
    /// them in one write (1 to 1000): the most latency it adds. Each write costs the same few
    /// microseconds of kernel time whatever it carries, so with many subscribers and events a
    /// few milliseconds apart a longer interval buys CPU with latency.
    #[serde(deserialize_with = "coalesce_range")]
    pub coalesce_ms: u64,
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
            coalesce_ms: 1,
        }
    }
}

impl WebSocketOptions {
    /// `coalesce_ms` as a duration.
    pub fn coalesce(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.coalesce_ms)
    }
}

/// Rejects 0 while parsing, so `coda config check` and startup report it at its key path.
fn at_least_one<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + PartialEq + From<u8>,
{
    let value = T::deserialize(deserializer)?;
    if value == T::from(0) {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(value)
}

/// `coalesce_ms` between 1 and 1000.
fn coalesce_range<'de, D>(deserializer: D) -> Result<u64, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = u64::deserialize(deserializer)?;
    if !(1..=1000).contains(&value) {
        return Err(serde::de::Error::custom("must be between 1 and 1000"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_are_refused_while_parsing() {
        let err = serde_json::from_str::<WebSocketOptions>(r#"{"queue":0}"#).expect_err("zero");
        assert!(err.to_string().contains("at least 1"), "{err}");
        let ok: WebSocketOptions =
            serde_json::from_str(r#"{"overflow":"disconnect"}"#).expect("ok");
        assert_eq!((ok.overflow, ok.queue), (Overflow::Disconnect, 1024));
        for bad in [0, 1001] {
            let err =
                serde_json::from_str::<WebSocketOptions>(&format!(r#"{{"coalesce_ms":{bad}}}"#))
                    .expect_err("out of range");
            assert!(err.to_string().contains("between 1 and 1000"), "{err}");
        }
        let ok: WebSocketOptions = serde_json::from_str(r#"{"coalesce_ms":20}"#).expect("ok");
        assert_eq!(ok.coalesce(), std::time::Duration::from_millis(20));
    }
}
