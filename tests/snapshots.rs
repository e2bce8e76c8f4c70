//! Snapshot round trips through the `fs` store, all-or-nothing apply, automatic snapshots.

mod common;

use coda::{MemoryStats, NewMemory, Role};
use serde_json::Value;

fn without_duration(mut stats: MemoryStats) -> MemoryStats {
    stats.short_term.session_duration = 0.0;
    stats
}

fn seed_state(coda: &coda::MemoryManager) {
    coda.add_turn(Role::System, "You are Coda.").expect("turn");
    coda.add_turn(Role::User, "Hello, my name is Alice.")
        .expect("turn");
    coda.add_turn(Role::Assistant, "I'm Coda, your voice assistant.")
        .expect("turn");
    coda.add_turn_named(Role::Tool, "{\"temp\": 21}", Some("weather"))
        .expect("tool turn");
    coda.persist_short_term_memory().expect("persist");
    coda.add_memory(
        NewMemory::new("The user prefers brief responses.", "preference")
            .importance(0.7)
            .topics(["user", "preference", "communication"])
            .with("channel", "u1"),
    )
    .expect("memory");
}

#[test]
fn create_save_clear_load_apply_restores_identical_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, sink) = common::manager_in(dir.path(), "");
    seed_state(&coda);
    let conversation = coda.conversation();
    let memories = coda.list_memories(0, 100, None).expect("list");
    let stats = coda.stats();
    assert_eq!(stats.last_tool_used.as_deref(), Some("weather"));

    let meta = coda.create_snapshot().expect("create");
    let location = coda.save_snapshot(&meta.snapshot_id).expect("save");
    assert!(
        location.ends_with(&format!("{}.json", meta.snapshot_id)),
        "{location}"
    );

    coda.clear_short_term();
    for memory in &memories {
        coda.delete_memory(memory.id).expect("delete");
    }
    coda.add_memory(NewMemory::new("Something unrelated.", "fact"))
        .expect("add");
    assert_ne!(coda.list_memories(0, 100, None).expect("list"), memories);

    let loaded = coda.load_snapshot(&location).expect("load");
    assert_eq!(loaded, meta.snapshot_id);
    coda.apply_snapshot(&loaded).expect("apply");

    assert_eq!(coda.conversation(), conversation);
    assert_eq!(coda.list_memories(0, 100, None).expect("list"), memories);
    assert_eq!(without_duration(coda.stats()), without_duration(stats));
    let found = coda
        .get_memories("brief responses", 1, 0.0, None)
        .expect("search");
    assert_eq!(found[0].content, "The user prefers brief responses.");

    let actions: Vec<String> = sink
        .values()
        .into_iter()
        .filter(|e| e["type"] == "memory_snapshot")
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(actions, ["create", "save", "load", "apply"]);
}

#[test]
fn the_saved_file_has_the_seed_structure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, _sink) = common::manager_in(dir.path(), "");
    seed_state(&coda);
    let meta = coda.create_snapshot().expect("create");
    let location = coda.save_snapshot(&meta.snapshot_id).expect("save");
    let file: Value =
        serde_json::from_slice(&std::fs::read(&location).expect("read")).expect("json");
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&file),
        [
            "long_term",
            "memory_stats",
            "scope",
            "short_term",
            "snapshot_id",
            "timestamp"
        ],
        "the seed's structure plus `scope` (SPEC §8)"
    );
    assert_eq!(
        file["scope"],
        serde_json::json!({"user_id": "default", "session_id": "default"})
    );
    assert_eq!(
        keys(&file["short_term"]),
        ["session_start", "turn_count", "turns"]
    );
    assert_eq!(
        keys(&file["long_term"]),
        ["memories", "memory_count", "topics"]
    );
    assert_eq!(
        keys(&file["memory_stats"]),
        ["last_tool_used", "long_term", "recent_topics", "short_term"]
    );
    assert_eq!(
        keys(&file["memory_stats"]["long_term"]),
        [
            "average_importance",
            "newest_memory",
            "oldest_memory",
            "source_types",
            "topics",
            "total_memories",
            "user_summary_keys"
        ]
    );
    let (_, memory) = file["long_term"]["memories"]
        .as_object()
        .expect("memories")
        .iter()
        .next()
        .expect("one");
    // The seed's four keys, and only the lifecycle keys SPEC §10 adds (each absent when unset;
    // a persisted memory names its source turns).
    let lifecycle = [
        "expires_at",
        "slot",
        "source_turns",
        "superseded_by",
        "updated_at",
    ];
    let mut seed = keys(memory);
    seed.retain(|k| !lifecycle.contains(&k.as_str()));
    assert_eq!(seed, ["content", "importance", "metadata", "timestamp"]);
    assert!(
        memory["metadata"]["source_type"].is_string() && memory["metadata"]["topics"].is_array()
    );
    let id = file["snapshot_id"].as_str().expect("id");
    assert!(coda::snapshot::is_snapshot_id(id), "{id}");
}

