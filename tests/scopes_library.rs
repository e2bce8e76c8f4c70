//! Scopes through the library (SPEC §8): random scopes never see each other's memories,
//! snapshots capture and restore one user and one session only, and erasing a user leaves no
//! trace in search, listing, sessions, snapshots, the log file, or after a restart.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use coda::{Config, MemoryManager, NewMemory, Role, Scope};

/// A small deterministic generator (xorshift64*), so a failing case can be replayed by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "tea", "coffee", "Paris", "Berlin", "dog", "cat", "jazz", "piano", "tennis", "chess", "rust",
    "python",
];

/// A random scope over a few users, agents and sessions (sometimes without agent or session).
fn random_scope(rng: &mut Rng) -> Scope {
    let user = format!("user-{}", rng.below(4));
    let mut scope = Scope::user(&user).expect("user id");
    if rng.below(2) == 0 {
        scope = scope
            .with_agent(&format!("agent-{}", rng.below(2)))
            .expect("agent id");
    }
    if rng.below(2) == 0 {
        scope = scope
            .with_session(&format!("s-{}", rng.below(3)))
            .expect("session id");
    }
    scope
}

#[test]
fn searches_and_listings_never_cross_scopes_over_random_scopes() {
    for seed in 1..=12u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let (coda, _sink) = common::manager_in(dir.path(), "");
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        // What each memory's scope is, by id, to check every answer against.
        let mut owners: HashMap<coda::MemoryId, coda::Memory> = HashMap::new();
        for i in 0..60 {
            let scope = random_scope(&mut rng);
            let text = format!(
                "memory {i}: the user likes {} and {}",
                WORDS[rng.below(WORDS.len())],
                WORDS[rng.below(WORDS.len())]
            );
            let memory = coda
                .scope(scope.clone())
                .add_memory(NewMemory::new(text, "fact"))
                .expect("add");
            assert_eq!(memory.user_id, scope.user_id(), "seed {seed}");
            owners.insert(memory.id, memory);
        }
        for _ in 0..40 {
            let scope = random_scope(&mut rng);
            let handle = coda.scope(scope.clone());
            let query = format!("the user likes {}", WORDS[rng.below(WORDS.len())]);
            for mode in [
                coda::SearchMode::Vector,
                coda::SearchMode::Lexical,
                coda::SearchMode::Hybrid,
            ] {
                let hits = handle
                    .search_memories(&query, 100, -1.0, None, Some(mode))
                    .expect("search");
                for hit in &hits {
                    let memory = &owners[&hit.id];
                    assert!(
                        scope.matches(memory),
                        "seed {seed}: {mode:?} search in {scope:?} returned {memory:?}"
                    );
                }
                if mode == coda::SearchMode::Vector {
                    let expected = owners.values().filter(|m| scope.matches(m)).count();
                    assert_eq!(hits.len(), expected, "seed {seed}: every memory in scope");
                }
            }
            let listed = handle.list_memories(0, 1000, None).expect("list");
            let expected = owners.values().filter(|m| scope.matches(m)).count();
            assert_eq!(listed.len(), expected, "seed {seed}: listing {scope:?}");
            assert!(listed.iter().all(|m| scope.matches(m)));
            for memory in owners.values().filter(|m| !scope.matches(m)).take(5) {
                assert!(
                    handle.get_memory(memory.id).is_err(),
                    "seed {seed}: {scope:?} read {memory:?}"
                );
            }
        }
    }
}

#[test]
fn snapshots_capture_and_restore_one_user_and_one_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coda, _sink) = common::manager_in(dir.path(), "");
    let alice = coda.session("alice", "a-1").expect("scope");
    let other = coda.session("alice", "a-2").expect("scope");
    let bob = coda.session("bob", "b-1").expect("scope");
    alice.add_turn(Role::User, "first in a-1").expect("turn");
    other.add_turn(Role::User, "first in a-2").expect("turn");
    bob.add_turn(Role::User, "first in b-1").expect("turn");
    let kept = alice
        .add_memory(NewMemory::new("alice likes tea", "preference"))
        .expect("add");
    bob.add_memory(NewMemory::new("bob likes coffee", "preference"))
        .expect("add");

    let meta = alice.create_snapshot().expect("snapshot");
    assert_eq!(meta.scope.user_id, "alice");
    assert_eq!(meta.scope.session_id, "a-1");
    let snapshot = alice.get_snapshot(&meta.snapshot_id).expect("get");
    assert_eq!(
        snapshot.long_term.memories.len(),
        1,
        "only alice's memories"
    );
    assert_eq!(snapshot.short_term.turns.len(), 1, "only session a-1");
    assert!(
        bob.get_snapshot(&meta.snapshot_id).is_err(),
        "another user's snapshot is not found"
    );
    assert!(bob.list_snapshots().expect("list").is_empty());

    // Change all three sessions and both users, then apply: only alice and a-1 go back.
    alice.add_turn(Role::User, "second in a-1").expect("turn");
    other.add_turn(Role::User, "second in a-2").expect("turn");
    bob.add_turn(Role::User, "second in b-1").expect("turn");
    alice.delete_memory(kept.id).expect("delete");
    alice
        .add_memory(NewMemory::new("alice likes jazz", "preference"))
        .expect("add");
    bob.add_memory(NewMemory::new("bob likes chess", "preference"))
        .expect("add");
    let diff = alice
        .diff_snapshots(&meta.snapshot_id, coda::manager::CURRENT)
        .expect("diff");
    assert_eq!(diff.memories.added.len(), 1, "{diff:?}");
    assert_eq!(diff.memories.removed.len(), 1, "{diff:?}");

    alice.apply_snapshot(&meta.snapshot_id).expect("apply");
    let alice_memories = alice.list_memories(0, 100, None).expect("list");
    assert_eq!(alice_memories.len(), 1);
    assert_eq!(alice_memories[0].content, "alice likes tea");
    assert_eq!(alice.conversation().expect("window").turn_count, 1);
    assert_eq!(
        other.conversation().expect("window").turn_count,
        2,
        "another session of the same user is untouched"
    );
    assert_eq!(bob.conversation().expect("window").turn_count, 2);
    assert_eq!(
        bob.list_memories(0, 100, None).expect("list").len(),
        2,
        "another user is untouched"
    );
}

