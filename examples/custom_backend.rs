//! A backend written outside Coda's plugins: memories in an ordered map, exact search. It
//! passes the same conformance kit as the bundled backends, and Coda runs on it by name.
//!
//! `cargo run --example custom_backend`

use std::collections::BTreeMap;
use std::sync::Arc;

use coda::vector::{dot, TopK};
use coda::{
    BackendContext, By, Change, Config, Erased, Error, Filter, HistoryTable, Memory, MemoryBackend,
    MemoryId, MemoryManager, MemoryRecord, NewMemory, Owner, Scope, ScoredMemory, SessionChange,
    SessionInfo, SessionKey, SessionState, SessionTable, Version,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// The name the backend registers under: `[memory] backend = "btree"`.
pub const NAME: &str = "btree";

/// Options of `[backends.btree]` (none, but unknown keys are still refused).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BTreeOptions {}

/// Memories keyed by owner, then insertion number: one owner's memories are one range of the
/// map, so a scoped read never walks anyone else's. Sessions live in core's `SessionTable`.
#[derive(Default)]
struct Inner {
    next: u64,
    records: BTreeMap<(Owner, u64), MemoryRecord>,
    by_id: BTreeMap<MemoryId, (Owner, u64)>,
    sessions: SessionTable,
    /// Every version of every memory, derived by core's table from the changes made.
    history: HistoryTable,
}

impl Inner {
    /// The records of `scope`'s owner, oldest first.
    fn owned<'a>(&'a self, scope: &Scope) -> impl Iterator<Item = (&'a u64, &'a MemoryRecord)> {
        let owner = scope.owner().clone();
        self.records
            .range((owner.clone(), 0)..=(owner, u64::MAX))
            .map(|((_, n), r)| (n, r))
    }

    fn remove_owner(&mut self, owner: &Owner) -> usize {
        let keys: Vec<_> = self
            .records
            .range((owner.clone(), 0)..=(owner.clone(), u64::MAX))
            .map(|(k, r)| (k.clone(), r.memory.id))
            .collect();
        for (key, id) in &keys {
            self.records.remove(key);
            self.by_id.remove(id);
        }
        keys.len()
    }
}

/// Backend `btree`.
#[derive(Default)]
pub struct BTreeBackend {
    inner: RwLock<Inner>,
}

impl MemoryBackend for BTreeBackend {
    fn insert(&self, scope: &Scope, record: MemoryRecord) -> coda::Result<()> {
        if !scope.owner().owns(&record.memory) {
            return Err(Error::invalid("user_id", "not the scope's user"));
        }
        let mut inner = self.inner.write();
        if inner.by_id.contains_key(&record.memory.id) {
            return Err(Error::invalid("id", "already exists"));
        }
        let n = inner.next;
        inner.next += 1;
        let key = (scope.owner().clone(), n);
        inner.history.record(&Change::Insert(record.clone()));
        inner.by_id.insert(record.memory.id, key.clone());
        inner.records.insert(key, record);
        Ok(())
    }

    fn get(&self, scope: &Scope, id: MemoryId) -> coda::Result<Option<MemoryRecord>> {
        let inner = self.inner.read();
        Ok(inner
            .by_id
            .get(&id)
            .and_then(|key| inner.records.get(key))
            .filter(|r| scope.matches(&r.memory))
            .cloned())
    }

