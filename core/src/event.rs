//! Events: what every memory operation publishes (SPEC §4).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use twox_hash::XxHash3_64;
use uuid::Uuid;

use crate::model::{Metadata, ScoredMemory};
use crate::{Error, Result};

/// The type of an event, its `type` field on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A memory was added.
    MemoryStore,
    /// Memories were retrieved by a search.
    MemoryRetrieve,
    /// A memory was changed.
    MemoryUpdate,
    /// A memory was removed.
    MemoryDelete,
    /// A conversation turn was added.
    ConversationTurn,
    /// Short-term memory was persisted into long-term memory.
    MemoryPersist,
    /// Short-term memory was cleared.
    MemoryClear,
    /// A snapshot was created, saved, loaded, applied, deleted or pruned.
    MemorySnapshot,
    /// A session was deleted.
    SessionDelete,
    /// A user was erased.
    UserDelete,
}

impl EventType {
    /// Every event type, in wire-name order of the SPEC table.
    pub const ALL: [EventType; 10] = [
        EventType::MemoryStore,
        EventType::MemoryRetrieve,
        EventType::MemoryUpdate,
        EventType::MemoryDelete,
        EventType::ConversationTurn,
        EventType::MemoryPersist,
        EventType::MemoryClear,
        EventType::MemorySnapshot,
        EventType::SessionDelete,
        EventType::UserDelete,
    ];

    /// The wire name, e.g. `memory_store`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MemoryStore => "memory_store",
            EventType::MemoryRetrieve => "memory_retrieve",
            EventType::MemoryUpdate => "memory_update",
            EventType::MemoryDelete => "memory_delete",
            EventType::ConversationTurn => "conversation_turn",
            EventType::MemoryPersist => "memory_persist",
            EventType::MemoryClear => "memory_clear",
            EventType::MemorySnapshot => "memory_snapshot",
            EventType::SessionDelete => "session_delete",
            EventType::UserDelete => "user_delete",
        }
    }

    /// Position in [`EventType::ALL`], for per-type counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Drop priority under back-pressure: lower goes first (SPEC §5).
    pub fn priority(self) -> u8 {
        match self {
            EventType::MemoryRetrieve => 0,
            EventType::ConversationTurn => 1,
            EventType::MemoryStore | EventType::MemoryUpdate | EventType::MemoryDelete => 2,
            EventType::MemoryPersist
            | EventType::MemoryClear
            | EventType::MemorySnapshot
            | EventType::SessionDelete
            | EventType::UserDelete => 3,
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                Error::invalid(
                    "types",
                    format!("unknown event type `{s}`; known: {}", known.join(", ")),
                )
            })
    }
}

/// What a `memory_snapshot` event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotAction {
    /// Captured in memory.
    Create,
    /// Written to the store.
    Save,
    /// Read from the store.
    Load,
    /// Restored into memory.
    Apply,
    /// Removed from the store.
    Delete,
    /// Old snapshots removed by retention or prune.
    Prune,
}

/// The body of an event: everything but `seq`, `event_id` and `timestamp`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// `memory_store`.
    MemoryStore {
        /// The new memory's id.
        memory_id: Uuid,
        /// Its text.
        content: String,
        /// Its metadata.
        metadata: Metadata,
    },
    /// `memory_retrieve`.
    MemoryRetrieve {
        /// The query text.
        query: String,
        /// What was found, most similar first.
        results: Vec<ScoredMemory>,
    },
    /// `memory_update`.
    MemoryUpdate {
        /// The memory's id.
        memory_id: Uuid,
        /// Its new text.
        content: String,
        /// Its new metadata.
        metadata: Metadata,
    },
    /// `memory_delete`.
    MemoryDelete {
        /// The removed memory's id.
        memory_id: Uuid,
        /// Why, when not a caller's delete: `expired` (SPEC §10).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `conversation_turn`.
    ConversationTurn {
        /// Who spoke.
        role: crate::model::Role,
        /// What was said.
        content: String,
        /// The turn's index in the session.
        turn_index: u64,
    },
    /// `memory_persist`.
    MemoryPersist {
        /// Turns in the session so far.
        turn_count: u64,
        /// Long-term memories the persist added.
        memories_added: usize,
    },
    /// `memory_clear`.
    MemoryClear {},
    /// `memory_snapshot`.
    MemorySnapshot {
        /// What happened.
        action: SnapshotAction,
        /// Which snapshot (for `prune`, the newest one removed, or empty).
        snapshot_id: String,
        /// The seed's snapshot metadata; for `prune`, `{"removed": [ids]}`.
        metadata: Value,
    },
    /// `session_delete`.
    SessionDelete {},
    /// `user_delete`.
    UserDelete {
        /// Memories erased.
        memories_deleted: usize,
        /// Sessions erased.
        sessions_deleted: usize,
        /// Snapshots erased.
        snapshots_deleted: usize,
    },
}

