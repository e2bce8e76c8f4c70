//! Every version of every memory (SPEC §10): what backends keep so `GET /memories/{id}/history`
//! can answer, even after a delete.
//!
//! A backend feeds [`HistoryTable::record`] every [`Change`] it applies, in order; the table
//! derives the versions from the changes alone (the time and author of each version travel in
//! them), so a durable backend replaying its log rebuilds exactly the same history. One table per
//! backend, by memory id with a list of ids per owner, so erasing a user drops its history with it.

use std::collections::{hash_map, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use smallvec::SmallVec;

use crate::backend::Change;
use crate::model::{timestamp, By, IdMap, Memory, MemoryId, MemoryRecord};
use crate::scope::{Owner, Scope};

mod version;
pub use version::{Action, Version};

/// One version as the table keeps it: the memory is shared with the backend's live record
/// (and with the versions before and after it that did not change it), so a backend holding a
/// million memories does not hold a second copy of each for its history.
#[derive(Debug)]
struct Stored {
    version: u32,
    action: Action,
    at: DateTime<Utc>,
    by: By,
    memory: Arc<Memory>,
}

impl Stored {
    fn is_live(&self) -> bool {
        !matches!(self.action, Action::Delete | Action::Expire)
    }

    fn to_version(&self) -> Version {
        Version {
            version: self.version,
            action: self.action,
            at: self.at,
            by: self.by,
            memory: Memory::clone(&self.memory),
        }
    }
}

fn to_versions(stored: &[Stored]) -> Vec<Version> {
    stored.iter().map(Stored::to_version).collect()
}

/// The versions of one memory: one inline, as most memories have (no allocation per memory).
type Versions = SmallVec<[Stored; 1]>;

/// One memory's history and the owner it was recorded under.
#[derive(Debug)]
struct History {
    owner: Arc<Owner>,
    versions: Versions,
}

/// Every version of every memory a backend has held, by memory id, with each owner's ids.
///
/// A write looks its memory up once, by id; only a memory's first version touches its owner's
/// list. A memory seen under a second owner (only a repaired log or an import can do that)
/// starts a new history there: the first owner's versions are dropped, never shown to the
/// second.
#[derive(Debug, Default)]
pub struct HistoryTable {
    memories: IdMap<History>,
    /// The ids each owner's history holds, so erasing or exporting a user reads only its own.
    owners: HashMap<Arc<Owner>, Vec<MemoryId>>,
    /// The owner written last, to find its key again without building one.
    last_owner: Option<Arc<Owner>>,
}

impl HistoryTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an insert or update of `record`, as [`record`](Self::record) does for
    /// `Change::Update`, without a change to build (a replay would clone the record for it).
    pub fn record_write(&mut self, record: &MemoryRecord) {
        self.written(&record.memory, None, || Arc::new(record.memory.clone()));
    }

    /// As [`record_write`](Self::record_write) for a memory the backend keeps behind an `Arc`:
    /// the version shares it rather than copying it.
    pub fn record_shared(&mut self, memory: &Arc<Memory>) {
        self.written(memory, None, || Arc::clone(memory));
    }

    /// Records the versions `change` makes. Call it with every change applied, in order.
    pub fn record(&mut self, change: &Change) {
        match change {
            Change::Insert(record) | Change::Update(record) => self.record_write(record),
            Change::Delete { id, by, at } => {
                let action = match by {
                    By::Expiry => Action::Expire,
                    _ => Action::Delete,
                };
                self.ended(*id, action, *by, *at);
            }
            Change::ReplaceUser { owner, records } => {
                let at = timestamp::now();
                let kept: std::collections::HashSet<MemoryId> =
                    records.iter().map(|r| r.memory.id).collect();
                let gone: Vec<MemoryId> = self
                    .owners
                    .get(owner)
                    .into_iter()
                    .flatten()
                    .filter(|id| {
                        !kept.contains(id)
                            && self
                                .memories
                                .get(id)
                                .and_then(|h| h.versions.last())
                                .is_some_and(Stored::is_live)
                    })
                    .copied()
                    .collect();
                for id in gone {
                    self.ended(id, Action::Delete, By::Api, at);
                }
                for record in records {
                    let memory = &record.memory;
                    self.written(memory, Some(at), || Arc::new(memory.clone()));
                }
            }
            Change::EraseUser(owner) => {
                for id in self.owners.remove(owner).into_iter().flatten() {
                    self.memories.remove(&id);
                }
                if self.last_owner.as_deref() == Some(owner) {
                    self.last_owner = None;
                }
            }
            Change::Persist { records, .. } => {
                for record in records {
                    self.record_write(record);
                }
            }
            Change::Session(_) | Change::Commit(_) => {}
        }
    }

    /// A memory was stored: a new version unless it equals the last one. `share` gives the
    /// memory to keep (called only when a version is added).
    fn written(
        &mut self,
        memory: &Memory,
        at: Option<DateTime<Utc>>,
        share: impl FnOnce() -> Arc<Memory>,
    ) {
        let stored = |action, versions: usize| Stored {
            version: versions as u32 + 1,
            action,
            at: at.unwrap_or_else(|| memory.changed_at()),
            by: memory.changed_by,
            memory: share(),
        };
        match self.memories.entry(memory.id) {
            hash_map::Entry::Occupied(mut slot) if slot.get().owner.owns(memory) => {
                let versions = &mut slot.get_mut().versions;
                let action = match versions.last() {
                    Some(last) if last.is_live() && *last.memory == *memory => return,
                    Some(last) if last.is_live() => {
                        if last.memory.superseded_by.is_none() && memory.superseded_by.is_some() {
                            Action::Supersede
                        } else {
                            Action::Update
                        }
                    }
                    _ => Action::Add,
                };
                let version = stored(action, versions.len());
                versions.push(version);
            }
            hash_map::Entry::Occupied(mut slot) => {
                // Seen under another owner: that owner's versions go, and this one starts anew.
                let owner = owner_key(&mut self.last_owner, &self.owners, memory);
                let fresh = History {
                    owner: Arc::clone(&owner),
                    versions: smallvec::smallvec![stored(Action::Add, 0)],
                };
                let before = std::mem::replace(slot.get_mut(), fresh).owner;
                drop_id(&mut self.owners, &before, memory.id);
                add_id(&mut self.owners, owner, memory.id);
            }
            hash_map::Entry::Vacant(slot) => {
                let owner = owner_key(&mut self.last_owner, &self.owners, memory);
                slot.insert(History {
                    owner: Arc::clone(&owner),
                    versions: smallvec::smallvec![stored(Action::Add, 0)],
                });
                add_id(&mut self.owners, owner, memory.id);
            }
        }
    }

    /// A memory left: a version with the last content.
    fn ended(&mut self, id: MemoryId, action: Action, by: By, at: DateTime<Utc>) {
        let Some(versions) = self.memories.get_mut(&id).map(|h| &mut h.versions) else {
            return;
        };
        let Some(last) = versions.last().filter(|v| v.is_live()) else {
            return;
        };
        let memory = Arc::clone(&last.memory);
        versions.push(Stored {
            version: versions.len() as u32 + 1,
            action,
            at,
            by,
            memory,
        });
    }

    /// The versions of `id`, oldest first, if it was ever seen inside `scope` (its last version
    /// decides, so a memory narrowed to an agent stays that agent's).
    pub fn get(&self, scope: &Scope, id: MemoryId) -> Option<Vec<Version>> {
        let history = self
            .memories
            .get(&id)
            .filter(|h| *h.owner == *scope.owner())?;
        let last = history.versions.last()?;
        scope
            .matches(&last.memory)
            .then(|| to_versions(&history.versions))
    }

    /// Replaces the versions of one memory wholesale (a compacted log's history record).
    pub fn set(&mut self, versions: Vec<Version>) {
        let Some(last) = versions.last() else {
            return;
        };
        let owner = Owner::of(&last.memory);
        let id = last.memory.id;
        let stored: Versions = versions
            .into_iter()
            .map(|mut v| {
                // `changed_by` is not serialised: each version's author says it.
                if v.is_live() {
                    v.memory.changed_by = v.by;
                }
                Stored {
                    version: v.version,
                    action: v.action,
                    at: v.at,
                    by: v.by,
                    memory: Arc::new(v.memory),
                }
            })
            .collect();
        let key = match self.owners.get_key_value(&owner) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::new(owner),
        };
        let history = History {
            owner: Arc::clone(&key),
            versions: stored,
        };
        match self.memories.insert(id, history) {
            Some(before) if before.owner == key => {}
            before => {
                if let Some(before) = before {
                    drop_id(&mut self.owners, &before.owner, id);
                }
                add_id(&mut self.owners, key, id);
            }
        }
    }

    /// Visits the versions of every memory, one memory at a time.
    pub fn visit(&self, visit: &mut dyn FnMut(&[Version])) {
        for history in self.memories.values() {
            visit(&to_versions(&history.versions));
        }
    }

    /// The versions of every memory, one list per memory (what [`visit`](Self::visit) shows,
    /// without a second copy).
    pub fn all(&self) -> Vec<Vec<Version>> {
        let mut out = Vec::with_capacity(self.memories.len());
        for history in self.memories.values() {
            out.push(to_versions(&history.versions));
        }
        out
    }

    /// Visits the versions of every memory of `owner`, one memory at a time, by memory id (so
    /// an export of the same state is the same file).
    pub fn visit_owner(&self, owner: &Owner, visit: &mut dyn FnMut(&[Version])) {
        let mut ids: Vec<MemoryId> = self.owners.get(owner).cloned().unwrap_or_default();
        ids.sort_unstable();
        for id in ids {
            if let Some(history) = self.memories.get(&id) {
                visit(&to_versions(&history.versions));
            }
        }
    }

    /// The owner whose history holds memory `id`, if any.
    pub fn owner_of(&self, id: MemoryId) -> Option<&Owner> {
        self.memories.get(&id).map(|history| &*history.owner)
    }

    /// How many memories of `owner` have a history.
    pub fn owner_len(&self, owner: &Owner) -> usize {
        self.owners.get(owner).map_or(0, Vec::len)
    }

    /// How many memories have a history.
    pub fn len(&self) -> usize {
        self.memories.len()
    }

    /// Whether no memory has a history.
    pub fn is_empty(&self) -> bool {
        self.memories.is_empty()
    }
}

