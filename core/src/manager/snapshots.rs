//! Snapshots: create, save, load, apply, list, delete, automatic snapshots.

use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;

use super::indexes::OwnerIndex;
use super::snapshot_restore::{memory_from_snapshot, memory_id, restored_session};
use super::{MemoryManager, Scoped};
use crate::bus::Dedup;
use crate::diff::{self, SnapshotDiff};
use crate::event::{EventBody, EventScope, SnapshotAction};
use crate::model::{Memory, MemoryRecord};
use crate::retention::{self, PrunePolicy, SnapshotFilter};
use crate::scope::Scope;
use crate::session::SessionChange;
use crate::snapshot::{
    new_snapshot_id, LongTermState, ShortTermState, Snapshot, SnapshotMemory, SnapshotMeta,
    SnapshotScope,
};
use crate::stats::LongTermSummary;
use crate::{Error, Result};

/// The name that stands for the live state in a diff.
pub const CURRENT: &str = "current";

/// A snapshot as listed: metadata, and where it is saved if it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotListing {
    /// The seed's metadata.
    #[serde(flatten)]
    pub meta: SnapshotMeta,
    /// Where it is saved; `None` while it lives only in memory.
    pub location: Option<String>,
}

/// The scope of events about a snapshot of `scope`.
fn snapshot_event_scope(scope: &SnapshotScope) -> EventScope {
    EventScope {
        tenant: scope.tenant.clone(),
        user_id: scope.user_id.clone(),
        agent_id: None,
        session_id: Some(scope.session_id.clone()),
    }
}

