//! What the manager keeps per owner beside the backend: the BM25 index over that owner's
//! memories and the running summary `memory_stats` reports. One entry per owner, so a scoped
//! lexical search reads only that owner's postings.

use std::collections::{BTreeSet, HashMap};

use parking_lot::RwLock;

use crate::backend::MemoryBackend;
use crate::lexical::LexicalIndex;
use crate::model::{Memory, MemoryId};
use crate::scope::Owner;
use crate::stats::LongTermSummary;
use crate::Result;

use super::lifecycle::restatement_hashes;

/// One owner's derived state.
#[derive(Default)]
pub(super) struct OwnerIndex {
    pub lexical: LexicalIndex,
    pub summary: LongTermSummary,
    /// Keys of what the assistant knows about the user (`name`, `location`), from persist.
    pub user_summary_keys: BTreeSet<String>,
    /// The memories holding each slot and not superseded (normally one per slot).
    pub slots: HashMap<String, Vec<MemoryId>>,
    /// Every memory under the hashes of the words it says ([`restatement_hashes`]), so the
    /// check for a restatement on add looks candidates up instead of scanning every vector.
    /// A superset: whoever reads it checks each candidate against the backend.
    pub restated: HashMap<u64, Vec<MemoryId>>,
}

impl OwnerIndex {
    /// Notes `memory` in every derived map that is not a running total: its slot and its words
    /// (under `hashes`, its [`restatement_hashes`], computed here when `None`).
    pub fn note(&mut self, memory: &Memory, hashes: Option<[u64; 2]>) {
        self.hold_slot(memory);
        for hash in hashes.unwrap_or_else(|| restatement_hashes(&memory.content)) {
            let ids = self.restated.entry(hash).or_default();
            if !ids.contains(&memory.id) {
                ids.push(memory.id);
            }
        }
    }

    /// Forgets the words of `memory` saying `content`.
    fn unsay(&mut self, id: MemoryId, content: &str) {
        for hash in restatement_hashes(content) {
            if let Some(ids) = self.restated.get_mut(&hash) {
                ids.retain(|held| *held != id);
                if ids.is_empty() {
                    self.restated.remove(&hash);
                }
            }
        }
    }

    /// Notes `memory` in its slot if it holds one.
    pub fn hold_slot(&mut self, memory: &Memory) {
        if let (Some(slot), None) = (&memory.slot, memory.superseded_by) {
            let holders = self.slots.entry(slot.clone()).or_default();
            if !holders.contains(&memory.id) {
                holders.push(memory.id);
            }
        }
    }

    /// Forgets `memory` in its slot.
    pub fn release_slot(&mut self, memory: &Memory) {
        if let Some(slot) = &memory.slot {
            if let Some(holders) = self.slots.get_mut(slot) {
                holders.retain(|id| *id != memory.id);
                if holders.is_empty() {
                    self.slots.remove(slot);
                }
            }
        }
    }
}

/// Every owner's [`OwnerIndex`], each behind its own lock: adding to one user's index (a BM25
/// insert, under a write lock) never holds up another user's add or search. The map's own lock
/// is taken for writing only to add or drop an owner.
pub(super) struct Indexes {
    owners: RwLock<HashMap<Owner, RwLock<OwnerIndex>>>,
}

impl Indexes {
    /// Built from everything the backend holds.
    pub fn build(backend: &dyn MemoryBackend) -> Result<Self> {
        let mut owners: HashMap<Owner, OwnerIndex> = HashMap::new();
        // Records come grouped by owner: keep the current owner's entry in hand.
        let mut current: Option<(Owner, OwnerIndex)> = None;
        backend.scan(&mut |record| {
            let memory = &record.memory;
            if current
                .as_ref()
                .is_none_or(|(owner, _)| !owner.owns(memory))
            {
                if let Some((owner, index)) = current.take() {
                    owners.insert(owner, index);
                }
                let owner = Owner::of(memory);
                let index = owners.remove(&owner).unwrap_or_default();
                current = Some((owner, index));
            }
            if let Some((_, index)) = current.as_mut() {
                index.summary.add(&memory.metadata);
                index.lexical.insert(memory.id, &memory.content);
                index.note(memory, None);
                if let Some(key) = crate::extract::summary_key_of(&memory.metadata) {
                    index.user_summary_keys.insert(key.to_owned());
                }
            }
        })?;
        if let Some((owner, index)) = current {
            owners.insert(owner, index);
        }
        Ok(Indexes {
            owners: RwLock::new(
                owners
                    .into_iter()
                    .map(|(owner, index)| (owner, RwLock::new(index)))
                    .collect(),
            ),
        })
    }

    /// Runs `read` on `owner`'s index (an empty one when it has none).
    pub fn read<T>(&self, owner: &Owner, read: impl FnOnce(&OwnerIndex) -> T) -> T {
        let owners = self.owners.read();
        match owners.get(owner) {
            Some(index) => read(&index.read()),
            None => read(&OwnerIndex::default()),
        }
    }

    /// Runs `write` on `owner`'s index, creating it if needed.
    pub fn write<T>(&self, owner: &Owner, write: impl FnOnce(&mut OwnerIndex) -> T) -> T {
        // Nearly every write is to an owner already held: found under the map's read lock,
        // without cloning the key.
        if let Some(index) = self.owners.read().get(owner) {
            return write(&mut index.write());
        }
        let mut owners = self.owners.write();
        write(owners.entry(owner.clone()).or_default().get_mut())
    }

    /// Records a new memory, with its [`restatement_hashes`] if the caller has them.
    pub fn added(&self, memory: &Memory, hashes: Option<[u64; 2]>) {
        self.write(&Owner::of(memory), |index| {
            index.summary.add(&memory.metadata);
            index.lexical.insert(memory.id, &memory.content);
            index.note(memory, hashes);
        });
    }

