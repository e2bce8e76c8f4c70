//! Keeping long-term memory right over time (SPEC §10): a restated fact adds nothing, a fact or
//! preference filling a slot another one holds supersedes it, and expired memories are swept.
//!
//! Only slots supersede: similarity alone never replaces a memory (a dog called Rex and a cat
//! called Rex are two facts), it only recognises a near-verbatim restatement of a memory of the
//! same user, type and (absent) slot.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use twox_hash::XxHash3_64;

use super::{MemoryManager, Scoped};
use crate::bus::Dedup;
use crate::event::{EventBody, EventScope};
use crate::model::{timestamp, By, Memory, MemoryId, MemoryRecord};
use crate::scope::{Owner, Scope};
use crate::Result;

/// What adding a memory does, given what its user already holds.
pub(super) enum Plan {
    /// Store it; with the [`restatement_hashes`] of its text when the plan computed them, so
    /// indexing it does not compute them again.
    Add(Option<[u64; 2]>),
    /// Store nothing: this memory already says it.
    Duplicate(Box<Memory>),
    /// Store it, then mark these superseded by it.
    Supersede(Vec<MemoryRecord>),
}

/// What [`Scoped::remember`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Remembered {
    /// The stored memory, or the existing one it restated.
    pub memory: Memory,
    /// Whether it restated an existing memory and nothing was stored.
    pub deduplicated: bool,
    /// The memories it superseded.
    pub superseded: Vec<MemoryId>,
}

/// Whether memories of `memory_type` take part in superseding.
fn supersedes(memory_type: &str) -> bool {
    matches!(memory_type, "fact" | "preference")
}

/// Text compared for restatements: lower case, words only.
pub(super) fn normalised(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// The words that carry a memory's meaning, in order: lower case, light stems, articles
/// dropped — and nothing else dropped, so "does not eat" never equals "does eat" and "9 am"
/// never equals "9 pm". Two texts with the same key say the same thing in another form.
pub(super) fn restatement_key(text: &str) -> Vec<String> {
    crate::embed::words(text)
        .iter()
        .filter(|w| !matches!(w.as_str(), "a" | "an" | "the"))
        .map(|w| crate::embed::stem(w).to_owned())
        .collect()
}

/// The two hashes a memory is found under by the restatement check: of its
/// [`restatement_key`] and of its [`normalised`] text (either may match).
pub(super) fn restatement_hashes(text: &str) -> [u64; 2] {
    hashes_of(&restatement_key(text), &normalised(text))
}

/// [`restatement_hashes`] from a key and normalised text already at hand.
fn hashes_of(key: &[String], normalised: &str) -> [u64; 2] {
    [
        XxHash3_64::oneshot_with_seed(1, key.join("\u{1f}").as_bytes()),
        XxHash3_64::oneshot_with_seed(2, normalised.as_bytes()),
    ]
}

impl Scoped<'_> {
    /// Adds a memory as [`add_memory`](Self::add_memory) does, and says whether it was a
    /// restatement (nothing stored) or superseded older memories.
    pub fn remember(&self, new: crate::model::NewMemory) -> Result<Remembered> {
        let record = self.prepare_memory(new)?;
        let m = self.manager;
        let _owner = m.owner_locks.lock(self.scope.owner());
        let (superseded, hashes) = match self.plan(&record)? {
            Plan::Duplicate(memory) => {
                return Ok(Remembered {
                    memory: *memory,
                    deduplicated: true,
                    superseded: Vec::new(),
                })
            }
            Plan::Add(hashes) => (Vec::new(), hashes),
            Plan::Supersede(old) => (old, None),
        };
        let memory = record.memory.clone();
        m.quotas
            .within(m.backend.as_ref(), self.scope.tenant(), 1, || {
                m.backend.insert(&self.scope, record)
            })?;
        self.stored_with(&memory, hashes);
        let mut ids = Vec::with_capacity(superseded.len());
        for old in superseded {
            ids.push(old.memory.id);
            self.mark_superseded(old, memory.id, By::Api)?;
        }
        Ok(Remembered {
            memory,
            deduplicated: false,
            superseded: ids,
        })
    }

    /// What storing `record` would do among its user's memories.
    pub(super) fn plan(&self, record: &MemoryRecord) -> Result<Plan> {
        let m = self.manager;
        let memory = &record.memory;
        if !m.config.memory.supersede || !supersedes(&memory.metadata.source_type) {
            return Ok(Plan::Add(None));
        }
        let user = self.scope.whole_user();
        let now = timestamp::now();
        let text = normalised(&memory.content);
        if let Some(slot) = &memory.slot {
            let mut holders = Vec::new();
            for id in m.indexes.slot_holders(user.owner(), slot) {
                let Some(held) = m.backend.get(&user, id)? else {
                    continue;
                };
                if held.memory.superseded_by.is_some() || held.memory.is_expired(now) {
                    continue;
                }
                if normalised(&held.memory.content) == text {
                    return Ok(Plan::Duplicate(Box::new(held.memory)));
                }
                holders.push(held);
            }
            return Ok(if holders.is_empty() {
                Plan::Add(None)
            } else {
                Plan::Supersede(holders)
            });
        }
        // No slot: only a near-verbatim restatement of a slot-less memory of the same type —
        // the same words (tests/dedup.rs: minilm puts "9 am" and "9 pm" at 0.986, above real
        // restatements, so similarity only confirms what the words say). Candidates come from
        // the index of words, not from a scan of every vector: adding stays O(1) in the
        // user's memories.
        let key = restatement_key(&memory.content);
        let hashes = hashes_of(&key, &text);
        let threshold = m.config.memory.dedup_similarity as f32;
        let mut best: Option<(f32, Memory)> = None;
        for id in m.indexes.restating(user.owner(), hashes) {
            let Some(held) = m.backend.get(&user, id)? else {
                continue;
            };
            let h = &held.memory;
            let visible = h.superseded_by.is_none() && !h.is_expired(now);
            if !visible || h.slot.is_some() || h.metadata.source_type != memory.metadata.source_type
            {
                continue;
            }
            let similarity = crate::vector::dot(&record.embedding, &held.embedding);
            if similarity < threshold.min(0.9) {
                continue;
            }
            let same_words = similarity >= threshold && restatement_key(&h.content) == key;
            let better = best.as_ref().is_none_or(|(s, _)| similarity > *s);
            if (same_words || normalised(&h.content) == text) && better {
                best = Some((similarity, held.memory));
            }
        }
        if let Some((_, existing)) = best {
            return Ok(Plan::Duplicate(Box::new(existing)));
        }
        Ok(Plan::Add(Some(hashes)))
    }

    /// Marks `old` superseded by `by_id`; publishes `memory_update`. The caller holds the owner
    /// lock.
    pub(super) fn mark_superseded(&self, old: MemoryRecord, by_id: MemoryId, by: By) -> Result<()> {
        let m = self.manager;
        let user = self.scope.whole_user();
        let mut memory = old.memory.clone();
        memory.superseded_by = Some(by_id);
        memory.updated_at = Some(timestamp::now());
        memory.changed_by = by;
        m.backend.update(
            &user,
            MemoryRecord {
                memory: memory.clone(),
                embedding: old.embedding,
            },
        )?;
        m.indexes.updated(&old.memory, &memory);
        self.updated(&old.memory, &memory);
        Ok(())
    }

    /// Announces a changed memory and reschedules its expiry.
    pub(super) fn updated(&self, old: &Memory, memory: &Memory) {
        let m = self.manager;
        m.expiries.lock().reschedule(old, memory);
        m.bus.emit_in(
            &EventScope::of_memory(memory),
            &EventBody::MemoryUpdate {
                memory_id: memory.id,
                content: memory.content.clone(),
                metadata: memory.metadata.clone(),
            },
            Dedup::Check,
        );
    }
}

