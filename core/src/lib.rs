#![doc = include_str!("../README.md")]

pub mod archive;
pub mod backend;
pub mod backup;
pub mod bus;
pub mod cluster;
pub mod config;
pub mod diff;
pub mod durability;
pub mod embed;
pub mod error;
pub mod event;
pub mod export;
pub mod extract;
pub mod filter;
pub mod history;
pub mod lexical;
pub mod manager;
pub mod model;
pub mod registry;
pub mod retention;
pub mod scope;
pub mod session;
pub mod sink;
pub mod snapshot;
pub mod stamp;
pub mod stats;
pub mod tenant;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod vector;

pub use archive::{ArchiveFetch, Archived, EventArchive};
pub use backend::{BackendContext, Change, Erased, MemoryBackend};
pub use bus::{Dedup, EventBus, ReplayRing, Sequencer};
pub use config::{Config, SearchFusion, SearchMode};
pub use diff::SnapshotDiff;
pub use embed::{Embedder, EmbedderContext, HashingEmbedder};
pub use error::{Error, Result};
pub use event::{Event, EventBody, EventScope, EventType, SharedEvent, SnapshotAction};
pub use extract::{Extracted, MemoryExtractor, RuleExtractor};
pub use filter::Filter;
pub use history::{Action, HistoryTable, Version};
pub use manager::{
    Conversation, ManagerBuilder, MemoryManager, MemoryPatch, PersistOutcome, Query, Remembered,
    Scoped, SessionListing, SnapshotListing, UserErasure, UserListing, Visibility,
};
pub use model::{
    By, Explain, IdMap, Memory, MemoryId, MemoryRecord, Metadata, NewMemory, Role, ScoredMemory,
    Turn,
};
pub use retention::{PrunePolicy, SnapshotFilter};
pub use scope::{Owner, Scope};
pub use session::{SessionChange, SessionInfo, SessionKey, SessionState, SessionTable};
pub use sink::{EventSink, SinkContext};
pub use snapshot::{
    Snapshot, SnapshotMeta, SnapshotScope, SnapshotStore, StoreContext, StoredSnapshot,
};
pub use stats::MemoryStats;
pub use tenant::{Authenticator, Principal, TenantConfig, TenantDenied};

/// Re-exports the registration macros rely on; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use erased_serde;
    pub use inventory;
    pub use serde_json;
}