impl Scoped<'_> {
    fn emit_snapshot(&self, action: SnapshotAction, meta: &SnapshotMeta) {
        let metadata = serde_json::to_value(meta).unwrap_or(Value::Null);
        self.manager.bus.emit_in(
            &snapshot_event_scope(&meta.scope),
            &EventBody::MemorySnapshot {
                action,
                snapshot_id: meta.snapshot_id.clone(),
                metadata,
            },
            Dedup::Skip,
        );
    }

    /// Captures the scope's user and session in memory; returns its metadata.
    pub fn create_snapshot(&self) -> Result<SnapshotMeta> {
        let snapshot = self.capture()?;
        let meta = snapshot.meta();
        self.manager
            .snapshot_cache
            .lock()
            .put(Arc::new(snapshot), None);
        self.emit_snapshot(SnapshotAction::Create, &meta);
        Ok(meta)
    }

    /// The scope's user (all its memories) and session as a snapshot, without keeping it or
    /// publishing anything.
    pub fn capture(&self) -> Result<Snapshot> {
        let m = self.manager;
        let now = crate::model::timestamp::now();
        let user = self.scope.whole_user();
        let session = m.backend.session_state(&self.scope.session_key())?;
        let session = session.filter(|s| s.info.user_id == self.scope.user_id());
        let mut memories = IndexMap::with_capacity(m.backend.count(&user)?);
        m.backend.scan_owner(&user, &mut |record| {
            let memory = &record.memory;
            let mut metadata = memory.metadata.extra.clone();
            // The seed's structure has no place for them: they travel as metadata keys.
            if let Some(agent) = &memory.agent_id {
                metadata.insert("agent_id".into(), Value::String(agent.clone()));
            }
            if let Some(session) = &memory.session_id {
                metadata.insert("session_id".into(), Value::String(session.clone()));
            }
            metadata.insert(
                "source_type".into(),
                Value::String(memory.metadata.source_type.clone()),
            );
            metadata.insert(
                "topics".into(),
                Value::Array(
                    memory
                        .metadata
                        .topics
                        .iter()
                        .cloned()
                        .map(Value::String)
                        .collect(),
                ),
            );
            memories.insert(
                memory.id.to_string(),
                SnapshotMemory {
                    content: memory.content.clone(),
                    timestamp: memory.metadata.timestamp,
                    importance: memory.metadata.importance,
                    metadata,
                    lifecycle: crate::snapshot::Lifecycle::of(memory),
                },
            );
        })?;
        let topics = m
            .indexes
            .read(self.scope.owner(), |index| index.summary.topics());
        let short_term = match &session {
            Some(state) => ShortTermState {
                turns: state.turns.iter().cloned().collect(),
                turn_count: state.info.turn_count,
                session_start: state.info.session_start,
            },
            None => ShortTermState {
                turns: Vec::new(),
                turn_count: 0,
                session_start: m.default_started,
            },
        };
        let snapshot = Snapshot {
            snapshot_id: new_snapshot_id(now),
            timestamp: now,
            short_term,
            long_term: LongTermState {
                memory_count: memories.len(),
                memories,
                topics,
            },
            memory_stats: self.stats(),
            scope: SnapshotScope::of(&self.scope),
        };
        Ok(snapshot)
    }

    /// The snapshot with `id`, from memory or the store, if it is of this scope's user (and
    /// session, when the scope names one); another user's snapshot is not found.
    pub fn get_snapshot(&self, id: &str) -> Result<Arc<Snapshot>> {
        let snapshot = self.manager.find_snapshot(self.scope.tenant(), id)?;
        if !snapshot.scope.visible_from(&self.scope) {
            return Err(Error::snapshot_not_found(id));
        }
        Ok(snapshot)
    }

    /// Writes the snapshot with `id` to the store; returns its location. Then applies the
    /// `snapshots.retain` limit, if one is set.
    pub fn save_snapshot(&self, id: &str) -> Result<String> {
        let m = self.manager;
        let snapshot = self.get_snapshot(id)?;
        let location = m.store_for(self.scope.tenant()).save(&snapshot)?;
        m.snapshot_cache
            .lock()
            .put(Arc::clone(&snapshot), Some(location.clone()));
        self.emit_snapshot(SnapshotAction::Save, &snapshot.meta());
        let retain = m.config.snapshots.retain;
        if retain > 0 {
            let policy = PrunePolicy {
                keep: Some(retain),
                older_than: None,
            };
            if let Err(e) = self.prune_snapshots(&policy) {
                tracing::warn!(error = %e, "snapshot retention failed");
            }
        }
        Ok(location)
    }

    /// Removes the scope's saved snapshots as `policy` says; returns the removed ids, newest
    /// first, and publishes one `memory_snapshot` `prune` event when any were removed.
    pub fn prune_snapshots(&self, policy: &PrunePolicy) -> Result<Vec<String>> {
        let m = self.manager;
        let within = |meta: &SnapshotMeta| meta.scope.visible_from(&self.scope);
        let store = m.store_for(self.scope.tenant());
        let removed = retention::prune_store(store.as_ref(), policy, &within)?;
        if !removed.is_empty() {
            let mut cache = m.snapshot_cache.lock();
            for id in &removed {
                cache.remove(id);
            }
            drop(cache);
            m.bus.emit_in(
                &EventScope::of(&self.scope),
                &EventBody::MemorySnapshot {
                    action: SnapshotAction::Prune,
                    snapshot_id: removed[0].clone(),
                    metadata: serde_json::json!({ "removed": removed }),
                },
                Dedup::Skip,
            );
        }
        Ok(removed)
    }

    /// Compares snapshot `a` with snapshot `b`; either may be `current`, the live state.
    pub fn diff_snapshots(&self, a: &str, b: &str) -> Result<SnapshotDiff> {
        let side = |id: &str| -> Result<Arc<Snapshot>> {
            if id == CURRENT {
                Ok(Arc::new(self.capture()?))
            } else {
                self.get_snapshot(id)
            }
        };
        let (from, to) = (side(a)?, side(b)?);
        Ok(diff::diff(&from, &to, a, b))
    }

    /// Reads a saved snapshot (from any location the store understands); returns its id.
    pub fn load_snapshot(&self, location: &str) -> Result<String> {
        let m = self.manager;
        let snapshot = Arc::new(m.store_for(self.scope.tenant()).load(location)?);
        if !snapshot.scope.visible_from(&self.scope) {
            return Err(Error::snapshot_not_found(location));
        }
        let meta = snapshot.meta();
        m.snapshot_cache
            .lock()
            .put(snapshot, Some(location.to_owned()));
        self.emit_snapshot(SnapshotAction::Load, &meta);
        Ok(meta.snapshot_id)
    }

    /// Restores the snapshot's user and session to the snapshot with `id`, all or nothing: if
    /// anything fails, the state is unchanged. Other users and sessions are untouched.
    pub fn apply_snapshot(&self, id: &str) -> Result<()> {
        let m = self.manager;
        let snapshot = self.get_snapshot(id)?;
        let target = Scope::parse(
            &snapshot.scope.tenant,
            Some(&snapshot.scope.user_id),
            None,
            Some(&snapshot.scope.session_id),
        )?;
        // Everything that can fail happens before the first change. The keyword index depends
        // only on ids and texts, so it is built on a second thread while records are embedded.
        let (records, lexical) = std::thread::scope(|scope| {
            let lexical = scope.spawn(|| {
                let mut index = crate::lexical::LexicalIndex::new();
                for (key, memory) in &snapshot.long_term.memories {
                    index.insert(memory_id(key), &memory.content);
                }
                index
            });
            let records = self.snapshot_records(&snapshot, &target);
            let lexical = lexical.join().map_err(|_| {
                Error::Unavailable("building the keyword index for the snapshot failed".into())
            });
            (records, lexical)
        });
        let (records, lexical) = (records?, lexical?);
        let summary = LongTermSummary::of(records.iter().map(|r| &r.memory.metadata));
        let mut noted = OwnerIndex::default();
        for record in &records {
            noted.note(&record.memory, None);
        }
        let key = target.session_key();
        let _session = m.session_locks.lock(&key);
        let _owner = m.owner_locks.lock(target.owner());
        let existing = m.backend.session(&key)?;
        if existing
            .as_ref()
            .is_some_and(|info| info.user_id != target.user_id())
        {
            return Err(Error::Conflict(format!(
                "session `{}` now belongs to another user",
                target.session_or_default()
            )));
        }
        let session = restored_session(&snapshot, &target, existing.as_ref());
        let expiring: Vec<Memory> = records
            .iter()
            .filter(|r| r.memory.expires_at.is_some())
            .map(|r| r.memory.clone())
            .collect();
        m.backend.replace_owner(&target, records)?;
        {
            let mut expiries = m.expiries.lock();
            for memory in &expiring {
                expiries.schedule(memory);
            }
        }
        m.backend.apply_session(SessionChange::Put(session))?;
        m.indexes.replace(
            target.owner(),
            OwnerIndex {
                lexical,
                summary,
                user_summary_keys: snapshot
                    .memory_stats
                    .long_term
                    .user_summary_keys
                    .iter()
                    .cloned()
                    .collect(),
                slots: noted.slots,
                restated: noted.restated,
            },
        );
        self.emit_snapshot(SnapshotAction::Apply, &snapshot.meta());
        Ok(())
    }

    /// Long-term records for a snapshot, reusing current embeddings of unchanged memories.
    fn snapshot_records(&self, snapshot: &Snapshot, target: &Scope) -> Result<Vec<MemoryRecord>> {
        let m = self.manager;
        let mut memories = Vec::with_capacity(snapshot.long_term.memories.len());
        for (key, stored) in &snapshot.long_term.memories {
            memories.push(memory_from_snapshot(key, stored, target)?);
        }
        let dims = m.embedder.dims();
        let mut records = Vec::with_capacity(memories.len());
        let mut missing = Vec::new();
        for memory in memories {
            let reuse = m
                .backend
                .get(target, memory.id)?
                .filter(|r| r.memory.content == memory.content && r.embedding.len() == dims)
                .map(|r| r.embedding);
            if reuse.is_none() {
                missing.push(records.len());
            }
            records.push(MemoryRecord {
                memory,
                embedding: reuse.unwrap_or_default(),
            });
        }
        let texts: Vec<&str> = missing
            .iter()
            .map(|&i| records[i].memory.content.as_str())
            .collect();
        let embeddings = m.embedder.embed_batch(&texts)?;
        for (i, embedding) in missing.into_iter().zip(embeddings) {
            records[i].embedding = embedding;
        }
        Ok(records)
    }

    /// The scope's saved and in-memory snapshots, newest first.
    pub fn list_snapshots(&self) -> Result<Vec<SnapshotListing>> {
        self.find_snapshots(&SnapshotFilter::default())
    }

    /// The scope's saved and in-memory snapshots passing `filter`, newest first.
    pub fn find_snapshots(&self, filter: &SnapshotFilter) -> Result<Vec<SnapshotListing>> {
        let m = self.manager;
        let store = m.store_for(self.scope.tenant());
        let mut out: Vec<SnapshotListing> = retention::list_store(store.as_ref(), filter)?
            .into_iter()
            .filter(|s| s.meta.scope.visible_from(&self.scope))
            .map(|s| SnapshotListing {
                meta: s.meta,
                location: Some(s.location),
            })
            .collect();
        let cache = m.snapshot_cache.lock();
        for cached in cache.entries.values() {
            let id = &cached.snapshot.snapshot_id;
            let wanted = cached.snapshot.scope.visible_from(&self.scope)
                && filter.in_range(&cached.snapshot.meta())
                && (cached.location.is_none() && filter.matches_content(&cached.snapshot));
            if wanted && !out.iter().any(|l| &l.meta.snapshot_id == id) {
                out.push(SnapshotListing {
                    meta: cached.snapshot.meta(),
                    location: cached.location.clone(),
                });
            }
        }
        out.sort_by(|a, b| {
            (b.meta.timestamp, &b.meta.snapshot_id).cmp(&(a.meta.timestamp, &a.meta.snapshot_id))
        });
        Ok(out)
    }

    /// Removes the snapshot with `id` from memory and from the store.
    pub fn delete_snapshot(&self, id: &str) -> Result<()> {
        let m = self.manager;
        let meta = self.get_snapshot(id)?.meta();
        let cached = m.snapshot_cache.lock().remove(id);
        let stored = m.store_for(self.scope.tenant()).delete(id)?;
        if !(cached || stored) {
            return Err(Error::snapshot_not_found(id));
        }
        self.emit_snapshot(SnapshotAction::Delete, &meta);
        Ok(())
    }

    /// Takes and saves a snapshot of the scope's session; counts it in the session.
    pub(super) fn auto_snapshot(&self) -> Result<String> {
        let meta = self.create_snapshot()?;
        let location = self.save_snapshot(&meta.snapshot_id)?;
        let m = self.manager;
        let key = self.scope.session_key();
        let _session = m.session_locks.lock(&key);
        if let Some(mut state) = m.backend.session_state(&key)? {
            state.info.auto_snapshots += 1;
            m.backend.apply_session(SessionChange::Put(state))?;
        }
        Ok(location)
    }
}

