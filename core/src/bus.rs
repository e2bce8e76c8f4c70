//! The event bus: sequencing, duplicate suppression, the replay ring and fan-out to sinks.
//!
//! Emitting is plain synchronous code: no runtime, no event loop, callable from any thread. The
//! bus assigns `seq`, records the event in the replay ring and hands it to every sink under one
//! lock, so sinks see events in `seq` order; sinks never block, so the lock is held briefly.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use twox_hash::XxHash3_64;
use uuid::Uuid;

use crate::event::{Event, EventBody, EventScope, EventType, SharedEvent};
use crate::sink::EventSink;

/// Hands out sequence numbers. The local implementation counts in memory; a clustered
/// deployment would take them from the shared stream (e.g. a JetStream subject's sequence).
pub trait Sequencer: Send + Sync + 'static {
    /// The epoch: sequence numbers compare only within one epoch.
    fn epoch(&self) -> Uuid;
    /// The next sequence number, strictly greater than every earlier one in this epoch.
    fn next(&self) -> u64;
    /// The last number handed out (0 before the first).
    fn latest(&self) -> u64;
    /// Whether an event may be numbered now. A cluster numbers only the events of operations
    /// it applies from its shared log, so that every node's sequence is the same; an event
    /// raised outside one (a read served locally while the log is unreachable) is dropped.
    fn admits(&self) -> bool {
        true
    }
}

/// A [`Sequencer`] for one process: a new epoch at every start, counting from 1.
pub struct LocalSequencer {
    epoch: Uuid,
    last: AtomicU64,
}

impl LocalSequencer {
    /// A sequencer with a fresh random epoch.
    pub fn new() -> Self {
        LocalSequencer {
            epoch: Uuid::new_v4(),
            last: AtomicU64::new(0),
        }
    }
}

impl Default for LocalSequencer {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequencer for LocalSequencer {
    fn epoch(&self) -> Uuid {
        self.epoch
    }

    fn next(&self) -> u64 {
        self.last.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn latest(&self) -> u64 {
        self.last.load(Ordering::SeqCst)
    }
}

/// The recent body hashes, by count and optionally by age.
pub struct DedupWindow {
    capacity: usize,
    ttl: Option<Duration>,
    order: VecDeque<(u64, Instant)>,
    counts: HashMap<u64, u32>,
}

impl DedupWindow {
    /// Remembers up to `capacity` hashes, each for at most `ttl` (`None`: only by count).
    pub fn new(capacity: usize, ttl: Option<Duration>) -> Self {
        DedupWindow {
            capacity,
            ttl,
            order: VecDeque::with_capacity(capacity.min(65536)),
            counts: HashMap::new(),
        }
    }

    /// Records `hash`; returns `false` (a duplicate) if it is already in the window.
    pub fn admit(&mut self, hash: u64, now: Instant) -> bool {
        if self.capacity == 0 {
            return true;
        }
        if let Some(ttl) = self.ttl {
            while let Some(&(old, at)) = self.order.front() {
                if now.duration_since(at) < ttl {
                    break;
                }
                self.order.pop_front();
                self.forget(old);
            }
        }
        if self.counts.contains_key(&hash) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some((old, _)) = self.order.pop_front() {
                self.forget(old);
            }
        }
        self.order.push_back((hash, now));
        *self.counts.entry(hash).or_insert(0) += 1;
        true
    }

    fn forget(&mut self, hash: u64) {
        if let Some(count) = self.counts.get_mut(&hash) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&hash);
            }
        }
    }
}

/// What a replay found: the events, and a gap if some asked-for events are no longer held.
#[derive(Debug, Default)]
pub struct Replay {
    /// `(from, to)` inclusive: sequence numbers asked for but no longer held.
    pub gap: Option<(u64, u64)>,
    /// The held events, in `seq` order.
    pub events: Vec<SharedEvent>,
}

/// The last `capacity` events, for replay and resume.
pub struct ReplayRing {
    capacity: usize,
    events: RwLock<VecDeque<SharedEvent>>,
    /// Every event numbered after this was pushed here and is still held: the `seq` of the
    /// last event evicted, or where the ring started ([`start_after`](Self::start_after)).
    /// Gaps are decided by it, not by the oldest held `seq`, because numbers need not be
    /// dense (a cluster numbers each entry's events from `entry × 1,000,000`).
    floor: AtomicU64,
}

