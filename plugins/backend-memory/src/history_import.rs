//! Importing a memory's history (an export's `history` line): checked like a change, under the
//! writer lock, so an id another owner holds never gets a second owner's history.

use coda_core::{Error, Result, Scope, Version};

use crate::backend::InMemoryBackend;
use crate::owners::Ids;

impl InMemoryBackend {
    /// Checks that `versions` can become the history of one memory of `scope`'s owner: not
    /// empty, all of one id and of that owner, an id no other owner holds (as a memory or a
    /// history). A durable backend calls it before logging the history.
    pub fn check_history(&self, scope: &Scope, versions: &[Version]) -> Result<()> {
        let ids = self.writer.lock();
        self.check_history_locked(&ids, scope, versions)
    }

    fn check_history_locked(&self, ids: &Ids, scope: &Scope, versions: &[Version]) -> Result<()> {
        let Some(first) = versions.first() else {
            return Err(Error::invalid("versions", "must not be empty"));
        };
        let id = first.memory.id;
        let owner = scope.owner();
        if versions
            .iter()
            .any(|v| v.memory.id != id || !owner.owns(&v.memory))
        {
            return Err(Error::invalid(
                "versions",
                "must all be of one memory of the scope's user",
            ));
        }
        let held_elsewhere = ids.owner(id).is_some_and(|o| **o != *owner)
            || self.history.read().owner_of(id).is_some_and(|o| o != owner);
        if held_elsewhere {
            return Err(Error::invalid(
                "id",
                format!("memory {id} belongs to another user"),
            ));
        }
        Ok(())
    }

    /// Checks and stores `versions` as one memory's history, atomically among writers.
    pub fn import_history_checked(&self, scope: &Scope, versions: Vec<Version>) -> Result<()> {
        let ids = self.writer.lock();
        self.check_history_locked(&ids, scope, &versions)?;
        self.history.write().set(versions);
        Ok(())
    }
}
