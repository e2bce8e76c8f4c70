//! `/metrics`: Prometheus text, from the bus's and the WebSocket sink's counters plus latency
//! histograms the API records.

use std::sync::Arc;
use std::time::Duration;

use coda::sink_websocket::WebSocketHub;
use coda::{EventType, MemoryManager};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Operations whose latency is recorded.
pub const OPERATIONS: [&str; 8] = [
    "add", "search", "persist", "snapshot", "turn", "update", "delete", "erase",
];

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    latency: HistogramVec,
}

impl Metrics {
    /// Metrics over `manager` and, if configured, the WebSocket `hub`.
    pub fn new(manager: Arc<MemoryManager>, hub: Option<Arc<WebSocketHub>>) -> Metrics {
        let registry = Registry::new();
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "operation_duration_seconds",
                "Latency of memory operations.",
            )
            .namespace("coda")
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ]),
            &["op"],
        )
        .expect("constant histogram options are valid");
        for op in OPERATIONS {
            latency.with_label_values(&[op]);
        }
        let live = Live::new(manager, hub);
        for collector in [
            Box::new(latency.clone()) as Box<dyn Collector>,
            Box::new(live),
        ] {
            registry
                .register(collector)
                .expect("metric names are distinct constants");
        }
        Metrics { registry, latency }
    }

    /// Adds a collector read at every scrape (the cluster's figures).
    pub fn register(&self, collector: Box<dyn Collector>) {
        if let Err(e) = self.registry.register(collector) {
            tracing::error!(error = %e, "a metrics collector could not be registered");
        }
    }

    /// Records one operation's latency.
    pub fn observe(&self, op: &'static str, took: Duration) {
        self.latency
            .with_label_values(&[op])
            .observe(took.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics failed to encode");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Reads the counters the bus and sink keep, at scrape time.
struct Live {
    manager: Arc<MemoryManager>,
    hub: Option<Arc<WebSocketHub>>,
    descs: Vec<Desc>,
}

/// A fresh metric set for one scrape.
struct Scrape {
    events: IntCounterVec,
    duplicates: IntCounter,
    sink_errors: IntCounterVec,
    connections: IntGauge,
    connections_total: IntCounter,
    refused: IntCounter,
    dropped: IntCounter,
    lagged: IntCounter,
    disconnected: IntCounterVec,
    delivered: IntCounter,
    memories: IntGauge,
    turns: IntGauge,
    sessions: IntGauge,
    users: IntGauge,
    latest_seq: IntGauge,
}

impl Scrape {
    fn new() -> prometheus::Result<Scrape> {
        let opts = |name: &str, help: &str| Opts::new(name, help).namespace("coda");
        Ok(Scrape {
            events: IntCounterVec::new(
                opts("events_total", "Events published, by type."),
                &["type"],
            )?,
            duplicates: IntCounter::with_opts(opts(
                "duplicates_suppressed_total",
                "Events suppressed as duplicates.",
            ))?,
            sink_errors: IntCounterVec::new(
                opts("sink_errors_total", "Failed event deliveries, by sink."),
                &["sink"],
            )?,
            connections: IntGauge::with_opts(opts(
                "websocket_connections",
                "WebSocket connections open.",
            ))?,
            connections_total: IntCounter::with_opts(opts(
                "websocket_connections_total",
                "WebSocket connections accepted.",
            ))?,
            refused: IntCounter::with_opts(opts(
                "websocket_refused_total",
                "WebSocket upgrades refused at max_connections.",
            ))?,
            dropped: IntCounter::with_opts(opts(
                "websocket_events_dropped_total",
                "Events dropped from full connection queues.",
            ))?,
            lagged: IntCounter::with_opts(opts(
                "websocket_lagged_total",
                "`lagged` notices sent to clients that fell behind.",
            ))?,
            disconnected: IntCounterVec::new(
                opts(
                    "websocket_disconnected_total",
                    "Connections closed by the server, by reason.",
                ),
                &["reason"],
            )?,
            delivered: IntCounter::with_opts(opts(
                "websocket_deliveries_total",
                "Events written to WebSocket connections.",
            ))?,
            memories: IntGauge::with_opts(opts("memories", "Long-term memories stored."))?,
            turns: IntGauge::with_opts(opts(
                "turns",
                "Conversation turns added, over every session.",
            ))?,
            sessions: IntGauge::with_opts(opts("sessions", "Sessions stored."))?,
            users: IntGauge::with_opts(opts("users", "Users with memories or sessions."))?,
            latest_seq: IntGauge::with_opts(opts(
                "event_seq",
                "The latest event sequence number.",
            ))?,
        })
    }

    fn collectors(&self) -> [&dyn Collector; 15] {
        [
            &self.events,
            &self.duplicates,
            &self.sink_errors,
            &self.connections,
            &self.connections_total,
            &self.refused,
            &self.dropped,
            &self.lagged,
            &self.disconnected,
            &self.delivered,
            &self.memories,
            &self.turns,
            &self.sessions,
            &self.users,
            &self.latest_seq,
        ]
    }
}

impl Live {
    fn new(manager: Arc<MemoryManager>, hub: Option<Arc<WebSocketHub>>) -> Live {
        let descs = Scrape::new()
            .map(|s| {
                s.collectors()
                    .iter()
                    .flat_map(|c| c.desc().into_iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        Live {
            manager,
            hub,
            descs,
        }
    }

    fn scrape(&self) -> prometheus::Result<Vec<MetricFamily>> {
        let s = Scrape::new()?;
        let bus = self.manager.bus().stats();
        for t in EventType::ALL {
            s.events
                .with_label_values(&[t.as_str()])
                .inc_by(bus.published[t.index()]);
        }
        s.duplicates.inc_by(bus.duplicates_suppressed);
        for (sink, errors) in &bus.sink_errors {
            s.sink_errors
                .with_label_values(&[sink.as_str()])
                .inc_by(*errors);
        }
        if let Some(hub) = &self.hub {
            let ws = hub.stats();
            s.connections.set(ws.connections as i64);
            s.connections_total.inc_by(ws.connections_total);
            s.refused.inc_by(ws.refused);
            s.dropped.inc_by(ws.events_dropped);
            s.lagged.inc_by(ws.lagged);
            s.disconnected
                .with_label_values(&["overflow"])
                .inc_by(ws.disconnected_overflow);
            s.disconnected
                .with_label_values(&["timeout"])
                .inc_by(ws.disconnected_timeout);
            s.delivered.inc_by(ws.delivered);
        }
        s.memories
            .set(self.manager.memory_count().unwrap_or(0) as i64);
        let (mut turns, mut sessions) = (0u64, 0i64);
        // Over every tenant: /metrics is an admin's view of the whole server.
        let mut users = std::collections::BTreeSet::new();
        let tenants = std::iter::once(coda::scope::DEFAULT_ID).chain(
            self.manager
                .config()
                .server
                .tenants
                .iter()
                .map(|t| t.id.as_str()),
        );
        let backend = self.manager.backend();
        for tenant in tenants {
            let counted = backend.sessions(tenant, &mut |state| {
                turns += state.info.turn_count;
                sessions += 1;
                users.insert(state.info.owner());
            });
            if let Err(e) = counted.and_then(|()| {
                users.extend(backend.owners(tenant)?.into_iter().map(|(o, _)| o));
                Ok(())
            }) {
                tracing::warn!(error = %e, tenant, "counting sessions for /metrics failed");
            }
        }
        s.turns.set(turns as i64);
        s.sessions.set(sessions);
        s.users.set(users.len() as i64);
        s.latest_seq.set(self.manager.bus().latest_seq() as i64);
        Ok(s.collectors().iter().flat_map(|c| c.collect()).collect())
    }
}

impl Collector for Live {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.scrape().unwrap_or_else(|e| {
            tracing::error!(error = %e, "metrics scrape failed");
            Vec::new()
        })
    }
}
