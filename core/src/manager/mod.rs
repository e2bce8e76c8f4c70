//! The memory manager: short-term turns, long-term memories, persist, snapshots — every
//! operation published on the event bus.

mod memories;
mod snapshots;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;

use crate::backend::{BackendContext, MemoryBackend};
use crate::bus::{Dedup, EventBus};
use crate::config::Config;
use crate::embed::{Embedder, EmbedderContext};
use crate::event::EventBody;
use crate::extract::{MemoryExtractor, RuleExtractor};
use crate::model::{Memory, Role, Turn};
use crate::registry::{self, BackendFactory, EmbedderFactory, SinkFactory, StoreFactory};
use crate::sink::{EventSink, SinkContext};
use crate::snapshot::SnapshotStore;
use crate::stats::{LongTermSummary, MemoryStats, ShortTermStats};
use crate::{Error, Result};

pub use memories::MemoryPatch;
pub use snapshots::SnapshotListing;

/// The conversation window and session bookkeeping.
#[derive(Debug, Clone)]
struct Session {
    turns: VecDeque<Turn>,
    /// Turns added in this session; the next turn's index.
    turn_count: u64,
    session_start: DateTime<Utc>,
    /// Turns with `turn_index` below this have been persisted (or cleared).
    persisted_upto: u64,
    last_tool_used: Option<String>,
}

impl Session {
    fn new() -> Self {
        Session {
            turns: VecDeque::new(),
            turn_count: 0,
            session_start: crate::model::timestamp::now(),
            persisted_upto: 0,
            last_tool_used: None,
        }
    }
}

