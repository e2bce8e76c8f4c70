//! [`MemoryBackend`] over the store: reads lock only the owner's index; writes go through
//! [`InMemoryBackend::apply`].

use coda_core::{
    By, Change, Erased, Error, Filter, Memory, MemoryBackend, MemoryId, MemoryRecord, Owner,
    Result, Scope, ScoredMemory, SessionChange, SessionInfo, SessionKey, SessionState, Version,
};

use crate::InMemoryBackend;

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
