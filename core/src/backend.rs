//! The `MemoryBackend` trait: where long-term memories and their embeddings live.

use std::sync::Arc;

use crate::embed::Embedder;
use crate::filter::Filter;
use chrono::{DateTime, Utc};

use crate::history::Version;
use crate::model::{By, Memory, MemoryId, MemoryRecord, ScoredMemory};
use crate::scope::{Owner, Scope};
use crate::session::{SessionChange, SessionInfo, SessionKey, SessionState};
use crate::{Error, Result};

/// What a backend factory is given besides its options.
#[non_exhaustive]
pub struct BackendContext {
    /// The configured embedder; a backend that persists vectors compares its name and dims with
    /// what it stored, and re-embeds or refuses when they differ.
    pub embedder: Arc<dyn Embedder>,
}

impl BackendContext {
    /// A context for `embedder`.
    pub fn new(embedder: Arc<dyn Embedder>) -> Self {
        BackendContext { embedder }
    }
}

/// One change to stored data, as a durable backend logs it.
///
/// This is the seam for replication: a backend's log is a sequence of `Change`s, so a shared
/// store (one JetStream stream per deployment) can carry exactly these records.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new memory.
    Insert(MemoryRecord),
    /// A memory replaced by a new version with the same id (and owner).
    Update(MemoryRecord),
    /// A memory removed.
    Delete {
        /// Which.
        id: MemoryId,
        /// Who removed it: a caller, or the expiry sweeper.
        by: By,
        /// When, so a replayed log dates its history as the live one did.
        at: DateTime<Utc>,
    },
    /// Every memory of one owner replaced at once (snapshot apply).
    ReplaceUser {
        /// Whose memories.
        owner: Owner,
        /// The new set, all owned by `owner`.
        records: Vec<MemoryRecord>,
    },
    /// Everything of one owner erased: memories and sessions.
    EraseUser(Owner),
    /// A persist: new memories and the session whose position moved past their turns, in one
    /// record, so a crash keeps both or neither and no turn is ever extracted twice.
    Persist {
        /// The new memories, all owned by the session's user.
        records: Vec<MemoryRecord>,
        /// The session after the persist.
        session: SessionState,
    },
    /// A session changed.
    Session(SessionChange),
    /// Every change before this one belongs to the replicated log up to position `seq` (a
    /// cluster's stream sequence). A durable backend that has seen one treats changes after
    /// the last as an operation a crash interrupted, and drops them when it opens: the node
    /// applies that operation again from the log, so it lands exactly once.
    Commit(u64),
}

/// What erasing a user removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Memories removed.
    pub memories: usize,
    /// Sessions removed.
    pub sessions: usize,
    /// Memory histories removed (of memories still stored or deleted before).
    pub histories: usize,
}