impl ReplayRing {
    /// A ring holding the last `capacity` events.
    pub fn new(capacity: usize) -> Self {
        ReplayRing {
            capacity,
            events: RwLock::new(VecDeque::with_capacity(capacity.min(1 << 16))),
            floor: AtomicU64::new(0),
        }
    }

    /// Says that events up to `seq` were numbered before this ring existed (a cluster node
    /// restarting at its committed position): asking for them is a gap, not "nothing missed".
    pub fn start_after(&self, seq: u64) {
        let _events = self.events.write();
        self.floor.fetch_max(seq, Ordering::SeqCst);
    }

    /// The `seq` after which every event is held: asking for events at or below it finds a gap.
    pub fn floor(&self) -> u64 {
        let _events = self.events.read();
        self.floor.load(Ordering::SeqCst)
    }

    /// How many events the ring keeps at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn push(&self, event: SharedEvent) {
        let mut events = self.events.write();
        if self.capacity == 0 {
            self.floor.fetch_max(event.seq, Ordering::SeqCst);
            return;
        }
        if events.len() == self.capacity {
            if let Some(evicted) = events.pop_front() {
                self.floor.fetch_max(evicted.seq, Ordering::SeqCst);
            }
        }
        events.push_back(event);
    }

    /// The `seq` of the newest held event (0 when empty).
    pub fn latest_seq(&self) -> u64 {
        self.events.read().back().map_or(0, |e| e.seq)
    }

    /// Every held event with `seq > since`, and the gap `since+1 ..= floor` if the ring has
    /// moved past part of what was asked for.
    pub fn after(&self, since: u64) -> Replay {
        let events = self.events.read();
        let start = events.partition_point(|e| e.seq <= since);
        let held: Vec<SharedEvent> = events.range(start..).cloned().collect();
        let floor = self.floor.load(Ordering::SeqCst);
        // `since` is a client's number: `since + 1` must not overflow.
        let gap = (since < floor).then(|| (since + 1, floor));
        Replay { gap, events: held }
    }

    /// The last `n` held events.
    pub fn last(&self, n: usize) -> Vec<SharedEvent> {
        let events = self.events.read();
        let start = events.len().saturating_sub(n);
        events.range(start..).cloned().collect()
    }

    /// Held events of `types` (all when empty) with `from <= timestamp <= to`, the first `limit`
    /// in `seq` order.
    pub fn query(
        &self,
        types: &[EventType],
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Vec<SharedEvent> {
        self.events
            .read()
            .iter()
            .filter(|e| types.is_empty() || types.contains(&e.event_type))
            .filter(|e| from.is_none_or(|from| e.timestamp >= from))
            .filter(|e| to.is_none_or(|to| e.timestamp <= to))
            .take(limit)
            .cloned()
            .collect()
    }
}

/// Whether an emission is checked against the dedup window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dedup {
    /// Suppress the event if an identical body is in the window.
    Check,
    /// Publish it regardless: the caller knows it records a distinct operation.
    Skip,
}

/// One counter per event type: sized from the list, so a new type cannot index past the end.
const EVENT_TYPES: usize = EventType::ALL.len();

/// Counters the bus keeps, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Events published, by type (indexed by [`EventType::index`]).
    pub published: [u64; EVENT_TYPES],
    /// Events suppressed as duplicates.
    pub duplicates_suppressed: u64,
    /// Failed deliveries, by sink name.
    pub sink_errors: Vec<(String, u64)>,
}

struct SinkSlot {
    sink: Arc<dyn EventSink>,
    errors: AtomicU64,
}

struct Ordered {
    dedup: DedupWindow,
    sinks: Vec<SinkSlot>,
}

/// Publishes events to the replay ring and every sink.
pub struct EventBus {
    sequencer: Arc<dyn Sequencer>,
    ring: Arc<ReplayRing>,
    ordered: Mutex<Ordered>,
    published: [AtomicU64; EVENT_TYPES],
    suppressed: AtomicU64,
}

