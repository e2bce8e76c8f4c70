//! Storing what an export holds (SPEC §13): a memory, a history or a session exactly as the
//! file has it, unless it is already there exactly so. [`crate::export`] reads the file and
//! calls these; they keep the per-owner indexes and expiry schedule in step and publish
//! `memory_store`/`memory_update` like any other write.

use super::{MemoryManager, Scoped};
use crate::history::Version;
use crate::model::MemoryRecord;
use crate::session::{SessionChange, SessionState};
use crate::{Error, Result};

/// What importing one item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// It was not there.
    Added,
    /// It was there, different.
    Updated,
    /// It was there exactly so; nothing was written.
    Unchanged,
}

impl MemoryManager {
    /// Runs `apply`, which adds at most `adding` memories to `tenant`, if the tenant's
    /// `max_memories` allows them all; otherwise a quota error and nothing runs.
    pub fn within_quota<T>(
        &self,
        tenant: &str,
        adding: usize,
        apply: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.quotas
            .within(self.backend.as_ref(), tenant, adding, apply)
    }
}

impl Scoped<'_> {
    /// Stores `record` (owned by the scope's user) as it is, id and timestamps included:
    /// added when its id is new, replaced when the stored memory differs. An id that another
    /// owner holds is an invalid `id` (the caller picks another).
    pub fn import_memory(&self, record: MemoryRecord) -> Result<Imported> {
        let m = self.manager;
        let scope = self.scope.whole_user();
        if !scope.owner().owns(&record.memory) {
            return Err(Error::invalid(
                "user_id",
                "the memory is not owned by the scope's user",
            ));
        }
        let _owner = m.owner_locks.lock(scope.owner());
        match m.backend.get(&scope, record.memory.id)? {
            Some(old) if old == record => Ok(Imported::Unchanged),
            Some(old) => {
                let memory = record.memory.clone();
                m.backend.update(&scope, record)?;
                m.indexes.updated(&old.memory, &memory);
                self.updated(&old.memory, &memory);
                Ok(Imported::Updated)
            }
            None => {
                let memory = record.memory.clone();
                m.backend.insert(&scope, record)?;
                self.stored(&memory);
                Ok(Imported::Added)
            }
        }
    }

    /// Stores `versions` (of one memory of the scope's user) as that memory's history,
    /// replacing what the backend derived. An [`Error::Unavailable`] from a backend that cannot
    /// import history.
    pub fn import_history(&self, versions: Vec<Version>) -> Result<Imported> {
        let m = self.manager;
        let scope = self.scope.whole_user();
        let Some(last) = versions.last() else {
            return Err(Error::invalid("versions", "must not be empty"));
        };
        let id = last.memory.id;
        let _owner = m.owner_locks.lock(scope.owner());
        let existing = m.backend.history(&scope, id)?;
        if existing.as_ref() == Some(&versions) {
            return Ok(Imported::Unchanged);
        }
        m.backend.import_history(&scope, versions)?;
        Ok(if existing.is_some() {
            Imported::Updated
        } else {
            Imported::Added
        })
    }

    /// Stores `state` (a session of the scope's user) with its window as it is.
    pub fn import_session(&self, state: SessionState) -> Result<Imported> {
        let m = self.manager;
        if !self.scope.owner().eq(&state.info.owner()) {
            return Err(Error::invalid(
                "user_id",
                "the session is not owned by the scope's user",
            ));
        }
        let key = state.info.key();
        let _session = m.session_locks.lock(&key);
        let existing = m.backend.session_state(&key)?;
        match existing {
            Some(old) if old == state => Ok(Imported::Unchanged),
            Some(old) if old.info.user_id != state.info.user_id => Err(Error::Conflict(format!(
                "session `{}` belongs to another user",
                state.info.session_id
            ))),
            old => {
                m.backend.apply_session(SessionChange::Put(state))?;
                Ok(if old.is_some() {
                    Imported::Updated
                } else {
                    Imported::Added
                })
            }
        }
    }
}