/// What persist stores for a batch of extracted memories.
#[derive(Default)]
pub(super) struct Batch {
    /// The memories to add, validated and embedded.
    pub records: Vec<MemoryRecord>,
    /// User-summary keys they establish.
    pub summary_keys: Vec<String>,
    /// After the write: stored memories superseded by a new one.
    pub stored_superseded: Vec<(MemoryRecord, MemoryId)>,
    /// After the write: new memories superseded by a later one of the same batch.
    pub batch_superseded: Vec<(MemoryId, MemoryId)>,
}

impl Scoped<'_> {
    /// Prepares what persist extracted from `turns`: restatements (of stored memories or of
    /// each other) dropped, superseding planned.
    pub(super) fn plan_batch(
        &self,
        items: Vec<crate::extract::Extracted>,
        turns: &[u64],
    ) -> Result<Batch> {
        let mut batch = Batch::default();
        let mut slots: HashMap<String, MemoryId> = HashMap::new();
        for item in items {
            let mut new = item.memory;
            if new.slot.is_none() {
                new.slot = item.slot;
            }
            if new.source_turns.is_empty() {
                new.source_turns = turns.to_vec();
            }
            let mut record = self.prepare_memory(new)?;
            record.memory.changed_by = By::Persist;
            let memory = &record.memory;
            let text = normalised(&memory.content);
            let restated = batch.records.iter().any(|r| {
                r.memory.slot == memory.slot
                    && r.memory.metadata.source_type == memory.metadata.source_type
                    && normalised(&r.memory.content) == text
            });
            if restated {
                continue;
            }
            let slotted =
                self.manager.config.memory.supersede && supersedes(&memory.metadata.source_type);
            let slot = memory.slot.clone().filter(|_| slotted);
            let earlier = slot.as_ref().and_then(|slot| slots.get(slot).copied());
            match earlier {
                // The earlier one of this batch already superseded what is stored.
                Some(earlier) => batch.batch_superseded.push((earlier, memory.id)),
                None => match self.plan(&record)? {
                    Plan::Duplicate(_) => continue,
                    Plan::Add(_) => {}
                    Plan::Supersede(old) => batch
                        .stored_superseded
                        .extend(old.into_iter().map(|o| (o, record.memory.id))),
                },
            }
            if let Some(slot) = slot {
                slots.insert(slot, record.memory.id);
            }
            batch.summary_keys.extend(item.summary_key);
            batch.records.push(record);
        }
        Ok(batch)
    }

    /// Marks what a stored batch superseded.
    pub(super) fn supersede_after(
        &self,
        stored: Vec<(MemoryRecord, MemoryId)>,
        in_batch: Vec<(MemoryId, MemoryId)>,
    ) -> Result<()> {
        if stored.is_empty() && in_batch.is_empty() {
            return Ok(());
        }
        let m = self.manager;
        let user = self.scope.whole_user();
        let _owner = m.owner_locks.lock(self.scope.owner());
        for (old, new) in stored {
            // Re-read: it may have changed or gone while the batch was written.
            if let Some(now) = m.backend.get(&user, old.memory.id)? {
                if now.memory.superseded_by.is_none() {
                    self.mark_superseded(now, new, By::Persist)?;
                }
            }
        }
        for (old, new) in in_batch {
            if let Some(now) = m.backend.get(&user, old)? {
                self.mark_superseded(now, new, By::Persist)?;
            }
        }
        Ok(())
    }
}

