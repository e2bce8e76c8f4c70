//! The in-memory store: one [`Slots`] index per owner, sessions in a [`SessionTable`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use coda_core::{
    Change, Erased, Error, Filter, Memory, MemoryBackend, MemoryId, MemoryRecord, Owner, Result,
    Scope, ScoredMemory, SessionChange, SessionInfo, SessionKey, SessionState, SessionTable,
};
use parking_lot::RwLock;

use crate::slots::Slots;

/// Everything the backend holds, behind one lock so erasing a user is one atomic step.
struct State {
    owners: HashMap<Arc<Owner>, Slots>,
    /// Which owner holds each memory, so a write by id finds its index without a scan.
    owner_of: HashMap<MemoryId, Arc<Owner>>,
    sessions: SessionTable,
    len: usize,
}

impl State {
    fn new() -> Self {
        State {
            owners: HashMap::new(),
            owner_of: HashMap::new(),
            sessions: SessionTable::new(),
            len: 0,
        }
    }

    fn slots(&self, owner: &Owner) -> Option<&Slots> {
        self.owners.get(owner)
    }

    fn insert(&mut self, record: MemoryRecord, dims: usize) {
        let owner = Owner::of(&record.memory);
        let key = match self.owners.get_key_value(&owner) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::new(owner),
        };
        self.owner_of.insert(record.memory.id, Arc::clone(&key));
        self.owners
            .entry(key)
            .or_insert_with(|| Slots::new(dims))
            .push(record);
        self.len += 1;
    }

    fn remove(&mut self, id: MemoryId) -> bool {
        let Some(owner) = self.owner_of.remove(&id) else {
            return false;
        };
        if let Some(slots) = self.owners.get_mut(&owner) {
            slots.remove(id);
            if slots.len() == 0 {
                self.owners.remove(&owner);
            }
        }
        self.len -= 1;
        true
    }

    fn remove_owner(&mut self, owner: &Owner) -> usize {
        let Some(slots) = self.owners.remove(owner) else {
            return 0;
        };
        for id in slots.ids() {
            self.owner_of.remove(&id);
        }
        self.len -= slots.len();
        slots.len()
    }
}

/// Backend `memory`: everything in process memory, exact search within one owner's index.
pub struct InMemoryBackend {
    dims: usize,
    state: RwLock<State>,
}

impl InMemoryBackend {
    /// An empty backend for embeddings of `dims`.
    pub fn new(dims: usize) -> Self {
        InMemoryBackend {
            dims,
            state: RwLock::new(State::new()),
        }
    }

    fn check_dims(&self, record: &MemoryRecord) -> Result<()> {
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
        let state = self.state.read();
        match change {
            Change::Insert(record) => {
                self.check_dims(record)?;
                if state.owner_of.contains_key(&record.memory.id) {
                    return Err(Error::invalid(
                        "id",
                        format!("memory {} already exists", record.memory.id),
                    ));
                }
            }
            Change::Update(record) => {
                self.check_dims(record)?;
                let id = record.memory.id;
                match state.owner_of.get(&id) {
                    Some(owner) if owner.owns(&record.memory) => {}
                    _ => return Err(Error::memory_not_found(id)),
                }
            }
            Change::Delete(_) | Change::EraseUser(_) => {}
            Change::ReplaceUser { owner, records } => {
                let mut seen = HashSet::with_capacity(records.len());
                for record in records {
                    self.check_dims(record)?;
                    let id = record.memory.id;
                    if !owner.owns(&record.memory) {
                        return Err(Error::invalid(
                            "user_id",
                            format!("memory {id} is not owned by `{}`", owner.user_id),
                        ));
                    }
                    if !seen.insert(id) {
                        return Err(Error::invalid("id", format!("memory {id} appears twice")));
                    }
                    // An id another owner holds would end up in two indexes.
                    if state.owner_of.get(&id).is_some_and(|o| **o != *owner) {
                        return Err(Error::invalid(
                            "id",
                            format!("memory {id} belongs to another user"),
                        ));
                    }
                }
            }
            Change::Session(SessionChange::Turn { info, .. }) => {
                if let Some(existing) = state.sessions.info(&info.key()) {
                    if existing.user_id != info.user_id {
                        return Err(Error::Conflict(format!(
                            "session `{}` belongs to another user",
                            info.session_id
                        )));
                    }
                }
            }
            Change::Session(_) => {}
        }
        Ok(())
    }

    /// Applies `change` after [`validate`](Self::validate) accepted it; returns what an erase
    /// removed (zero for other changes).
    pub fn apply(&self, change: Change) -> Result<Erased> {
        self.validate(&change)?;
        Ok(self.apply_unchecked(change))
    }

    /// Applies a replayed change leniently: after a repair an update may lack its insert, so
    /// inserts and updates both upsert and deleting a missing id is a no-op.
    pub fn apply_replayed(&self, change: Change) -> Result<Erased> {
        match change {
            Change::Insert(record) | Change::Update(record) => {
                self.check_dims(&record)?;
                let mut state = self.state.write();
                let id = record.memory.id;
                // In place when the owner is unchanged, so insertion order survives a replay.
                match state.owner_of.get(&id).cloned() {
                    Some(owner) if owner.owns(&record.memory) => {
                        if let Some(slots) = state.owners.get_mut(&owner) {
                            slots.replace(record);
                        }
                    }
                    _ => {
                        state.remove(id);
                        state.insert(record, self.dims);
                    }
                }
                Ok(Erased::default())
            }
            Change::Session(SessionChange::Turn { info, turn, window }) => {
                // A repaired log may have lost the first turn's owner: the later turn wins.
                let mut state = self.state.write();
                let key = info.key();
                if state
                    .sessions
                    .info(&key)
                    .is_some_and(|i| i.user_id != info.user_id)
                {
                    state.sessions.apply(SessionChange::Delete(key))?;
                }
                state
                    .sessions
                    .apply(SessionChange::Turn { info, turn, window })?;
                Ok(Erased::default())
            }
            other => self.apply(other),
        }
    }

