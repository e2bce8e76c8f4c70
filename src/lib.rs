//! # Coda
//!
//! A memory service for AI assistants: short-term conversation turns, long-term memories found
//! again by similarity, persist, snapshots, and every operation published as an event to sinks.
//!
//! This facade re-exports [`coda_core`] and links every bundled plugin, so
//! `MemoryManager::open(Config::load(None)?)` can pick any of them by name:
//!
//! ```
//! use coda::{Config, MemoryManager, NewMemory, Role};
//!
//! # fn main() -> coda::Result<()> {
//! # let dir = tempfile::tempdir().expect("tempdir");
//! # let snapshots = dir.path().join("snapshots");
//! let config = Config::from_toml_str(&format!(r#"
//!     [memory]
//!     backend = "memory"
//!     [stores.fs]
//!     dir = "{}"
//!     [[sinks]]
//!     type = "log"
//!     path = "stderr"
//! "#, snapshots.display()))?;
//! let coda = MemoryManager::open(config)?;
//! coda.add_turn(Role::User, "Hi, my name is Alice and I live in Paris.")?;
//! coda.persist_short_term_memory()?;
//! coda.add_memory(NewMemory::new("The user prefers brief responses.", "preference"))?;
//! let found = coda.get_memories("what is the user's name", 3, 0.0, None)?;
//! assert_eq!(found[0].content, "The user's name is Alice.");
//! # Ok(())
//! # }
//! ```
//!
//! Many users and conversations share one manager; a [`Scoped`] handle carries the scope
//! through every call, and a user's searches read only that user's memories:
//!
//! ```
//! use coda::{Config, MemoryManager, Role, Scope};
//!
//! # fn main() -> coda::Result<()> {
//! # let dir = tempfile::tempdir().expect("tempdir");
//! # let config = Config::from_toml_str(&format!(
//! #     "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[stores.fs]\ndir = \"{}\"",
//! #     dir.path().join("snapshots").display()
//! # ))?;
//! let coda = MemoryManager::open(config)?;
//! let chat = coda.session("alice", "chat-1")?;
//! chat.add_turn(Role::User, "Hi, my name is Alice.")?;
//! chat.persist()?;
//! coda.session("bob", "chat-2")?.add_turn(Role::User, "My name is Bob.")?;
//! assert!(coda.session("bob", "chat-1")?.add_turn(Role::User, "hi").is_err()); // alice's session
//!
//! let alice = coda.user("alice")?;
//! let hits = alice.get_memories("what is the user's name", 5, 0.0, None)?;
//! assert!(hits.iter().all(|h| h.user_id == "alice"));
//! let tutor = coda.scope(Scope::user("alice")?.with_agent("tutor")?);
//! assert!(tutor.list_memories(0, 10, None)?.is_empty()); // none of alice's are the tutor's
//! let erased = alice.erase_user()?;
//! assert_eq!(erased.sessions_deleted, 1);
//! # Ok(())
//! # }
//! ```

pub use coda_core::*;

// Referencing each plugin crate keeps its `inventory` registration in the final binary.
pub use coda_backend_file as backend_file;
pub use coda_backend_memory as backend_memory;
pub use coda_embedder_minilm as embedder_minilm;
pub use coda_sink_log as sink_log;
pub use coda_sink_websocket as sink_websocket;
pub use coda_snapshot_fs as snapshot_fs;
pub use coda_snapshot_zstd as snapshot_zstd;

/// The names of every bundled plugin, by kind, as the registry should report them.
pub const BUNDLED: &[(&str, &[&str])] = &[
    (
        "backend",
        &[coda_backend_file::NAME, coda_backend_memory::NAME],
    ),
    (
        "embedder",
        &[
            coda_core::embed::auto::AUTO_NAME,
            coda_core::embed::HASHING_NAME,
            coda_embedder_minilm::NAME,
        ],
    ),
    ("sink", &[coda_sink_log::NAME, coda_sink_websocket::NAME]),
    (
        "snapshot store",
        &[coda_snapshot_fs::NAME, coda_snapshot_zstd::NAME],
    ),
];
