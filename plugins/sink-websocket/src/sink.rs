//! The sink itself: fans each event out to every connection's outbox, once serialised.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use coda_core::{EventArchive, EventSink, ReplayRing, Result, SharedEvent};
use parking_lot::RwLock;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::filter::EventFilter;
use crate::queue::{Close, Outbox, Pushed, Wire};
use crate::WebSocketOptions;

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebSocketStats {
    /// Connections open now.
    pub connections: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Upgrades refused because `max_connections` were open.
    pub refused: u64,
    /// Events dropped from full queues under `drop_oldest`.
    pub events_dropped: u64,
    /// `lagged` frames sent.
    pub lagged: u64,
    /// Connections closed because their queue overflowed under `disconnect`.
    pub disconnected_overflow: u64,
    /// Connections closed for not answering pings.
    pub disconnected_timeout: u64,
    /// Event deliveries written to sockets.
    pub delivered: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub connections_total: AtomicU64,
    pub refused: AtomicU64,
    pub events_dropped: AtomicU64,
    pub lagged: AtomicU64,
    pub disconnected_overflow: AtomicU64,
    pub disconnected_timeout: AtomicU64,
    pub delivered: AtomicU64,
}

pub(crate) struct Registered {
    pub id: u64,
    pub outbox: Arc<Outbox>,
    /// What the connection wants. Kept here, read under the connection list's read lock that
    /// delivery holds anyway, so checking it costs no atomic operation per event; replaced
    /// under the write lock ([`WebSocketHub::set_filter`]).
    pub filter: EventFilter,
}

/// The connections of a WebSocket sink, shared by the sink (which the bus feeds) and the
/// `/ws` route (which adds connections).
pub struct WebSocketHub {
    pub(crate) options: WebSocketOptions,
    pub(crate) epoch: Uuid,
    pub(crate) ring: Arc<ReplayRing>,
    /// Where events older than the ring can be read (a cluster's events archive), if anywhere.
    pub(crate) archive: OnceLock<Arc<dyn EventArchive>>,
    connections: RwLock<Vec<Registered>>,
    next_id: AtomicU64,
    /// Upgrades admitted and not yet finished (counts toward `max_connections`).
    admitted: AtomicUsize,
    latest: AtomicU64,
    closing: AtomicBool,
    all_closed: Notify,
    /// Beats every `coalesce_ms`: a connection that has just written waits for the next beat
    /// before writing again, so under load each write carries every event of the interval.
    pub(crate) beat: Notify,
    beating: AtomicBool,
    /// Wakes the beat task when the first connection arrives.
    first_connection: Arc<Notify>,
    pub(crate) counters: Counters,
}

/// A slot toward `max_connections`, released when the connection ends.
pub(crate) struct Admission {
    sink: Arc<WebSocketHub>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.sink.admitted.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.sink.all_closed.notify_waiters();
        }
    }
}

impl WebSocketHub {
    /// A sink for a bus with `epoch` and `ring`.
    pub fn new(options: WebSocketOptions, epoch: Uuid, ring: Arc<ReplayRing>) -> Self {
        WebSocketHub {
            options,
            epoch,
            ring,
            archive: OnceLock::new(),
            connections: RwLock::new(Vec::new()),
            next_id: AtomicU64::new(1),
            admitted: AtomicUsize::new(0),
            latest: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            all_closed: Notify::new(),
            beat: Notify::new(),
            beating: AtomicBool::new(false),
            first_connection: Arc::new(Notify::new()),
            counters: Counters::default(),
        }
    }

    /// Resumes from further back than the ring through `archive`: a connection whose `since`
    /// is older than the ring holds gets the events in between from it. Set once (the server
    /// does in a cluster); a second archive is ignored.
    pub fn set_archive(&self, archive: Arc<dyn EventArchive>) {
        if self.archive.set(archive).is_err() {
            tracing::warn!("the websocket sink already has an events archive; kept the first");
        }
    }

    /// The sink's options.
    pub fn options(&self) -> &WebSocketOptions {
        &self.options
    }

    /// The bus epoch this sink serves.
    pub fn epoch(&self) -> Uuid {
        self.epoch
    }

    /// The newest `seq` delivered to the sink (or held by the ring).
    pub fn latest_seq(&self) -> u64 {
        self.latest
            .load(Ordering::Acquire)
            .max(self.ring.latest_seq())
    }

