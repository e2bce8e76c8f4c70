//! The data Coda stores and sends: memories, turns and their metadata (SPEC §3).

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A memory's identifier.
pub type MemoryId = Uuid;

/// A hash map by memory id, hashed with `foldhash` (seeded per process) rather than SipHash:
/// the indexes that hold one entry per memory (a million, replayed at every open) spend a
/// good part of each insert hashing the id otherwise.
pub type IdMap<V> = std::collections::HashMap<MemoryId, V, foldhash::fast::RandomState>;

fn default_id() -> String {
    crate::scope::DEFAULT_ID.to_owned()
}

fn is_default_id(s: &str) -> bool {
    s == crate::scope::DEFAULT_ID
}

/// A long-term memory: a fact, preference or conversation summary.
///
/// Two memories are equal when everything but `changed_by` (who made the version, which
/// history records) is equal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Memory {
    /// Unique id, assigned when the memory is added.
    pub id: MemoryId,
    /// The remembered text.
    pub content: String,
    /// The user it belongs to (SPEC §8).
    #[serde(default = "default_id")]
    pub user_id: String,
    /// The agent it was remembered for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The session it came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The tenant it belongs to; not on the wire for tenant `default`.
    #[serde(default = "default_id", skip_serializing_if = "is_default_id")]
    pub tenant: String,
    /// Source type, importance, timestamp, topics and the caller's own keys.
    pub metadata: Metadata,
    /// What the memory is about (`home_city`, `name`, `opinion:coffee`), for superseding: a new
    /// fact or preference of the same user in the same slot replaces this one (SPEC §10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// The memory that replaced this one; a superseded memory leaves searches and listings
    /// unless they ask for `include_superseded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<MemoryId>,
    /// When the memory expires; after it, searches and listings skip it and the sweeper deletes
    /// it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "timestamp::option"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the memory last changed after it was added (update or supersede).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "timestamp::option"
    )]
    pub updated_at: Option<DateTime<Utc>>,
    /// The turns (`turn_index`) a persisted memory was distilled from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_turns: Vec<u64>,
    /// Who made the current version, for its history; not on the wire (the history says it).
    #[serde(skip)]
    pub changed_by: By,
}

impl PartialEq for Memory {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.content == other.content
            && self.user_id == other.user_id
            && self.agent_id == other.agent_id
            && self.session_id == other.session_id
            && self.tenant == other.tenant
            && self.metadata == other.metadata
            && self.slot == other.slot
            && self.superseded_by == other.superseded_by
            && self.expires_at == other.expires_at
            && self.updated_at == other.updated_at
            && self.source_turns == other.source_turns
    }
}

/// Who changed a memory, as its history reports it (SPEC §10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    /// A caller of the API or library.
    #[default]
    Api,
    /// Persist, distilling turns.
    Persist,
    /// The expiry sweeper.
    Expiry,
}

impl By {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            By::Api => "api",
            By::Persist => "persist",
            By::Expiry => "expiry",
        }
    }

    /// The value [`as_u8`](Self::as_u8) gave, if it is one.
    pub fn from_u8(v: u8) -> Option<By> {
        match v {
            0 => Some(By::Api),
            1 => Some(By::Persist),
            2 => Some(By::Expiry),
            _ => None,
        }
    }

    /// A compact code for binary logs.
    pub fn as_u8(self) -> u8 {
        match self {
            By::Api => 0,
            By::Persist => 1,
            By::Expiry => 2,
        }
    }
}

/// Metadata every memory carries, plus whatever keys the caller added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// What kind of memory: `fact`, `preference`, `conversation`, or a caller's own type.
    pub source_type: String,
    /// How much the memory matters, in `[0, 1]`.
    pub importance: f64,
    /// When the memory was added (RFC 3339, UTC).
    #[serde(with = "timestamp")]
    pub timestamp: DateTime<Utc>,
    /// Keywords the memory is about.
    #[serde(default)]
    pub topics: Vec<String>,
    /// The caller's own keys, kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Metadata {
    /// Metadata of a memory of `source_type` added now, with no topics or keys of its own.
    pub fn new(source_type: impl Into<String>, importance: f64) -> Self {
        Metadata {
            source_type: source_type.into(),
            importance,
            timestamp: timestamp::now(),
            topics: Vec::new(),
            extra: Map::new(),
        }
    }

    /// The value of `key` as JSON, looking at the fixed fields first, then the caller's keys.
    pub fn field(&self, key: &str) -> Option<Value> {
        match key {
            "source_type" => Some(Value::String(self.source_type.clone())),
            "importance" => serde_json::Number::from_f64(self.importance).map(Value::Number),
            "timestamp" => Some(Value::String(timestamp::format(&self.timestamp))),
            "topics" => Some(Value::Array(
                self.topics.iter().cloned().map(Value::String).collect(),
            )),
            other => self.extra.get(other).cloned(),
        }
    }
}

