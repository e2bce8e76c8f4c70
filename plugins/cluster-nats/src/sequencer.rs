//! Event numbers from the stream: every node numbers the events of log entry `s` as
//! `s × 1,000,000 + 1, + 2, …`, so all nodes give each event the same `seq`.

use std::sync::atomic::{AtomicU64, Ordering};

use coda_core::stamp::Stamp;
use coda_core::Sequencer;
use uuid::Uuid;

/// How many event numbers one log entry owns: `seq / EVENTS_PER_ENTRY` is the stream sequence
/// of the entry that raised the event.
pub const EVENTS_PER_ENTRY: u64 = 1_000_000;

/// The [`Sequencer`] of a cluster node.
pub struct ClusterSequencer {
    epoch: Uuid,
    last: AtomicU64,
}

impl ClusterSequencer {
    /// A sequencer in `epoch` (derived from the stream's identity), starting at event `last`.
    pub fn new(epoch: Uuid, last: u64) -> Self {
        ClusterSequencer {
            epoch,
            last: AtomicU64::new(last),
        }
    }

    /// Starts numbering the events of the entry at stream sequence `stream_seq`. Afterwards
    /// [`latest`](Sequencer::latest) is at least `stream_seq × EVENTS_PER_ENTRY`, so it always
    /// tells which entry was applied last, even one that raised no event.
    pub fn begin(&self, stream_seq: u64) {
        let base = stream_seq.saturating_mul(EVENTS_PER_ENTRY);
        self.last.fetch_max(base, Ordering::SeqCst);
    }

    /// Restarts at `last` (what the backend committed), e.g. after bootstrapping.
    pub fn reset(&self, last: u64) {
        self.last.store(last, Ordering::SeqCst);
    }

    /// The stream sequence of the last entry begun.
    pub fn entry(&self) -> u64 {
        self.latest() / EVENTS_PER_ENTRY
    }
}

impl Sequencer for ClusterSequencer {
    fn epoch(&self) -> Uuid {
        self.epoch
    }

    fn next(&self) -> u64 {
        let seq = self.last.fetch_add(1, Ordering::SeqCst) + 1;
        if seq % EVENTS_PER_ENTRY == 0 {
            tracing::error!(
                seq,
                "one log entry raised a million events; its numbers run into the next entry's"
            );
        }
        seq
    }

    fn latest(&self) -> u64 {
        self.last.load(Ordering::SeqCst)
    }

    /// Only events of an operation applied from the log (which runs under its
    /// [`Stamp`]) are numbered; every node raises exactly those.
    fn admits(&self) -> bool {
        Stamp::current().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_numbered_within_their_entry() {
        let s = ClusterSequencer::new(Uuid::nil(), 0);
        s.begin(3);
        assert_eq!((s.next(), s.next()), (3_000_001, 3_000_002));
        s.begin(4);
        assert_eq!(
            s.latest(),
            4_000_000,
            "an entry without events still moves latest"
        );
        assert_eq!(s.entry(), 4);
        s.begin(5);
        assert_eq!(s.next(), 5_000_001);
        s.reset(9_000_000);
        assert_eq!(s.entry(), 9);
    }

    #[test]
    fn only_stamped_events_are_admitted() {
        let s = ClusterSequencer::new(Uuid::nil(), 0);
        assert!(!s.admits());
        let stamp = Stamp::new(chrono::Utc::now(), Uuid::new_v4());
        assert!(stamp.apply(|| s.admits()));
    }
}
