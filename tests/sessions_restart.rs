//! Sessions on the `file` backend survive a restart as they were (SPEC §8 durability): window,
//! `turn_count`, `session_start`, persist position and last tool, so a persist after the
//! restart distils only the turns the one before it had not — and a persist position only ever
//! names turns its session has.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use coda::backend_file::{FileBackend, FileOptions, SyncPolicy};
use coda::{
    Config, Conversation, Extracted, HashingEmbedder, Memory, MemoryExtractor, MemoryManager, Role,
    RuleExtractor, SessionListing, Turn,
};

/// The window is small so that turns leave it before and after the restart.
const WINDOW: usize = 4;
const DIMS: usize = 64;

fn config(dir: &Path) -> Config {
    let toml = format!(
        "[memory]\nbackend = \"file\"\nembedder = \"hashing\"\nshort_term_max_turns = {WINDOW}\n\
         [backends.file]\ndir = \"{}\"\nsync = \"always\"\n\
         [embedders.hashing]\ndims = {DIMS}\n\
         [stores.fs]\ndir = \"{}\"\n",
        dir.join("log").display(),
        dir.join("snapshots").display()
    );
    Config::from_toml_str(&toml).expect("test config")
}

fn open(dir: &Path) -> Arc<MemoryManager> {
    MemoryManager::builder(config(dir))
        .configured_sinks(false)
        .build()
        .expect("manager")
}

/// Stops a manager the way the server does, and lets go of the log (and its lock).
fn restart(coda: Arc<MemoryManager>, dir: &Path) -> Arc<MemoryManager> {
    coda.shutdown().expect("shutdown");
    assert_eq!(
        Arc::strong_count(&coda),
        1,
        "someone still holds the manager"
    );
    drop(coda);
    open(dir)
}

/// Everything about a session that must survive a restart.
#[derive(Debug, PartialEq)]
struct Saved {
    detail: SessionListing,
    conversation: Conversation,
    memories: Vec<Memory>,
}

fn saved(coda: &MemoryManager, user: &str, session: &str) -> Saved {
    let scoped = coda.session(user, session).expect("scope");
    let mut memories = coda
        .user(user)
        .expect("user")
        .list_memories(0, 1000, None)
        .expect("memories");
    memories.sort_by_key(|m| m.id);
    Saved {
        detail: scoped.session_detail().expect("session"),
        conversation: scoped.conversation().expect("window"),
        memories,
    }
}

fn turn(coda: &MemoryManager, user: &str, session: &str, role: Role, content: &str) {
    coda.session(user, session)
        .expect("scope")
        .add_turn(role, content)
        .expect("turn");
}

fn contents(memories: &[Memory]) -> Vec<&str> {
    memories.iter().map(|m| m.content.as_str()).collect()
}

/// What the bundled extractor makes of `turns`: what a persist of exactly them adds.
fn extracted(turns: &[Turn]) -> Vec<String> {
    RuleExtractor
        .extract(turns)
        .into_iter()
        .map(|e| e.memory.content)
        .collect()
}

fn count(memories: &[Memory], content: &str) -> usize {
    memories.iter().filter(|m| m.content == content).count()
}