    /// Records a changed memory.
    pub fn updated(&self, old: &Memory, new: &Memory) {
        self.write(&Owner::of(new), |index| {
            index.summary.remove(&old.metadata);
            index.summary.add(&new.metadata);
            index.release_slot(old);
            if old.content != new.content {
                index.lexical.remove_text(old.id, &old.content);
                index.lexical.insert(new.id, &new.content);
                index.unsay(old.id, &old.content);
            }
            index.note(new, None);
        });
    }

    /// Records a removed memory.
    pub fn removed(&self, memory: &Memory) {
        self.write(&Owner::of(memory), |index| {
            index.summary.remove(&memory.metadata);
            index.lexical.remove_text(memory.id, &memory.content);
            index.release_slot(memory);
            index.unsay(memory.id, &memory.content);
        });
    }

    /// Replaces `owner`'s index whole (snapshot apply).
    pub fn replace(&self, owner: &Owner, index: OwnerIndex) {
        self.owners
            .write()
            .insert(owner.clone(), RwLock::new(index));
    }

    /// Forgets `owner` (erasure).
    pub fn forget(&self, owner: &Owner) {
        self.owners.write().remove(owner);
    }

    /// The memories holding `slot` for `owner`, not superseded.
    pub fn slot_holders(&self, owner: &Owner, slot: &str) -> Vec<MemoryId> {
        self.read(owner, |index| {
            index.slots.get(slot).cloned().unwrap_or_default()
        })
    }

    /// `owner`'s memories found under `hashes` (a text's [`restatement_hashes`]): those that
    /// may say it again (a superset: check each).
    pub fn restating(&self, owner: &Owner, hashes: [u64; 2]) -> Vec<MemoryId> {
        self.read(owner, |index| {
            let mut ids: Vec<MemoryId> = hashes
                .iter()
                .filter_map(|hash| index.restated.get(hash))
                .flatten()
                .copied()
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        })
    }

    /// BM25 candidates among `owner`'s memories, and the score of a typical full match.
    pub fn lexical(&self, owner: &Owner, query: &str, k: usize) -> (Vec<(MemoryId, f32)>, f32) {
        self.read(owner, |index| {
            (
                index.lexical.search(query, k),
                index.lexical.max_score(query),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(id: u128, content: &str) -> Memory {
        let metadata = serde_json::from_value(serde_json::json!({
            "source_type": "fact", "importance": 0.5, "timestamp": "2025-04-26T12:05:00Z"
        }))
        .expect("metadata");
        Memory::new(uuid::Uuid::from_u128(id), content, metadata)
    }

    fn restating(indexes: &Indexes, owner: &Owner, text: &str) -> Vec<MemoryId> {
        indexes.restating(owner, restatement_hashes(text))
    }

    fn empty() -> Indexes {
        Indexes {
            owners: RwLock::new(HashMap::new()),
        }
    }

    #[test]
    fn a_restatement_is_found_by_its_words_or_its_normalised_text() {
        let indexes = empty();
        let tea = memory(1, "The user likes green tea.");
        let owner = Owner::of(&tea);
        indexes.added(&tea, None);
        indexes.added(&memory(2, "The user walks the dog"), None);
        // Same words but for the article and a plural; same text but for case and punctuation.
        assert_eq!(
            restating(&indexes, &owner, "user likes green teas"),
            vec![tea.id]
        );
        assert_eq!(
            restating(&indexes, &owner, "the USER likes green tea!"),
            vec![tea.id]
        );
        assert!(restating(&indexes, &owner, "the user likes black tea").is_empty());
    }

    #[test]
    fn an_edit_moves_a_memory_to_its_new_words_and_a_removal_forgets_it() {
        let indexes = empty();
        let old = memory(1, "The user likes green tea");
        let owner = Owner::of(&old);
        indexes.added(&old, None);
        let mut new = old.clone();
        new.content = "The user likes coffee".into();
        indexes.updated(&old, &new);
        assert!(restating(&indexes, &owner, "The user likes green tea").is_empty());
        assert_eq!(
            restating(&indexes, &owner, "the user likes coffee"),
            vec![new.id]
        );
        indexes.removed(&new);
        assert!(restating(&indexes, &owner, "the user likes coffee").is_empty());
        assert!(indexes.read(&owner, |index| index.restated.is_empty()));
    }

    /// Bob's memory that he likes green tea, added to `indexes`.
    fn bobs_tea(indexes: &Indexes) -> Memory {
        let mut theirs = memory(1, "The user likes green tea");
        theirs.user_id = "bob".into();
        indexes.added(&theirs, None);
        theirs
    }

    #[test]
    fn another_owners_memories_are_not_candidates() {
        let indexes = empty();
        bobs_tea(&indexes);
        let mine = Owner::of(&memory(2, "x"));
        assert!(restating(&indexes, &mine, "The user likes green tea").is_empty());
    }

    #[test]
    fn one_owners_write_does_not_hold_up_another_owners_read() {
        let indexes = empty();
        let theirs = bobs_tea(&indexes);
        let mine = memory(2, "The user walks the dog");
        indexes.added(&mine, None);
        let (bob, me) = (Owner::of(&theirs), Owner::of(&mine));
        let (done, seen) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            indexes.write(&me, |_| {
                // With one lock over every owner this read would wait for the write to end.
                s.spawn(|| {
                    let found = restating(&indexes, &bob, "The user likes green tea");
                    let _ = done.send(found);
                });
                let found = seen
                    .recv_timeout(std::time::Duration::from_secs(10))
                    .expect("bob's index is read while mine is written");
                assert_eq!(found, vec![theirs.id]);
            });
        });
    }
}
