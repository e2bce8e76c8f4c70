//! Snapshot retention, prune, filtering, diff and the compressed, encrypted store, through the
//! manager.

mod common;

use std::sync::Arc;

use coda::testkit::CollectingSink;
use coda::{Config, MemoryManager, MemoryPatch, NewMemory, PrunePolicy, Role, SnapshotFilter};

fn open(toml: &str) -> (Arc<MemoryManager>, Arc<CollectingSink>) {
    let config = Config::from_toml_str(toml).expect("config");
    let sink = CollectingSink::new();
    let coda = MemoryManager::builder(config)
        .configured_sinks(false)
        .sink(sink.clone())
        .build()
        .expect("manager");
    (coda, sink)
}

fn snapshot_actions(sink: &CollectingSink) -> Vec<String> {
    sink.values()
        .into_iter()
        .filter(|e| e["type"] == "memory_snapshot")
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn retention_applies_after_automatic_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, sink) = open(&format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[snapshots]\nauto = true\ninterval = 1\nretain = 2\n[stores.fs]\ndir = \"{}\"",
        dir.path().display()
    ));
    for i in 0..5 {
        coda.add_turn(Role::User, &format!("turn {i}"))
            .expect("turn");
    }
    let listed = coda.list_snapshots().expect("list");
    let saved: Vec<_> = listed.iter().filter(|s| s.location.is_some()).collect();
    assert_eq!(
        saved.len(),
        2,
        "retain keeps the newest two saved snapshots"
    );
    assert_eq!(saved[0].meta.short_term_turns, 5);
    assert_eq!(saved[1].meta.short_term_turns, 4);
    let files = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("snapshot_"))
        })
        .count();
    assert_eq!(files, 2, "older files are gone from disk");
    let prunes = snapshot_actions(&sink)
        .iter()
        .filter(|a| *a == "prune")
        .count();
    assert_eq!(prunes, 3, "one prune event for each save beyond the limit");
}

#[test]
fn prune_by_keep_and_age_publishes_what_it_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, sink) = open(&format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[stores.fs]\ndir = \"{}\"",
        dir.path().display()
    ));
    // Three old snapshots written straight to the store, two fresh ones through the manager.
    let week_ago = chrono::Utc::now() - chrono::Duration::days(7);
    for h in 0..3 {
        let old = coda::testkit::sample_snapshot(week_ago + chrono::Duration::hours(h));
        coda.store().save(&old).expect("save old");
    }
    for _ in 0..2 {
        let meta = coda.create_snapshot().expect("create");
        coda.save_snapshot(&meta.snapshot_id).expect("save");
    }
    let day = std::time::Duration::from_secs(86_400);
    let removed = coda
        .prune_snapshots(&PrunePolicy {
            keep: Some(3),
            older_than: Some(day),
        })
        .expect("prune");
    assert_eq!(
        removed.len(),
        2,
        "keep 3 newest; of the rest, remove those over a day old"
    );
    assert_eq!(coda.list_snapshots().expect("list").len(), 3);
    let removed = coda
        .prune_snapshots(&PrunePolicy {
            keep: None,
            older_than: Some(day),
        })
        .expect("prune");
    assert_eq!(removed.len(), 1);
    let event = sink
        .values()
        .into_iter()
        .rfind(|e| e["type"] == "memory_snapshot" && e["action"] == "prune")
        .expect("prune event");
    assert_eq!(event["metadata"]["removed"], serde_json::json!(removed));
    assert!(
        coda.prune_snapshots(&PrunePolicy::default()).is_err(),
        "a prune needs a limit"
    );
}

#[test]
fn listing_filters_by_time_and_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, _sink) = open(&format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[stores.fs]\ndir = \"{}\"",
        dir.path().display()
    ));
    let old = coda::testkit::sample_snapshot(chrono::Utc::now() - chrono::Duration::days(3));
    coda.store().save(&old).expect("save");
    coda.add_memory(NewMemory::new("The user owns a red kayak.", "fact"))
        .expect("add");
    let meta = coda.create_snapshot().expect("create");
    coda.save_snapshot(&meta.snapshot_id).expect("save");

    let since_yesterday = SnapshotFilter {
        from: Some(chrono::Utc::now() - chrono::Duration::days(1)),
        ..Default::default()
    };
    let found = coda.find_snapshots(&since_yesterday).expect("find");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].meta.snapshot_id, meta.snapshot_id);
    let until = SnapshotFilter {
        to: Some(chrono::Utc::now() - chrono::Duration::days(1)),
        ..Default::default()
    };
    assert_eq!(
        coda.find_snapshots(&until).expect("find")[0]
            .meta
            .snapshot_id,
        old.snapshot_id
    );
    let kayak = SnapshotFilter {
        q: Some("KAYAK".into()),
        ..Default::default()
    };
    assert_eq!(coda.find_snapshots(&kayak).expect("find").len(), 1);
    let alice = SnapshotFilter {
        q: Some("alice".into()),
        ..Default::default()
    };
    assert_eq!(
        coda.find_snapshots(&alice).expect("find")[0]
            .meta
            .snapshot_id,
        old.snapshot_id
    );
    let nothing = SnapshotFilter {
        q: Some("zeppelin".into()),
        ..Default::default()
    };
    assert!(coda.find_snapshots(&nothing).expect("find").is_empty());
}

