//! Every operation reaches the sinks as the event SPEC §4 describes, field by field.

mod common;

use std::collections::BTreeSet;

use coda::{Filter, MemoryPatch, NewMemory, Role};
use serde_json::{json, Map, Value};

/// Checks one event: exactly the envelope (with its scope: `user_id` always, `session_id` and
/// `agent_id` where they apply) plus `fields`, with these values where given.
fn check(event: &Map<String, Value>, kind: &str, fields: &[(&str, Option<Value>)]) {
    let mut want: BTreeSet<&str> = ["type", "seq", "event_id", "timestamp", "user_id"].into();
    want.extend(fields.iter().map(|(k, _)| *k));
    for optional in ["session_id", "agent_id"] {
        if let Some(id) = event.get(optional) {
            assert!(id.is_string(), "{kind}.{optional}: {id}");
            want.insert(optional);
        }
    }
    assert_eq!(event["user_id"], "default", "{kind} carries its user");
    let got: BTreeSet<&str> = event.keys().map(String::as_str).collect();
    assert_eq!(got, want, "fields of {kind}: {event:?}");
    assert_eq!(event["type"], kind);
    assert!(
        event["seq"].as_u64().is_some_and(|s| s > 0),
        "seq: {event:?}"
    );
    let id = event["event_id"].as_str().expect("event_id is a string");
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "event_id is a uuid: {id}"
    );
    let ts = event["timestamp"].as_str().expect("timestamp is a string");
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'),
        "timestamp is RFC 3339 UTC: {ts}"
    );
    for (key, value) in fields {
        if let Some(value) = value {
            assert_eq!(&event[*key], value, "{kind}.{key}");
        }
    }
}

#[test]
fn every_operation_publishes_its_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, sink) = common::manager_in(dir.path(), "");

    let turn = coda
        .add_turn(Role::User, "Hi, my name is Alice.")
        .expect("turn");
    coda.add_turn(Role::Assistant, "Hello Alice!")
        .expect("turn");
    let memory = coda
        .add_memory(
            NewMemory::new("The user prefers brief responses.", "preference")
                .importance(0.7)
                .topics(["user", "preference"])
                .with("channel", "u1"),
        )
        .expect("memory");
    let found = coda
        .get_memories("brief responses", 5, 0.0, None)
        .expect("search");
    let updated = coda
        .update_memory(
            memory.id,
            MemoryPatch {
                importance: Some(0.9),
                ..Default::default()
            },
        )
        .expect("update");
    let persisted = coda.persist_short_term_memory().expect("persist");
    coda.delete_memory(memory.id).expect("delete");
    coda.clear_short_term();
    let snap = coda.create_snapshot().expect("snapshot");

    let events = sink.values();
    let mut it = events.iter();
    let mut next = || it.next().expect("another event");
    check(
        next(),
        "conversation_turn",
        &[
            ("role", Some(json!("user"))),
            ("content", Some(json!("Hi, my name is Alice."))),
            ("turn_index", Some(json!(turn.turn_index))),
        ],
    );
    check(
        next(),
        "conversation_turn",
        &[
            ("role", Some(json!("assistant"))),
            ("content", None),
            ("turn_index", Some(json!(1))),
        ],
    );
    let store = next();
    check(
        store,
        "memory_store",
        &[
            ("memory_id", Some(json!(memory.id))),
            ("content", Some(json!("The user prefers brief responses."))),
            (
                "metadata",
                Some(serde_json::to_value(&memory.metadata).expect("json")),
            ),
        ],
    );
    let metadata = store["metadata"].as_object().expect("metadata object");
    assert_eq!(metadata["source_type"], "preference");
    assert_eq!(metadata["importance"], 0.7);
    assert_eq!(metadata["topics"], json!(["user", "preference"]));
    assert_eq!(metadata["channel"], "u1");
    assert_eq!(store["user_id"], "default", "events carry their user");
    assert!(metadata["timestamp"].is_string());
    let retrieve = next();
    check(
        retrieve,
        "memory_retrieve",
        &[("query", Some(json!("brief responses"))), ("results", None)],
    );
    let results = retrieve["results"].as_array().expect("results array");
    assert_eq!(results.len(), found.len());
    let first = results[0].as_object().expect("result object");
    let keys: BTreeSet<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "content",
            "id",
            "metadata",
            "score",
            "similarity",
            "user_id"
        ]
        .into()
    );
    assert_eq!(first["id"], json!(memory.id));
    check(
        next(),
        "memory_update",
        &[
            ("memory_id", Some(json!(memory.id))),
            ("content", Some(json!(updated.content))),
            (
                "metadata",
                Some(serde_json::to_value(&updated.metadata).expect("json")),
            ),
        ],
    );
    // Persist adds its memories first (each a memory_store), then reports.
    for _ in 0..persisted.memories_added {
        check(
            next(),
            "memory_store",
            &[("memory_id", None), ("content", None), ("metadata", None)],
        );
    }
    check(
        next(),
        "memory_persist",
        &[
            ("turn_count", Some(json!(2))),
            ("memories_added", Some(json!(persisted.memories_added))),
        ],
    );
    check(
        next(),
        "memory_delete",
        &[("memory_id", Some(json!(memory.id)))],
    );
    check(next(), "memory_clear", &[]);
    let snapshot = next();
    check(
        snapshot,
        "memory_snapshot",
        &[
            ("action", Some(json!("create"))),
            ("snapshot_id", Some(json!(snap.snapshot_id))),
            ("metadata", Some(serde_json::to_value(&snap).expect("json"))),
        ],
    );
    let meta_keys: BTreeSet<&str> = snapshot["metadata"]
        .as_object()
        .expect("metadata")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        meta_keys,
        [
            "long_term_memories",
            "scope",
            "short_term_turns",
            "snapshot_id",
            "timestamp",
            "topics"
        ]
        .into()
    );
    assert_eq!(
        snapshot["metadata"]["scope"],
        json!({"user_id": "default", "session_id": "default"})
    );
    assert!(it.next().is_none(), "no extra events");

    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["seq"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "seq strictly increasing: {seqs:?}"
    );
}

