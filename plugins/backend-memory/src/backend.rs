//! The in-memory store: one index per owner (see `owners.rs`), sessions in a [`SessionTable`].

use std::sync::Arc;

use coda_core::{
    By, Change, Erased, Error, HistoryTable, Memory, MemoryRecord, Result, Scope, SessionChange,
    SessionState, SessionTable, Version,
};

use parking_lot::{Mutex, RwLock};

use crate::config::IndexOptions;
use crate::owners::{Ids, Owners};

/// Backend `memory`: everything in process memory, search within one owner's index (an int8
/// scan rescored exactly, or an exact scan: see [`IndexOptions`]).
///
/// Readers lock only the index of the owner they read. Writers are serialised by one lock held
/// for a whole change (validation and application), so each change is atomic among writers and
/// a durable backend in front of it can log changes in the order they apply.
pub struct InMemoryBackend {
    pub(crate) dims: usize,
    pub(crate) index: IndexOptions,
    pub(crate) writer: Mutex<Ids>,
    pub(crate) owners: Owners,
    pub(crate) sessions: RwLock<SessionTable>,
    pub(crate) history: RwLock<HistoryTable>,
    /// One more than the last replicated log position committed ([`Change::Commit`]); 0
    /// while none has been.
    committed: std::sync::atomic::AtomicU64,
}

impl InMemoryBackend {
    /// An empty backend for embeddings of `dims`, with the default index (int8, rescored).
    pub fn new(dims: usize) -> Self {
        Self::with_index(dims, IndexOptions::default())
    }