impl Memory {
    /// A memory of user `default` with no agent or session.
    pub fn new(id: MemoryId, content: impl Into<String>, metadata: Metadata) -> Self {
        Memory {
            id,
            content: content.into(),
            user_id: default_id(),
            agent_id: None,
            session_id: None,
            tenant: default_id(),
            metadata,
            slot: None,
            superseded_by: None,
            expires_at: None,
            updated_at: None,
            source_turns: Vec::new(),
            changed_by: By::Api,
        }
    }

    /// When the memory last changed: its update time, else when it was added.
    pub fn changed_at(&self) -> DateTime<Utc> {
        self.updated_at.unwrap_or(self.metadata.timestamp)
    }

    /// Whether the memory has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The same memory placed in `scope`: its tenant, user, and agent and session when given.
    pub fn in_scope(mut self, scope: &crate::scope::Scope) -> Self {
        self.tenant = scope.tenant().to_owned();
        self.user_id = scope.user_id().to_owned();
        self.agent_id = scope.agent_id().map(str::to_owned);
        self.session_id = scope.session_id().map(str::to_owned);
        self
    }
}

/// A memory together with its embedding, as backends store it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRecord {
    /// The memory.
    pub memory: Memory,
    /// Its embedding, L2-normalised, of the embedder's `dims`.
    pub embedding: Vec<f32>,
}

/// A memory found by a search, with its cosine similarity to the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredMemory {
    /// The memory's id.
    pub id: MemoryId,
    /// The memory's text.
    pub content: String,
    /// The user it belongs to.
    #[serde(default = "default_id")]
    pub user_id: String,
    /// Its agent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Its session, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The memory's metadata.
    pub metadata: Metadata,
    /// Cosine similarity to the query, in `[-1, 1]`.
    pub similarity: f32,
    /// The ranking score: the similarity for vector search, normalised BM25 for lexical search,
    /// the fused score of `search.fusion` for hybrid search, plus the importance and recency
    /// parts when `[search]` weights them.
    pub score: f32,
    /// Its slot, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// The memory that replaced it (only with `include_superseded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<MemoryId>,
    /// When it expires, if ever.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "timestamp::option"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    /// When it last changed after it was added.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "timestamp::option"
    )]
    pub updated_at: Option<DateTime<Utc>>,
    /// The parts of `score`, when the search asked for `explain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
}

/// The weighted parts of a search score (SPEC §10): `score = relevance + importance + recency`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Explain {
    /// What the search mode ranked by (cosine, normalised BM25 or their fusion).
    pub relevance: f32,
    /// `importance_weight · importance`.
    pub importance: f32,
    /// `recency_weight · 0.5^(age_h / recency_half_life_h)`.
    pub recency: f32,
}

impl ScoredMemory {
    /// Pairs `memory` with its `similarity` (which is also its score).
    pub fn new(memory: Memory, similarity: f32) -> Self {
        ScoredMemory {
            id: memory.id,
            content: memory.content,
            user_id: memory.user_id,
            agent_id: memory.agent_id,
            session_id: memory.session_id,
            metadata: memory.metadata,
            similarity,
            score: similarity,
            slot: memory.slot,
            superseded_by: memory.superseded_by,
            expires_at: memory.expires_at,
            updated_at: memory.updated_at,
            explain: None,
        }
    }
}

/// Who spoke a conversation turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions to the assistant.
    System,
    /// The person.
    User,
    /// The assistant.
    Assistant,
    /// A tool's output.
    Tool,
}

impl Role {
    /// The role's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(Role::System),
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "tool" => Ok(Role::Tool),
            other => Err(crate::Error::invalid(
                "role",
                format!("`{other}` is not one of system, user, assistant, tool"),
            )),
        }
    }
}

/// One conversation turn in short-term memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Who spoke.
    pub role: Role,
    /// What was said.
    pub content: String,
    /// Position in the session, counting from 0; never reused, even after a clear.
    #[serde(default)]
    pub turn_index: u64,
    /// When the turn was added.
    #[serde(with = "timestamp", default = "timestamp::now")]
    pub timestamp: DateTime<Utc>,
    /// For `tool` turns: the tool's name, which `memory_stats.last_tool_used` reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A memory to add: what callers and the persist extractor produce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMemory {
    /// The text to remember.
    pub content: String,
    /// `fact`, `preference`, `conversation` or the caller's own type.
    #[serde(default = "NewMemory::default_type")]
    pub memory_type: String,
    /// In `[0, 1]`; 0.5 when not given.
    #[serde(default = "NewMemory::default_importance")]
    pub importance: f64,
    /// Caller keys; `topics` here becomes the memory's topics.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// What the memory is about, for superseding (SPEC §10); `None` = no slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// When it expires (RFC 3339).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "timestamp::option"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    /// Seconds from now until it expires; exclusive with `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u64>,
    /// The turns a persisted memory came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_turns: Vec<u64>,
}