#[test]
fn sessions_and_persist_positions_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let coda = open(dir.path());
    let alice = "Hi, my name is Alice and I live in Paris";
    turn(&coda, "alice", "chat-1", Role::User, alice);
    turn(
        &coda,
        "alice",
        "chat-1",
        Role::Assistant,
        "Nice to meet you, Alice.",
    );
    coda.session("alice", "chat-1")
        .expect("scope")
        .add_turn_named(Role::Tool, "{\"temp\": 21}", Some("weather"))
        .expect("tool turn");
    turn(
        &coda,
        "bob",
        "chat-2",
        Role::User,
        "Hi, my name is Bob and I live in Oslo",
    );
    turn(&coda, "bob", "chat-2", Role::Assistant, "Hello Bob.");
    let first = coda
        .session("alice", "chat-1")
        .expect("scope")
        .persist()
        .expect("persist");
    assert!(
        contents(&first.memories).contains(&"The user's name is Alice."),
        "{first:?}"
    );
    // After the persist: new turns for alice, and enough that the window rolls over.
    let later = [
        (Role::User, "I like jazz"),
        (Role::Assistant, "Noted."),
        (Role::User, "I prefer tea"),
    ];
    for (role, content) in later {
        turn(&coda, "alice", "chat-1", role, content);
    }
    turn(&coda, "bob", "chat-2", Role::User, "I dislike rain");
    coda.add_turn_named(Role::Tool, "{}", Some("calendar"))
        .expect("default turn");
    let before = [
        saved(&coda, "alice", "chat-1"),
        saved(&coda, "bob", "chat-2"),
    ];
    let default_before = (coda.conversation(), coda.stats().last_tool_used);
    assert_eq!(before[0].detail.info.turn_count, 6);
    assert_eq!(before[0].detail.info.persisted_upto, 3);
    assert_eq!(before[0].detail.turns.len(), WINDOW);
    assert_eq!(
        before[0].detail.info.last_tool_used.as_deref(),
        Some("weather")
    );
    assert_eq!(default_before.1.as_deref(), Some("calendar"));

    let coda = restart(coda, dir.path());
    let after = [
        saved(&coda, "alice", "chat-1"),
        saved(&coda, "bob", "chat-2"),
    ];
    assert_eq!(after, before);
    assert_eq!(
        (coda.conversation(), coda.stats().last_tool_used),
        default_before
    );

    // Persisting again distils only the turns after the first persist.
    let alice_turns = &before[0].detail.turns;
    let pending: Vec<Turn> = alice_turns
        .iter()
        .filter(|t| t.turn_index >= 3)
        .cloned()
        .collect();
    assert_eq!(pending.len(), later.len());
    let second = coda
        .session("alice", "chat-1")
        .expect("scope")
        .persist()
        .expect("persist");
    assert_eq!(contents(&second.memories), extracted(&pending));
    assert_eq!(second.memories_added, second.memories.len());
    let memories = saved(&coda, "alice", "chat-1").memories;
    assert_eq!(memories.len(), first.memories_added + second.memories_added);
    assert_eq!(count(&memories, "The user's name is Alice."), 1);
    assert_eq!(count(&memories, "The user lives in Paris."), 1);
    // And once more after another restart: nothing is left to distil.
    let coda = restart(coda, dir.path());
    let third = coda
        .session("alice", "chat-1")
        .expect("scope")
        .persist()
        .expect("persist");
    assert_eq!(third.memories_added, 0, "{third:?}");
    // Bob never persisted: all of his window is distilled, once.
    let bob = coda
        .session("bob", "chat-2")
        .expect("scope")
        .persist()
        .expect("persist");
    assert_eq!(contents(&bob.memories), extracted(&before[1].detail.turns));
    assert_eq!(
        count(
            &saved(&coda, "bob", "chat-2").memories,
            "The user's name is Bob."
        ),
        1
    );
}

#[test]
fn a_clear_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let coda = open(dir.path());
    turn(&coda, "carol", "chat-3", Role::User, "Hi, my name is Carol");
    turn(&coda, "carol", "chat-3", Role::Assistant, "Hello Carol.");
    coda.session("carol", "chat-3")
        .expect("scope")
        .clear_turns()
        .expect("clear");
    // A session cleared as its last change comes back empty, with its counters.
    let cleared = saved(&coda, "carol", "chat-3");
    assert_eq!(cleared.detail.turns, Vec::new());
    assert_eq!(cleared.detail.info.persisted_upto, 2);
    let coda = restart(coda, dir.path());
    assert_eq!(saved(&coda, "carol", "chat-3"), cleared);

    turn(&coda, "carol", "chat-3", Role::User, "I live in Rome");
    let before = saved(&coda, "carol", "chat-3");
    let coda = restart(coda, dir.path());
    let after = saved(&coda, "carol", "chat-3");
    assert_eq!(after, before);
    let indexes: Vec<u64> = after.detail.turns.iter().map(|t| t.turn_index).collect();
    assert_eq!(indexes, [2], "turn indexes are never reused after a clear");
    let persisted = coda
        .session("carol", "chat-3")
        .expect("scope")
        .persist()
        .expect("persist");
    assert_eq!(
        contents(&persisted.memories),
        extracted(&after.detail.turns)
    );
    let memories = saved(&coda, "carol", "chat-3").memories;
    assert_eq!(
        count(&memories, "The user's name is Carol."),
        0,
        "a cleared turn was persisted"
    );
    assert_eq!(count(&memories, "The user lives in Rome."), 1);
}

