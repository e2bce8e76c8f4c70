//! One connection's outbox: a bounded, priority-aware queue of events plus control frames.
//!
//! The bus pushes from whatever thread emitted the event (never blocking); the connection's one
//! writer task takes everything queued at once and writes it with a single flush.

use std::collections::VecDeque;

use coda_core::{EventType, SharedEvent};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::config::Overflow;
use crate::filter::EventFilter;

/// Number of drop-priority classes ([`EventType::priority`] is `0..PRIORITIES`).
const PRIORITIES: usize = 4;

/// An event ready for the wire: its JSON as shared bytes, serialised once for every connection,
/// and the event itself, whose type and scope filters read.
#[derive(Clone)]
pub(crate) struct Wire {
    pub seq: u64,
    pub event: SharedEvent,
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
            event: std::sync::Arc::clone(event),
            text,
        }
    }

    /// The event's type.
    pub fn event_type(&self) -> EventType {
        self.event.event_type
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
    /// Whether the writer sends this close frame. `false` when the closing handshake is
    /// already under way (the client closed first) or the connection is being failed by its
    /// reader, which sends the close itself.
    pub send: bool,
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
    /// Queued (or ignored: the connection is closing).
    Queued,
    /// Queued after dropping one event.
    Dropped,
    /// The queue was full under `disconnect`: the connection is closing.
    Disconnected,
}

/// The outbox shared by the bus (pushing) and the connection's writer (taking). It queues what
/// it is given: the hub pushes only events the connection's filter wants.
pub(crate) struct Outbox {
    capacity: usize,
    overflow: Overflow,
    pending: Mutex<Pending>,
    wake: Notify,
}

impl Outbox {
    pub fn new(capacity: usize, overflow: Overflow) -> Outbox {
        Outbox {
            capacity: capacity.max(1),
            overflow,
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
        }
    }

    /// Drops queued live events `filter` does not want: after a `subscribe`, nothing of the
    /// old subscription is written.
    pub fn retain(&self, filter: &EventFilter) {
        let mut pending = self.pending.lock();
        let mut len = 0;
        for class in &mut pending.classes {
            class.retain(|w| filter.wants(&w.event));
            len += class.len();
        }
        pending.len = len;
    }

    /// Queues a live event; never blocks.
    pub fn push(&self, wire: &Wire) -> Pushed {
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
                        send: true,
                    });
                    drop(pending);
                    self.wake.notify_one();
                    return Pushed::Disconnected;
                }
                Overflow::DropOldest => {
                    // The oldest event of the lowest priority present goes; when nothing queued
                    // ranks at or below the newcomer, the newcomer is the one dropped.
                    let incoming = wire.event_type().priority() as usize;
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
        pending.classes[wire.event_type().priority() as usize].push_back(wire.clone());
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
    use crate::test_events::{events, events_in};
    use coda_core::EventScope;

    fn seqs(work: &Work) -> Vec<u64> {
        work.events.iter().map(|w| w.seq).collect()
    }

    #[test]
    fn drop_oldest_drops_lowest_priority_first() {
        use EventType::*;
        let w = events(&[
            MemoryClear,
            MemoryRetrieve,
            ConversationTurn,
            MemoryStore,
            MemorySnapshot,
        ]);
        let outbox = Outbox::new(3, Overflow::DropOldest);
        outbox.push(&w[0]);
        outbox.push(&w[1]);
        outbox.push(&w[2]);
        // Full: the retrieve (lowest) goes, then the turn.
        assert_eq!(outbox.push(&w[3]), Pushed::Dropped);
        assert_eq!(outbox.push(&w[4]), Pushed::Dropped);
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
        use EventType::*;
        let w = events(&[MemoryPersist, MemoryStore, MemoryRetrieve]);
        let outbox = Outbox::new(2, Overflow::DropOldest);
        outbox.push(&w[0]);
        outbox.push(&w[1]);
        assert_eq!(outbox.push(&w[2]), Pushed::Dropped);
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
        let w = events(&[EventType::MemoryStore, EventType::MemoryStore]);
        let outbox = Outbox::new(1, Overflow::Disconnect);
        outbox.push(&w[0]);
        assert_eq!(outbox.push(&w[1]), Pushed::Disconnected);
        let work = outbox.take();
        assert!(work.events.is_empty());
        assert_eq!(work.close.map(|c| c.code), Some(1008));
    }

    #[test]
    fn retain_drops_queued_events_a_new_filter_does_not_want() {
        use crate::filter::{ScopeFilter, TypeSet};
        let alice = EventScope {
            user_id: "alice".into(),
            ..EventScope::default_user()
        };
        let bob = EventScope {
            user_id: "bob".into(),
            ..EventScope::default_user()
        };
        let w = events_in(&[
            (EventType::MemoryRetrieve, &alice),
            (EventType::MemoryStore, &bob),
            (EventType::MemoryStore, &alice),
            (EventType::ConversationTurn, &alice),
        ]);
        let outbox = Outbox::new(8, Overflow::DropOldest);
        for wire in &w {
            outbox.push(wire);
        }
        outbox.retain(&EventFilter {
            types: TypeSet::of(&[EventType::MemoryStore, EventType::ConversationTurn]),
            scope: ScopeFilter::parse(Some("alice"), None, None).expect("valid"),
            ..EventFilter::default()
        });
        assert_eq!(seqs(&outbox.take()), [3, 4]);
    }
}