impl EventBus {
    /// A bus with its own epoch, a ring of `replay_capacity` and a dedup window of
    /// `dedup_window` hashes (expiring after `dedup_ttl`, if given).
    pub fn new(replay_capacity: usize, dedup_window: usize, dedup_ttl: Option<Duration>) -> Self {
        Self::with_sequencer(
            Arc::new(LocalSequencer::new()),
            Arc::new(ReplayRing::new(replay_capacity)),
            DedupWindow::new(dedup_window, dedup_ttl),
        )
    }

    /// A bus over an explicit sequencer, ring and dedup window.
    pub fn with_sequencer(
        sequencer: Arc<dyn Sequencer>,
        ring: Arc<ReplayRing>,
        dedup: DedupWindow,
    ) -> Self {
        EventBus {
            sequencer,
            ring,
            ordered: Mutex::new(Ordered {
                dedup,
                sinks: Vec::new(),
            }),
            published: Default::default(),
            suppressed: AtomicU64::new(0),
        }
    }

    /// The epoch of this bus's sequence numbers.
    pub fn epoch(&self) -> Uuid {
        self.sequencer.epoch()
    }

    /// The last sequence number published (0 before the first event).
    pub fn latest_seq(&self) -> u64 {
        self.sequencer.latest()
    }

    /// The replay ring.
    pub fn replay(&self) -> &Arc<ReplayRing> {
        &self.ring
    }

    /// Adds a sink; it receives events published from now on.
    pub fn add_sink(&self, sink: Arc<dyn EventSink>) {
        self.ordered.lock().sinks.push(SinkSlot {
            sink,
            errors: AtomicU64::new(0),
        });
    }

    /// The attached sinks.
    pub fn sinks(&self) -> Vec<Arc<dyn EventSink>> {
        self.ordered
            .lock()
            .sinks
            .iter()
            .map(|slot| Arc::clone(&slot.sink))
            .collect()
    }

    /// Publishes `body` unless an identical body is in the dedup window; returns the event, or
    /// `None` if it was suppressed as a duplicate.
    pub fn emit(&self, body: &EventBody) -> Option<SharedEvent> {
        self.emit_with(body, Dedup::Check)
    }

    /// Publishes `body` for user `default`, checking the dedup window only under
    /// [`Dedup::Check`].
    pub fn emit_with(&self, body: &EventBody, dedup: Dedup) -> Option<SharedEvent> {
        self.emit_in(&EventScope::default_user(), body, dedup)
    }

