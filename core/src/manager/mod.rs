//! The memory manager: short-term turns, long-term memories, persist, snapshots — every
//! operation published on the event bus, every operation in a [`Scope`].
//!
//! One module per concern: `sessions` (turns, windows, persist), `memories` (long-term),
//! `snapshots`, `users` (listing and erasure), `scoped` (the [`Scoped`] handle every operation
//! is called through); this file wires them.

mod fusion;
mod import;
mod indexes;
mod lifecycle;
mod memories;
mod quotas;
mod ranking;
mod scoped;
mod sessions;
mod snapshot_cache;
mod snapshot_restore;
mod snapshots;
mod stripes;
mod unscoped;
mod users;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;

use crate::backend::{BackendContext, MemoryBackend};
use crate::bus::{DedupWindow, EventBus, ReplayRing, Sequencer};
use crate::config::Config;
use crate::embed::{Embedder, EmbedderContext};
use crate::extract::{MemoryExtractor, RuleExtractor};
use crate::model::{Memory, Role, Turn};
use crate::registry::{self, BackendFactory, EmbedderFactory, SinkFactory};
use crate::scope::Scope;
use crate::sink::{EventSink, SinkContext};
use crate::snapshot::SnapshotStore;
use crate::stats::MemoryStats;
use crate::{Error, Result};

pub use import::Imported;
pub use lifecycle::Remembered;
pub use memories::{MemoryPatch, Query, Visibility, MAX_LIMIT};
pub use scoped::Scoped;
pub use sessions::SessionListing;
pub use snapshots::{SnapshotListing, CURRENT};
pub use users::{UserErasure, UserListing};

/// Automatic snapshot settings.
#[derive(Debug, Clone, Copy)]
struct AutoSnapshot {
    enabled: bool,
    interval: u64,
}

/// The short-term window, as `GET /turns` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    /// Turns in the window, oldest first.
    pub turns: Vec<Turn>,
    /// Turns added in the session so far.
    pub turn_count: u64,
    /// When the session started.
    #[serde(with = "crate::model::timestamp")]
    pub session_start: DateTime<Utc>,
}

/// What a persist did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersistOutcome {
    /// Turns added in the session so far.
    pub turn_count: u64,
    /// How many memories were added.
    pub memories_added: usize,
    /// The added memories.
    pub memories: Vec<Memory>,
}

/// Builds a [`MemoryManager`] from configuration, with optional components supplied in code.
pub struct ManagerBuilder {
    config: Config,
    backend: Option<Arc<dyn MemoryBackend>>,
    embedder: Option<Arc<dyn Embedder>>,
    store: Option<Arc<dyn SnapshotStore>>,
    sinks: Vec<Arc<dyn EventSink>>,
    configured_sinks: bool,
    extractor: Arc<dyn MemoryExtractor>,
    sequencer: Option<Arc<dyn Sequencer>>,
    sweeper: bool,
}

