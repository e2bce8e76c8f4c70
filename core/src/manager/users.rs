//! Users: listing, and erasure of everything a user has (a deletion request under privacy law).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Scoped;
use crate::bus::Dedup;
use crate::event::{EventBody, EventScope};
use crate::{Error, Result};

/// A user as `GET /users` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserListing {
    /// The user's id.
    pub user_id: String,
    /// Long-term memories it has.
    pub memories: usize,
    /// Sessions it has.
    pub sessions: usize,
}

/// What erasing a user removed, as `DELETE /users/{uid}` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UserErasure {
    /// Memories erased.
    pub memories_deleted: usize,
    /// Sessions (with their turns) erased.
    pub sessions_deleted: usize,
    /// Snapshots erased.
    pub snapshots_deleted: usize,
}

impl Scoped<'_> {
    /// A page of the users of the scope's tenant that have memories or sessions, by id.
    pub fn list_users(&self, offset: usize, limit: usize) -> Result<Vec<UserListing>> {
        super::memories::check_limit(limit)?;
        let m = self.manager;
        let tenant = self.scope.tenant();
        let mut users: BTreeMap<String, UserListing> = BTreeMap::new();
        fn entry<'u>(
            users: &'u mut BTreeMap<String, UserListing>,
            id: &str,
        ) -> &'u mut UserListing {
            users.entry(id.to_owned()).or_insert_with(|| UserListing {
                user_id: id.to_owned(),
                memories: 0,
                sessions: 0,
            })
        }
        for (owner, count) in m.backend.owners(tenant)? {
            entry(&mut users, &owner.user_id).memories = count;
        }
        m.backend.sessions(tenant, &mut |state| {
            entry(&mut users, &state.info.user_id).sessions += 1;
        })?;
        Ok(users.into_values().skip(offset).take(limit).collect())
    }

    /// The scope's tenant's totals: `(memories, sessions)` over all its users.
    pub fn tenant_totals(&self) -> Result<(usize, usize)> {
        let m = self.manager;
        let tenant = self.scope.tenant();
        let memories = m.backend.owners(tenant)?.into_iter().map(|(_, n)| n).sum();
        let mut sessions = 0;
        m.backend.sessions(tenant, &mut |_| sessions += 1)?;
        Ok((memories, sessions))
    }

    /// Erases the scope's user: every memory, session (with its turns) and snapshot, durably;
    /// publishes `user_delete`. A user with nothing stored (not even the history of a deleted
    /// memory) is not found.
    pub fn erase_user(&self) -> Result<UserErasure> {
        let m = self.manager;
        let user = self.scope.whole_user();
        let _owner = m.owner_locks.lock(user.owner());
        let erased = m.backend.erase_owner(&user)?;
        m.indexes.forget(user.owner());
        let snapshots = m.erase_snapshots(&user)?;
        if erased.memories == 0 && erased.sessions == 0 && erased.histories == 0 && snapshots == 0 {
            return Err(Error::user_not_found(user.user_id()));
        }
        let erasure = UserErasure {
            memories_deleted: erased.memories,
            sessions_deleted: erased.sessions,
            snapshots_deleted: snapshots,
        };
        m.bus.emit_in(
            &EventScope::of(&user),
            &EventBody::UserDelete {
                memories_deleted: erasure.memories_deleted,
                sessions_deleted: erasure.sessions_deleted,
                snapshots_deleted: erasure.snapshots_deleted,
            },
            Dedup::Skip,
        );
        Ok(erasure)
    }
}
