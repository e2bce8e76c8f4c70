//! Conformance for `EventSink`, and a sink that collects events for tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::bus::EventBus;
use crate::event::{EventBody, SharedEvent};
use crate::sink::EventSink;
use crate::Result;

/// A sink that keeps every event it is given, for tests.
#[derive(Default)]
pub struct CollectingSink {
    events: Mutex<Vec<SharedEvent>>,
}

impl CollectingSink {
    /// An empty collector.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Every event so far, in delivery order.
    pub fn events(&self) -> Vec<SharedEvent> {
        self.events.lock().clone()
    }

    /// Every event so far, parsed as JSON objects.
    pub fn values(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.events.lock().iter().map(|e| e.to_value()).collect()
    }

    /// Forgets the events so far.
    pub fn clear(&self) {
        self.events.lock().clear();
    }
}

impl EventSink for CollectingSink {
    fn name(&self) -> &str {
        "collect"
    }

    fn deliver(&self, event: &SharedEvent) -> Result<()> {
        self.events.lock().push(Arc::clone(event));
        Ok(())
    }
}

/// Checks a sink: `deliver` returns quickly even when called many times in a row, and `flush`
/// and `shutdown` succeed. `delivered` reports what the sink has written so far (as JSON lines,
/// in order), so the suite can check nothing was lost or reordered after a flush.
pub fn sink_conformance(sink: Arc<dyn EventSink>, delivered: &dyn Fn() -> Vec<String>) {
    let bus = EventBus::new(16, 0, None);
    bus.add_sink(Arc::clone(&sink));
    let start = Instant::now();
    let mut sent = Vec::new();
    for i in 0..200u64 {
        let body = EventBody::ConversationTurn {
            role: crate::model::Role::User,
            content: format!("message {i}"),
            turn_index: i,
        };
        if let Some(event) = bus.emit(&body) {
            sent.push(event.json().to_owned());
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "200 deliveries took {:?}: deliver must not block",
        start.elapsed()
    );
    sink.flush().expect("flush");
    let got = delivered();
    assert_eq!(got, sent, "after flush the sink holds every event, in order");
    sink.shutdown().expect("shutdown");
}