    fn apply_unchecked(&self, change: Change) -> Erased {
        let mut state = self.state.write();
        match change {
            Change::Insert(record) => state.insert(record, self.dims),
            Change::Update(record) => {
                let id = record.memory.id;
                if let Some(owner) = state.owner_of.get(&id).cloned() {
                    if let Some(slots) = state.owners.get_mut(&owner) {
                        slots.replace(record);
                    }
                } else {
                    state.insert(record, self.dims);
                }
            }
            Change::Delete(id) => {
                state.remove(id);
            }
            Change::ReplaceUser { owner, records } => {
                state.remove_owner(&owner);
                for record in records {
                    state.insert(record, self.dims);
                }
            }
            Change::EraseUser(owner) => {
                let memories = state.remove_owner(&owner);
                let sessions = state.sessions.remove_owner(&owner);
                return Erased { memories, sessions };
            }
            Change::Session(change) => {
                // Validated above; the table's own conflict check cannot fire.
                let _ = state.sessions.apply(change);
            }
        }
        Erased::default()
    }

    /// Every record and session, for a durable backend rewriting its log.
    pub fn live(&self) -> (Vec<MemoryRecord>, Vec<SessionState>) {
        let state = self.state.read();
        let mut records = Vec::with_capacity(state.len);
        for slots in state.owners.values() {
            slots.scan(&mut |r| records.push(r.clone()));
        }
        let mut sessions = Vec::with_capacity(state.sessions.len());
        state.sessions.visit_all(&mut |s| sessions.push(s.clone()));
        (records, sessions)
    }

    /// How many sessions are held, over every tenant.
    pub fn session_count(&self) -> usize {
        self.state.read().sessions.len()
    }
}

impl MemoryBackend for InMemoryBackend {
    fn insert(&self, scope: &Scope, record: MemoryRecord) -> Result<()> {
        Self::check_scope(scope, &record.memory)?;
        self.apply(Change::Insert(record)).map(drop)
    }

    fn get(&self, scope: &Scope, id: MemoryId) -> Result<Option<MemoryRecord>> {
        let state = self.state.read();
        Ok(state
            .slots(scope.owner())
            .and_then(|slots| slots.get(id))
            .filter(|r| scope.matches(&r.memory)))
    }

    fn update(&self, scope: &Scope, record: MemoryRecord) -> Result<()> {
        let id = record.memory.id;
        if self.get(scope, id)?.is_none() || !scope.owner().owns(&record.memory) {
            return Err(Error::memory_not_found(id));
        }
        self.apply(Change::Update(record)).map(drop)
    }

    fn delete(&self, scope: &Scope, id: MemoryId) -> Result<bool> {
        let mut state = self.state.write();
        let inside = state
            .slots(scope.owner())
            .and_then(|slots| slots.memory(id))
            .is_some_and(|m| scope.matches(m));
        Ok(inside && state.remove(id))
    }

    fn list(
        &self,
        scope: &Scope,
        offset: usize,
        limit: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Memory>> {
        let state = self.state.read();
        Ok(state
            .slots(scope.owner())
            .map(|slots| slots.list(scope, offset, limit, filter))
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
        let state = self.state.read();
        Ok(state
            .slots(scope.owner())
            .map(|slots| slots.search(scope, query, limit, min_similarity, filter))
            .unwrap_or_default())
    }

    fn len(&self) -> Result<usize> {
        Ok(self.state.read().len)
    }

    fn count(&self, scope: &Scope) -> Result<usize> {
        Ok(self.state.read().slots(scope.owner()).map_or(0, Slots::len))
    }

    fn owners(&self, tenant: &str) -> Result<Vec<(Owner, usize)>> {
        let state = self.state.read();
        Ok(state
            .owners
            .iter()
            .filter(|(owner, _)| owner.tenant == tenant)
            .map(|(owner, slots)| ((**owner).clone(), slots.len()))
            .collect())
    }

    fn scan(&self, visit: &mut dyn FnMut(&MemoryRecord)) -> Result<()> {
        let state = self.state.read();
        for slots in state.owners.values() {
            slots.scan(visit);
        }
        Ok(())
    }

    fn scan_owner(&self, scope: &Scope, visit: &mut dyn FnMut(&MemoryRecord)) -> Result<()> {
        if let Some(slots) = self.state.read().slots(scope.owner()) {
            slots.scan(visit);
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

    fn session(&self, key: &SessionKey) -> Result<Option<SessionInfo>> {
        Ok(self.state.read().sessions.info(key))
    }

    fn session_state(&self, key: &SessionKey) -> Result<Option<SessionState>> {
        Ok(self.state.read().sessions.state(key))
    }

    fn sessions(&self, tenant: &str, visit: &mut dyn FnMut(&SessionState)) -> Result<()> {
        self.state.read().sessions.visit(tenant, visit);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_backend_conformance_kit() {
        coda_core::testkit::backend_conformance(&|| Arc::new(InMemoryBackend::new(8)));
    }

    #[test]
    fn wrong_dimensions_are_refused() {
        let backend = InMemoryBackend::new(8);
        assert!(backend
            .search(&Scope::default(), &[1.0; 4], 1, 0.0, None)
            .is_err());
    }
}