/// Aggregates over long-term memory and what is known about the user.
#[derive(Debug, Default)]
struct Knowledge {
    summary: LongTermSummary,
    user_summary_keys: BTreeSet<String>,
}

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
                    &EmbedderContext::default(),
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
        let store = match self.store {
            Some(store) => store,
            None => {
                let name = &config.snapshots.store;
                registry::find::<StoreFactory>(name)?.build_with(
                    Config::options(&config.stores, name),
                    &format!("stores.{name}"),
                    &Default::default(),
                )?
            }
        };
        let events = &config.events;
        let ttl = (events.dedup_ttl_ms > 0).then(|| Duration::from_millis(events.dedup_ttl_ms));
        let bus = Arc::new(EventBus::new(
            events.replay_capacity,
            events.dedup_window,
            ttl,
        ));
        if self.configured_sinks {
            let ctx = SinkContext::new(bus.epoch(), Arc::clone(bus.replay()));
            for (i, sink) in config.sinks.iter().enumerate() {
                let path = format!("sinks[{i}]");
                let options = serde_json::Value::Object(sink.options.clone());
                let built = registry::find::<SinkFactory>(&sink.kind)?
                    .build_with(options, &path, &ctx)?;
                bus.add_sink(built);
            }
        }
        for sink in self.sinks {
            bus.add_sink(sink);
        }
        let mut summary = LongTermSummary::default();
        backend.scan(&mut |record| summary.add(&record.memory.metadata))?;
        let auto = AutoSnapshot {
            enabled: config.snapshots.auto,
            interval: config.snapshots.interval,
        };
        Ok(Arc::new(MemoryManager {
            snapshot_cache: Mutex::new(snapshots::SnapshotCache::new(config.snapshots.in_memory)),
            config,
            backend,
            embedder,
            store,
            bus,
            extractor: self.extractor,
            session: Mutex::new(Session::new()),
            knowledge: Mutex::new(Knowledge {
                summary,
                user_summary_keys: BTreeSet::new(),
            }),
            persist_lock: Mutex::new(()),
            auto: Mutex::new(auto),
        }))
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
    session: Mutex<Session>,
    knowledge: Mutex<Knowledge>,
    /// Serialises persists so no turn is distilled twice.
    persist_lock: Mutex<()>,
    snapshot_cache: Mutex<snapshots::SnapshotCache>,
    auto: Mutex<AutoSnapshot>,
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

    /// The snapshot store.
    pub fn store(&self) -> &Arc<dyn SnapshotStore> {
        &self.store
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

    /// Adds a conversation turn to the short-term window.
    pub fn add_turn(&self, role: Role, content: &str) -> Result<Turn> {
        self.add_turn_named(role, content, None)
    }

    /// Adds a turn; for `tool` turns, `name` is the tool's name (`last_tool_used`).
    pub fn add_turn_named(&self, role: Role, content: &str, name: Option<&str>) -> Result<Turn> {
        self.check_content("content", content)?;
        let (turn, due_persist, due_snapshot) = {
            let mut session = self.session.lock();
            let turn = Turn {
                role,
                content: content.to_owned(),
                turn_index: session.turn_count,
                timestamp: crate::model::timestamp::now(),
                name: name.map(str::to_owned),
            };
            session.turn_count += 1;
            session.turns.push_back(turn.clone());
            while session.turns.len() > self.config.memory.short_term_max_turns {
                session.turns.pop_front();
            }
            if role == Role::Tool {
                if let Some(name) = name {
                    session.last_tool_used = Some(name.to_owned());
                }
            }
            // Published under the session lock so turn order and seq order agree.
            self.bus.emit_with(
                &EventBody::ConversationTurn {
                    role,
                    content: turn.content.clone(),
                    turn_index: turn.turn_index,
                },
                Dedup::Skip,
            );
            let interval = self.config.memory.persist_interval;
            let due_persist =
                interval > 0 && session.turn_count - session.persisted_upto >= interval;
            let auto = *self.auto.lock();
            let due_snapshot = auto.enabled && session.turn_count % auto.interval == 0;
            (turn, due_persist, due_snapshot)
        };
        if due_persist {
            if let Err(e) = self.persist_short_term_memory() {
                tracing::warn!(error = %e, "automatic persist failed");
            }
        }
        if due_snapshot {
            if let Err(e) = self.auto_snapshot() {
                tracing::warn!(error = %e, "automatic snapshot failed");
            }
        }
        Ok(turn)
    }

    /// The short-term window.
    pub fn conversation(&self) -> Conversation {
        let session = self.session.lock();
        Conversation {
            turns: session.turns.iter().cloned().collect(),
            turn_count: session.turn_count,
            session_start: session.session_start,
        }
    }

    /// Distils the turns since the last persist into long-term memories.
    pub fn persist_short_term_memory(&self) -> Result<PersistOutcome> {
        let _one_at_a_time = self.persist_lock.lock();
        let (turns, upto) = {
            let session = self.session.lock();
            let pending: Vec<Turn> = session
                .turns
                .iter()
                .filter(|t| t.turn_index >= session.persisted_upto)
                .cloned()
                .collect();
            (pending, session.turn_count)
        };
        let extracted = self.extractor.extract(&turns);
        let mut memories = Vec::with_capacity(extracted.len());
        for item in extracted {
            let memory = self.add_memory(item.memory)?;
            if let Some(key) = item.summary_key {
                self.knowledge.lock().user_summary_keys.insert(key);
            }
            memories.push(memory);
        }
        let turn_count = {
            let mut session = self.session.lock();
            session.persisted_upto = session.persisted_upto.max(upto);
            session.turn_count
        };
        self.bus.emit_with(
            &EventBody::MemoryPersist {
                turn_count,
                memories_added: memories.len(),
            },
            Dedup::Skip,
        );
        Ok(PersistOutcome {
            turn_count,
            memories_added: memories.len(),
            memories,
        })
    }

    /// Empties the short-term window; cleared turns are not persisted later.
    pub fn clear_short_term(&self) {
        let mut session = self.session.lock();
        session.turns.clear();
        session.persisted_upto = session.turn_count;
        self.bus.emit_with(&EventBody::MemoryClear {}, Dedup::Skip);
    }

    /// The seed's `memory_stats` object.
    pub fn stats(&self) -> MemoryStats {
        let (turn_count, session_start, last_tool_used) = {
            let session = self.session.lock();
            (
                session.turn_count,
                session.session_start,
                session.last_tool_used.clone(),
            )
        };
        let knowledge = self.knowledge.lock();
        let duration = (crate::model::timestamp::now() - session_start).num_milliseconds() as f64 / 1000.0;
        MemoryStats {
            short_term: ShortTermStats {
                turn_count,
                session_duration: duration.max(0.0),
            },
            long_term: knowledge
                .summary
                .stats(knowledge.user_summary_keys.iter().cloned().collect()),
            recent_topics: knowledge.summary.recent_topics(),
            last_tool_used,
        }
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