    /// Publishes `body` about `scope`'s data: the scope's ids become top-level fields and part
    /// of the dedup hash, so the same change for two users is never a duplicate.
    pub fn emit_in(
        &self,
        scope: &EventScope,
        body: &EventBody,
        dedup: Dedup,
    ) -> Option<SharedEvent> {
        // Serialise and hash outside the lock: the body is the expensive part.
        let body_json = match serde_json::to_string(body) {
            Ok(json) => scope.apply(&json),
            Err(e) => {
                tracing::error!(error = %e, "event body failed to serialise; dropped");
                return None;
            }
        };
        let hash = XxHash3_64::oneshot(body_json.as_bytes());
        let event_type = body.event_type();

        let mut ordered = self.ordered.lock();
        if !self.sequencer.admits() {
            tracing::debug!(event_type = %event_type, "event outside a replicated operation dropped");
            return None;
        }
        if dedup == Dedup::Check && !ordered.dedup.admit(hash, Instant::now()) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(event_type = %event_type, "duplicate event suppressed");
            return None;
        }
        let seq = self.sequencer.next();
        let event = Arc::new(Event::assemble(
            &body_json,
            event_type,
            scope.clone(),
            hash,
            seq,
            crate::model::timestamp::now(),
        ));
        self.ring.push(Arc::clone(&event));
        self.published[event_type.index()].fetch_add(1, Ordering::Relaxed);
        for slot in &ordered.sinks {
            let outcome = catch_unwind(AssertUnwindSafe(|| slot.sink.deliver(&event)));
            let failure = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "the sink panicked".to_owned(),
            };
            let errors = slot.errors.fetch_add(1, Ordering::Relaxed) + 1;
            // Log the first failure and then every thousandth, so a dead sink cannot flood logs.
            if errors == 1 || errors % 1000 == 0 {
                tracing::warn!(sink = slot.sink.name(), errors, %failure, "event delivery failed");
            }
        }
        drop(ordered);
        Some(event)
    }

    /// Counters for metrics.
    pub fn stats(&self) -> BusStats {
        let ordered = self.ordered.lock();
        BusStats {
            published: std::array::from_fn(|i| self.published[i].load(Ordering::Relaxed)),
            duplicates_suppressed: self.suppressed.load(Ordering::Relaxed),
            sink_errors: ordered
                .sinks
                .iter()
                .map(|s| (s.sink.name().to_owned(), s.errors.load(Ordering::Relaxed)))
                .collect(),
        }
    }

    /// Flushes every sink; returns the first error after trying all.
    pub fn flush(&self) -> crate::Result<()> {
        self.each_sink(|sink| sink.flush())
    }

    /// Shuts every sink down; returns the first error after trying all.
    pub fn shutdown(&self) -> crate::Result<()> {
        self.each_sink(|sink| sink.shutdown())
    }

    fn each_sink(&self, f: impl Fn(&dyn EventSink) -> crate::Result<()>) -> crate::Result<()> {
        // Outside the ordering lock: flushing may wait on a sink's writer.
        let mut first = Ok(());
        for sink in self.sinks() {
            if let Err(e) = f(sink.as_ref()) {
                tracing::warn!(sink = sink.name(), error = %e, "sink flush failed");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    struct Collect(Mutex<Vec<u64>>);
    impl EventSink for Collect {
        fn name(&self) -> &str {
            "collect"
        }
        fn deliver(&self, event: &SharedEvent) -> crate::Result<()> {
            self.0.lock().push(event.seq);
            Ok(())
        }
    }

    struct Broken;
    impl EventSink for Broken {
        fn name(&self) -> &str {
            "broken"
        }
        fn deliver(&self, event: &SharedEvent) -> crate::Result<()> {
            if event.seq % 2 == 0 {
                panic!("boom");
            }
            Err(Error::Unavailable("down".into()))
        }
    }

    fn turn(i: u64) -> EventBody {
        EventBody::ConversationTurn {
            role: crate::model::Role::User,
            content: format!("turn {i}"),
            turn_index: i,
        }
    }

    #[test]
    fn every_event_type_is_counted() {
        let bus = EventBus::new(10, 2, None);
        bus.emit(&EventBody::SessionDelete {});
        bus.emit(&EventBody::UserDelete {
            memories_deleted: 1,
            sessions_deleted: 2,
            snapshots_deleted: 3,
        });
        let published = bus.stats().published;
        assert_eq!(published.len(), EventType::ALL.len());
        for t in EventType::ALL {
            let want = matches!(t, EventType::SessionDelete | EventType::UserDelete);
            assert_eq!(published[t.index()], u64::from(want), "{t}");
        }
    }

    #[test]
    fn duplicates_are_suppressed_and_counted() {
        let bus = EventBus::new(10, 2, None);
        assert!(bus.emit(&turn(1)).is_some());
        assert!(bus.emit(&turn(1)).is_none());
        assert!(bus.emit(&turn(2)).is_some());
        assert!(bus.emit(&turn(3)).is_some());
        // The window holds two hashes: turn 1 has left it.
        assert!(bus.emit(&turn(1)).is_some());
        assert!(bus.emit_with(&turn(1), Dedup::Skip).is_some());
        assert_eq!(bus.stats().duplicates_suppressed, 1);
        assert_eq!(bus.latest_seq(), 5);
    }

    #[test]
    fn dedup_ttl_expires_hashes() {
        let mut window = DedupWindow::new(100, Some(Duration::from_millis(10)));
        let start = Instant::now();
        assert!(window.admit(1, start));
        assert!(!window.admit(1, start + Duration::from_millis(5)));
        assert!(window.admit(1, start + Duration::from_millis(20)));
    }

    #[test]
    fn a_failing_sink_does_not_affect_others() {
        let bus = EventBus::new(10, 0, None);
        let good = Arc::new(Collect(Mutex::new(Vec::new())));
        bus.add_sink(Arc::new(Broken));
        bus.add_sink(good.clone());
        for i in 0..4 {
            bus.emit(&turn(i));
        }
        assert_eq!(*good.0.lock(), vec![1, 2, 3, 4]);
        assert_eq!(bus.stats().sink_errors[0], ("broken".to_owned(), 4));
    }

    #[test]
    fn ring_replays_after_a_seq_and_reports_gaps() {
        let bus = EventBus::new(3, 0, None);
        for i in 0..5 {
            bus.emit(&turn(i));
        }
        let replay = bus.replay().after(3);
        assert_eq!(replay.gap, None);
        assert_eq!(
            replay.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [4, 5]
        );
        let replay = bus.replay().after(0);
        assert_eq!(replay.gap, Some((1, 2)));
        assert_eq!(replay.events.len(), 3);
        assert!(bus.replay().after(5).events.is_empty());
        assert_eq!(bus.replay().last(2).len(), 2);
    }

    /// Numbers that jump, like a cluster's (`entry × 1,000,000 + n`).
    struct Sparse(AtomicU64);
    impl Sequencer for Sparse {
        fn epoch(&self) -> Uuid {
            Uuid::nil()
        }
        fn next(&self) -> u64 {
            self.0.fetch_add(1_000_000, Ordering::SeqCst) + 1_000_000
        }
        fn latest(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn sparse_numbers_are_no_gap_and_a_late_start_is_one() {
        let ring = Arc::new(ReplayRing::new(2));
        let bus = EventBus::with_sequencer(
            Arc::new(Sparse(AtomicU64::new(0))),
            Arc::clone(&ring),
            DedupWindow::new(0, None),
        );
        ring.start_after(0);
        for i in 0..3 {
            bus.emit(&turn(i));
        }
        // Held: 2_000_000 and 3_000_000; 1_000_000 was evicted.
        assert_eq!(
            ring.after(2_000_000).gap,
            None,
            "nothing numbered in between"
        );
        assert_eq!(ring.after(1_000_000).gap, None);
        assert_eq!(ring.after(999_999).gap, Some((1_000_000, 1_000_000)));
        let late = ReplayRing::new(4);
        late.start_after(50);
        assert_eq!(
            late.after(10).gap,
            Some((11, 50)),
            "numbered before the ring existed"
        );
        assert_eq!(late.after(50).gap, None);
        let none = ReplayRing::new(0);
        none.push(Arc::new(Event::assemble(
            r#"{"type":"memory_clear"}"#,
            EventType::MemoryClear,
            EventScope::default_user(),
            0,
            7,
            Utc::now(),
        )));
        assert_eq!(none.after(3).gap, Some((4, 7)), "a ring of 0 holds nothing");
    }

    #[test]
    fn ring_queries_by_type_and_time() {
        let bus = EventBus::new(10, 0, None);
        bus.emit(&turn(1));
        let mid = crate::model::timestamp::now();
        bus.emit(&EventBody::MemoryClear {});
        bus.emit(&turn(2));
        let ring = bus.replay();
        assert_eq!(
            ring.query(&[EventType::MemoryClear], None, None, 10).len(),
            1
        );
        assert_eq!(ring.query(&[], Some(mid), None, 10).len(), 2);
        assert_eq!(
            ring.query(&[EventType::ConversationTurn], None, None, 1)[0].seq,
            1
        );
    }

    #[test]
    fn emitting_from_many_threads_keeps_seq_order_per_sink() {
        let bus = Arc::new(EventBus::new(10_000, 0, None));
        let sink = Arc::new(Collect(Mutex::new(Vec::new())));
        bus.add_sink(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let bus = Arc::clone(&bus);
                std::thread::spawn(move || {
                    for i in 0..500 {
                        bus.emit(&turn(t * 1000 + i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("emitter thread");
        }
        let seen = sink.0.lock().clone();
        assert_eq!(seen, (1..=2000).collect::<Vec<_>>());
    }
}