impl EventBody {
    /// The event's type.
    pub fn event_type(&self) -> EventType {
        match self {
            EventBody::MemoryStore { .. } => EventType::MemoryStore,
            EventBody::MemoryRetrieve { .. } => EventType::MemoryRetrieve,
            EventBody::MemoryUpdate { .. } => EventType::MemoryUpdate,
            EventBody::MemoryDelete { .. } => EventType::MemoryDelete,
            EventBody::ConversationTurn { .. } => EventType::ConversationTurn,
            EventBody::MemoryPersist { .. } => EventType::MemoryPersist,
            EventBody::MemoryClear {} => EventType::MemoryClear,
            EventBody::MemorySnapshot { .. } => EventType::MemorySnapshot,
            EventBody::SessionDelete {} => EventType::SessionDelete,
            EventBody::UserDelete { .. } => EventType::UserDelete,
        }
    }
}

/// Whose data an event concerns: published as top-level `user_id`, `agent_id` and
/// `session_id`, and kept on the [`Event`] so sinks can filter without parsing JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventScope {
    /// The tenant: a top-level `tenant` in the JSON unless it is `default` (so events read as
    /// before without tenants, and the same change in two tenants is never a duplicate).
    pub tenant: String,
    /// The user.
    pub user_id: String,
    /// The agent, where one applies.
    pub agent_id: Option<String>,
    /// The session, where one applies.
    pub session_id: Option<String>,
}

impl EventScope {
    /// The scope of an operation in `scope`.
    pub fn of(scope: &crate::scope::Scope) -> Self {
        EventScope {
            tenant: scope.tenant().to_owned(),
            user_id: scope.user_id().to_owned(),
            agent_id: scope.agent_id().map(str::to_owned),
            session_id: scope.session_id().map(str::to_owned),
        }
    }

    /// The scope of an event about `memory`: its own user, agent and session.
    pub fn of_memory(memory: &crate::model::Memory) -> Self {
        EventScope {
            tenant: memory.tenant.clone(),
            user_id: memory.user_id.clone(),
            agent_id: memory.agent_id.clone(),
            session_id: memory.session_id.clone(),
        }
    }

    /// User `default` of tenant `default`, no agent or session.
    pub fn default_user() -> Self {
        EventScope {
            tenant: crate::scope::DEFAULT_ID.to_owned(),
            user_id: crate::scope::DEFAULT_ID.to_owned(),
            agent_id: None,
            session_id: None,
        }
    }

    /// Appends the scope's fields to a serialised body object (without its closing brace).
    /// Scope ids are validated to `[A-Za-z0-9._:@-]`, but they are escaped anyway so an id
    /// from a custom integration can never break the JSON.
    fn append_to(&self, json: &mut String) {
        let mut field = |name: &str, value: &str| {
            if !json.ends_with('{') {
                json.push(',');
            }
            json.push('"');
            json.push_str(name);
            json.push_str("\":");
            json.push_str(&Value::String(value.to_owned()).to_string());
        };
        if self.tenant != crate::scope::DEFAULT_ID {
            field("tenant", &self.tenant);
        }
        field("user_id", &self.user_id);
        if let Some(agent) = &self.agent_id {
            field("agent_id", agent);
        }
        if let Some(session) = &self.session_id {
            field("session_id", session);
        }
    }

    /// `body_json` (a serialised object) with this scope's fields added.
    pub(crate) fn apply(&self, body_json: &str) -> String {
        let open = body_json.strip_suffix('}').unwrap_or(body_json);
        let mut json = String::with_capacity(body_json.len() + 64);
        json.push_str(open);
        self.append_to(&mut json);
        json.push('}');
        json
    }
}

/// A published event: its envelope fields and its JSON, serialised once and shared by every
/// sink and connection.
#[derive(Debug)]
pub struct Event {
    /// Position in the epoch's stream, strictly increasing.
    pub seq: u64,
    /// Unique id.
    pub event_id: Uuid,
    /// When it was published.
    pub timestamp: DateTime<Utc>,
    /// Its type.
    pub event_type: EventType,
    /// xxHash of the body, used for duplicate suppression.
    pub body_hash: u64,
    /// Whose data it concerns.
    pub scope: EventScope,
    json: Arc<str>,
}

/// An event shared between the bus, the replay ring and every sink.
pub type SharedEvent = Arc<Event>;

impl Event {
    /// Assembles an event from its serialised body (`{"type":..,...}`), appending the envelope.
    pub(crate) fn assemble(
        body_json: &str,
        event_type: EventType,
        scope: EventScope,
        body_hash: u64,
        seq: u64,
        timestamp: DateTime<Utc>,
    ) -> Event {
        let event_id = crate::stamp::new_id();
        let stamp = crate::model::timestamp::format(&timestamp);
        // The body is a JSON object from serde: drop its closing brace and append the envelope.
        let open = body_json.strip_suffix('}').unwrap_or(body_json);
        let sep = if open.ends_with('{') { "" } else { "," };
        let json = format!(
            "{open}{sep}\"seq\":{seq},\"event_id\":\"{event_id}\",\"timestamp\":\"{stamp}\"}}"
        );
        Event {
            seq,
            event_id,
            timestamp,
            event_type,
            body_hash,
            scope,
            json: json.into(),
        }
    }

