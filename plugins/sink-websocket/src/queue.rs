//! One connection's outbox: a bounded, priority-aware queue of events plus control frames.
//!
//! The bus pushes from whatever thread emitted the event (never blocking); the connection's one
//! writer task takes everything queued at once and writes it with a single flush.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};

use coda_core::{EventType, SharedEvent};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::config::Overflow;

/// Number of drop-priority classes ([`EventType::priority`] is `0..PRIORITIES`).
const PRIORITIES: usize = 4;

/// An event ready for the wire: its JSON as shared bytes, serialised once for every connection.
#[derive(Clone)]
pub(crate) struct Wire {
    pub seq: u64,
    pub event_type: EventType,
    pub text: Utf8Bytes,
}

/// Lets `Bytes` borrow the event's shared JSON without copying it.
struct SharedJson(std::sync::Arc<str>);

impl AsRef<[u8]> for SharedJson {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Wire {
    /// Wraps `event`'s JSON; the bytes are shared, not copied.
    pub fn new(event: &SharedEvent) -> Wire {
        let bytes = bytes::Bytes::from_owner(SharedJson(event.json_shared()));
        // The JSON came from a `str`, so this validation cannot fail; it runs once per event.
        let text = Utf8Bytes::try_from(bytes).unwrap_or_else(|_| Utf8Bytes::from(event.json()));
        Wire {
            seq: event.seq,
            event_type: event.event_type,
            text,
        }
    }
}

/// Something the writer must send that is not a live event.
pub(crate) enum Control {
    /// A protocol frame (`welcome`, `replay_gap`, `pong`, `error`).
    Frame(String),
    /// Replayed events, in `seq` order.
    Replay {
        /// The events.
        events: Vec<Wire>,
        /// Whether they continue the live stream (connect-time replay): live events at or
        /// below the last of them are then skipped.
        advance: bool,
    },
}

/// Events dropped since the last `lagged` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lag {
    pub dropped: u64,
    pub from: u64,
    pub to: u64,
}

impl Lag {
    fn add(lag: &mut Option<Lag>, seq: u64) {
        match lag {
            Some(l) => {
                l.dropped += 1;
                l.from = l.from.min(seq);
                l.to = l.to.max(seq);
            }
            None => {
                *lag = Some(Lag {
                    dropped: 1,
                    from: seq,
                    to: seq,
                })
            }
        }
    }
}

/// Why and how a connection is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Close {
    pub code: u16,
    pub reason: &'static str,
    /// Write what is queued before closing (graceful shutdown) or not (overflow, limits).
    pub drain: bool,
}

#[derive(Default)]
struct Pending {
    /// Live events by drop priority; each deque is in `seq` order.
    classes: [VecDeque<Wire>; PRIORITIES],
    len: usize,
    control: VecDeque<Control>,
    lag: Option<Lag>,
    close: Option<Close>,
}

/// What the writer takes in one go.
#[derive(Default)]
pub(crate) struct Work {
    pub control: Vec<Control>,
    pub lag: Option<Lag>,
    /// Live events, merged back into `seq` order.
    pub events: Vec<Wire>,
    pub close: Option<Close>,
}

impl Work {
    pub fn is_empty(&self) -> bool {
        self.control.is_empty()
            && self.lag.is_none()
            && self.events.is_empty()
            && self.close.is_none()
    }
}

/// What a push did, for the sink's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued (or ignored: not subscribed, or closing).
    Queued,
    /// Queued after dropping one event.
    Dropped,
    /// The queue was full under `disconnect`: the connection is closing.
    Disconnected,
}

/// The outbox shared by the bus (pushing) and the connection's writer (taking).
pub(crate) struct Outbox {
    capacity: usize,
    overflow: Overflow,
    /// Bit `EventType::index()` set = the client wants that type.
    subscribed: AtomicU8,
    pending: Mutex<Pending>,
    wake: Notify,
}

/// Every event type.
pub(crate) const ALL_TYPES: u8 = u8::MAX;

/// The subscription mask of `types` (empty = all).
pub(crate) fn mask_of(types: &[EventType]) -> u8 {
    if types.is_empty() {
        return ALL_TYPES;
    }
    types.iter().fold(0, |mask, t| mask | (1 << t.index()))
}

impl Outbox {
    pub fn new(capacity: usize, overflow: Overflow, subscribed: u8) -> Outbox {
        Outbox {
            capacity: capacity.max(1),
            overflow,
            subscribed: AtomicU8::new(subscribed),
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
        }
    }

    /// Whether the client currently wants events of `event_type`.
    pub fn wants(&self, event_type: EventType) -> bool {
        self.subscribed.load(Ordering::Relaxed) & (1 << event_type.index()) != 0
    }

    /// Replaces the subscription.
    pub fn subscribe(&self, mask: u8) {
        self.subscribed.store(mask, Ordering::Relaxed);
    }