#[test]
fn persist_distils_facts_about_the_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, _sink) = common::manager_in(dir.path(), "");
    coda.add_turn(Role::System, "You are Coda.").expect("turn");
    coda.add_turn(Role::User, "My name is Alice and I live in Paris.")
        .expect("turn");
    coda.add_turn(Role::Assistant, "Nice to meet you, Alice.")
        .expect("turn");
    coda.add_turn(Role::User, "I prefer brief responses.")
        .expect("turn");
    let outcome = coda.persist_short_term_memory().expect("persist");
    let contents: Vec<&str> = outcome
        .memories
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    for want in [
        "The user's name is Alice.",
        "The user lives in Paris.",
        "The user prefers brief responses.",
    ] {
        assert!(contents.contains(&want), "{want:?} in {contents:?}");
    }
    let name = outcome
        .memories
        .iter()
        .find(|m| m.content == "The user's name is Alice.")
        .expect("name fact");
    assert_eq!(name.metadata.source_type, "fact");
    assert!(name.metadata.importance >= 0.8);
    assert!(name.metadata.topics.contains(&"name".to_owned()));
    assert!(outcome
        .memories
        .iter()
        .any(|m| m.metadata.source_type == "conversation"));
    let stats = coda.stats();
    assert_eq!(
        stats.long_term.user_summary_keys,
        ["location", "name", "preferences"]
    );
    // Nothing new since: a second persist adds nothing.
    assert_eq!(
        coda.persist_short_term_memory()
            .expect("persist")
            .memories_added,
        0
    );
    let found = coda
        .get_memories("what is the user's name", 1, 0.0, None)
        .expect("search");
    assert_eq!(found[0].content, "The user's name is Alice.");
}

#[test]
fn persist_interval_and_window_bound_short_term_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = coda::Config::from_toml_str(&format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\nshort_term_max_turns = 3\npersist_interval = 2\n[stores.fs]\ndir = \"{}\"",
        dir.path().display()
    ))
    .expect("config");
    let sink = coda::testkit::CollectingSink::new();
    let coda = coda::MemoryManager::builder(config)
        .configured_sinks(false)
        .sink(sink.clone())
        .build()
        .expect("manager");
    for i in 0..5 {
        coda.add_turn(Role::User, &format!("I like topic{i}"))
            .expect("turn");
    }
    let conversation = coda.conversation();
    assert_eq!(
        conversation.turns.len(),
        3,
        "window holds short_term_max_turns"
    );
    assert_eq!(conversation.turns[0].turn_index, 2);
    assert_eq!(conversation.turn_count, 5);
    let persists = sink
        .values()
        .into_iter()
        .filter(|e| e["type"] == "memory_persist")
        .count();
    assert_eq!(persists, 2, "persist ran every 2 turns");
    let likes = coda
        .list_memories(0, 100, Some(&Filter::source_type("preference")))
        .expect("list");
    assert_eq!(likes.len(), 4, "turns 0..4 persisted once each: {likes:?}");
}

