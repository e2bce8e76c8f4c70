//! Every owner's [`Slots`], each behind a lock of its own: a write to one user (even one that
//! grows its arrays or rehashes its maps) never blocks a search of another user. The map from
//! owner to index is locked only for a lookup, or briefly when an owner appears or goes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use coda_core::{MemoryId, MemoryRecord, Owner};
use parking_lot::RwLock;

use crate::config::IndexOptions;
use crate::slots::Slots;

/// One owner's index, shared with readers that looked it up.
pub(crate) type SharedSlots = Arc<RwLock<Slots>>;

/// Which owner holds each memory: read and written only by writers, who hold it (behind the
/// backend's writer lock) for a whole change, which makes each change atomic among writers.
#[derive(Default)]
pub(crate) struct Ids {
    owner_of: HashMap<MemoryId, Arc<Owner>>,
}

impl Ids {
    /// The owner holding `id`, if any.
    pub(crate) fn owner(&self, id: MemoryId) -> Option<&Arc<Owner>> {
        self.owner_of.get(&id)
    }
}

/// Every owner's index.
pub(crate) struct Owners {
    dims: usize,
    index: IndexOptions,
    map: RwLock<HashMap<Arc<Owner>, SharedSlots>>,
    len: AtomicUsize,
}

impl Owners {
    pub(crate) fn new(dims: usize, index: IndexOptions) -> Self {
        Owners {
            dims,
            index,
            map: RwLock::new(HashMap::new()),
            len: AtomicUsize::new(0),
        }
    }

    /// `owner`'s index, if it has memories.
    pub(crate) fn get(&self, owner: &Owner) -> Option<SharedSlots> {
        self.map.read().get(owner).cloned()
    }

    /// Memories over every owner.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Every owner with its index, as of now (the map's lock is not held while visiting).
    pub(crate) fn all(&self) -> Vec<(Arc<Owner>, SharedSlots)> {
        self.map
            .read()
            .iter()
            .map(|(o, s)| (Arc::clone(o), Arc::clone(s)))
            .collect()
    }

    /// `owner`'s index, created when it has none; with the shared key for [`Ids`].
    fn entry(&self, owner: Owner) -> (Arc<Owner>, SharedSlots) {
        if let Some((key, slots)) = self.map.read().get_key_value(&owner) {
            return (Arc::clone(key), Arc::clone(slots));
        }
        let mut map = self.map.write();
        let key = Arc::new(owner);
        let slots = map
            .entry(Arc::clone(&key))
            .or_insert_with(|| Arc::new(RwLock::new(Slots::new(self.dims, self.index))));
        (key, Arc::clone(slots))
    }

    /// Adds a record whose id no owner holds.
    pub(crate) fn insert(&self, ids: &mut Ids, record: MemoryRecord) {
        let (key, slots) = self.entry(Owner::of(&record.memory));
        ids.owner_of.insert(record.memory.id, key);
        slots.write().push(record);
        self.len.fetch_add(1, Ordering::AcqRel);
    }

    /// Replaces a record in place when its owner already holds it; false otherwise.
    pub(crate) fn replace(&self, ids: &Ids, record: MemoryRecord) -> bool {
        let Some(owner) = ids.owner(record.memory.id) else {
            return false;
        };
        if !owner.owns(&record.memory) {
            return false;
        }
        match self.get(owner) {
            Some(slots) => slots.write().replace(record),
            None => false,
        }
    }

    /// Removes the memory with `id`; whether it existed.
    pub(crate) fn remove(&self, ids: &mut Ids, id: MemoryId) -> bool {
        let Some(owner) = ids.owner_of.remove(&id) else {
            return false;
        };
        if let Some(slots) = self.get(&owner) {
            let now_empty = {
                let mut slots = slots.write();
                slots.remove(id);
                slots.len() == 0
            };
            if now_empty {
                // Writers are serialised, so nothing refilled it since.
                self.map.write().remove(&owner);
            }
        }
        self.len.fetch_sub(1, Ordering::AcqRel);
        true
    }

    /// Removes every memory of `owner`; how many there were.
    pub(crate) fn remove_owner(&self, ids: &mut Ids, owner: &Owner) -> usize {
        let Some(slots) = self.map.write().remove(owner) else {
            return 0;
        };
        let slots = slots.read();
        for id in slots.ids() {
            ids.owner_of.remove(&id);
        }
        self.len.fetch_sub(slots.len(), Ordering::AcqRel);
        slots.len()
    }

    /// Replaces `owner`'s memories with `records` (whose ids no other owner holds): readers see
    /// the old index or the new one, never a mix.
    pub(crate) fn swap_owner(&self, ids: &mut Ids, owner: &Owner, records: Vec<MemoryRecord>) {
        let count = records.len();
        let new_ids: Vec<MemoryId> = records.iter().map(|r| r.memory.id).collect();
        let mut fresh = Slots::new(self.dims, self.index);
        for record in records {
            fresh.push(record);
        }
        let key = Arc::new(owner.clone());
        let old = {
            let mut map = self.map.write();
            let old = map.remove(owner);
            if count > 0 {
                map.insert(Arc::clone(&key), Arc::new(RwLock::new(fresh)));
            }
            old
        };
        // Old ids first: a snapshot restores many of the same ids.
        let removed = match old {
            Some(old) => {
                let old = old.read();
                for id in old.ids() {
                    ids.owner_of.remove(&id);
                }
                old.len()
            }
            None => 0,
        };
        for id in new_ids {
            ids.owner_of.insert(id, Arc::clone(&key));
        }
        let before = self.len.load(Ordering::Acquire);
        self.len.store(before - removed + count, Ordering::Release);
    }
}