fn file_config(dir: &Path) -> Config {
    let toml = format!(
        "[memory]\nbackend = \"file\"\nembedder = \"hashing\"\n[backends.file]\ndir = \"{}\"\n[stores.fs]\ndir = \"{}\"\n",
        dir.join("memory").display(),
        dir.join("snapshots").display()
    );
    Config::from_toml_str(&toml).expect("config")
}

fn open(dir: &Path) -> Arc<MemoryManager> {
    MemoryManager::builder(file_config(dir))
        .configured_sinks(false)
        .build()
        .expect("open")
}

/// Every file under `dir`, concatenated: where a trace of erased text could hide.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).expect("read"));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn an_erased_user_leaves_no_trace_on_disk_or_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "ZEBRA-ALICE-0042";
    {
        let coda = open(dir.path());
        let alice = coda.session("alice", "a-chat").expect("scope");
        alice
            .add_turn(Role::User, &format!("remember that my code is {secret}"))
            .expect("turn");
        alice.persist().expect("persist");
        alice
            .add_memory(NewMemory::new(
                format!("alice's locker is {secret}"),
                "fact",
            ))
            .expect("add");
        let snap = alice.create_snapshot().expect("snapshot");
        alice.save_snapshot(&snap.snapshot_id).expect("save");
        let bob = coda.session("bob", "b-chat").expect("scope");
        bob.add_turn(Role::User, "I like chess").expect("turn");
        bob.add_memory(NewMemory::new("bob likes chess", "preference"))
            .expect("add");
        assert!(
            contains(&all_bytes(dir.path()), secret),
            "the test can see traces"
        );

        let erased = coda
            .user("alice")
            .expect("scope")
            .erase_user()
            .expect("erase");
        assert!(erased.memories_deleted >= 2, "{erased:?}");
        assert_eq!(erased.sessions_deleted, 1);
        assert_eq!(erased.snapshots_deleted, 1);
        assert!(
            !contains(&all_bytes(dir.path()), secret),
            "erasure removes the text from every file the server wrote"
        );
        coda.shutdown().expect("shutdown");
    }
    let coda = open(dir.path());
    let alice = coda.session("alice", "a-chat").expect("scope");
    assert!(alice
        .search_memories(secret, 10, -1.0, None, Some(coda::SearchMode::Lexical))
        .expect("search")
        .is_empty());
    assert!(alice.list_memories(0, 10, None).expect("list").is_empty());
    assert!(alice.conversation().is_err(), "her session is gone");
    assert!(alice.list_snapshots().expect("snapshots").is_empty());
    let users = coda
        .user("bob")
        .expect("scope")
        .list_users(0, 10)
        .expect("users");
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0].user_id, "bob");
    assert_eq!(users[0].memories, 1);
    assert_eq!(users[0].sessions, 1);
    assert!(!contains(&all_bytes(dir.path()), secret));
}

#[test]
fn what_the_assistant_knows_about_a_user_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = |coda: &MemoryManager| {
        coda.session("alice", "a-chat")
            .expect("scope")
            .stats()
            .long_term
            .user_summary_keys
    };
    let before = {
        let coda = open(dir.path());
        let chat = coda.session("alice", "a-chat").expect("scope");
        chat.add_turn(Role::User, "My name is Alice and I live in Paris.")
            .expect("turn");
        chat.persist().expect("persist");
        let before = keys(&coda);
        assert_eq!(before, ["location", "name"]);
        coda.shutdown().expect("shutdown");
        before
    };
    let coda = open(dir.path());
    assert_eq!(keys(&coda), before, "user_summary_keys are rebuilt on open");
    assert!(
        coda.user("bob")
            .expect("scope")
            .stats()
            .long_term
            .user_summary_keys
            .is_empty(),
        "and stay per user"
    );
}
