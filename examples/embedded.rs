//! Coda inside an application, no server: turns, persist, search, snapshots, and events read
//! from the replay ring.
//!
//! `cargo run --example embedded`

use coda::{Config, Error, Filter, MemoryManager, NewMemory, Role};

fn main() -> coda::Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("create", "temp dir", e))?;
    let config = Config::from_toml_str(&format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\nshort_term_max_turns = 20\n[stores.fs]\ndir = \"{}\"",
        dir.path().join("snapshots").display()
    ))?;
    let coda = MemoryManager::builder(config)
        .configured_sinks(false)
        .build()?;

    // A conversation.
    coda.add_turn(Role::System, "You are Coda, a helpful voice assistant.")?;
    coda.add_turn(Role::User, "Hi, my name is Alice and I live in Lisbon.")?;
    coda.add_turn(Role::Assistant, "Nice to meet you, Alice!")?;
    coda.add_turn(
        Role::User,
        "I prefer short answers. Remember that my dog is called Rex.",
    )?;
    coda.add_turn(Role::Assistant, "Noted.")?;

    // Distil it into long-term memory, and add a memory directly.
    let persisted = coda.persist_short_term_memory()?;
    println!("persist added {} memories:", persisted.memories_added);
    for m in &persisted.memories {
        println!("  [{}] {}", m.metadata.source_type, m.content);
    }
    coda.add_memory(NewMemory::new("The user is allergic to peanuts.", "fact").importance(0.95))?;

    // Find them again.
    let facts = Filter::parse(&serde_json::json!({"source_type": "fact"}))?;
    for query in [
        "what is the user's name",
        "where does the user live",
        "what is the dog called",
    ] {
        let hit = coda.get_memories(query, 1, 0.0, Some(&facts))?;
        println!(
            "{query:?} -> {}",
            hit.first().map_or("(nothing)", |h| h.content.as_str())
        );
    }

    // Snapshot, change, restore.
    let snapshot = coda.create_snapshot()?;
    let location = coda.save_snapshot(&snapshot.snapshot_id)?;
    coda.clear_short_term();
    coda.add_memory(NewMemory::new("A memory added after the snapshot.", "fact"))?;
    let diff = coda.diff_snapshots(&snapshot.snapshot_id, "current")?;
    println!(
        "since the snapshot: {} memories added, {} turns removed",
        diff.memories.added.len(),
        diff.turns.removed.len()
    );
    coda.apply_snapshot(&coda.load_snapshot(&location)?)?;
    assert_eq!(coda.conversation().turns.len(), 5);

    // Every operation was published; the replay ring holds the latest.
    let ring = coda.bus().replay();
    println!(
        "{} events published; the last three:",
        coda.bus().latest_seq()
    );
    for event in ring.last(3) {
        println!("  {}", event.json());
    }
    println!(
        "stats: {}",
        serde_json::to_string(&coda.stats()).unwrap_or_default()
    );
    coda.shutdown()
}

#[test]
fn example_runs() {
    main().expect("the example succeeds");
}
