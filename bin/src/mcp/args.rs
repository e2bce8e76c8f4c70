//! The tools' arguments: each derives the JSON Schema `tools/list` gives and is parsed as the
//! `/api/v1` body it becomes, so an unknown field or a wrong type is refused by name.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A field that is present, null or not, as `Some`: `expires_at: null` removes an expiry,
/// while an absent `expires_at` leaves it.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// The §8 scope ids every tool takes.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeArgs {
    /// Whose memories and sessions (1–128 bytes of `[A-Za-z0-9._:@-]`; default `default`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Only this agent's (omitted: any agent).
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Only this session's (omitted: any session; the turn tools default to `default`).
    #[serde(default)]
    pub session_id: Option<String>,
}

/// `add_memory`: what `POST /api/v1/memories` takes.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemoryArgs {
    /// The memory's text.
    pub content: String,
    /// Its source type (default `fact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_type: Option<String>,
    /// Its importance, 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance: Option<f64>,
    /// Free-form metadata (scope keys are reserved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// What it is about, for superseding an older memory of the same slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// When it expires (RFC 3339, e.g. `2030-01-01T00:00:00Z`); exclusive with `ttl_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: Option<String>,
    /// Seconds until it expires; exclusive with `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u64>,
    /// Whose memory (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The agent it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The session it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// `search_memories`: what `POST /api/v1/memories/search` takes.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// What to look for.
    pub query: String,
    /// At most this many results (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Drop results scoring below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_similarity: Option<f32>,
    /// A filter as `POST /memories/search` takes it (SPEC §6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    /// `vector`, `lexical` or `hybrid` (default: the server's `search.mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Superseded memories too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_superseded: Option<bool>,
    /// Expired memories too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_expired: Option<bool>,
    /// Each result says the parts of its score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<bool>,
    /// Whose memories (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Only this agent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Only this session's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// `list_memories`: what `GET /api/v1/memories` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// At most this many (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Skip this many.
    #[serde(default)]
    pub offset: Option<usize>,
    /// Only this source type.
    #[serde(default, rename = "type")]
    pub memory_type: Option<String>,
    /// Superseded memories too.
    #[serde(default)]
    pub include_superseded: Option<bool>,
    /// Expired memories too.
    #[serde(default)]
    pub include_expired: Option<bool>,
    /// Whose memories (default `default`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Only this agent's.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Only this session's.
    #[serde(default)]
    pub session_id: Option<String>,
}

/// `get_memory`, `delete_memory`, `memory_history`: one memory by id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryArgs {
    /// The memory's id.
    pub id: String,
    /// The user it belongs to (default `default`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// The agent it must belong to.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The session it must belong to.
    #[serde(default)]
    pub session_id: Option<String>,
}

/// `update_memory`: an id and what `PATCH /api/v1/memories/{id}` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// The memory's id.
    pub id: String,
    /// New text (re-embedded).
    #[serde(default)]
    pub content: Option<String>,
    /// New source type.
    #[serde(default)]
    pub memory_type: Option<String>,
    /// New importance.
    #[serde(default)]
    pub importance: Option<f64>,
    /// Keys to set; a null value removes the key.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// A new expiry time (RFC 3339); `null` removes the expiry. Exclusive with `ttl_s`.
    #[serde(default, deserialize_with = "present")]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: Option<Option<String>>,
    /// Expire this many seconds from now; exclusive with `expires_at`.
    #[serde(default)]
    pub ttl_s: Option<u64>,
    /// The user it belongs to (default `default`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// The agent it must belong to.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The session it must belong to.
    #[serde(default)]
    pub session_id: Option<String>,
}

/// `add_turn`: a turn for a session (`POST /api/v1/sessions/{sid}/turns`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnArgs {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// What was said.
    pub content: String,
    /// For `tool` turns, the tool's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The session's user (fixed by its first turn).
    #[serde(default)]
    pub user_id: Option<String>,
    /// The session's agent (fixed by its first turn).
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The session (default `default`).
    #[serde(default)]
    pub session_id: Option<String>,
}

/// `create_snapshot`: what `POST /api/v1/snapshots` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotArgs {
    /// Also save it to the snapshot store.
    #[serde(default)]
    pub save: Option<bool>,
    /// Whose memories to capture (default `default`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Snapshots take no agent; given, it is refused by name.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Which of the user's sessions to capture (default `default`).
    #[serde(default)]
    pub session_id: Option<String>,
}