    /// Counters for metrics.
    pub fn stats(&self) -> WebSocketStats {
        let c = &self.counters;
        WebSocketStats {
            connections: self.connections.read().len() as u64,
            connections_total: c.connections_total.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            events_dropped: c.events_dropped.load(Ordering::Relaxed),
            lagged: c.lagged.load(Ordering::Relaxed),
            disconnected_overflow: c.disconnected_overflow.load(Ordering::Relaxed),
            disconnected_timeout: c.disconnected_timeout.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
        }
    }

    /// Takes a connection slot, or `None` when `max_connections` are open or the sink closes.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Admission> {
        if self.closing.load(Ordering::Acquire) {
            return None;
        }
        let max = self.options.max_connections;
        let admitted = self
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        match admitted {
            Ok(_) => Some(Admission {
                sink: Arc::clone(self),
            }),
            Err(_) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Adds a connection's outbox; it receives every event `filter` wants delivered from now
    /// on. Returns its id and the latest `seq` at registration.
    pub(crate) fn register(&self, outbox: Arc<Outbox>, filter: EventFilter) -> (u64, u64) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut connections = self.connections.write();
        if self.closing.load(Ordering::Acquire) {
            outbox.close(shutdown_close());
        }
        connections.push(Registered { id, outbox, filter });
        self.first_connection.notify_one();
        self.counters
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        (id, self.latest_seq())
    }

