//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::sync::Arc;

use coda::testkit::CollectingSink;
use coda::{Config, MemoryManager};

// Every bundled plugin crate is referenced through the facade, so its registration is linked.
#[allow(unused_imports)]
pub use coda::BUNDLED;

/// A manager over the memory backend (plus `memory_keys` in `[memory]`) and an `fs` store in
/// `dir`, with a collecting sink and no configured sinks.
pub fn manager_in(
    dir: &std::path::Path,
    memory_keys: &str,
) -> (Arc<MemoryManager>, Arc<CollectingSink>) {
    let toml = format!(
        "[memory]\nbackend = \"memory\"\n{memory_keys}\n[stores.fs]\ndir = \"{}\"\n",
        dir.join("snapshots").display()
    );
    let config = Config::from_toml_str(&toml).expect("test config");
    let sink = CollectingSink::new();
    let manager = MemoryManager::builder(config)
        .configured_sinks(false)
        .sink(sink.clone())
        .build()
        .expect("manager");
    (manager, sink)
}