    /// An event read back from the JSON it was published as (e.g. from an events archive):
    /// the same text, type, scope, `seq`, id, time and body hash as when it was assembled.
    pub fn from_json(json: &str) -> Result<Event> {
        let corrupt = |why: &str| Error::corrupt("events archive", format!("an event {why}"));
        let value: Map<String, Value> =
            serde_json::from_str(json).map_err(|e| corrupt(&format!("is not JSON: {e}")))?;
        let text = |key: &str| value.get(key).and_then(Value::as_str);
        let event_type = text("type")
            .ok_or_else(|| corrupt("has no `type`"))?
            .parse::<EventType>()?;
        let seq = value
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or_else(|| corrupt("has no `seq`"))?;
        let event_id = text("event_id")
            .and_then(|id| id.parse::<Uuid>().ok())
            .ok_or_else(|| corrupt("has no `event_id`"))?;
        let timestamp = text("timestamp")
            .and_then(crate::model::timestamp::parse)
            .ok_or_else(|| corrupt("has no `timestamp`"))?;
        let scope = EventScope {
            tenant: text("tenant")
                .unwrap_or(crate::scope::DEFAULT_ID)
                .to_owned(),
            user_id: text("user_id")
                .unwrap_or(crate::scope::DEFAULT_ID)
                .to_owned(),
            agent_id: text("agent_id").map(str::to_owned),
            session_id: text("session_id").map(str::to_owned),
        };
        // The envelope is always appended last (`assemble`), so the body is what precedes it.
        let body_hash = match json.rfind(",\"seq\":") {
            Some(end) => XxHash3_64::oneshot(format!("{}}}", &json[..end]).as_bytes()),
            None => return Err(corrupt("has no envelope")),
        };
        Ok(Event {
            seq,
            event_id,
            timestamp,
            event_type,
            body_hash,
            scope,
            json: json.into(),
        })
    }

    /// The complete event as JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The JSON text as a shared string, cheap to clone into many queues.
    pub fn json_shared(&self) -> Arc<str> {
        Arc::clone(&self.json)
    }

    /// The event parsed back into a JSON object (for tests and tools; sinks send [`json`](Self::json)).
    pub fn to_value(&self) -> Map<String, Value> {
        match serde_json::from_str::<Value>(&self.json) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_appended_to_the_body() {
        let body = serde_json::to_string(&EventBody::MemoryClear {}).expect("serialise");
        assert_eq!(body, r#"{"type":"memory_clear"}"#);
        let scope = EventScope::default_user();
        let body = scope.apply(&body);
        let event = Event::assemble(&body, EventType::MemoryClear, scope, 1, 7, Utc::now());
        let value = event.to_value();
        assert_eq!(value["type"], "memory_clear");
        assert_eq!(value["user_id"], "default");
        assert_eq!(value["seq"], 7);
        assert!(value["event_id"].is_string() && value["timestamp"].is_string());
        assert!(
            !value.contains_key("tenant"),
            "tenant `default` is not on the wire"
        );
        let acme = EventScope {
            tenant: "acme".into(),
            ..EventScope::default_user()
        };
        let body = serde_json::to_string(&EventBody::MemoryClear {}).expect("serialise");
        let event = Event::assemble(
            &acme.apply(&body),
            EventType::MemoryClear,
            acme,
            1,
            8,
            Utc::now(),
        );
        assert_eq!(event.to_value()["tenant"], "acme");
    }

    #[test]
    fn an_event_reads_back_from_its_json() {
        let scope = EventScope {
            tenant: "acme".into(),
            user_id: "alice".into(),
            agent_id: None,
            session_id: Some("s-1".into()),
        };
        let body = EventBody::MemoryDelete {
            memory_id: Uuid::nil(),
            reason: None,
        };
        let body = scope.apply(&serde_json::to_string(&body).expect("serialise"));
        let hash = XxHash3_64::oneshot(body.as_bytes());
        // Events carry microsecond times (`timestamp::now`), which survive the round trip.
        let now = crate::model::timestamp::now();
        let event = Event::assemble(&body, EventType::MemoryDelete, scope, hash, 9, now);
        let back = Event::from_json(event.json()).expect("an event");
        assert_eq!(back.json(), event.json());
        assert_eq!(
            (back.seq, back.event_id, back.timestamp, back.event_type),
            (event.seq, event.event_id, event.timestamp, event.event_type)
        );
        assert_eq!(back.body_hash, hash);
        assert_eq!(
            (back.scope.tenant.as_str(), back.scope.user_id.as_str()),
            ("acme", "alice")
        );
        assert_eq!(back.scope.session_id.as_deref(), Some("s-1"));
        assert!(Event::from_json(r#"{"type":"memory_clear"}"#).is_err());
        assert!(Event::from_json("not json").is_err());
    }

    #[test]
    fn event_types_parse_and_order_by_priority() {
        assert_eq!(
            "memory_persist".parse::<EventType>().expect("known"),
            EventType::MemoryPersist
        );
        assert!("nope".parse::<EventType>().is_err());
        assert!(EventType::MemoryRetrieve.priority() < EventType::ConversationTurn.priority());
        assert!(EventType::ConversationTurn.priority() < EventType::MemorySnapshot.priority());
    }
}