impl NewMemory {
    fn default_type() -> String {
        "fact".to_owned()
    }

    fn default_importance() -> f64 {
        0.5
    }

    /// A memory of `memory_type` with default importance and no extra metadata.
    pub fn new(content: impl Into<String>, memory_type: impl Into<String>) -> Self {
        NewMemory {
            content: content.into(),
            memory_type: memory_type.into(),
            importance: Self::default_importance(),
            metadata: Map::new(),
            slot: None,
            expires_at: None,
            ttl_s: None,
            source_turns: Vec::new(),
        }
    }

    /// Sets the slot.
    pub fn slot(mut self, slot: impl Into<String>) -> Self {
        self.slot = Some(slot.into());
        self
    }

    /// Makes the memory expire `seconds` after it is added.
    pub fn ttl(mut self, seconds: u64) -> Self {
        self.ttl_s = Some(seconds);
        self
    }

    /// Sets the importance.
    pub fn importance(mut self, importance: f64) -> Self {
        self.importance = importance;
        self
    }

    /// Sets the topics.
    pub fn topics<I, S>(mut self, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let topics = topics
            .into_iter()
            .map(|t| Value::String(t.into()))
            .collect();
        self.metadata.insert("topics".into(), Value::Array(topics));
        self
    }

    /// Adds one caller metadata key.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// Serde helpers for timestamps: written as RFC 3339 UTC with microseconds; read from RFC 3339 or
/// from the seed's naive ISO form (`2025-04-26T12:34:56.789012`), taken as UTC.
pub mod timestamp {
    use super::*;

    /// The current time at the microsecond precision timestamps are stored with, so a value
    /// survives a round trip through JSON unchanged.
    /// Inside a replicated operation ([`crate::stamp::Stamp`]) this is the operation's time.
    pub fn now() -> DateTime<Utc> {
        crate::stamp::now()
    }

    /// Formats `ts` as RFC 3339 UTC with microseconds.
    pub fn format(ts: &DateTime<Utc>) -> String {
        ts.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// Parses RFC 3339, or a naive ISO 8601 date-time taken as UTC.
    pub fn parse(s: &str) -> Option<DateTime<Utc>> {
        if let Ok(ts) = DateTime::parse_from_rfc3339(s) {
            return Some(ts.with_timezone(&Utc));
        }
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|naive| naive.and_utc())
    }

    /// Serialises with [`format()`].
    pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(ts))
    }

    /// Deserialises with [`parse()`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not an RFC 3339 time")))
    }

    /// The same, for optional timestamps.
    pub mod option {
        use super::*;

        /// Serialises `Some` with [`format()`](super::format), `None` as null.
        pub fn serialize<S: Serializer>(
            ts: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match ts {
                Some(ts) => s.serialize_str(&super::format(ts)),
                None => s.serialize_none(),
            }
        }

        /// Deserialises null as `None`, a string with [`parse()`](super::parse).
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => super::parse(&s).map(Some).ok_or_else(|| {
                    serde::de::Error::custom(format!("`{s}` is not an RFC 3339 time"))
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_with_caller_keys() {
        let json = r#"{"source_type":"fact","importance":0.8,"timestamp":"2025-04-26T12:05:00Z","topics":["user"],"user_id":"u1"}"#;
        let meta: Metadata = serde_json::from_str(json).expect("parse");
        assert_eq!(meta.extra.get("user_id"), Some(&Value::from("u1")));
        assert_eq!(meta.field("user_id"), Some(Value::from("u1")));
        let back = serde_json::to_value(&meta).expect("serialise");
        assert_eq!(back["timestamp"], "2025-04-26T12:05:00.000000Z");
        assert_eq!(back["user_id"], "u1");
    }

    #[test]
    fn seed_naive_timestamps_parse_as_utc() {
        let ts = timestamp::parse("2025-04-26T12:34:56.789012").expect("naive");
        assert_eq!(timestamp::format(&ts), "2025-04-26T12:34:56.789012Z");
    }

    #[test]
    fn unknown_role_is_a_named_error() {
        let err = "robot".parse::<Role>().expect_err("robot is no role");
        assert!(err.to_string().contains("`role`"), "{err}");
    }
}