/// When each expiring memory is due.
#[derive(Default)]
pub(super) struct Expiries {
    due: BTreeSet<(DateTime<Utc>, MemoryId)>,
    owners: HashMap<MemoryId, Owner>,
}

impl Expiries {
    /// Every expiring memory the backend holds.
    pub fn build(backend: &dyn crate::backend::MemoryBackend) -> Result<Self> {
        let mut out = Expiries::default();
        backend.scan(&mut |record| out.schedule(&record.memory))?;
        Ok(out)
    }

    /// Schedules `memory` if it expires.
    pub fn schedule(&mut self, memory: &Memory) {
        if let Some(at) = memory.expires_at {
            self.due.insert((at, memory.id));
            self.owners.insert(memory.id, Owner::of(memory));
        }
    }

    /// Drops `memory`'s schedule.
    pub fn unschedule(&mut self, memory: &Memory) {
        if let Some(at) = memory.expires_at {
            self.due.remove(&(at, memory.id));
            self.owners.remove(&memory.id);
        }
    }

    /// Follows a change of `old` into `new`.
    pub fn reschedule(&mut self, old: &Memory, new: &Memory) {
        self.unschedule(old);
        self.schedule(new);
    }

    /// Takes every memory due at `now`.
    fn take_due(&mut self, now: DateTime<Utc>) -> Vec<(MemoryId, Owner)> {
        let mut out = Vec::new();
        while let Some(&(at, id)) = self.due.first() {
            if at > now {
                break;
            }
            self.due.remove(&(at, id));
            if let Some(owner) = self.owners.remove(&id) {
                out.push((id, owner));
            }
        }
        out
    }
}

impl MemoryManager {
    /// Deletes every memory whose `expires_at` has passed, publishing `memory_delete` with
    /// `reason: "expired"` for each; returns how many. The sweeper thread calls it every
    /// `memory.expiry_sweep_s`.
    pub fn sweep_expired(&self) -> Result<usize> {
        let now = timestamp::now();
        let due = self.expiries.lock().take_due(now);
        let mut swept = 0;
        for (id, owner) in due {
            let scope = Scope::parse(&owner.tenant, Some(&owner.user_id), None, None)?;
            let _owner = self.owner_locks.lock(&owner);
            let Some(record) = self.backend.get(&scope, id)? else {
                continue;
            };
            // Patched to a later time (or none) since it was scheduled: not due.
            if !record.memory.is_expired(now) {
                self.expiries.lock().schedule(&record.memory);
                continue;
            }
            if self.backend.delete(&scope, id, By::Expiry)? {
                self.indexes.removed(&record.memory);
                self.bus.emit_in(
                    &EventScope::of_memory(&record.memory),
                    &EventBody::MemoryDelete {
                        memory_id: id,
                        reason: Some("expired".into()),
                    },
                    Dedup::Check,
                );
                swept += 1;
            }
        }
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_text_ignores_case_and_punctuation() {
        assert_eq!(
            normalised("The user's  name is Alice!"),
            normalised("the user's name is alice")
        );
        assert_ne!(
            normalised("a dog called Rex"),
            normalised("a cat called Rex")
        );
    }
}