    /// Queues a live event; never blocks.
    pub fn push(&self, wire: &Wire) -> Pushed {
        if !self.wants(wire.event_type) {
            return Pushed::Queued;
        }
        let mut pending = self.pending.lock();
        if pending.close.is_some() {
            return Pushed::Queued;
        }
        let was_empty = pending.len == 0;
        let mut outcome = Pushed::Queued;
        if pending.len == self.capacity {
            match self.overflow {
                Overflow::Disconnect => {
                    pending.classes = Default::default();
                    pending.len = 0;
                    pending.close = Some(Close {
                        code: 1008,
                        reason: "queue overflow",
                        drain: false,
                    });
                    drop(pending);
                    self.wake.notify_one();
                    return Pushed::Disconnected;
                }
                Overflow::DropOldest => {
                    // The oldest event of the lowest priority present goes; when nothing queued
                    // ranks at or below the newcomer, the newcomer is the one dropped.
                    let incoming = wire.event_type.priority() as usize;
                    let lowest = (0..PRIORITIES).find(|&p| !pending.classes[p].is_empty());
                    let victim = match lowest {
                        Some(p) if p <= incoming => pending.classes[p].pop_front(),
                        _ => None,
                    };
                    match victim {
                        Some(old) => {
                            Lag::add(&mut pending.lag, old.seq);
                            pending.len -= 1;
                            outcome = Pushed::Dropped;
                        }
                        None => {
                            Lag::add(&mut pending.lag, wire.seq);
                            return Pushed::Dropped;
                        }
                    }
                }
            }
        }
        pending.classes[wire.event_type.priority() as usize].push_back(wire.clone());
        pending.len += 1;
        drop(pending);
        if was_empty {
            self.wake.notify_one();
        }
        outcome
    }

    /// Queues a control frame or replay for the writer.
    pub fn control(&self, control: Control) {
        self.pending.lock().control.push_back(control);
        self.wake.notify_one();
    }

    /// Asks the writer to close the connection (after writing what is queued if `drain`).
    pub fn close(&self, close: Close) {
        let mut pending = self.pending.lock();
        if pending.close.is_none() {
            if !close.drain {
                pending.classes = Default::default();
                pending.len = 0;
            }
            pending.close = Some(close);
        }
        drop(pending);
        self.wake.notify_one();
    }

    /// Takes everything pending.
    pub fn take(&self) -> Work {
        let mut pending = self.pending.lock();
        let mut work = Work {
            control: pending.control.drain(..).collect(),
            lag: pending.lag.take(),
            events: Vec::with_capacity(pending.len),
            close: pending.close,
        };
        let mut runs = 0;
        for class in &mut pending.classes {
            if !class.is_empty() {
                runs += 1;
                work.events.extend(class.drain(..));
            }
        }
        pending.len = 0;
        drop(pending);
        if runs > 1 {
            // A stable sort merges the few already-sorted runs in about linear time.
            work.events.sort_by_key(|w| w.seq);
        }
        work
    }

    /// Waits until something is pushed (a push before the wait is not lost).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(seq: u64, event_type: EventType) -> Wire {
        Wire {
            seq,
            event_type,
            text: Utf8Bytes::from(format!("{seq}")),
        }
    }

    fn seqs(work: &Work) -> Vec<u64> {
        work.events.iter().map(|w| w.seq).collect()
    }

    #[test]
    fn drop_oldest_drops_lowest_priority_first() {
        let outbox = Outbox::new(3, Overflow::DropOldest, ALL_TYPES);
        outbox.push(&wire(1, EventType::MemoryClear));
        outbox.push(&wire(2, EventType::MemoryRetrieve));
        outbox.push(&wire(3, EventType::ConversationTurn));
        // Full: the retrieve (lowest) goes, then the turn.
        assert_eq!(
            outbox.push(&wire(4, EventType::MemoryStore)),
            Pushed::Dropped
        );
        assert_eq!(
            outbox.push(&wire(5, EventType::MemorySnapshot)),
            Pushed::Dropped
        );
        let work = outbox.take();
        assert_eq!(seqs(&work), [1, 4, 5]);
        assert_eq!(
            work.lag,
            Some(Lag {
                dropped: 2,
                from: 2,
                to: 3
            })
        );
    }

    #[test]
    fn a_lower_priority_newcomer_is_the_one_dropped() {
        let outbox = Outbox::new(2, Overflow::DropOldest, ALL_TYPES);
        outbox.push(&wire(1, EventType::MemoryPersist));
        outbox.push(&wire(2, EventType::MemoryStore));
        assert_eq!(
            outbox.push(&wire(3, EventType::MemoryRetrieve)),
            Pushed::Dropped
        );
        let work = outbox.take();
        assert_eq!(seqs(&work), [1, 2]);
        assert_eq!(
            work.lag,
            Some(Lag {
                dropped: 1,
                from: 3,
                to: 3
            })
        );
    }

    #[test]
    fn disconnect_closes_with_1008_and_frees_the_queue() {
        let outbox = Outbox::new(1, Overflow::Disconnect, ALL_TYPES);
        outbox.push(&wire(1, EventType::MemoryStore));
        assert_eq!(
            outbox.push(&wire(2, EventType::MemoryStore)),
            Pushed::Disconnected
        );
        let work = outbox.take();
        assert!(work.events.is_empty());
        assert_eq!(work.close.map(|c| c.code), Some(1008));
    }

    #[test]
    fn unsubscribed_types_are_not_queued() {
        let outbox = Outbox::new(4, Overflow::DropOldest, mask_of(&[EventType::MemoryStore]));
        outbox.push(&wire(1, EventType::MemoryRetrieve));
        outbox.push(&wire(2, EventType::MemoryStore));
        assert_eq!(seqs(&outbox.take()), [2]);
    }
}
