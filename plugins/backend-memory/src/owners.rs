//! Every owner's [`Slots`], each behind a lock of its own: a write to one user (even one that
//! grows its arrays or rehashes its maps) never blocks a search of another user. The map from
//! owner to index is locked only for a lookup, or briefly when an owner appears or goes.
//!
//! With `index = "hnsw"`, a write that makes an owner's graph due (see `hnsw.rs`) starts its
//! build on a thread of its own: the owner's lock is held only to copy the vectors out and,
//! at the end, to install the graph; searches scan meanwhile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use coda_core::{IdMap, Memory, MemoryId, MemoryRecord, Owner};
use parking_lot::{Mutex, RwLock};

use crate::config::IndexOptions;
use crate::hnsw::{BuildJob, MAX_CATCH_UP};
use crate::slots::Slots;

/// One owner's index, shared with readers that looked it up.
pub(crate) type SharedSlots = Arc<RwLock<Slots>>;

/// Which owner holds each memory: read and written only by writers, who hold it (behind the
/// backend's writer lock) for a whole change, which makes each change atomic among writers.
#[derive(Default)]
pub(crate) struct Ids {
    owner_of: IdMap<Arc<Owner>>,
    /// The owner written last: consecutive writes are mostly one owner's, whose index is then
    /// found without building a key.
    last_owner: Option<Arc<Owner>>,
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
    /// Graph builds started and not yet joined.
    builds: Mutex<Vec<JoinHandle<()>>>,
    /// No build starts while set (a durable backend replaying its log, to attach saved graphs
    /// before building the others).
    held: AtomicBool,
    /// Graph builds started since creation.
    started: AtomicU64,
}

/// Runs `job`, catches up with the vectors added meanwhile outside any lock (copying them
/// under a read lock) until few are left, then installs the graph under the write lock;
/// stops when the owner's index is gone.
fn build_and_install(slots: Weak<RwLock<Slots>>, job: BuildJob) {
    let mut built = job.run();
    loop {
        let Some(slots) = slots.upgrade() else {
            return;
        };
        let Some(added) = slots.read().added_since(&built) else {
            return;
        };
        if added.len() <= MAX_CATCH_UP {
            slots.write().install(built);
            return;
        }
        drop(slots);
        built.extend(added);
    }
}

impl Owners {
    pub(crate) fn new(dims: usize, index: IndexOptions) -> Self {
        Owners {
            dims,
            index,
            map: RwLock::new(HashMap::new()),
            len: AtomicUsize::new(0),
            builds: Mutex::new(Vec::new()),
            held: AtomicBool::new(false),
            started: AtomicU64::new(0),
        }
    }

    /// Holds graph builds (`true`) or lets them start again (`false`), starting those due.
    pub(crate) fn hold_builds(&self, hold: bool) {
        self.held.store(hold, Ordering::Release);
        if !hold {
            for (_, slots) in self.all() {
                self.write(&slots, |_| ());
            }
        }
    }

    /// Graph builds started since creation.
    pub(crate) fn builds_started(&self) -> u64 {
        self.started.load(Ordering::Acquire)
    }

    /// Applies `write` to `slots`, then starts the graph build it made due, if any.
    fn write<R>(&self, slots: &SharedSlots, write: impl FnOnce(&mut Slots) -> R) -> R {
        let (out, job) = {
            let mut guard = slots.write();
            let out = write(&mut guard);
            let job = if self.held.load(Ordering::Acquire) {
                None
            } else {
                guard.build_job()
            };
            (out, job)
        };
        if let Some(job) = job {
            self.started.fetch_add(1, Ordering::AcqRel);
            let weak = Arc::downgrade(slots);
            if !self.index.hnsw_options().background {
                build_and_install(weak, job);
                return out;
            }
            let handle = std::thread::Builder::new()
                .name("coda-hnsw-build".into())
                .spawn(move || build_and_install(weak, job));
            let mut builds = self.builds.lock();
            builds.retain(|b| !b.is_finished());
            // No thread to be had: searches go on scanning, which is always correct.
            if let Ok(handle) = handle {
                builds.push(handle);
            }
        }
        out
    }

    /// Waits until every graph build started so far (and any it led to) is installed.
    pub(crate) fn wait_for_builds(&self) {
        loop {
            let pending: Vec<JoinHandle<()>> = std::mem::take(&mut *self.builds.lock());
            if pending.is_empty() {
                return;
            }
            for build in pending {
                // A build that panicked leaves its owner scanning, which is still correct.
                let _ = build.join();
            }
        }
    }

    /// Owners whose searches a graph serves now.
    pub(crate) fn graphs_ready(&self) -> usize {
        self.all()
            .iter()
            .filter(|(_, slots)| slots.read().graph_ready())
            .count()
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

    /// The index of `memory`'s owner, created when it has none; with the shared key for
    /// [`Ids`].
    fn entry(&self, ids: &mut Ids, memory: &Memory) -> (Arc<Owner>, SharedSlots) {
        if let Some(last) = ids.last_owner.as_ref().filter(|o| o.owns(memory)) {
            if let Some((key, slots)) = self.map.read().get_key_value(&**last) {
                return (Arc::clone(key), Arc::clone(slots));
            }
        }
        let owner = Owner::of(memory);
        let found = self
            .map
            .read()
            .get_key_value(&owner)
            .map(|(key, slots)| (Arc::clone(key), Arc::clone(slots)));
        let (key, slots) = found.unwrap_or_else(|| {
            let mut map = self.map.write();
            let key = Arc::new(owner);
            let slots = map
                .entry(Arc::clone(&key))
                .or_insert_with(|| Arc::new(RwLock::new(Slots::new(self.dims, self.index))));
            (key, Arc::clone(slots))
        });
        ids.last_owner = Some(Arc::clone(&key));
        (key, slots)
    }

    /// Adds a memory whose id no owner holds.
    pub(crate) fn insert(&self, ids: &mut Ids, memory: Arc<Memory>, embedding: &[f32]) {
        let (key, slots) = self.entry(ids, &memory);
        ids.owner_of.insert(memory.id, key);
        self.write(&slots, |s| s.push(memory, embedding));
        self.len.fetch_add(1, Ordering::AcqRel);
    }

    /// Replaces a memory in place when its owner already holds it; false otherwise.
    pub(crate) fn replace(&self, ids: &Ids, memory: Arc<Memory>, embedding: &[f32]) -> bool {
        let Some(owner) = ids.owner(memory.id) else {
            return false;
        };
        if !owner.owns(&memory) {
            return false;
        }
        match self.get(owner) {
            Some(slots) => self.write(&slots, |s| s.replace(memory, embedding)),
            None => false,
        }
    }

    /// Removes the memory with `id`; whether it existed.
    pub(crate) fn remove(&self, ids: &mut Ids, id: MemoryId) -> bool {
        let Some(owner) = ids.owner_of.remove(&id) else {
            return false;
        };
        if let Some(slots) = self.get(&owner) {
            let now_empty = self.write(&slots, |slots| {
                slots.remove(id);
                slots.len() == 0
            });
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
            fresh.push(Arc::new(record.memory), &record.embedding);
        }
        let key = Arc::new(owner.clone());
        let fresh = Arc::new(RwLock::new(fresh));
        let old = {
            let mut map = self.map.write();
            let old = map.remove(owner);
            if count > 0 {
                map.insert(Arc::clone(&key), Arc::clone(&fresh));
            }
            old
        };
        // A restored large owner gets its graph built as a grown one would.
        self.write(&fresh, |_| ());
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