/// Storage for long-term memories and sessions, partitioned by owner (tenant and user).
///
/// Every call that touches data takes the [`Scope`] it acts in; a backend never returns a
/// memory outside it, and keeps one index per owner so a scoped search reads only that owner's
/// memories. Implementations are shared between threads and must make each call atomic: a
/// reader sees a change entirely or not at all. Embeddings arrive L2-normalised, all of one
/// length.
pub trait MemoryBackend: Send + Sync + 'static {
    /// Adds a memory, which must lie in `scope`; an existing id is an
    /// [`Error::Invalid`].
    fn insert(&self, scope: &Scope, record: MemoryRecord) -> Result<()>;

    /// The memory with `id`, if it exists inside `scope`.
    fn get(&self, scope: &Scope, id: MemoryId) -> Result<Option<MemoryRecord>>;

    /// Replaces the memory with the record's id; a missing id, or one outside `scope`, is
    /// [`Error::NotFound`]. The owner cannot change.
    fn update(&self, scope: &Scope, record: MemoryRecord) -> Result<()>;

    /// Removes the memory with `id` if it lies in `scope`; returns whether it did. `by` says who
    /// (a caller or the expiry sweeper), for the memory's history.
    fn delete(&self, scope: &Scope, id: MemoryId, by: By) -> Result<bool>;

    /// Every version of memory `id` inside `scope`, oldest first (SPEC §10), kept after a delete
    /// and dropped by [`erase_owner`](Self::erase_owner); `None` for an id never seen there.
    /// [`HistoryTable`](crate::history::HistoryTable) derives versions from the changes a backend
    /// applies.
    fn history(&self, scope: &Scope, id: MemoryId) -> Result<Option<Vec<Version>>>;

    /// A page of the memories in `scope` matching `filter`, newest first (by timestamp).
    fn list(
        &self,
        scope: &Scope,
        offset: usize,
        limit: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Memory>>;

    /// The `limit` memories in `scope` most similar to `query` with similarity at least
    /// `min_similarity` and matching `filter`, most similar first.
    fn search(
        &self,
        scope: &Scope,
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
    ) -> Result<Vec<ScoredMemory>>;

    /// How many memories are stored, over every owner.
    fn len(&self) -> Result<usize>;

    /// Whether no memory is stored.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// How many memories `scope`'s owner has.
    fn count(&self, scope: &Scope) -> Result<usize>;

    /// Every owner of `tenant` with at least one memory, and how many it has.
    fn owners(&self, tenant: &str) -> Result<Vec<(Owner, usize)>>;

    /// Visits every stored record of every owner (at open), oldest insertion first within an
    /// owner, without copying them.
    fn scan(&self, visit: &mut dyn FnMut(&MemoryRecord)) -> Result<()>;

    /// Visits the records of `scope`'s owner, oldest insertion first.
    fn scan_owner(&self, scope: &Scope, visit: &mut dyn FnMut(&MemoryRecord)) -> Result<()>;

    /// The records of `scope`'s owner, oldest insertion first (for snapshots).
    fn export(&self, scope: &Scope) -> Result<Vec<MemoryRecord>> {
        let mut out = Vec::with_capacity(self.count(scope)?);
        self.scan_owner(scope, &mut |record| out.push(record.clone()))?;
        Ok(out)
    }

    /// Replaces every memory of `scope`'s owner with `records` (all owned by it), atomically:
    /// on error nothing changed. Other owners are untouched.
    fn replace_owner(&self, scope: &Scope, records: Vec<MemoryRecord>) -> Result<()>;

    /// Erases every memory and session of `scope`'s owner, atomically and durably.
    fn erase_owner(&self, scope: &Scope) -> Result<Erased>;

    /// Adds `records` (all in `scope`) and stores `session` as one atomic, durable step: what a
    /// persist writes. The default inserts, then stores the session; a backend that can crash
    /// between the two must override it, or a restart would extract those turns again.
    fn persist(
        &self,
        scope: &Scope,
        records: Vec<MemoryRecord>,
        session: SessionState,
    ) -> Result<()> {
        for record in records {
            self.insert(scope, record)?;
        }
        self.apply_session(SessionChange::Put(session))
    }

    /// Applies a session change (durably, like memories). A turn for a session that another
    /// user owns is an [`Error::Conflict`].
    fn apply_session(&self, change: SessionChange) -> Result<()>;

    /// The session with `key`, without its turns.
    fn session(&self, key: &SessionKey) -> Result<Option<SessionInfo>>;

    /// The session with `key`, with its window.
    fn session_state(&self, key: &SessionKey) -> Result<Option<SessionState>>;

    /// Visits every session of `tenant`, in no particular order.
    fn sessions(&self, tenant: &str, visit: &mut dyn FnMut(&SessionState)) -> Result<()>;

    /// Visits the sessions of `scope`'s owner only. The default filters
    /// [`sessions`](Self::sessions); a backend with many users should index sessions by owner.
    fn owner_sessions(&self, scope: &Scope, visit: &mut dyn FnMut(&SessionState)) -> Result<()> {
        let owner = scope.owner();
        self.sessions(scope.tenant(), &mut |state| {
            if state.info.user_id == owner.user_id {
                visit(state);
            }
        })
    }

    /// Visits the history of every memory of `scope`'s owner, one memory at a time (for
    /// export). The default visits the histories of its stored memories; a backend that keeps
    /// the history of deleted memories should override it to visit those too.
    fn owner_histories(&self, scope: &Scope, visit: &mut dyn FnMut(&[Version])) -> Result<()> {
        let mut ids = Vec::new();
        self.scan_owner(scope, &mut |record| ids.push(record.memory.id))?;
        for id in ids {
            if let Some(versions) = self.history(scope, id)? {
                visit(&versions);
            }
        }
        Ok(())
    }

    /// Replaces the history of one memory of `scope`'s owner with `versions` (oldest first,
    /// all of that memory and owner), durably (for import). A memory id another owner holds
    /// is an [`Error::Invalid`] naming `id`. The default refuses with
    /// [`Error::Unavailable`]: the importer then skips histories.
    fn import_history(&self, scope: &Scope, versions: Vec<Version>) -> Result<()> {
        let _ = (scope, versions);
        Err(crate::Error::Unavailable(
            "this backend cannot import memory history".into(),
        ))
    }

    /// Captures the backend's state now, for an online backup (SPEC §13): the caller holds
    /// every writer off while this runs, so it should only note what to copy (the file
    /// backend: its open log and its length, a record boundary) and leave the copying to
    /// [`BackupCopy::write_to`](crate::backup::BackupCopy::write_to), which runs with writes
    /// flowing again. The default refuses with a [`Error::Conflict`]:
    /// a backend that keeps nothing on disk (`memory`) has nothing to copy.
    fn begin_backup(&self) -> Result<Box<dyn crate::backup::BackupCopy>> {
        Err(crate::Error::Conflict(
            "the configured backend keeps nothing on disk to back up online; use backend \
             `file`, or export each tenant with GET /api/v1/export"
                .into(),
        ))
    }

    /// Whether a call may wait on I/O (a disk, a network). The server runs the calls of a
    /// backend that may on its blocking pool; a backend that never does (one held in memory)
    /// answers `false`, and the server's quick operations then run on the request's own
    /// thread, saving two thread hand-offs each.
    fn may_block(&self) -> bool {
        true
    }

    /// Whether, run inside [`durability::defer`](crate::durability::defer), the quick calls
    /// (insert, update, delete, session changes, reads) never wait on I/O: they append to the
    /// page cache, apply in memory and hand any fsync wait to the caller with
    /// [`durability::hand_off`](crate::durability::hand_off). The server then runs quick
    /// operations on the request's own thread and awaits the handed-off waits before it
    /// answers. Defaults to `!may_block()`.
    fn quick_when_deferred(&self) -> bool {
        !self.may_block()
    }

    /// Makes every acknowledged change durable.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Records that the changes so far complete the replicated log up to position `seq`
    /// ([`Change::Commit`]), durably with them. Only backends that can do this atomically
    /// support a cluster; the others refuse.
    fn commit(&self, seq: u64) -> Result<()> {
        let _ = seq;
        Err(Error::Unavailable(
            "this memory backend cannot record a replicated log position".into(),
        ))
    }

    /// The last position [`commit`](Self::commit) recorded: 0 before any.
    fn committed(&self) -> Result<u64> {
        Ok(0)
    }
}
