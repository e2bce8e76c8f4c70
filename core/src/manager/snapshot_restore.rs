//! Turning a snapshot's entries back into memories and a session.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::{Memory, Metadata};
use crate::scope::Scope;
use crate::session::{SessionInfo, SessionState};
use crate::snapshot::{Snapshot, SnapshotMemory};
use crate::{Error, Result};

/// Namespace for ids derived from non-uuid snapshot keys (the seed's `memory_1`).
const LEGACY_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c0d_a5ee_d1d0_4e5c_9a3b_0c0d_a000_0001);

/// The session as a snapshot restores it: its window and counters, owned as before.
pub(super) fn restored_session(
    snapshot: &Snapshot,
    target: &Scope,
    existing: Option<&SessionInfo>,
) -> SessionState {
    let short = &snapshot.short_term;
    let mut turns: std::collections::VecDeque<_> = short.turns.iter().cloned().collect();
    // Seed snapshots carry no turn indexes: number them so they end at turn_count.
    if turns.len() > 1 && turns.iter().all(|t| t.turn_index == 0) {
        let first = short.turn_count.saturating_sub(turns.len() as u64);
        for (i, turn) in turns.iter_mut().enumerate() {
            turn.turn_index = first + i as u64;
        }
    }
    let turn_count = short
        .turn_count
        .max(turns.back().map_or(0, |t| t.turn_index + 1));
    let mut info = SessionInfo::new(
        target.owner(),
        target.session_or_default(),
        existing.and_then(|i| i.agent_id.as_deref()),
        short.session_start,
    );
    info.turn_count = turn_count;
    info.persisted_upto = turn_count;
    info.last_turn_at = turns.back().map(|t| t.timestamp);
    info.last_tool_used = snapshot.memory_stats.last_tool_used.clone();
    info.auto_snapshots = existing.map_or(0, |i| i.auto_snapshots);
    SessionState { info, turns }
}

/// The memory id a snapshot key stands for: the key itself when it is a uuid, else a stable id
/// derived from it (the seed's `memory_1`).
pub(super) fn memory_id(key: &str) -> Uuid {
    Uuid::parse_str(key).unwrap_or_else(|_| Uuid::new_v5(&LEGACY_ID_NAMESPACE, key.as_bytes()))
}

/// A memory as restored from a snapshot entry, owned by `target`'s user.
pub(super) fn memory_from_snapshot(
    key: &str,
    stored: &SnapshotMemory,
    target: &Scope,
) -> Result<Memory> {
    let field = |name: &str| format!("long_term.memories.{key}.{name}");
    let mut extra: Map<String, Value> = stored.metadata.clone();
    // The snapshot's scope decides the owner; a `user_id` key is never trusted.
    extra.remove("user_id");
    let mut scope_key = |name: &str| -> Result<Option<String>> {
        match extra.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(id)) => {
                crate::scope::check_id(&field(&format!("metadata.{name}")), &id)?;
                Ok(Some(id))
            }
            Some(_) => Err(Error::invalid(
                field(&format!("metadata.{name}")),
                "must be a string",
            )),
        }
    };
    let agent_id = scope_key("agent_id")?;
    let session_id = scope_key("session_id")?;
    let source_type = match extra.remove("source_type") {
        Some(Value::String(s)) => s,
        None => "fact".to_owned(),
        Some(_) => {
            return Err(Error::invalid(
                field("metadata.source_type"),
                "must be a string",
            ))
        }
    };
    let topics = match extra.remove("topics") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|t| match t {
                Value::String(s) => Ok(s),
                _ => Err(Error::invalid(field("metadata.topics"), "must be strings")),
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(Error::invalid(field("metadata.topics"), "must be an array")),
    };
    if !(0.0..=1.0).contains(&stored.importance) {
        return Err(Error::invalid(field("importance"), "is outside [0, 1]"));
    }
    let id = memory_id(key);
    if Uuid::parse_str(key).is_err() {
        extra.insert("legacy_id".into(), Value::String(key.to_owned()));
    }
    let metadata = Metadata {
        source_type,
        importance: stored.importance,
        timestamp: stored.timestamp,
        topics,
        extra,
    };
    let mut memory =
        Memory::new(id, stored.content.clone(), metadata).in_scope(&target.whole_user());
    memory.agent_id = agent_id;
    memory.session_id = session_id;
    let lifecycle = stored.lifecycle.clone();
    if let Some(slot) = &lifecycle.slot {
        crate::scope::check_id(&field("slot"), slot)?;
    }
    lifecycle.apply_to(&mut memory);
    Ok(memory)
}