#[test]
fn diff_reports_memories_turns_topics_and_stats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, _sink) = common::manager_in(dir.path(), "");
    let keep = coda
        .add_memory(NewMemory::new("The user likes tea.", "preference").topics(["drinks"]))
        .expect("add");
    let change = coda
        .add_memory(NewMemory::new("The user lives in Oslo.", "fact").topics(["location"]))
        .expect("add");
    let drop = coda
        .add_memory(NewMemory::new("The user has a cat.", "fact").topics(["pets"]))
        .expect("add");
    coda.add_turn(Role::User, "first").expect("turn");
    let a = coda.create_snapshot().expect("snapshot a");

    coda.update_memory(
        change.id,
        MemoryPatch {
            content: Some("The user lives in Bergen.".into()),
            ..Default::default()
        },
    )
    .expect("update");
    coda.delete_memory(drop.id).expect("delete");
    let added = coda
        .add_memory(NewMemory::new("The user plays chess.", "preference").topics(["games"]))
        .expect("add");
    coda.clear_short_term();
    coda.add_turn(Role::User, "second").expect("turn");
    let b = coda.create_snapshot().expect("snapshot b");

    let diff = coda
        .diff_snapshots(&a.snapshot_id, &b.snapshot_id)
        .expect("diff");
    assert_eq!(diff.memories.added.len(), 1);
    assert_eq!(diff.memories.added[0].id, added.id.to_string());
    assert_eq!(diff.memories.removed[0].id, drop.id.to_string());
    assert_eq!(diff.memories.changed.len(), 1);
    assert_eq!(
        diff.memories.changed[0].before.content,
        "The user lives in Oslo."
    );
    assert_eq!(
        diff.memories.changed[0].after.content,
        "The user lives in Bergen."
    );
    assert!(!diff
        .memories
        .changed
        .iter()
        .any(|c| c.id == keep.id.to_string()));
    assert_eq!(diff.turns.added[0].content, "second");
    assert_eq!(diff.turns.removed[0].content, "first");
    assert_eq!(diff.topics.added, ["games"]);
    assert_eq!(diff.topics.removed, ["pets"]);
    assert_eq!(diff.stats.total_memories, 0);
    assert_eq!(diff.stats.turn_count, 1);
    assert_eq!(diff.stats.source_types["fact"], -1);
    assert_eq!(diff.stats.source_types["preference"], 1);

    coda.add_memory(NewMemory::new("The user is learning Rust.", "fact"))
        .expect("add");
    let live = coda
        .diff_snapshots(&b.snapshot_id, "current")
        .expect("diff against current");
    assert_eq!(
        (live.from.as_str(), live.to.as_str()),
        (b.snapshot_id.as_str(), "current")
    );
    assert_eq!(live.memories.added.len(), 1);
    assert!(coda
        .diff_snapshots("snapshot_20200101_000000_deadbeef", "current")
        .is_err());
}

#[test]
fn the_zstd_store_encrypts_when_configured_and_apply_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let var = "CODA_TEST_SNAPSHOT_KEY_FEATURES";
    std::env::set_var(var, "0f".repeat(32));
    let (coda, _sink) = open(&format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[snapshots]\nstore = \"zstd\"\n[stores.zstd]\ndir = \"{}\"\nlevel = 5\nkey_env = \"{var}\"",
        dir.path().display()
    ));
    coda.add_memory(NewMemory::new("The user's name is Alice.", "fact"))
        .expect("add");
    let meta = coda.create_snapshot().expect("create");
    let location = coda.save_snapshot(&meta.snapshot_id).expect("save");
    assert!(location.ends_with(".json.zst"), "{location}");
    let bytes = std::fs::read(&location).expect("read");
    assert!(bytes.starts_with(b"CODAENC1"));
    let before = coda.list_memories(0, 10, None).expect("list");
    coda.delete_memory(before[0].id).expect("delete");
    coda.apply_snapshot(&coda.load_snapshot(&location).expect("load"))
        .expect("apply");
    assert_eq!(coda.list_memories(0, 10, None).expect("list"), before);

    // A missing key variable is a startup error naming the key.
    let config = Config::from_toml_str(&format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[snapshots]\nstore = \"zstd\"\n[stores.zstd]\ndir = \"{}\"\nkey_env = \"CODA_TEST_UNSET_KEY_VAR\"",
        dir.path().display()
    ))
    .expect("config");
    let err = MemoryManager::builder(config)
        .configured_sinks(false)
        .build()
        .err()
        .expect("refused");
    assert!(err.to_string().contains("stores.zstd.key_env"), "{err}");
}
