//! A backend written outside Coda's plugins: memories in an ordered map, exact search. It
//! passes the same conformance kit as the bundled backends, and Coda runs on it by name.
//!
//! `cargo run --example custom_backend`

use std::collections::BTreeMap;
use std::sync::Arc;

use coda::vector::{dot, TopK};
use coda::{
    BackendContext, Config, Error, Filter, Memory, MemoryBackend, MemoryId, MemoryManager,
    MemoryRecord, NewMemory, ScoredMemory,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// The name the backend registers under: `[memory] backend = "btree"`.
pub const NAME: &str = "btree";

/// Options of `[backends.btree]` (none, but unknown keys are still refused).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BTreeOptions {}

/// Memories keyed by insertion number, with an id → number index.
#[derive(Default)]
struct Inner {
    next: u64,
    records: BTreeMap<u64, MemoryRecord>,
    by_id: BTreeMap<MemoryId, u64>,
}

/// Backend `btree`.
#[derive(Default)]
pub struct BTreeBackend {
    inner: RwLock<Inner>,
}

impl MemoryBackend for BTreeBackend {
    fn insert(&self, record: MemoryRecord) -> coda::Result<()> {
        let mut inner = self.inner.write();
        if inner.by_id.contains_key(&record.memory.id) {
            return Err(Error::invalid("id", "already exists"));
        }
        let n = inner.next;
        inner.next += 1;
        inner.by_id.insert(record.memory.id, n);
        inner.records.insert(n, record);
        Ok(())
    }

    fn get(&self, id: MemoryId) -> coda::Result<Option<MemoryRecord>> {
        let inner = self.inner.read();
        Ok(inner
            .by_id
            .get(&id)
            .and_then(|n| inner.records.get(n))
            .cloned())
    }

    fn update(&self, record: MemoryRecord) -> coda::Result<()> {
        let mut inner = self.inner.write();
        let n = *inner
            .by_id
            .get(&record.memory.id)
            .ok_or_else(|| Error::memory_not_found(record.memory.id))?;
        inner.records.insert(n, record);
        Ok(())
    }

    fn delete(&self, id: MemoryId) -> coda::Result<bool> {
        let mut inner = self.inner.write();
        match inner.by_id.remove(&id) {
            Some(n) => Ok(inner.records.remove(&n).is_some()),
            None => Ok(false),
        }
    }

    fn list(
        &self,
        offset: usize,
        limit: usize,
        filter: Option<&Filter>,
    ) -> coda::Result<Vec<Memory>> {
        let inner = self.inner.read();
        let mut memories: Vec<(&u64, &Memory)> = inner
            .records
            .iter()
            .map(|(n, r)| (n, &r.memory))
            .filter(|(_, m)| filter.is_none_or(|f| f.matches(&m.metadata)))
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
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
    ) -> coda::Result<Vec<ScoredMemory>> {
        let inner = self.inner.read();
        let records: Vec<&MemoryRecord> = inner.records.values().collect();
        let mut top = TopK::new(limit);
        for (i, r) in records.iter().enumerate() {
            if filter.is_some_and(|f| !f.matches(&r.memory.metadata)) {
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

    fn scan(&self, visit: &mut dyn FnMut(&MemoryRecord)) -> coda::Result<()> {
        self.inner.read().records.values().for_each(visit);
        Ok(())
    }

    fn replace_all(&self, records: Vec<MemoryRecord>) -> coda::Result<()> {
        let fresh = BTreeBackend::default();
        for record in records {
            fresh.insert(record)?;
        }
        *self.inner.write() = fresh.inner.into_inner();
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
        "[memory]\nbackend = \"btree\"\n[stores.fs]\ndir = \"{}\"",
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