impl MemoryManager {
    /// Takes and saves a snapshot every `interval` turns from now on.
    pub fn enable_auto_snapshot(&self, interval: u64) -> Result<()> {
        if interval == 0 {
            return Err(Error::invalid("interval", "must be at least 1"));
        }
        *self.auto.lock() = super::AutoSnapshot {
            enabled: true,
            interval,
        };
        Ok(())
    }

    /// Stops automatic snapshots.
    pub fn disable_auto_snapshot(&self) {
        self.auto.lock().enabled = false;
    }

    /// Whether automatic snapshots are on, and their interval.
    pub fn auto_snapshot_settings(&self) -> (bool, u64) {
        let auto = *self.auto.lock();
        (auto.enabled, auto.interval)
    }

    /// The snapshot with `id` from memory or `tenant`'s store, whoever it belongs to; callers
    /// check its scope.
    fn find_snapshot(&self, tenant: &str, id: &str) -> Result<Arc<Snapshot>> {
        if let Some(cached) = self.snapshot_cache.lock().entries.get(id) {
            return Ok(Arc::clone(&cached.snapshot));
        }
        let store = self.store_for(tenant);
        let stored = store
            .list()?
            .into_iter()
            .find(|s| s.meta.snapshot_id == id)
            .ok_or_else(|| Error::snapshot_not_found(id))?;
        let snapshot = Arc::new(store.load(&stored.location)?);
        self.snapshot_cache
            .lock()
            .put(Arc::clone(&snapshot), Some(stored.location));
        Ok(snapshot)
    }

    /// Removes every snapshot (saved or in memory) of `scope`'s user; returns how many.
    pub(super) fn erase_snapshots(&self, scope: &Scope) -> Result<usize> {
        let user = scope.whole_user();
        let mut removed = 0;
        let store = self.store_for(scope.tenant());
        for stored in store.list()? {
            if stored.meta.scope.visible_from(&user) && store.delete(&stored.meta.snapshot_id)? {
                removed += 1;
            }
        }
        let mut cache = self.snapshot_cache.lock();
        let cached: Vec<String> = cache
            .entries
            .values()
            .filter(|c| c.snapshot.scope.visible_from(&user))
            .map(|c| c.snapshot.snapshot_id.clone())
            .collect();
        for id in cached {
            let saved = cache.entries.get(&id).is_some_and(|c| c.location.is_some());
            cache.remove(&id);
            if !saved {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