impl ManagerBuilder {
    /// Uses `backend` instead of the configured one.
    pub fn backend(mut self, backend: Arc<dyn MemoryBackend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Uses `embedder` instead of the configured one.
    pub fn embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// Uses `store` instead of the configured one.
    pub fn store(mut self, store: Arc<dyn SnapshotStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Adds a sink besides the configured ones.
    pub fn sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Whether to build the `[[sinks]]` of the configuration (default: yes).
    pub fn configured_sinks(mut self, build: bool) -> Self {
        self.configured_sinks = build;
        self
    }

    /// Replaces the persist extractor.
    pub fn extractor(mut self, extractor: Arc<dyn MemoryExtractor>) -> Self {
        self.extractor = extractor;
        self
    }

    /// Numbers events with `sequencer` instead of a fresh local epoch counting from 1: a
    /// cluster numbers them from its shared log, so every node shows the same sequence.
    pub fn sequencer(mut self, sequencer: Arc<dyn Sequencer>) -> Self {
        self.sequencer = Some(sequencer);
        self
    }

    /// Whether a thread deletes expired memories every `memory.expiry_sweep_s` (default: yes).
    /// A cluster turns it off and sweeps through its log instead, so every node deletes the
    /// same memories at the same point ([`MemoryManager::sweep_expired`]).
    pub fn expiry_sweeper(mut self, run: bool) -> Self {
        self.sweeper = run;
        self
    }

    /// Checks the configuration and builds every component.
    pub fn build(self) -> Result<Arc<MemoryManager>> {
        let config = self.config;
        config.effective()?;
        let embedder = match self.embedder {
            Some(embedder) => embedder,
            None => {
                let name = &config.memory.embedder;
                registry::find::<EmbedderFactory>(name)?.build_with(
                    Config::options(&config.embedders, name),
                    &format!("embedders.{name}"),
                    &EmbedderContext::new(config.embedders.clone()),
                )?
            }
        };
        let backend = match self.backend {
            Some(backend) => backend,
            None => {
                let name = &config.memory.backend;
                registry::find::<BackendFactory>(name)?.build_with(
                    Config::options(&config.backends, name),
                    &format!("backends.{name}"),
                    &BackendContext::new(Arc::clone(&embedder)),
                )?
            }
        };
        let (store, tenant_stores) = match self.store {
            Some(store) => (store, HashMap::new()),
            None => (config.snapshot_store()?, config.tenant_snapshot_stores()?),
        };
        let events = &config.events;
        let ttl = (events.dedup_ttl_ms > 0).then(|| Duration::from_millis(events.dedup_ttl_ms));
        let bus = Arc::new(match self.sequencer {
            None => EventBus::new(events.replay_capacity, events.dedup_window, ttl),
            Some(sequencer) => EventBus::with_sequencer(
                sequencer,
                Arc::new(ReplayRing::new(events.replay_capacity)),
                DedupWindow::new(events.dedup_window, ttl),
            ),
        });
        if self.configured_sinks {
            let ctx = SinkContext::new(bus.epoch(), Arc::clone(bus.replay()));
            for (i, sink) in config.sinks.iter().enumerate() {
                let path = format!("sinks[{i}]");
                let options = serde_json::Value::Object(sink.options.clone());
                let built =
                    registry::find::<SinkFactory>(&sink.kind)?.build_with(options, &path, &ctx)?;
                bus.add_sink(built);
            }
        }
        for sink in self.sinks {
            bus.add_sink(sink);
        }
        let indexes = indexes::Indexes::build(backend.as_ref())?;
        let expiries = lifecycle::Expiries::build(backend.as_ref())?;
        let auto = AutoSnapshot {
            enabled: config.snapshots.auto,
            interval: config.snapshots.interval,
        };
        let sweep_every = Duration::from_secs(config.memory.expiry_sweep_s);
        let manager = Arc::new(MemoryManager {
            expiries: Mutex::new(expiries),
            sweeper: Mutex::new(None),
            snapshot_cache: Mutex::new(snapshot_cache::SnapshotCache::new(
                config.snapshots.in_memory,
            )),
            quotas: quotas::Quotas::new(&config.server.tenants),
            tenant_stores,
            config,
            backend,
            embedder,
            store,
            bus,
            extractor: self.extractor,
            indexes,
            session_locks: stripes::Stripes::new(),
            persist_locks: stripes::Stripes::new(),
            owner_locks: stripes::Stripes::new(),
            default_started: crate::model::timestamp::now(),
            auto: Mutex::new(auto),
            writes: parking_lot::RwLock::new(()),
        });
        if self.sweeper {
            let sweeper = spawn_sweeper(Arc::downgrade(&manager), sweep_every)?;
            *manager.sweeper.lock() = Some(sweeper);
        }
        Ok(manager)
    }
}

/// The thread deleting expired memories every `every`; it holds the manager only while it
/// sweeps, and ends when the manager is dropped (which wakes it).
fn spawn_sweeper(
    manager: std::sync::Weak<MemoryManager>,
    every: Duration,
) -> Result<std::thread::Thread> {
    let handle = std::thread::Builder::new()
        .name("coda-expiry".into())
        .spawn(move || loop {
            std::thread::park_timeout(every);
            let Some(manager) = manager.upgrade() else {
                return;
            };
            let writing = manager.write_gate();
            let swept = manager.sweep_expired();
            drop(writing);
            if let Err(e) = swept {
                tracing::warn!(error = %e, "sweeping expired memories failed; will retry");
            }
        })
        .map_err(|e| Error::io("start the expiry sweeper thread", "", e))?;
    Ok(handle.thread().clone())
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        if let Some(sweeper) = self.sweeper.lock().take() {
            sweeper.unpark();
        }
    }
}

/// Coda's memory: one per assistant session, shared between threads.
pub struct MemoryManager {
    config: Config,
    backend: Arc<dyn MemoryBackend>,
    embedder: Arc<dyn Embedder>,
    store: Arc<dyn SnapshotStore>,
    bus: Arc<EventBus>,
    extractor: Arc<dyn MemoryExtractor>,
    /// Per-owner BM25 indexes and long-term summaries.
    indexes: indexes::Indexes,
    /// Serialise changes to one session, so turn order and seq order agree.
    session_locks: stripes::Stripes,
    /// Serialise persists of one session, so no turn is distilled twice.
    persist_locks: stripes::Stripes,
    /// Serialise read-modify-write of one owner's memories, so summaries stay exact.
    owner_locks: stripes::Stripes,
    /// Tenants' `max_memories`.
    quotas: quotas::Quotas,
    /// Each configured tenant's own snapshot store, keyed by tenant id.
    tenant_stores: HashMap<String, Arc<dyn SnapshotStore>>,
    /// When this process started: the `session_start` of a session that has no turn yet.
    default_started: DateTime<Utc>,
    snapshot_cache: Mutex<snapshot_cache::SnapshotCache>,
    auto: Mutex<AutoSnapshot>,
    /// When each expiring memory is due, for the sweeper.
    expiries: Mutex<lifecycle::Expiries>,
    /// The sweeper thread, woken on drop so it ends.
    sweeper: Mutex<Option<std::thread::Thread>>,
    /// Held shared by every write the server runs (change and event together), exclusively by
    /// a backup while it captures the state, so the capture lies between two events.
    writes: parking_lot::RwLock<()>,
}

impl MemoryManager {
    /// A builder over `config`; plugins are resolved by name when it builds.
    pub fn builder(config: Config) -> ManagerBuilder {
        ManagerBuilder {
            config,
            backend: None,
            embedder: None,
            store: None,
            sinks: Vec::new(),
            configured_sinks: true,
            extractor: Arc::new(RuleExtractor),
            sequencer: None,
            sweeper: true,
        }
    }

