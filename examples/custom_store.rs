//! A snapshot store written outside Coda's plugins: snapshots kept in a map in memory (a real
//! one might keep them in one archive file or an object store). It passes the store conformance
//! kit and backs Coda's snapshot operations by name.
//!
//! `cargo run --example custom_store`

use std::collections::HashMap;
use std::sync::Arc;

use coda::snapshot::{Snapshot, SnapshotStore, StoreContext, StoredSnapshot};
use coda::{Config, Error, MemoryManager, Role};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The name the store registers under: `[snapshots] store = "map"`.
pub const NAME: &str = "map";

/// Options of `[stores.map]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapOptions {
    /// Prefix of the locations this store hands out.
    #[serde(default = "MapOptions::default_prefix")]
    pub prefix: String,
}

impl MapOptions {
    fn default_prefix() -> String {
        "map://".into()
    }
}

/// Store `map`: serialised snapshots by id.
pub struct MapStore {
    prefix: String,
    snapshots: Mutex<HashMap<String, Vec<u8>>>,
}

impl MapStore {
    fn new(prefix: &str) -> Self {
        MapStore {
            prefix: prefix.to_owned(),
            snapshots: Mutex::new(HashMap::new()),
        }
    }
}

impl SnapshotStore for MapStore {
    fn name(&self) -> &str {
        NAME
    }

    fn save(&self, snapshot: &Snapshot) -> coda::Result<String> {
        let bytes =
            serde_json::to_vec(snapshot).map_err(|e| Error::invalid("snapshot", e.to_string()))?;
        self.snapshots
            .lock()
            .insert(snapshot.snapshot_id.clone(), bytes);
        Ok(format!("{}{}", self.prefix, snapshot.snapshot_id))
    }

    fn load(&self, location: &str) -> coda::Result<Snapshot> {
        let id = location.strip_prefix(&self.prefix).unwrap_or(location);
        let snapshots = self.snapshots.lock();
        let bytes = snapshots
            .get(id)
            .ok_or_else(|| Error::snapshot_not_found(location))?;
        Snapshot::from_json(bytes, std::path::Path::new(location))
    }

    fn list(&self) -> coda::Result<Vec<StoredSnapshot>> {
        let ids: Vec<String> = self.snapshots.lock().keys().cloned().collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let location = format!("{}{id}", self.prefix);
            out.push(StoredSnapshot {
                meta: self.load(&location)?.meta(),
                location,
            });
        }
        out.sort_by(|a, b| {
            (b.meta.timestamp, &b.meta.snapshot_id).cmp(&(a.meta.timestamp, &a.meta.snapshot_id))
        });
        Ok(out)
    }

    fn delete(&self, id: &str) -> coda::Result<bool> {
        Ok(self.snapshots.lock().remove(id).is_some())
    }
}

fn build(options: MapOptions, _ctx: &StoreContext) -> coda::Result<Arc<dyn SnapshotStore>> {
    Ok(Arc::new(MapStore::new(&options.prefix)))
}

coda::register_store!(NAME, MapOptions, build);

fn main() -> coda::Result<()> {
    coda::testkit::store_conformance(&|| Arc::new(MapStore::new("map://")));
    println!("map store passes the conformance kit");

    let config = Config::from_toml_str(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[snapshots]\nstore = \"map\"\n[stores.map]\nprefix = \"mem://\"",
    )?;
    let coda = MemoryManager::builder(config)
        .configured_sinks(false)
        .build()?;
    coda.add_turn(Role::User, "My name is Alice.")?;
    coda.persist_short_term_memory()?;
    let meta = coda.create_snapshot()?;
    let location = coda.save_snapshot(&meta.snapshot_id)?;
    println!("saved {} at {location}", meta.snapshot_id);
    coda.clear_short_term();
    coda.apply_snapshot(&coda.load_snapshot(&location)?)?;
    assert_eq!(coda.conversation().turns.len(), 1);
    assert_eq!(coda.list_snapshots()?.len(), 1);
    Ok(())
}

#[test]
fn example_runs() {
    main().expect("the example succeeds");
}