#[test]
fn validation_errors_name_the_field_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, sink) = common::manager_in(dir.path(), "max_content_bytes = 10");
    let cases = [
        (NewMemory::new("", "fact"), "content"),
        (NewMemory::new("far too long content", "fact"), "content"),
        (NewMemory::new("ok", "fact").importance(1.5), "importance"),
        (NewMemory::new("ok", ""), "memory_type"),
        (
            NewMemory::new("ok", "fact").with("topics", 3),
            "metadata.topics",
        ),
        (
            NewMemory::new("ok", "fact").with("importance", 1),
            "metadata.importance",
        ),
    ];
    for (new, field) in cases {
        let err = coda.add_memory(new).expect_err("invalid memory");
        assert!(
            matches!(&err, coda::Error::Invalid { field: f, .. } if f == field),
            "{err}"
        );
    }
    assert!(coda.get_memories("x", 0, 0.0, None).is_err());
    assert!(coda.add_turn(Role::User, "   ").is_err());
    assert_eq!(coda.memory_count().expect("count"), 0);
    assert!(
        sink.events().is_empty(),
        "failed operations publish nothing"
    );
    let missing = uuid::Uuid::new_v4();
    assert!(matches!(
        coda.get_memory(missing),
        Err(coda::Error::NotFound { .. })
    ));
    assert!(matches!(
        coda.delete_memory(missing),
        Err(coda::Error::NotFound { .. })
    ));
}

#[test]
fn filters_apply_to_search_and_listing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, _sink) = common::manager_in(dir.path(), "");
    for (content, kind, importance, user) in [
        ("The user's name is Alice.", "fact", 0.9, "a"),
        ("The user likes jazz.", "preference", 0.6, "a"),
        ("The user's name is Bob.", "fact", 0.3, "b"),
    ] {
        coda.add_memory(
            NewMemory::new(content, kind)
                .importance(importance)
                .with("account", user),
        )
        .expect("add");
    }
    let filter = Filter::parse(&json!({"and": [
        {"source_type": "fact"},
        {"importance": {"gte": 0.5}},
        {"account": {"in": ["a", "c"]}}
    ]}))
    .expect("filter");
    let found = coda
        .get_memories("user name", 10, -1.0, Some(&filter))
        .expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].content, "The user's name is Alice.");
    let listed = coda
        .list_memories(
            0,
            10,
            Some(&Filter::parse(&json!({"not": {"account": "a"}})).expect("f")),
        )
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].content, "The user's name is Bob.");
}

#[test]
fn events_can_be_emitted_from_plain_threads_without_a_runtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, sink) = common::manager_in(dir.path(), "");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let coda = std::sync::Arc::clone(&coda);
            std::thread::spawn(move || {
                for i in 0..25 {
                    coda.add_turn(Role::User, &format!("thread {t} turn {i}"))
                        .expect("turn");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let events = sink.values();
    assert_eq!(events.len(), 100);
    let indexes: Vec<u64> = events
        .iter()
        .map(|e| e["turn_index"].as_u64().unwrap_or(999))
        .collect();
    assert_eq!(
        indexes,
        (0..100).collect::<Vec<_>>(),
        "turn order and seq order agree"
    );
}

#[test]
fn search_modes_rank_by_vector_words_or_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, _sink) = common::manager_in(dir.path(), "");
    let jazz = coda
        .add_memory(NewMemory::new("The user likes jazz.", "preference"))
        .expect("add");
    coda.add_memory(NewMemory::new("Completely unrelated words here.", "fact"))
        .expect("add");
    let vector = coda
        .search_memories("jazz", 5, -1.0, None, Some(coda::SearchMode::Vector))
        .expect("vector");
    assert_eq!(vector.len(), 2, "vector search ranks every memory");
    assert!(vector.iter().all(|h| h.score == h.similarity));
    let lexical = coda
        .search_memories("jazz", 5, -1.0, None, Some(coda::SearchMode::Lexical))
        .expect("lexical");
    assert_eq!(lexical.len(), 1, "lexical search needs a shared word");
    assert_eq!((lexical[0].id, lexical[0].score), (jazz.id, 1.0));
    let hybrid = coda
        .search_memories("jazz", 5, -1.0, None, Some(coda::SearchMode::Hybrid))
        .expect("hybrid");
    assert_eq!(hybrid[0].id, jazz.id);
    // The memory holds the query's one word: the adaptive fusion gives lexical its full weight,
    // a weighted mean with the defaults vector_weight 0.5, lexical_weight 1.0.
    let expected = (0.5 * hybrid[0].similarity + 1.0) / 1.5;
    assert!((hybrid[0].score - expected).abs() < 1e-5, "{:?}", hybrid[0]);
    // The lexical index follows updates and deletes.
    coda.update_memory(
        jazz.id,
        MemoryPatch {
            content: Some("The user likes blues.".into()),
            ..Default::default()
        },
    )
    .expect("update");
    let mode = Some(coda::SearchMode::Lexical);
    assert!(coda
        .search_memories("jazz", 5, -1.0, None, mode)
        .expect("search")
        .is_empty());
    assert_eq!(
        coda.search_memories("blues", 5, -1.0, None, mode)
            .expect("search")
            .len(),
        1
    );
    coda.delete_memory(jazz.id).expect("delete");
    assert!(coda
        .search_memories("blues", 5, -1.0, None, mode)
        .expect("search")
        .is_empty());
}