    /// Starts the coalescing beat (once; it sleeps while there are no connections). Needs a
    /// tokio runtime, which connections always have.
    pub(crate) fn start_beat(self: &Arc<Self>) {
        if self.beating.swap(true, Ordering::AcqRel) {
            return;
        }
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            // If the runtime goes away, the next connection (perhaps on another runtime)
            // starts a new beat.
            let _restart = BeatStopped(hub.clone());
            let every = match hub.upgrade() {
                Some(hub) => hub.options.coalesce(),
                None => return,
            };
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(hub) = hub.upgrade() else { return };
                if hub.connections.read().is_empty() {
                    let first = Arc::clone(&hub.first_connection);
                    let woken = first.notified();
                    drop(hub);
                    woken.await;
                    continue;
                }
                hub.beat.notify_waiters();
            }
        });
    }

    /// Replaces connection `id`'s filter: events delivered from now on, and those still queued
    /// for it, are what `filter` wants.
    pub(crate) fn set_filter(&self, id: u64, filter: EventFilter) {
        let mut connections = self.connections.write();
        if let Some(c) = connections.iter_mut().find(|c| c.id == id) {
            // Under the write lock no delivery runs, so nothing of the old filter is queued
            // after this.
            c.outbox.retain(&filter);
            c.filter = filter;
        }
    }

    /// Removes a finished connection.
    pub(crate) fn unregister(&self, id: u64) {
        self.connections.write().retain(|c| c.id != id);
    }

    /// Closes every connection with 1001 after writing what each has queued; new upgrades are
    /// refused from now on.
    pub fn close_all(&self) {
        self.closing.store(true, Ordering::Release);
        for c in self.connections.read().iter() {
            c.outbox.close(shutdown_close());
        }
    }

    /// Waits until every connection has finished (after [`close_all`](Self::close_all)).
    pub async fn closed(&self) {
        loop {
            let notified = self.all_closed.notified();
            if self.admitted.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Marks the beat as stopped when its task ends or is dropped.
struct BeatStopped(std::sync::Weak<WebSocketHub>);

impl Drop for BeatStopped {
    fn drop(&mut self) {
        if let Some(hub) = self.0.upgrade() {
            hub.beating.store(false, Ordering::Release);
        }
    }
}

fn shutdown_close() -> Close {
    Close {
        code: 1001,
        reason: "server shutting down",
        drain: true,
        send: true,
    }
}

/// Sink `websocket`: live events for every `/ws` connection.
pub struct WebSocketSink {
    hub: Arc<WebSocketHub>,
}

impl WebSocketSink {
    /// A sink for a bus with `epoch` and `ring`.
    pub fn new(options: WebSocketOptions, epoch: Uuid, ring: Arc<ReplayRing>) -> Self {
        WebSocketSink {
            hub: Arc::new(WebSocketHub::new(options, epoch, ring)),
        }
    }

    /// The connections this sink feeds; the `/ws` route serves them.
    pub fn hub(&self) -> Arc<WebSocketHub> {
        Arc::clone(&self.hub)
    }
}

impl EventSink for WebSocketSink {
    fn name(&self) -> &str {
        crate::NAME
    }

    fn deliver(&self, event: &SharedEvent) -> Result<()> {
        self.hub.deliver(event);
        Ok(())
    }

    fn shutdown(&self) -> Result<()> {
        self.hub.close_all();
        Ok(())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl WebSocketHub {
    /// Queues `event` for every connection that wants it; never blocks.
    pub fn deliver(&self, event: &SharedEvent) {
        self.latest.fetch_max(event.seq, Ordering::AcqRel);
        let connections = self.connections.read();
        if connections.is_empty() {
            return;
        }
        // Wrapped for the wire only when a connection wants it.
        let mut wire = None;
        for c in connections.iter() {
            if !c.filter.wants(event) {
                continue;
            }
            let wire = wire.get_or_insert_with(|| Wire::new(event));
            match c.outbox.push(wire) {
                Pushed::Queued => {}
                Pushed::Dropped => {
                    self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
                }
                Pushed::Disconnected => {
                    self.counters
                        .disconnected_overflow
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Overflow;

    #[test]
    fn passes_the_sink_conformance_suite() {
        let options = WebSocketOptions::default();
        let sink = Arc::new(WebSocketSink::new(
            options,
            Uuid::new_v4(),
            Arc::new(ReplayRing::new(16)),
        ));
        // A connection's outbox stands in for a socket: what it holds is what would be sent.
        let outbox = Arc::new(Outbox::new(1024, Overflow::DropOldest));
        sink.hub()
            .register(Arc::clone(&outbox), EventFilter::default());
        let written = parking_lot::Mutex::new(Vec::new());
        coda_core::testkit::sink_conformance(sink.clone(), &|| {
            let mut written = written.lock();
            written.extend(outbox.take().events.iter().map(|w| w.text.to_string()));
            written.clone()
        });
    }

    #[test]
    fn delivery_honours_each_connection_filter_and_its_replacement() {
        use crate::filter::{ScopeFilter, TypeSet};
        use coda_core::{EventScope, EventType};
        let hub = WebSocketHub::new(
            WebSocketOptions::default(),
            Uuid::new_v4(),
            Arc::new(ReplayRing::new(1)),
        );
        let user = |id: &str| EventScope {
            user_id: id.into(),
            ..EventScope::default_user()
        };
        let (alice, bob) = (user("alice"), user("bob"));
        let wires = crate::test_events::events_in(&[
            (EventType::ConversationTurn, &alice),
            (EventType::ConversationTurn, &bob),
            (EventType::MemoryStore, &alice),
            (EventType::MemoryStore, &bob),
        ]);
        let only = |user: Option<&str>, types: &[EventType]| EventFilter {
            types: TypeSet::of(types),
            scope: ScopeFilter::parse(user, None, None).expect("valid"),
            ..EventFilter::default()
        };
        let everything = Arc::new(Outbox::new(16, Overflow::DropOldest));
        let alices = Arc::new(Outbox::new(16, Overflow::DropOldest));
        hub.register(Arc::clone(&everything), EventFilter::default());
        let (id, _) = hub.register(Arc::clone(&alices), only(Some("alice"), &[]));
        let seqs =
            |outbox: &Outbox| -> Vec<u64> { outbox.take().events.iter().map(|w| w.seq).collect() };
        for wire in &wires[..2] {
            hub.deliver(&wire.event);
        }
        assert_eq!(seqs(&everything), [1, 2]);
        assert_eq!(seqs(&alices), [1]);
        hub.set_filter(id, only(Some("bob"), &[EventType::MemoryStore]));
        for wire in &wires[2..] {
            hub.deliver(&wire.event);
        }
        assert_eq!(seqs(&alices), [4]);
        assert_eq!(seqs(&everything), [3, 4]);
    }

    #[test]
    fn admission_stops_at_max_connections_and_frees_on_drop() {
        let options = WebSocketOptions {
            max_connections: 1,
            ..WebSocketOptions::default()
        };
        let hub = Arc::new(WebSocketHub::new(
            options,
            Uuid::new_v4(),
            Arc::new(ReplayRing::new(1)),
        ));
        let first = hub.admit().expect("a free slot");
        assert!(hub.admit().is_none());
        assert_eq!(hub.stats().refused, 1);
        drop(first);
        assert!(hub.admit().is_some());
        hub.close_all();
        assert!(hub.admit().is_none(), "no upgrades once closing");
    }

    #[test]
    fn the_beat_restarts_after_its_runtime_is_gone() {
        let hub = Arc::new(WebSocketHub::new(
            WebSocketOptions::default(),
            Uuid::new_v4(),
            Arc::new(ReplayRing::new(1)),
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            hub.start_beat();
            tokio::task::yield_now().await;
        });
        assert!(hub.beating.load(Ordering::Acquire));
        drop(runtime);
        assert!(
            !hub.beating.load(Ordering::Acquire),
            "a later connection starts a new beat"
        );
    }
}
