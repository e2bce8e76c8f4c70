//! Comparing two snapshots: memories, turns and topics added, removed or changed, and stats
//! deltas.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use crate::model::Turn;
use crate::snapshot::{Snapshot, SnapshotMemory};

/// What changed from snapshot `from` to snapshot `to`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotDiff {
    /// The earlier side's id (or `current`).
    pub from: String,
    /// The later side's id (or `current`).
    pub to: String,
    /// Long-term memory changes.
    pub memories: MemoryChanges,
    /// Short-term turn changes.
    pub turns: TurnChanges,
    /// Topics that appeared or disappeared.
    pub topics: Changes<String>,
    /// `to` minus `from` for the headline stats.
    pub stats: StatsDelta,
}

/// Memories in `to` only, in `from` only, and in both with a difference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryChanges {
    /// In `to` only.
    pub added: Vec<DiffMemory>,
    /// In `from` only.
    pub removed: Vec<DiffMemory>,
    /// In both, with different content, importance or metadata.
    pub changed: Vec<ChangedMemory>,
}

/// A memory as a diff shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffMemory {
    /// The memory's id (the snapshot's key).
    pub id: String,
    /// The memory itself.
    #[serde(flatten)]
    pub memory: SnapshotMemory,
}

/// A memory in both snapshots, before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangedMemory {
    /// The memory's id.
    pub id: String,
    /// As in `from`.
    pub before: SnapshotMemory,
    /// As in `to`.
    pub after: SnapshotMemory,
}

/// Turns in `to` only and in `from` only (matched by index, role and content).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnChanges {
    /// In `to` only.
    pub added: Vec<Turn>,
    /// In `from` only.
    pub removed: Vec<Turn>,
}

/// Items added and removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changes<T> {
    /// In `to` only.
    pub added: Vec<T>,
    /// In `from` only.
    pub removed: Vec<T>,
}

/// Differences of the headline numbers, `to - from`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsDelta {
    /// Change in stored memories.
    pub total_memories: i64,
    /// Change in session turns.
    pub turn_count: i64,
    /// Change in turns held in the window.
    pub short_term_turns: i64,
    /// Change in distinct topics.
    pub topics: i64,
    /// Change in mean importance.
    pub average_importance: f64,
    /// Change in memories per source type (only the types that changed).
    pub source_types: BTreeMap<String, i64>,
}

fn signed(a: usize, b: usize) -> i64 {
    b as i64 - a as i64
}

/// Compares `from` with `to`; `from_name`/`to_name` label the sides in the result.
pub fn diff(from: &Snapshot, to: &Snapshot, from_name: &str, to_name: &str) -> SnapshotDiff {
    let (old, new) = (&from.long_term.memories, &to.long_term.memories);
    let entry = |id: &String, m: &SnapshotMemory| DiffMemory {
        id: id.clone(),
        memory: m.clone(),
    };
    let memories = MemoryChanges {
        added: new
            .iter()
            .filter(|(id, _)| !old.contains_key(*id))
            .map(|(id, m)| entry(id, m))
            .collect(),
        removed: old
            .iter()
            .filter(|(id, _)| !new.contains_key(*id))
            .map(|(id, m)| entry(id, m))
            .collect(),
        changed: old
            .iter()
            .filter_map(|(id, before)| {
                let after = new.get(id)?;
                (before != after).then(|| ChangedMemory {
                    id: id.clone(),
                    before: before.clone(),
                    after: after.clone(),
                })
            })
            .collect(),
    };

    let key = |t: &Turn| (t.turn_index, t.role, t.content.clone());
    let old_turns: HashSet<_> = from.short_term.turns.iter().map(key).collect();
    let new_turns: HashSet<_> = to.short_term.turns.iter().map(key).collect();
    let turns = TurnChanges {
        added: to
            .short_term
            .turns
            .iter()
            .filter(|t| !old_turns.contains(&key(t)))
            .cloned()
            .collect(),
        removed: from
            .short_term
            .turns
            .iter()
            .filter(|t| !new_turns.contains(&key(t)))
            .cloned()
            .collect(),
    };

    let old_topics: BTreeSet<&String> = from.long_term.topics.iter().collect();
    let new_topics: BTreeSet<&String> = to.long_term.topics.iter().collect();
    let topics = Changes {
        added: new_topics
            .difference(&old_topics)
            .map(|t| (*t).clone())
            .collect(),
        removed: old_topics
            .difference(&new_topics)
            .map(|t| (*t).clone())
            .collect(),
    };

    let (a, b) = (&from.memory_stats, &to.memory_stats);
    let mut source_types = BTreeMap::new();
    let kinds: BTreeSet<&String> = a
        .long_term
        .source_types
        .keys()
        .chain(b.long_term.source_types.keys())
        .collect();
    for kind in kinds {
        let before = a.long_term.source_types.get(kind).copied().unwrap_or(0) as i64;
        let after = b.long_term.source_types.get(kind).copied().unwrap_or(0) as i64;
        if before != after {
            source_types.insert(kind.clone(), after - before);
        }
    }
    let stats = StatsDelta {
        total_memories: signed(old.len(), new.len()),
        turn_count: to.short_term.turn_count as i64 - from.short_term.turn_count as i64,
        short_term_turns: signed(from.short_term.turns.len(), to.short_term.turns.len()),
        topics: signed(from.long_term.topics.len(), to.long_term.topics.len()),
        average_importance: ((b.long_term.average_importance - a.long_term.average_importance)
            * 1e9)
            .round()
            / 1e9,
        source_types,
    };

    SnapshotDiff {
        from: from_name.to_owned(),
        to: to_name.to_owned(),
        memories,
        turns,
        topics,
        stats,
    }
}
