//! Every version of every memory (SPEC §10): what backends keep so `GET /memories/{id}/history`
//! can answer, even after a delete.
//!
//! A backend feeds [`HistoryTable::record`] every [`Change`] it applies, in order; the table
//! derives the versions from the changes alone (the time and author of each version travel in
//! them), so a durable backend replaying its log rebuilds exactly the same history. One table per
//! backend, indexed by owner so erasing a user drops its history with it.

use std::collections::HashMap;

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

/// Every version of every memory a backend has held, by owner.
#[derive(Debug, Default)]
pub struct HistoryTable {
    owners: HashMap<Owner, HashMap<MemoryId, Vec<Version>>>,
    /// The owner of each id, so a delete (which carries only the id) finds its history.
    ids: HashMap<MemoryId, Owner>,
}

impl HistoryTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an insert or update of `record`, as [`record`](Self::record) does for
    /// `Change::Update`, without a change to build (a replay would clone the record for it).
    pub fn record_write(&mut self, record: &MemoryRecord) {
        self.written(record, None);
    }

    /// Records the versions `change` makes. Call it with every change applied, in order.
    pub fn record(&mut self, change: &Change) {
        match change {
            Change::Insert(record) => self.written(record, None),
            Change::Update(record) => self.written(record, None),
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
                                !kept.contains(id) && v.last().is_some_and(|v| v.is_live())
                            })
                            .map(|(id, _)| *id)
                            .collect()
                    })
                    .unwrap_or_default();
                for id in gone {
                    self.ended(id, Action::Delete, By::Api, at);
                }
                for record in records {
                    self.written(record, Some(at));
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
                    self.written(record, None);
                }
            }
            Change::Session(_) | Change::Commit(_) => {}
        }
    }

    /// A record was stored: a new version unless it equals the last one.
    fn written(&mut self, record: &MemoryRecord, at: Option<DateTime<Utc>>) {
        let memory = &record.memory;
        let owner = Owner::of(memory);
        self.ids.insert(memory.id, owner.clone());
        let versions = self
            .owners
            .entry(owner)
            .or_default()
            .entry(memory.id)
            .or_default();
        let action = match versions.last() {
            Some(last) if last.is_live() && last.memory == *memory => return,
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
        versions.push(Version {
            version: versions.len() as u32 + 1,
            action,
            at,
            by: memory.changed_by,
            memory: memory.clone(),
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
        let memory = last.memory.clone();
        versions.push(Version {
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
        scope.matches(&last.memory).then(|| versions.clone())
    }

    /// Replaces the versions of one memory wholesale (a compacted log's history record).
    pub fn set(&mut self, mut versions: Vec<Version>) {
        // `changed_by` is not serialised: each version's author says it.
        for version in versions.iter_mut().filter(|v| v.is_live()) {
            version.memory.changed_by = version.by;
        }
        let Some(last) = versions.last() else {
            return;
        };
        let owner = Owner::of(&last.memory);
        let id = last.memory.id;
        self.ids.insert(id, owner.clone());
        self.owners.entry(owner).or_default().insert(id, versions);
    }

    /// Visits the versions of every memory, one memory at a time.
    pub fn visit(&self, visit: &mut dyn FnMut(&[Version])) {
        for versions in self.owners.values().flat_map(HashMap::values) {
            visit(versions);
        }
    }

    /// Visits the versions of every memory of `owner`, one memory at a time, by memory id (so
    /// an export of the same state is the same file).
    pub fn visit_owner(&self, owner: &Owner, visit: &mut dyn FnMut(&[Version])) {
        if let Some(versions) = self.owners.get(owner) {
            let mut ids: Vec<&MemoryId> = versions.keys().collect();
            ids.sort_unstable();
            for id in ids {
                if let Some(v) = versions.get(id) {
                    visit(v);
                }
            }
        }
    }

    /// The owner whose history holds memory `id`, if any.
    pub fn owner_of(&self, id: MemoryId) -> Option<&Owner> {
        self.ids.get(&id)
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