    /// An empty backend for embeddings of `dims` whose searches use `index`.
    pub fn with_index(dims: usize, index: IndexOptions) -> Self {
        InMemoryBackend {
            dims,
            index,
            writer: Mutex::new(Ids::default()),
            owners: Owners::new(dims, index),
            sessions: RwLock::new(SessionTable::new()),
            history: RwLock::new(HistoryTable::new()),
            committed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn check_dims(&self, record: &MemoryRecord) -> Result<()> {
        self.check_vector(&record.embedding)
    }

    fn check_vector(&self, embedding: &[f32]) -> Result<()> {
        if embedding.len() != self.dims {
            return Err(Error::invalid(
                "embedding",
                format!(
                    "has {} dimensions; this backend holds {}",
                    embedding.len(),
                    self.dims
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_scope(scope: &Scope, memory: &Memory) -> Result<()> {
        if scope.owner().owns(memory) {
            Ok(())
        } else {
            Err(Error::invalid(
                "user_id",
                format!(
                    "memory {} belongs to user `{}`, not to the scope's user `{}`",
                    memory.id,
                    memory.user_id,
                    scope.user_id()
                ),
            ))
        }
    }

    /// Checks that `change` can be applied as it stands: what [`apply`](Self::apply) would
    /// refuse. A durable backend calls it before logging the change.
    pub fn validate(&self, change: &Change) -> Result<()> {
        self.validate_locked(&self.writer.lock(), change)
    }

    /// Applies `change` after [`validate`](Self::validate) accepted it; returns what an erase
    /// removed (zero for other changes).
    pub fn apply(&self, change: Change) -> Result<Erased> {
        let mut ids = self.writer.lock();
        self.validate_locked(&ids, &change)?;
        Ok(self.apply_locked(&mut ids, change))
    }

    /// Applies a replayed change leniently: after a repair an update may lack its insert, so
    /// inserts and updates both upsert and deleting a missing id is a no-op.
    pub fn apply_replayed(&self, change: Change) -> Result<Erased> {
        let mut ids = self.writer.lock();
        self.replay_locked(&mut ids, change)
    }

    fn replay_locked(&self, ids: &mut Ids, change: Change) -> Result<Erased> {
        match change {
            Change::Insert(record) | Change::Update(record) => {
                self.replay_write_locked(ids, record.memory, &record.embedding)
            }
            Change::Session(SessionChange::Turn { info, turn, window }) => {
                // A repaired log may have lost the first turn's owner: the later turn wins.
                let mut sessions = self.sessions.write();
                let key = info.key();
                if sessions
                    .info(&key)
                    .is_some_and(|i| i.user_id != info.user_id)
                {
                    sessions.apply(SessionChange::Delete(key))?;
                }
                sessions.apply(SessionChange::Turn { info, turn, window })?;
                Ok(Erased::default())
            }
            Change::Persist { records, session } => {
                for mut record in records {
                    record.memory.changed_by = By::Persist;
                    self.replay_locked(ids, Change::Insert(record))?;
                }
                self.replay_locked(ids, Change::Session(SessionChange::Put(session)))
            }
            other => {
                self.validate_locked(ids, &other)?;
                Ok(self.apply_locked(ids, other))
            }
        }
    }

    /// Replays an insert or update of `memory` with `embedding` given apart (a durable
    /// backend's replay decodes embeddings into one buffer per batch): as
    /// [`apply_replayed`](Self::apply_replayed) of the write.
    pub fn apply_replayed_write(&self, memory: Memory, embedding: &[f32]) -> Result<Erased> {
        let mut ids = self.writer.lock();
        self.replay_write_locked(&mut ids, memory, embedding)
    }

    fn replay_write_locked(
        &self,
        ids: &mut Ids,
        memory: Memory,
        embedding: &[f32],
    ) -> Result<Erased> {
        self.check_vector(embedding)?;
        let memory = Arc::new(memory);
        self.history.write().record_shared(&memory);
        // In place when the owner is unchanged, so insertion order survives a replay.
        let id = memory.id;
        let same_owner = ids.owner(id).is_some_and(|o| o.owns(&memory));
        if !(same_owner && self.owners.replace(ids, Arc::clone(&memory), embedding)) {
            self.owners.remove(ids, id);
            self.owners.insert(ids, memory, embedding);
        }
        Ok(Erased::default())
    }

    pub(crate) fn apply_locked(&self, ids: &mut Ids, change: Change) -> Erased {
        let histories = match &change {
            Change::EraseUser(owner) => self.history.read().owner_len(owner),
            _ => 0,
        };
        // Writes share their memory with the history; the rest are recorded as they come.
        let written = |record: MemoryRecord| {
            let memory = Arc::new(record.memory);
            self.history.write().record_shared(&memory);
            (memory, record.embedding)
        };
        if !matches!(
            change,
            Change::Insert(_) | Change::Update(_) | Change::Persist { .. }
        ) {
            self.history.write().record(&change);
        }
        match change {
            Change::Insert(record) => {
                let (memory, embedding) = written(record);
                self.owners.insert(ids, memory, &embedding);
            }
            Change::Update(record) => {
                let (memory, embedding) = written(record);
                if !self.owners.replace(ids, Arc::clone(&memory), &embedding) {
                    self.owners.insert(ids, memory, &embedding);
                }
            }
            Change::Delete { id, .. } => {
                self.owners.remove(ids, id);
            }
            Change::ReplaceUser { owner, records } => {
                self.owners.swap_owner(ids, &owner, records);
            }
            Change::Persist { records, session } => {
                for record in records {
                    let (memory, embedding) = written(record);
                    self.owners.insert(ids, memory, &embedding);
                }
                let _ = self.sessions.write().apply(SessionChange::Put(session));
            }
            Change::EraseUser(owner) => {
                let memories = self.owners.remove_owner(ids, &owner);
                let sessions = self.sessions.write().remove_owner(&owner);
                return Erased {
                    memories,
                    sessions,
                    histories,
                };
            }
            Change::Session(change) => {
                // Validated above; the table's own conflict check cannot fire.
                let _ = self.sessions.write().apply(change);
            }
            Change::Commit(seq) => {
                self.committed
                    .store(seq.saturating_add(1), std::sync::atomic::Ordering::SeqCst);
            }
        }
        Erased::default()
    }

    /// The last replicated log position committed, or `None` when no [`Change::Commit`] was
    /// ever applied (a backend outside a cluster).
    pub fn commit_mark(&self) -> Option<u64> {
        self.committed
            .load(std::sync::atomic::Ordering::SeqCst)
            .checked_sub(1)
    }

    /// The index searches use.
    pub fn index(&self) -> IndexOptions {
        self.index
    }

    /// Bytes the stored vectors take over every owner: the `f32` arrays plus their int8 copies
    /// (array lengths, not allocator capacity; records and maps are not counted).
    pub fn vector_bytes(&self) -> usize {
        self.owners
            .all()
            .iter()
            .map(|(_, slots)| slots.read().vector_bytes())
            .sum()
    }

    /// Replaces the versions of one memory (a durable backend replaying a compacted history).
    pub fn restore_history(&self, versions: Vec<Version>) {
        let _writes = self.writer.lock();
        self.history.write().set(versions);
    }

    /// Every memory's versions, for a durable backend rewriting its log.
    pub fn histories(&self) -> Vec<Vec<Version>> {
        let _writes = self.writer.lock();
        self.history.read().all()
    }

    /// Every record and session, for a durable backend rewriting its log.
    pub fn live(&self) -> (Vec<MemoryRecord>, Vec<SessionState>) {
        // Under the writer lock: no change is half-applied while this copies.
        let _writes = self.writer.lock();
        let mut records = Vec::with_capacity(self.owners.len());
        for (_, slots) in self.owners.all() {
            slots.read().scan(&mut |r| records.push(r.clone()));
        }
        let sessions_table = self.sessions.read();
        let mut sessions = Vec::with_capacity(sessions_table.len());
        sessions_table.visit_all(&mut |s| sessions.push(s.clone()));
        (records, sessions)
    }

    /// How many sessions are held, over every tenant.
    pub fn session_count(&self) -> usize {
        self.sessions.read().len()
    }

    /// How many memories have a history, over every tenant (one log record each once compacted).
    pub fn history_count(&self) -> usize {
        self.history.read().len()
    }
}

#[cfg(test)]
#[path = "backend_tests.rs"]
mod tests;