    /// Builds everything `config` names.
    pub fn open(config: Config) -> Result<Arc<MemoryManager>> {
        Self::builder(config).build()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The event bus (epoch, replay ring, sinks, counters).
    pub fn bus(&self) -> &Arc<EventBus> {
        &self.bus
    }

    /// The long-term backend.
    pub fn backend(&self) -> &Arc<dyn MemoryBackend> {
        &self.backend
    }

    /// The embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// The snapshot store of tenant `default` (and of every tenant when the store has no `dir`
    /// or was given to the builder).
    pub fn store(&self) -> &Arc<dyn SnapshotStore> {
        &self.store
    }

    /// The snapshot store of `tenant`: its own directory for a configured tenant (SPEC §9).
    pub fn store_for(&self, tenant: &str) -> &Arc<dyn SnapshotStore> {
        self.tenant_stores.get(tenant).unwrap_or(&self.store)
    }

    fn check_content(&self, field: &str, content: &str) -> Result<()> {
        if content.trim().is_empty() {
            return Err(Error::invalid(field, "must not be empty"));
        }
        let max = self.config.memory.max_content_bytes;
        if content.len() > max {
            return Err(Error::invalid(
                field,
                format!("is {} bytes; the limit is {max}", content.len()),
            ));
        }
        Ok(())
    }

    /// A handle on the manager acting in `scope`: every operation through it reads and writes
    /// only that scope's data.
    pub fn scope(&self, scope: Scope) -> Scoped<'_> {
        Scoped::new(self, scope)
    }