/// The shared key for `memory`'s owner: the last one written when it is the same (mostly,
/// consecutive writes are one owner's), else the table's, else a new one.
fn owner_key(
    last: &mut Option<Arc<Owner>>,
    owners: &HashMap<Arc<Owner>, Vec<MemoryId>>,
    memory: &Memory,
) -> Arc<Owner> {
    if let Some(key) = last.as_ref().filter(|o| o.owns(memory)) {
        return Arc::clone(key);
    }
    let owner = Owner::of(memory);
    let key = match owners.get_key_value(&owner) {
        Some((key, _)) => Arc::clone(key),
        None => Arc::new(owner),
    };
    *last = Some(Arc::clone(&key));
    key
}

/// Adds `id` to `owner`'s list.
fn add_id(owners: &mut HashMap<Arc<Owner>, Vec<MemoryId>>, owner: Arc<Owner>, id: MemoryId) {
    match owners.get_mut(&*owner) {
        Some(ids) => ids.push(id),
        None => {
            owners.insert(owner, vec![id]);
        }
    }
}

/// Takes `id` off `owner`'s list (rare: a memory seen under a second owner), and the owner
/// off the table when that was its last.
fn drop_id(owners: &mut HashMap<Arc<Owner>, Vec<MemoryId>>, owner: &Owner, id: MemoryId) {
    if let Some(ids) = owners.get_mut(owner) {
        ids.retain(|other| *other != id);
        if ids.is_empty() {
            owners.remove(owner);
        }
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
