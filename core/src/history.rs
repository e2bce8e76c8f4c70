//! Every version of every memory (SPEC §10): what backends keep so `GET /memories/{id}/history`
//! can answer, even after a delete.
//!
//! A backend feeds [`HistoryTable::record`] every [`Change`] it applies, in order; the table
//! derives the versions from the changes alone (the time and author of each version travel in
//! them), so a durable backend replaying its log rebuilds exactly the same history. One table per
//! backend, indexed by owner so erasing a user drops its history with it.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::Change;
use crate::model::{timestamp, By, Memory, MemoryId, MemoryRecord};
use crate::scope::{Owner, Scope};

/// What a version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The memory was added.
    Add,
    /// Its content, metadata or expiry changed.
    Update,
    /// A newer memory replaced it (`superseded_by`).
    Supersede,
    /// It was deleted.
    Delete,
    /// The sweeper deleted it when it expired.
    Expire,
}

/// One version of a memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// 1 for the first version, counting up.
    pub version: u32,
    /// What this version did.
    pub action: Action,
    /// When.
    #[serde(with = "timestamp")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: By,
    /// The memory as this version left it (for a delete: as it was when deleted).
    pub memory: Memory,
}

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

/// Every version of every memory a backend has held, by owner.
#[derive(Debug, Default)]
pub struct HistoryTable {
    owners: HashMap<Arc<Owner>, HashMap<MemoryId, Vec<Stored>>>,
    /// The owner of each id, so a delete (which carries only the id) finds its history.
    ids: HashMap<MemoryId, Arc<Owner>>,
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
                    .map(|versions| {
                        versions
                            .iter()
                            .filter(|(id, v)| {
                                !kept.contains(id) && v.last().is_some_and(Stored::is_live)
                            })
                            .map(|(id, _)| *id)
                            .collect()
                    })
                    .unwrap_or_default();
                for id in gone {
                    self.ended(id, Action::Delete, By::Api, at);
                }
                for record in records {
                    let memory = &record.memory;
                    self.written(memory, Some(at), || Arc::new(memory.clone()));
                }
            }
            Change::EraseUser(owner) => {
                if let Some(versions) = self.owners.remove(owner) {
                    for id in versions.keys() {
                        self.ids.remove(id);
                    }
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

    /// The shared key for `memory`'s owner, created when the table has none.
    fn owner_key(&mut self, memory: &Memory) -> Arc<Owner> {
        // Consecutive writes are mostly one owner's: its key is found without building one.
        if let Some(key) = self.last_owner.as_ref().filter(|o| o.owns(memory)) {
            if self.owners.contains_key(&**key) {
                return Arc::clone(key);
            }
        }
        let owner = Owner::of(memory);
        let key = match self.owners.get_key_value(&owner) {
            Some((key, _)) => Arc::clone(key),
            None => {
                let key = Arc::new(owner);
                self.owners.insert(Arc::clone(&key), HashMap::new());
                key
            }
        };
        self.last_owner = Some(Arc::clone(&key));
        key
    }

    /// A memory was stored: a new version unless it equals the last one. `share` gives the
    /// memory to keep (called only when a version is added).
    fn written(
        &mut self,
        memory: &Memory,
        at: Option<DateTime<Utc>>,
        share: impl FnOnce() -> Arc<Memory>,
    ) {
        let owner = self.owner_key(memory);
        self.ids.insert(memory.id, Arc::clone(&owner));
        let versions = self
            .owners
            .entry(owner)
            .or_default()
            .entry(memory.id)
            .or_default();
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
        let at = at.unwrap_or_else(|| memory.changed_at());
        versions.push(Stored {
            version: versions.len() as u32 + 1,
            action,
            at,
            by: memory.changed_by,
            memory: share(),
        });
    }

    /// A memory left: a version with the last content.
    fn ended(&mut self, id: MemoryId, action: Action, by: By, at: DateTime<Utc>) {
        let Some(owner) = self.ids.get(&id) else {
            return;
        };
        let Some(versions) = self.owners.get_mut(owner).and_then(|o| o.get_mut(&id)) else {
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
        let versions = self.owners.get(scope.owner())?.get(&id)?;
        let last = versions.last()?;
        scope.matches(&last.memory).then(|| to_versions(versions))
    }

    /// Replaces the versions of one memory wholesale (a compacted log's history record).
    pub fn set(&mut self, versions: Vec<Version>) {
        let Some(last) = versions.last() else {
            return;
        };
        let owner = Owner::of(&last.memory);
        let id = last.memory.id;
        let stored: Vec<Stored> = versions
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
        self.ids.insert(id, Arc::clone(&key));
        self.owners.entry(key).or_default().insert(id, stored);
    }

    /// Visits the versions of every memory, one memory at a time.
    pub fn visit(&self, visit: &mut dyn FnMut(&[Version])) {
        for versions in self.owners.values().flat_map(HashMap::values) {
            visit(&to_versions(versions));
        }
    }

    /// The versions of every memory, one list per memory (what [`visit`](Self::visit) shows,
    /// without a second copy).
    pub fn all(&self) -> Vec<Vec<Version>> {
        let mut out = Vec::with_capacity(self.ids.len());
        for versions in self.owners.values().flat_map(HashMap::values) {
            out.push(to_versions(versions));
        }
        out
    }

    /// Visits the versions of every memory of `owner`, one memory at a time, by memory id (so
    /// an export of the same state is the same file).
    pub fn visit_owner(&self, owner: &Owner, visit: &mut dyn FnMut(&[Version])) {
        if let Some(versions) = self.owners.get(owner) {
            let mut ids: Vec<&MemoryId> = versions.keys().collect();
            ids.sort_unstable();
            for id in ids {
                if let Some(v) = versions.get(id) {
                    visit(&to_versions(v));
                }
            }
        }
    }

    /// The owner whose history holds memory `id`, if any.
    pub fn owner_of(&self, id: MemoryId) -> Option<&Owner> {
        self.ids.get(&id).map(|owner| &**owner)
    }

    /// How many memories of `owner` have a history.
    pub fn owner_len(&self, owner: &Owner) -> usize {
        self.owners.get(owner).map_or(0, HashMap::len)
    }

    /// How many memories have a history.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no memory has a history.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl Version {
    /// Whether the memory still existed after this version.
    pub fn is_live(&self) -> bool {
        !matches!(self.action, Action::Delete | Action::Expire)
    }
}