    fn update(&self, scope: &Scope, record: MemoryRecord) -> coda::Result<()> {
        let id = record.memory.id;
        if self.get(scope, id)?.is_none() || !scope.owner().owns(&record.memory) {
            return Err(Error::memory_not_found(id));
        }
        let mut inner = self.inner.write();
        let key = inner
            .by_id
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::memory_not_found(id))?;
        inner.history.record(&Change::Update(record.clone()));
        inner.records.insert(key, record);
        Ok(())
    }

    fn delete(&self, scope: &Scope, id: MemoryId, by: By) -> coda::Result<bool> {
        if self.get(scope, id)?.is_none() {
            return Ok(false);
        }
        let mut inner = self.inner.write();
        let at = coda::model::timestamp::now();
        inner.history.record(&Change::Delete { id, by, at });
        match inner.by_id.remove(&id) {
            Some(key) => Ok(inner.records.remove(&key).is_some()),
            None => Ok(false),
        }
    }

    fn history(&self, scope: &Scope, id: MemoryId) -> coda::Result<Option<Vec<Version>>> {
        Ok(self.inner.read().history.get(scope, id))
    }

    fn list(
        &self,
        scope: &Scope,
        offset: usize,
        limit: usize,
        filter: Option<&Filter>,
    ) -> coda::Result<Vec<Memory>> {
        let inner = self.inner.read();
        let mut memories: Vec<(&u64, &Memory)> = inner
            .owned(scope)
            .map(|(n, r)| (n, &r.memory))
            .filter(|(_, m)| scope.matches(m) && filter.is_none_or(|f| f.matches(m)))
            .collect();
        memories.sort_by(|a, b| (b.1.metadata.timestamp, b.0).cmp(&(a.1.metadata.timestamp, a.0)));
        Ok(memories
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, m)| m.clone())
            .collect())
    }

    fn search(
        &self,
        scope: &Scope,
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
    ) -> coda::Result<Vec<ScoredMemory>> {
        let inner = self.inner.read();
        let records: Vec<&MemoryRecord> = inner.owned(scope).map(|(_, r)| r).collect();
        let mut top = TopK::new(limit);
        for (i, r) in records.iter().enumerate() {
            if !scope.matches(&r.memory) || filter.is_some_and(|f| !f.matches(&r.memory)) {
                continue;
            }
            let score = dot(query, &r.embedding);
            if score >= min_similarity {
                top.offer(i, score);
            }
        }
        Ok(top
            .into_sorted()
            .into_iter()
            .map(|(i, score)| ScoredMemory::new(records[i].memory.clone(), score))
            .collect())
    }

    fn len(&self) -> coda::Result<usize> {
        Ok(self.inner.read().records.len())
    }

    fn count(&self, scope: &Scope) -> coda::Result<usize> {
        Ok(self.inner.read().owned(scope).count())
    }

    fn owners(&self, tenant: &str) -> coda::Result<Vec<(Owner, usize)>> {
        let mut owners: BTreeMap<Owner, usize> = BTreeMap::new();
        for (owner, _) in self.inner.read().records.keys() {
            if owner.tenant == tenant {
                *owners.entry(owner.clone()).or_default() += 1;
            }
        }
        Ok(owners.into_iter().collect())
    }

    fn scan(&self, visit: &mut dyn FnMut(&MemoryRecord)) -> coda::Result<()> {
        self.inner.read().records.values().for_each(visit);
        Ok(())
    }

    fn scan_owner(&self, scope: &Scope, visit: &mut dyn FnMut(&MemoryRecord)) -> coda::Result<()> {
        self.inner.read().owned(scope).for_each(|(_, r)| visit(r));
        Ok(())
    }

    fn replace_owner(&self, scope: &Scope, records: Vec<MemoryRecord>) -> coda::Result<()> {
        let mut inner = self.inner.write();
        let mut ids = std::collections::BTreeSet::new();
        for record in &records {
            let id = record.memory.id;
            let elsewhere = inner
                .by_id
                .get(&id)
                .is_some_and(|(o, _)| o != scope.owner());
            if !scope.owner().owns(&record.memory) || !ids.insert(id) || elsewhere {
                return Err(Error::invalid(
                    "id",
                    format!("memory {id} cannot be placed"),
                ));
            }
        }
        inner.history.record(&Change::ReplaceUser {
            owner: scope.owner().clone(),
            records: records.clone(),
        });
        inner.remove_owner(scope.owner());
        for record in records {
            let n = inner.next;
            inner.next += 1;
            let key = (scope.owner().clone(), n);
            inner.by_id.insert(record.memory.id, key.clone());
            inner.records.insert(key, record);
        }
        Ok(())
    }

    fn erase_owner(&self, scope: &Scope) -> coda::Result<Erased> {
        let mut inner = self.inner.write();
        let histories = inner.history.owner_len(scope.owner());
        inner
            .history
            .record(&Change::EraseUser(scope.owner().clone()));
        let memories = inner.remove_owner(scope.owner());
        let sessions = inner.sessions.remove_owner(scope.owner());
        Ok(Erased {
            memories,
            sessions,
            histories,
        })
    }

    fn apply_session(&self, change: SessionChange) -> coda::Result<()> {
        self.inner.write().sessions.apply(change)
    }

    fn session(&self, key: &SessionKey) -> coda::Result<Option<SessionInfo>> {
        Ok(self.inner.read().sessions.info(key))
    }

    fn session_state(&self, key: &SessionKey) -> coda::Result<Option<SessionState>> {
        Ok(self.inner.read().sessions.state(key))
    }

    fn sessions(&self, tenant: &str, visit: &mut dyn FnMut(&SessionState)) -> coda::Result<()> {
        self.inner.read().sessions.visit(tenant, visit);
        Ok(())
    }

    fn owner_sessions(
        &self,
        scope: &Scope,
        visit: &mut dyn FnMut(&SessionState),
    ) -> coda::Result<()> {
        self.inner.read().sessions.visit_owner(scope.owner(), visit);
        Ok(())
    }
}

fn build(_options: BTreeOptions, _ctx: &BackendContext) -> coda::Result<Arc<dyn MemoryBackend>> {
    Ok(Arc::new(BTreeBackend::default()))
}

coda::register_backend!(NAME, BTreeOptions, build);

fn main() -> coda::Result<()> {
    // The same conformance kit the bundled backends pass.
    coda::testkit::backend_conformance(&|| Arc::new(BTreeBackend::default()));
    println!("btree backend passes the conformance kit");

    let dir = tempfile::tempdir().map_err(|e| Error::io("create", "temp dir", e))?;
    let config = Config::from_toml_str(&format!(
        "[memory]\nbackend = \"btree\"\nembedder = \"hashing\"\n[stores.fs]\ndir = \"{}\"",
        dir.path().display()
    ))?;
    let coda = MemoryManager::builder(config)
        .configured_sinks(false)
        .build()?;
    coda.add_memory(NewMemory::new("The user has a dog named Rex.", "fact"))?;
    coda.add_memory(NewMemory::new("The user lives in Lisbon.", "fact"))?;
    let hits = coda.get_memories("what is the dog called", 1, 0.0, None)?;
    println!(
        "best match: {} ({:.2})",
        hits[0].content, hits[0].similarity
    );
    assert_eq!(hits[0].content, "The user has a dog named Rex.");
    Ok(())
}

#[test]
fn example_runs() {
    main().expect("the example succeeds");
}