#[test]
fn compaction_keeps_sessions_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The manager over a backend held here too, so the test can compact it while it runs.
    let embedder = Arc::new(HashingEmbedder::new(DIMS).expect("embedder"));
    let options = FileOptions {
        sync: SyncPolicy::Always,
        ..FileOptions::in_dir(dir.path().join("log"))
    };
    let file = Arc::new(FileBackend::open(options, embedder.clone()).expect("backend"));
    let coda = MemoryManager::builder(config(dir.path()))
        .configured_sinks(false)
        .backend(file.clone())
        .embedder(embedder)
        .build()
        .expect("manager");
    for i in 0..10 {
        turn(
            &coda,
            "alice",
            "chat-1",
            Role::User,
            &format!("alice says {i}"),
        );
        turn(&coda, "bob", "chat-2", Role::User, &format!("bob says {i}"));
    }
    turn(
        &coda,
        "alice",
        "chat-1",
        Role::User,
        "Hi, my name is Alice and I live in Paris",
    );
    coda.session("alice", "chat-1")
        .expect("scope")
        .persist()
        .expect("persist");
    coda.session("bob", "chat-2")
        .expect("scope")
        .clear_turns()
        .expect("clear");
    turn(&coda, "alice", "chat-1", Role::Assistant, "Noted.");
    let before = [
        saved(&coda, "alice", "chat-1"),
        saved(&coda, "bob", "chat-2"),
    ];

    let done = file.compact().expect("compact");
    let memories = before[0].memories.len() as u64;
    // Each memory's history is a live record too.
    assert_eq!(done.live, 2 * memories + 2, "{done:?}");
    assert!(done.bytes_after < done.bytes_before, "{done:?}");
    // A turn after the compaction goes to the new log.
    turn(&coda, "bob", "chat-2", Role::User, "bob is back");
    let bob_after_compaction = saved(&coda, "bob", "chat-2");
    drop(file);
    let coda = restart(coda, dir.path());
    assert_eq!(saved(&coda, "alice", "chat-1"), before[0]);
    assert_eq!(saved(&coda, "bob", "chat-2"), bob_after_compaction);
    assert_eq!(bob_after_compaction.detail.info, {
        let mut info = before[1].detail.info.clone();
        info.turn_count += 1;
        info.last_turn_at = bob_after_compaction.detail.info.last_turn_at;
        info
    });
    // The window still holds the persisted introduction; only the assistant turn after it is new.
    let again = coda
        .session("alice", "chat-1")
        .expect("scope")
        .persist()
        .expect("persist");
    assert_eq!(again.memories_added, 0, "{again:?}");
}

/// Something to do to the manager in the middle of a persist.
type Hook = Box<dyn FnOnce(&MemoryManager) + Send>;

/// The bundled extractor, running `during` once in the middle of the first persist: between
/// the persist reading the session and recording how far it got.
#[derive(Default)]
struct DuringPersist {
    manager: OnceLock<Weak<MemoryManager>>,
    during: Mutex<Option<Hook>>,
}

impl MemoryExtractor for DuringPersist {
    fn extract(&self, turns: &[Turn]) -> Vec<Extracted> {
        let during = self.during.lock().expect("hook").take();
        if let (Some(during), Some(manager)) = (during, self.manager.get()) {
            during(&manager.upgrade().expect("manager"));
        }
        RuleExtractor.extract(turns)
    }
}

#[test]
fn a_session_started_again_during_a_persist_keeps_its_new_turns_unpersisted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Arc::new(DuringPersist::default());
    let coda = MemoryManager::builder(config(dir.path()))
        .configured_sinks(false)
        .extractor(hook.clone())
        .build()
        .expect("manager");
    hook.manager.set(Arc::downgrade(&coda)).expect("once");
    for content in ["I like jazz", "I like tea", "I like rain"] {
        turn(&coda, "alice", "chat-1", Role::User, content);
    }
    *hook.during.lock().expect("hook") = Some(Box::new(|coda: &MemoryManager| {
        let chat = coda.session("alice", "chat-1").expect("scope");
        chat.delete_session().expect("delete");
        chat.add_turn(Role::User, "Hi, my name is Alice")
            .expect("turn");
    }));
    coda.session("alice", "chat-1")
        .expect("scope")
        .persist()
        .expect("persist");
    // The session now is the new one: one turn, which no persist has seen.
    let info = saved(&coda, "alice", "chat-1").detail.info;
    assert_eq!(info.turn_count, 1);
    assert_eq!(
        info.persisted_upto, 0,
        "the old session's position moved onto the new one"
    );
    let coda = restart(coda, dir.path());
    let again = coda
        .session("alice", "chat-1")
        .expect("scope")
        .persist()
        .expect("persist");
    assert!(
        contents(&again.memories).contains(&"The user's name is Alice."),
        "the new session's turn was never persisted: {again:?}"
    );
}
