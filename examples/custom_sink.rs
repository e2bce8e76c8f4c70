//! A sink written outside Coda's plugins: it forwards `memory_store` events to a callback, the
//! way a webhook or message-queue sink would. It registers itself by name, and a TOML string
//! selects it.
//!
//! `cargo run --example custom_sink`

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use coda::{
    Config, Error, EventSink, EventType, MemoryManager, NewMemory, SharedEvent, SinkContext,
};
use serde::{Deserialize, Serialize};

/// The name the sink registers under: `[[sinks]] type = "forward"`.
pub const NAME: &str = "forward";

/// Options of `[[sinks]] type = "forward"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardOptions {
    /// Event types to forward.
    #[serde(default = "ForwardOptions::default_types")]
    pub types: Vec<String>,
    /// Events that may wait for the receiver before new ones are dropped.
    #[serde(default = "ForwardOptions::default_queue")]
    pub queue: usize,
}

impl ForwardOptions {
    fn default_types() -> Vec<String> {
        vec!["memory_store".into()]
    }

    fn default_queue() -> usize {
        256
    }
}

/// Where forwarded events go. A real sink would hold an HTTP client or a queue producer; the
/// receiving end here is handed to `main` through this slot.
static RECEIVER: OnceLock<parking_lot::Mutex<Option<Receiver<String>>>> = OnceLock::new();

/// Forwards chosen events' JSON to a bounded channel; never blocks the bus.
pub struct ForwardSink {
    types: Vec<EventType>,
    tx: SyncSender<String>,
}

impl EventSink for ForwardSink {
    fn name(&self) -> &str {
        NAME
    }

    fn deliver(&self, event: &SharedEvent) -> coda::Result<()> {
        if !self.types.contains(&event.event_type) {
            return Ok(());
        }
        // try_send, not send: deliver must never wait. A full channel drops and reports.
        match self.tx.try_send(event.json().to_owned()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Error::Unavailable("forward queue full".into())),
            Err(TrySendError::Disconnected(_)) => Err(Error::Unavailable("receiver gone".into())),
        }
    }
}

fn build(options: ForwardOptions, _ctx: &SinkContext) -> coda::Result<Arc<dyn EventSink>> {
    let types = options
        .types
        .iter()
        .map(|t| t.parse::<EventType>())
        .collect::<coda::Result<Vec<_>>>()?;
    let (tx, rx) = sync_channel(options.queue);
    let slot = RECEIVER.get_or_init(|| parking_lot::Mutex::new(None));
    *slot.lock() = Some(rx);
    Ok(Arc::new(ForwardSink { types, tx }))
}

coda::register_sink!(NAME, ForwardOptions, build);

fn main() -> coda::Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("create", "temp dir", e))?;
    let config = Config::from_toml_str(&format!(
        r#"
        [memory]
        backend = "memory"
        embedder = "hashing"
        [stores.fs]
        dir = "{}"
        [[sinks]]
        type = "forward"
        types = ["memory_store", "memory_persist"]
        "#,
        dir.path().display()
    ))?;
    let coda = MemoryManager::open(config)?;
    let rx = RECEIVER
        .get()
        .and_then(|slot| slot.lock().take())
        .ok_or_else(|| Error::Unavailable("the forward sink was not built".into()))?;

    coda.add_memory(NewMemory::new("The user's name is Alice.", "fact"))?;
    coda.add_turn(coda::Role::User, "I like jazz.")?; // not forwarded: not a chosen type
    coda.persist_short_term_memory()?;

    let forwarded: Vec<serde_json::Value> = rx
        .try_iter()
        .map(|json| serde_json::from_str(&json).unwrap_or_default())
        .collect();
    for event in &forwarded {
        println!("forwarded {} seq={}", event["type"], event["seq"]);
    }
    let types: Vec<&str> = forwarded
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "memory_store",
            "memory_store",
            "memory_store",
            "memory_persist"
        ]
    );
    Ok(())
}

#[test]
fn example_runs() {
    main().expect("the example succeeds");
}
