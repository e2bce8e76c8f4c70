//! What a change must satisfy before it is applied: the rules a durable backend checks before
//! it logs the change, so the log never holds a change the live set would refuse.

use std::collections::HashSet;

use coda_core::{Change, Error, Result, SessionChange};

use crate::backend::InMemoryBackend;
use crate::owners::Ids;

impl InMemoryBackend {
    pub(crate) fn validate_locked(&self, ids: &Ids, change: &Change) -> Result<()> {
        match change {
            Change::Insert(record) => {
                self.check_dims(record)?;
                if ids.owner(record.memory.id).is_some() {
                    return Err(Error::invalid(
                        "id",
                        format!("memory {} already exists", record.memory.id),
                    ));
                }
            }
            Change::Update(record) => {
                self.check_dims(record)?;
                let id = record.memory.id;
                match ids.owner(id) {
                    Some(owner) if owner.owns(&record.memory) => {}
                    _ => return Err(Error::memory_not_found(id)),
                }
            }
            Change::Delete { .. } | Change::EraseUser(_) | Change::Commit(_) => {}
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
                    if ids.owner(id).is_some_and(|o| **o != *owner) {
                        return Err(Error::invalid(
                            "id",
                            format!("memory {id} belongs to another user"),
                        ));
                    }
                }
            }
            Change::Persist { records, session } => {
                let mut seen = HashSet::with_capacity(records.len());
                for record in records {
                    self.check_dims(record)?;
                    let id = record.memory.id;
                    if !session.info.owner().owns(&record.memory) {
                        return Err(Error::invalid(
                            "user_id",
                            format!("memory {id} is not owned by the session's user"),
                        ));
                    }
                    if ids.owner(id).is_some() || !seen.insert(id) {
                        return Err(Error::invalid("id", format!("memory {id} already exists")));
                    }
                }
            }
            Change::Session(SessionChange::Turn { info, .. }) => {
                if let Some(existing) = self.sessions.read().info(&info.key()) {
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
}