    /// A handle for user `user_id` (tenant `default`), validated.
    pub fn user(&self, user_id: &str) -> Result<Scoped<'_>> {
        Ok(self.scope(Scope::user(user_id)?))
    }

    /// A handle for session `session_id` of user `user_id`, validated.
    pub fn session(&self, user_id: &str, session_id: &str) -> Result<Scoped<'_>> {
        Ok(self.scope(Scope::user(user_id)?.with_session(session_id)?))
    }

    /// The handle of user `default`, session `default`: what the unscoped calls use.
    pub fn default_scope(&self) -> Scoped<'_> {
        self.scope(Scope::default())
    }

    /// Adds a conversation turn to the default session.
    pub fn add_turn(&self, role: Role, content: &str) -> Result<Turn> {
        self.default_scope().add_turn(role, content)
    }

    /// Adds a turn to the default session; for `tool` turns, `name` is the tool's name.
    pub fn add_turn_named(&self, role: Role, content: &str, name: Option<&str>) -> Result<Turn> {
        self.default_scope().add_turn_named(role, content, name)
    }

    /// The default session's window.
    pub fn conversation(&self) -> Conversation {
        self.default_scope().conversation().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the default session failed");
            Conversation {
                turns: Vec::new(),
                turn_count: 0,
                session_start: self.default_started,
            }
        })
    }

    /// Distils the default session's turns since the last persist into long-term memories.
    pub fn persist_short_term_memory(&self) -> Result<PersistOutcome> {
        self.default_scope().persist()
    }

    /// Empties the default session's window; cleared turns are not persisted later.
    pub fn clear_short_term(&self) {
        if let Err(e) = self.default_scope().clear_turns() {
            tracing::warn!(error = %e, "clearing the default session failed");
        }
    }

    /// The seed's `memory_stats` object for user `default`, session `default`.
    pub fn stats(&self) -> MemoryStats {
        self.default_scope().stats()
    }

    /// Marks the caller as writing until the guard drops: an online backup waits for every
    /// holder and keeps new ones waiting while it captures the state (see
    /// [`backup`](Self::backup)). The server holds it around every API operation; a library
    /// caller writing while a backup runs should hold it around each write. Not re-entrant:
    /// take it once per operation.
    pub fn write_gate(&self) -> parking_lot::RwLockReadGuard<'_, ()> {
        self.writes.read()
    }

    /// Holds every [`write_gate`](Self::write_gate) holder off until the guard drops.
    pub(crate) fn pause_writes(&self) -> parking_lot::RwLockWriteGuard<'_, ()> {
        self.writes.write()
    }

    /// Whether an operation that only touches the backend, the embedder and the sinks (adding a
    /// memory, a search) never waits on I/O or a model when run inside
    /// [`durability::defer`](crate::durability::defer), so it can run on an async thread: the
    /// backend's quick calls never block there ([`MemoryBackend::quick_when_deferred`]) and the
    /// embedder is cheap. (Sinks never block by contract.) The caller awaits the handed-off
    /// waits before it answers.
    pub fn answers_inline(&self) -> bool {
        self.backend.quick_when_deferred() && self.embedder.is_cheap()
    }

    /// Flushes the backend and every sink.
    pub fn flush(&self) -> Result<()> {
        let backend = self.backend.flush();
        let sinks = self.bus.flush();
        backend.and(sinks)
    }

    /// Flushes the backend and shuts every sink down.
    pub fn shutdown(&self) -> Result<()> {
        let backend = self.backend.flush();
        let sinks = self.bus.shutdown();
        backend.and(sinks)
    }
}
