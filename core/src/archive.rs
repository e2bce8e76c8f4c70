//! The `EventArchive` trait: events older than the replay ring, kept elsewhere (a cluster keeps
//! them in its JetStream stream), so a client can resume from further back than the ring holds.

use std::future::Future;
use std::pin::Pin;

use crate::event::SharedEvent;
use crate::Result;

/// What an archive found for a range of `seq`s.
#[derive(Debug, Default)]
pub struct Archived {
    /// The events found, in `seq` order.
    pub events: Vec<SharedEvent>,
    /// `(from, to)` inclusive, in order and disjoint: parts of the range the archive cannot
    /// vouch for (their events may have existed). Every part of the range is either here or
    /// known to hold exactly [`events`](Self::events).
    pub missing: Vec<(u64, u64)>,
}

/// A fetch in progress.
pub type ArchiveFetch<'a> = Pin<Box<dyn Future<Output = Result<Archived>> + Send + 'a>>;

/// Where events that left the replay ring can still be read.
pub trait EventArchive: Send + Sync + 'static {
    /// The events with `from <= seq <= to` of the bus's epoch, and the parts of that range
    /// it could not find. An error means nothing of the range can be vouched for.
    fn fetch(&self, from: u64, to: u64) -> ArchiveFetch<'_>;
}
