//! Conformance for `SnapshotStore`.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use indexmap::IndexMap;

use crate::model::{Role, Turn};
use crate::snapshot::{
    new_snapshot_id, LongTermState, ShortTermState, Snapshot, SnapshotMemory, SnapshotStore,
};
use crate::stats::{LongTermStats, MemoryStats, ShortTermStats};

/// A small but complete snapshot taken at `at`.
pub fn sample_snapshot(at: DateTime<Utc>) -> Snapshot {
    use chrono::SubsecRound;
    let at = at.trunc_subsecs(6);
    let mut memories = IndexMap::new();
    let mut metadata = serde_json::Map::new();
    metadata.insert("source_type".into(), "fact".into());
    metadata.insert("topics".into(), serde_json::json!(["user", "name"]));
    memories.insert(
        uuid::Uuid::new_v4().to_string(),
        SnapshotMemory {
            content: "The user's name is Alice.".into(),
            timestamp: at,
            importance: 0.8,
            metadata,
            lifecycle: Default::default(),
        },
    );
    Snapshot {
        snapshot_id: new_snapshot_id(at),
        timestamp: at,
        short_term: ShortTermState {
            turns: vec![Turn {
                role: Role::User,
                content: "Hello, who are you?".into(),
                turn_index: 0,
                timestamp: at,
                name: None,
            }],
            turn_count: 1,
            session_start: at,
        },
        long_term: LongTermState {
            memories,
            topics: vec!["name".into(), "user".into()],
            memory_count: 1,
        },
        scope: Default::default(),
        memory_stats: MemoryStats {
            short_term: ShortTermStats {
                turn_count: 1,
                session_duration: 1.5,
            },
            long_term: LongTermStats {
                total_memories: 1,
                source_types: [("fact".to_owned(), 1)].into(),
                average_importance: 0.8,
                oldest_memory: Some(at),
                newest_memory: Some(at),
                topics: 2,
                user_summary_keys: vec!["name".into()],
            },
            recent_topics: vec!["user".into(), "name".into()],
            last_tool_used: None,
        },
    }
}

/// Runs every rule of the `SnapshotStore` contract against a fresh, empty store from `make`.
pub fn store_conformance(make: &dyn Fn() -> Arc<dyn SnapshotStore>) {
    let store = make();
    assert!(
        store.list().expect("list").is_empty(),
        "a new store is empty"
    );
    let base = crate::model::timestamp::now() - Duration::hours(1);
    let snapshots: Vec<_> = (0..3)
        .map(|i| sample_snapshot(base + Duration::minutes(i)))
        .collect();
    let mut locations = Vec::new();
    for s in &snapshots {
        locations.push(store.save(s).expect("save"));
    }
    for (s, location) in snapshots.iter().zip(&locations) {
        assert_eq!(
            &store.load(location).expect("load"),
            s,
            "load returns what was saved"
        );
    }
    let listed = store.list().expect("list");
    let ids: Vec<_> = listed.iter().map(|s| s.meta.snapshot_id.clone()).collect();
    let newest_first: Vec<_> = snapshots
        .iter()
        .rev()
        .map(|s| s.snapshot_id.clone())
        .collect();
    assert_eq!(ids, newest_first, "list is newest first");
    assert_eq!(
        listed[0].meta,
        snapshots[2].meta(),
        "list carries the seed's metadata"
    );
    assert_eq!(listed[0].location, locations[2]);

    let mut changed = snapshots[0].clone();
    changed.short_term.turn_count = 99;
    let location = store.save(&changed).expect("save again");
    assert_eq!(
        store.load(&location).expect("reload").short_term.turn_count,
        99
    );
    assert_eq!(
        store.list().expect("list").len(),
        3,
        "saving an id again replaces it"
    );

    assert!(store.delete(&snapshots[1].snapshot_id).expect("delete"));
    assert!(!store
        .delete(&snapshots[1].snapshot_id)
        .expect("delete again"));
    assert!(
        store.load(&locations[1]).is_err(),
        "a deleted snapshot no longer loads"
    );
    assert_eq!(store.list().expect("list").len(), 2);
    assert!(
        !store.delete("../../etc/passwd").unwrap_or(false),
        "path tricks are refused"
    );
}
