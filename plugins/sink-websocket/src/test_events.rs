//! Real events for unit tests, published on a bus of their own so they carry real `seq`s,
//! scopes and JSON.

use coda_core::{Dedup, EventBody, EventBus, EventScope, EventType, Metadata, Role};

use crate::queue::Wire;

/// A body of type `event_type` (`n` keeps bodies distinct).
fn body(event_type: EventType, n: u64) -> EventBody {
    let metadata = || Metadata::new("fact", 0.5);
    match event_type {
        EventType::MemoryStore => EventBody::MemoryStore {
            memory_id: uuid::Uuid::new_v4(),
            content: format!("memory {n}"),
            metadata: metadata(),
        },
        EventType::MemoryRetrieve => EventBody::MemoryRetrieve {
            query: format!("query {n}"),
            results: Vec::new(),
        },
        EventType::MemoryUpdate => EventBody::MemoryUpdate {
            memory_id: uuid::Uuid::new_v4(),
            content: format!("memory {n}"),
            metadata: metadata(),
        },
        EventType::MemoryDelete => EventBody::MemoryDelete {
            memory_id: uuid::Uuid::new_v4(),
            reason: None,
        },
        EventType::ConversationTurn => EventBody::ConversationTurn {
            role: Role::User,
            content: format!("turn {n}"),
            turn_index: n,
        },
        EventType::MemoryPersist => EventBody::MemoryPersist {
            turn_count: n,
            memories_added: 0,
        },
        EventType::MemoryClear => EventBody::MemoryClear {},
        EventType::MemorySnapshot => EventBody::MemorySnapshot {
            action: coda_core::SnapshotAction::Create,
            snapshot_id: format!("snapshot {n}"),
            metadata: serde_json::Value::Null,
        },
        EventType::SessionDelete => EventBody::SessionDelete {},
        EventType::UserDelete => EventBody::UserDelete {
            memories_deleted: 0,
            sessions_deleted: 0,
            snapshots_deleted: 0,
        },
    }
}

/// Real events of these types and scopes, with `seq` 1, 2, ...
pub(crate) fn events_in(of: &[(EventType, &EventScope)]) -> Vec<Wire> {
    let bus = EventBus::new(16, 0, None);
    of.iter()
        .zip(1..)
        .map(|(&(event_type, scope), n)| {
            let event = bus
                .emit_in(scope, &body(event_type, n), Dedup::Skip)
                .expect("published");
            Wire::new(&event)
        })
        .collect()
}

/// Real events of these types for user `default`, with `seq` 1, 2, ...
pub(crate) fn events(types: &[EventType]) -> Vec<Wire> {
    let scope = EventScope::default_user();
    let of: Vec<_> = types.iter().map(|&t| (t, &scope)).collect();
    events_in(&of)
}
