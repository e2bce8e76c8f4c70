//! Memory lifecycle through the library on the durable `file` backend (SPEC §10): what persist
//! supersedes and deduplicates, and that superseding, history and expiry survive a restart.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use coda::{
    Action, By, Config, Extracted, MemoryExtractor, MemoryManager, NewMemory, Role, Turn,
    Visibility,
};

/// An extractor turning each user turn "SLOT=TEXT" into a fact in SLOT: persist's planning is
/// tested apart from the rule extractor's phrasing.
struct Slotted;

impl MemoryExtractor for Slotted {
    fn extract(&self, turns: &[Turn]) -> Vec<Extracted> {
        turns
            .iter()
            .filter(|t| t.role == Role::User)
            .filter_map(|t| t.content.split_once('='))
            .map(|(slot, text)| Extracted {
                memory: NewMemory::new(text, "fact"),
                summary_key: None,
                slot: Some(slot.to_owned()),
            })
            .collect()
    }
}

fn open(dir: &std::path::Path) -> Arc<MemoryManager> {
    let config = Config::from_toml_str(&format!(
        "[memory]\nbackend = \"file\"\nembedder = \"hashing\"\n[backends.file]\ndir = \"{}\"\n\
         [stores.fs]\ndir = \"{}\"\n",
        dir.join("memory").display(),
        dir.join("snapshots").display()
    ))
    .unwrap();
    MemoryManager::builder(config)
        .configured_sinks(false)
        .extractor(Arc::new(Slotted))
        .build()
        .unwrap()
}

#[test]
fn persist_supersedes_dedups_and_everything_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (paris, berlin);
    {
        let coda = open(dir.path());
        let chat = coda.session("alice", "chat-1").unwrap();
        chat.add_turn(Role::User, "home_city=The user lives in Paris.")
            .unwrap();
        let first = chat.persist().unwrap();
        assert_eq!(first.memories_added, 1);
        paris = first.memories[0].id;
        // Restated, then moved, in one batch: the restatement adds nothing, the move
        // supersedes Paris.
        chat.add_turn(Role::User, "home_city=The user lives in Paris")
            .unwrap();
        chat.add_turn(Role::User, "home_city=The user lives in Berlin.")
            .unwrap();
        let second = chat.persist().unwrap();
        assert_eq!(second.memories_added, 1, "{:?}", second.memories);
        berlin = second.memories[0].id;
        assert_eq!(second.memories[0].source_turns, [1, 2]);
        let alice = coda.user("alice").unwrap();
        let listed = alice.list_memories(0, 10, None).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, berlin);
        // Expiring soon after the restart.
        let mut brief = NewMemory::new("The user is travelling this week.", "fact");
        brief.expires_at = Some(chrono::Utc::now() + chrono::Duration::milliseconds(1500));
        alice.add_memory(brief).unwrap();
    }
    let coda = open(dir.path());
    let alice = coda.user("alice").unwrap();
    let old = alice.get_memory(paris).unwrap();
    assert_eq!(old.superseded_by, Some(berlin), "superseding is durable");
    let history = alice.memory_history(paris).unwrap();
    let actions: Vec<Action> = history.iter().map(|v| v.action).collect();
    assert_eq!(actions, [Action::Add, Action::Supersede]);
    assert!(history.iter().all(|v| v.by == By::Persist));
    assert_eq!(history[0].memory.source_turns, [0]);
    // The slot index is rebuilt at open: a new home supersedes Berlin, not Paris again.
    let rome = alice
        .remember(NewMemory::new("The user lives in Rome.", "fact").slot("home_city"))
        .unwrap();
    assert_eq!(rome.superseded, [berlin]);
    // The expiry schedule is rebuilt at open too.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alice
        .list_visible(
            0,
            10,
            None,
            Visibility {
                include_expired: true,
                ..Default::default()
            },
        )
        .unwrap()
        .len()
        > 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never swept after a restart"
        );
        coda.sweep_expired().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kept = alice.list_memories(0, 10, None).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].content, "The user lives in Rome.");
}