#[test]
fn a_bad_snapshot_applies_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, _sink) = common::manager_in(dir.path(), "");
    seed_state(&coda);
    let before = (
        coda.conversation(),
        coda.list_memories(0, 100, None).expect("list"),
    );
    let meta = coda.create_snapshot().expect("create");
    let location = coda.save_snapshot(&meta.snapshot_id).expect("save");
    let mut file: Value =
        serde_json::from_slice(&std::fs::read(&location).expect("read")).expect("json");
    let memories = file["long_term"]["memories"]
        .as_object_mut()
        .expect("memories");
    let last = memories.keys().next_back().cloned().expect("a memory");
    memories[&last]["importance"] = Value::from(7.5);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&file).expect("json")).expect("write");

    coda.add_turn(Role::User, "one more turn").expect("turn");
    let before = (coda.conversation(), before.1);
    let id = coda
        .load_snapshot(&bad.to_string_lossy())
        .expect("structurally valid file loads");
    let err = coda
        .apply_snapshot(&id)
        .expect_err("importance out of range");
    assert!(err.to_string().contains("importance"), "{err}");
    assert_eq!(
        (
            coda.conversation(),
            coda.list_memories(0, 100, None).expect("list")
        ),
        before
    );

    std::fs::write(&bad, b"{\"snapshot_id\": 3").expect("write");
    let err = coda
        .load_snapshot(&bad.to_string_lossy())
        .expect_err("corrupt");
    assert!(err.to_string().contains("bad.json"), "{err}");
}

#[test]
fn seed_snapshots_apply_with_derived_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, _sink) = common::manager_in(dir.path(), "");
    let seed = r#"{"snapshot_id":"snapshot_20250426_123456_abcd1234","timestamp":"2025-04-26T12:34:56.789012",
      "short_term":{"turns":[{"role":"system","content":"You are Coda."},{"role":"user","content":"Hello, who are you?"},
      {"role":"assistant","content":"I'm Coda, your voice assistant."}],"turn_count":3,"session_start":"2025-04-26T12:00:00.000000"},
      "long_term":{"memories":{"memory_1":{"content":"The user's name is Alice.","timestamp":"2025-04-26T12:05:00.000000",
      "importance":0.8,"metadata":{"source_type":"fact","topics":["user","name"]}}},"topics":["user","name"],"memory_count":1},
      "memory_stats":{"short_term":{"turn_count":3,"session_duration":2100.0},"long_term":{"total_memories":1,
      "source_types":{"fact":1},"average_importance":0.8,"oldest_memory":"2025-04-26T12:05:00.000000",
      "newest_memory":"2025-04-26T12:05:00.000000","topics":2,"user_summary_keys":[]},"recent_topics":["user","name"],"last_tool_used":null}}"#;
    let path = dir.path().join("seed.json");
    std::fs::write(&path, seed).expect("write");
    let id = coda.load_snapshot(&path.to_string_lossy()).expect("load");
    let loaded = coda.get_snapshot(&id).expect("loaded");
    assert_eq!(
        (
            loaded.scope.user_id.as_str(),
            loaded.scope.session_id.as_str()
        ),
        ("default", "default"),
        "a snapshot from before scopes is user and session `default`'s"
    );
    assert!(
        coda.user("alice")
            .expect("scope")
            .get_snapshot(&id)
            .is_err(),
        "and only theirs"
    );
    coda.apply_snapshot(&id).expect("apply");
    let turns = coda.conversation().turns;
    assert_eq!(
        turns.iter().map(|t| t.turn_index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let memories = coda.list_memories(0, 10, None).expect("list");
    assert_eq!(memories[0].metadata.extra["legacy_id"], "memory_1");
    assert_eq!(coda.stats().long_term.total_memories, 1);
    let next = coda.add_turn(Role::User, "next").expect("turn");
    assert_eq!(next.turn_index, 3);
    assert!(memories.iter().all(|m| m.user_id == "default"));
}

#[test]
fn automatic_snapshots_are_created_and_saved_every_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, sink) = common::manager_in(dir.path(), "");
    coda.enable_auto_snapshot(2).expect("enable");
    for i in 0..5 {
        coda.add_turn(Role::User, &format!("turn {i}"))
            .expect("turn");
    }
    let listed = coda.list_snapshots().expect("list");
    assert_eq!(listed.len(), 2, "turns 2 and 4");
    assert!(
        listed.iter().all(|s| s.location.is_some()),
        "automatic snapshots are saved"
    );
    assert_eq!(listed[0].meta.short_term_turns, 4, "newest first");
    coda.disable_auto_snapshot();
    coda.add_turn(Role::User, "turn 5").expect("turn");
    coda.add_turn(Role::User, "turn 6").expect("turn");
    assert_eq!(coda.list_snapshots().expect("list").len(), 2);
    let saves = sink
        .values()
        .into_iter()
        .filter(|e| e["type"] == "memory_snapshot" && e["action"] == "save")
        .count();
    assert_eq!(saves, 2);

    let id = listed[1].meta.snapshot_id.clone();
    coda.delete_snapshot(&id).expect("delete");
    assert_eq!(coda.list_snapshots().expect("list").len(), 1);
    assert!(matches!(
        coda.delete_snapshot(&id),
        Err(coda::Error::NotFound { .. })
    ));
}

#[test]
fn auto_snapshot_config_and_seed_aliases_take_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\nauto_snapshot = true\nsnapshot_interval = 1\nsnapshot_dir = \"{}\"",
        dir.path().join("seed-dir").display()
    );
    let config = coda::Config::from_toml_str(&toml).expect("aliases");
    let coda = coda::MemoryManager::builder(config)
        .configured_sinks(false)
        .build()
        .expect("open");
    coda.add_turn(Role::User, "hello").expect("turn");
    let listed = coda.list_snapshots().expect("list");
    assert_eq!(listed.len(), 1);
    let location = listed[0].location.clone().expect("saved");
    assert!(location.contains("seed-dir"), "{location}");
}
