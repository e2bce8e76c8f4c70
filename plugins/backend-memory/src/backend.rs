//! The in-memory store: one index per owner (see `owners.rs`), sessions in a [`SessionTable`].

use coda_core::{
    By, Change, Erased, Error, Filter, HistoryTable, Memory, MemoryBackend, MemoryId, MemoryRecord,
    Owner, Result, Scope, ScoredMemory, SessionChange, SessionInfo, SessionKey, SessionState,
    SessionTable, Version,
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
    dims: usize,
    index: IndexOptions,
    pub(crate) writer: Mutex<Ids>,
    owners: Owners,
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
        if record.embedding.len() != self.dims {
            return Err(Error::invalid(
                "embedding",
                format!(
                    "has {} dimensions; this backend holds {}",
                    record.embedding.len(),
                    self.dims
                ),
            ));
        }
        Ok(())
    }

    fn check_scope(scope: &Scope, memory: &Memory) -> Result<()> {
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
                self.check_dims(&record)?;
                self.history.write().record(&Change::Update(record.clone()));
                // In place when the owner is unchanged, so insertion order survives a replay.
                let id = record.memory.id;
                let same_owner = ids.owner(id).is_some_and(|o| o.owns(&record.memory));
                if !(same_owner && self.owners.replace(ids, record.clone())) {
                    self.owners.remove(ids, id);
                    self.owners.insert(ids, record);
                }
                Ok(Erased::default())
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

    fn apply_locked(&self, ids: &mut Ids, change: Change) -> Erased {
        let histories = match &change {
            Change::EraseUser(owner) => self.history.read().owner_len(owner),
            _ => 0,
        };
        self.history.write().record(&change);
        match change {
            Change::Insert(record) => self.owners.insert(ids, record),
            Change::Update(record) => {
                if !self.owners.replace(ids, record.clone()) {
                    self.owners.insert(ids, record);
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
                    self.owners.insert(ids, record);
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
        let table = self.history.read();
        let mut out = Vec::with_capacity(table.len());
        table.visit(&mut |versions| out.push(versions.to_vec()));
        out
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

impl MemoryBackend for InMemoryBackend {
    /// Everything is in memory: no call waits on I/O.
    fn may_block(&self) -> bool {
        false
    }

    fn insert(&self, scope: &Scope, record: MemoryRecord) -> Result<()> {
        Self::check_scope(scope, &record.memory)?;
        self.apply(Change::Insert(record)).map(drop)
    }

    fn get(&self, scope: &Scope, id: MemoryId) -> Result<Option<MemoryRecord>> {
        Ok(self
            .owners
            .get(scope.owner())
            .and_then(|slots| slots.read().get(id))
            .filter(|r| scope.matches(&r.memory)))
    }

    fn update(&self, scope: &Scope, record: MemoryRecord) -> Result<()> {
        let id = record.memory.id;
        if self.get(scope, id)?.is_none() || !scope.owner().owns(&record.memory) {
            return Err(Error::memory_not_found(id));
        }
        self.apply(Change::Update(record)).map(drop)
    }

    fn delete(&self, scope: &Scope, id: MemoryId, by: By) -> Result<bool> {
        let mut ids = self.writer.lock();
        let inside = self
            .owners
            .get(scope.owner())
            .is_some_and(|slots| slots.read().memory(id).is_some_and(|m| scope.matches(m)));
        if inside {
            let at = coda_core::model::timestamp::now();
            self.apply_locked(&mut ids, Change::Delete { id, by, at });
        }
        Ok(inside)
    }

    fn history(&self, scope: &Scope, id: MemoryId) -> Result<Option<Vec<Version>>> {
        Ok(self.history.read().get(scope, id))
    }

    fn list(
        &self,
        scope: &Scope,
        offset: usize,
        limit: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Memory>> {
        Ok(self
            .owners
            .get(scope.owner())
            .map(|slots| slots.read().list(scope, offset, limit, filter))
            .unwrap_or_default())
    }

    fn search(
        &self,
        scope: &Scope,
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
    ) -> Result<Vec<ScoredMemory>> {
        if query.len() != self.dims {
            return Err(Error::invalid(
                "query",
                format!("has {} dimensions; expected {}", query.len(), self.dims),
            ));
        }
        Ok(self
            .owners
            .get(scope.owner())
            .map(|slots| {
                slots
                    .read()
                    .search(scope, query, limit, min_similarity, filter)
            })
            .unwrap_or_default())
    }

    fn len(&self) -> Result<usize> {
        Ok(self.owners.len())
    }

    fn count(&self, scope: &Scope) -> Result<usize> {
        Ok(self
            .owners
            .get(scope.owner())
            .map_or(0, |slots| slots.read().len()))
    }

    fn owners(&self, tenant: &str) -> Result<Vec<(Owner, usize)>> {
        Ok(self
            .owners
            .all()
            .into_iter()
            .filter(|(owner, _)| owner.tenant == tenant)
            .map(|(owner, slots)| ((*owner).clone(), slots.read().len()))
            .filter(|(_, n)| *n > 0)
            .collect())
    }

    fn scan(&self, visit: &mut dyn FnMut(&MemoryRecord)) -> Result<()> {
        for (_, slots) in self.owners.all() {
            slots.read().scan(visit);
        }
        Ok(())
    }

    fn scan_owner(&self, scope: &Scope, visit: &mut dyn FnMut(&MemoryRecord)) -> Result<()> {
        if let Some(slots) = self.owners.get(scope.owner()) {
            slots.read().scan(visit);
        }
        Ok(())
    }

    fn replace_owner(&self, scope: &Scope, records: Vec<MemoryRecord>) -> Result<()> {
        self.apply(Change::ReplaceUser {
            owner: scope.owner().clone(),
            records,
        })
        .map(drop)
    }

    fn erase_owner(&self, scope: &Scope) -> Result<Erased> {
        self.apply(Change::EraseUser(scope.owner().clone()))
    }

    fn apply_session(&self, change: SessionChange) -> Result<()> {
        self.apply(Change::Session(change)).map(drop)
    }

    fn persist(
        &self,
        scope: &Scope,
        records: Vec<MemoryRecord>,
        session: SessionState,
    ) -> Result<()> {
        if let Some(record) = records.iter().find(|r| !scope.owner().owns(&r.memory)) {
            Self::check_scope(scope, &record.memory)?;
        }
        self.apply(Change::Persist { records, session }).map(drop)
    }

    fn commit(&self, seq: u64) -> Result<()> {
        self.apply(Change::Commit(seq)).map(drop)
    }

    fn committed(&self) -> Result<u64> {
        Ok(self.commit_mark().unwrap_or(0))
    }

    fn session(&self, key: &SessionKey) -> Result<Option<SessionInfo>> {
        Ok(self.sessions.read().info(key))
    }

    fn session_state(&self, key: &SessionKey) -> Result<Option<SessionState>> {
        Ok(self.sessions.read().state(key))
    }

    fn sessions(&self, tenant: &str, visit: &mut dyn FnMut(&SessionState)) -> Result<()> {
        self.sessions.read().visit(tenant, visit);
        Ok(())
    }

    fn owner_sessions(&self, scope: &Scope, visit: &mut dyn FnMut(&SessionState)) -> Result<()> {
        self.sessions.read().visit_owner(scope.owner(), visit);
        Ok(())
    }

    fn owner_histories(&self, scope: &Scope, visit: &mut dyn FnMut(&[Version])) -> Result<()> {
        self.history.read().visit_owner(scope.owner(), visit);
        Ok(())
    }

    fn import_history(&self, scope: &Scope, versions: Vec<Version>) -> Result<()> {
        self.import_history_checked(scope, versions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn passes_the_backend_conformance_kit() {
        coda_core::testkit::backend_conformance(&|| Arc::new(InMemoryBackend::new(8)));
    }

    #[test]
    fn passes_the_backend_conformance_kit_with_the_exact_index() {
        coda_core::testkit::backend_conformance(&|| {
            Arc::new(InMemoryBackend::with_index(8, IndexOptions::exact()))
        });
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_write_holding_one_users_index_never_blocks_another_users_search() {
        let backend = Arc::new(InMemoryBackend::new(2));
        let (alice, bob) = (Scope::user("alice").unwrap(), Scope::user("bob").unwrap());
        for (scope, text) in [(&alice, "a"), (&bob, "b")] {
            let metadata = coda_core::Metadata {
                source_type: "fact".into(),
                importance: 0.5,
                timestamp: chrono::Utc::now(),
                topics: Vec::new(),
                extra: Default::default(),
            };
            let memory = Memory::new(uuid::Uuid::new_v4(), text, metadata).in_scope(scope);
            let record = MemoryRecord {
                memory,
                embedding: vec![1.0, 0.0],
            };
            backend.insert(scope, record).unwrap();
        }
        // Hold bob's index as a long write into it would (growing it, rehashing its map).
        let bobs = backend.owners.get(bob.owner()).unwrap();
        let _writing = bobs.write();
        let (done, wait) = std::sync::mpsc::channel();
        let reader = Arc::clone(&backend);
        std::thread::spawn(move || {
            let hits = reader.search(&alice, &[1.0, 0.0], 5, -1.0, None).unwrap();
            let _ = done.send(hits.len());
        });
        let found = wait
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("alice's search finishes while bob's index is locked");
        assert_eq!(found, 1);
    }

    #[test]
    fn wrong_dimensions_are_refused() {
        let backend = InMemoryBackend::new(8);
        assert!(backend
            .search(&Scope::default(), &[1.0; 4], 1, 0.0, None)
            .is_err());
    }
}
