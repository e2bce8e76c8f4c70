//! The WebSocket protocol (SPEC §5): client operations and the server's own frames.

use chrono::{DateTime, Utc};
use coda_core::EventType;
use serde::Deserialize;
use uuid::Uuid;

/// A frame a client may send.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientOp {
    /// Receive only these types, of this scope, from now on (`[]` = all types; an absent id
    /// = any).
    Subscribe {
        /// Event type names.
        types: Vec<String>,
        /// Only events of this user.
        #[serde(default)]
        user_id: Option<String>,
        /// Only events of this agent.
        #[serde(default)]
        agent_id: Option<String>,
        /// Only events of this session.
        #[serde(default)]
        session_id: Option<String>,
    },
    /// Replay held events: after `since`, or by types and time range.
    Replay {
        /// Replay every held event with a greater `seq`.
        #[serde(default)]
        since: Option<u64>,
        /// Only these types (absent or `[]` = all).
        #[serde(default)]
        types: Vec<String>,
        /// Events at or after this time (RFC 3339).
        #[serde(default, with = "coda_core::model::timestamp::option")]
        from: Option<DateTime<Utc>>,
        /// Events at or before this time (RFC 3339).
        #[serde(default, with = "coda_core::model::timestamp::option")]
        to: Option<DateTime<Utc>>,
        /// At most this many events.
        #[serde(default)]
        limit: Option<usize>,
    },
    /// Answered with `{"type":"pong"}`.
    Ping {},
}

impl ClientOp {
    /// Parses a text frame; the error is a sentence for an `error` frame.
    pub fn parse(text: &str) -> Result<ClientOp, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("malformed frame: {e}"))?;
        let op = value
            .get("op")
            .and_then(|op| op.as_str())
            .map(str::to_owned);
        match op.as_deref() {
            None => Err("a client frame needs an `op` (subscribe, replay, ping)".to_owned()),
            Some("subscribe" | "replay" | "ping") => serde_json::from_value(value)
                .map_err(|e| format!("invalid `{}` frame: {e}", op.unwrap_or_default())),
            Some(other) => Err(format!(
                "unknown op `{other}`; known ops: subscribe, replay, ping"
            )),
        }
    }
}

/// Parses event type names; the error names the unknown one.
pub fn parse_types<S: AsRef<str>>(names: &[S]) -> Result<Vec<EventType>, String> {
    names
        .iter()
        .map(|name| name.as_ref().trim())
        .filter(|name| !name.is_empty())
        .map(|name| name.parse::<EventType>().map_err(|e| e.to_string()))
        .collect()
}

/// `{"type":"welcome","epoch":E,"seq":LATEST}`.
pub fn welcome(epoch: Uuid, seq: u64) -> String {
    format!(r#"{{"type":"welcome","epoch":"{epoch}","seq":{seq}}}"#)
}

/// `{"type":"replay_gap","from":A,"to":B}`.
pub fn replay_gap(from: u64, to: u64) -> String {
    format!(r#"{{"type":"replay_gap","from":{from},"to":{to}}}"#)
}

/// `{"type":"lagged","dropped":N,"from":A,"to":B}`.
pub fn lagged(dropped: u64, from: u64, to: u64) -> String {
    format!(r#"{{"type":"lagged","dropped":{dropped},"from":{from},"to":{to}}}"#)
}

/// `{"type":"pong"}`.
pub fn pong() -> String {
    r#"{"type":"pong"}"#.to_owned()
}

/// `{"type":"error","error":MESSAGE}`.
pub fn error(message: &str) -> String {
    let message = serde_json::Value::from(message);
    format!(r#"{{"type":"error","error":{message}}}"#)
}

/// Appends `{"type":"batch","events":[...]}` built from already-serialised events.
pub fn batch<'a>(events: impl ExactSizeIterator<Item = &'a str>, size_hint: usize) -> String {
    let mut out = String::with_capacity(size_hint + 32 + events.len());
    out.push_str(r#"{"type":"batch","events":["#);
    for (i, event) in events.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(event);
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_parse_and_bad_frames_explain_themselves() {
        assert_eq!(ClientOp::parse(r#"{"op":"ping"}"#), Ok(ClientOp::Ping {}));
        assert!(matches!(
            ClientOp::parse(r#"{"op":"replay","since":4}"#),
            Ok(ClientOp::Replay { since: Some(4), .. })
        ));
        let ranged = ClientOp::parse(
            r#"{"op":"replay","types":["memory_store"],"from":"2025-01-01T00:00:00Z","limit":5}"#,
        );
        assert!(matches!(
            ranged,
            Ok(ClientOp::Replay {
                from: Some(_),
                limit: Some(5),
                ..
            })
        ));
        assert!(ClientOp::parse("{nope")
            .expect_err("bad json")
            .contains("malformed"));
        assert!(ClientOp::parse(r#"{"op":"dance"}"#)
            .expect_err("unknown")
            .contains("unknown op"));
        assert!(ClientOp::parse(r#"{"op":"subscribe"}"#)
            .expect_err("no types")
            .contains("types"));
        assert!(matches!(
            ClientOp::parse(r#"{"op":"subscribe","types":[],"user_id":"alice","session_id":"s1"}"#),
            Ok(ClientOp::Subscribe { user_id: Some(u), agent_id: None, session_id: Some(s), .. })
                if u == "alice" && s == "s1"
        ));
        assert!(
            ClientOp::parse(r#"{"op":"subscribe","types":[],"user":"alice"}"#)
                .expect_err("unknown field")
                .contains("user")
        );
        assert!(parse_types(&["memory_store", "nope"])
            .expect_err("unknown")
            .contains("nope"));
    }

    #[test]
    fn batch_wraps_events_verbatim() {
        let frame = batch(["{\"seq\":1}", "{\"seq\":2}"].into_iter(), 18);
        let value: serde_json::Value = serde_json::from_str(&frame).expect("json");
        assert_eq!(value["events"][1]["seq"], 2);
    }
}
