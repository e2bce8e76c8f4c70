//! Coda's cluster on NATS JetStream (SPEC §12).
//!
//! Every operation that changes data is published to one JetStream stream as an [`Entry`]
//! (with `Nats-Msg-Id`), and every node — the writer included — applies the stream in order
//! with one ordered consumer, starting after the position its backend committed. An entry
//! carries its time and an id seed, and is applied under a [`coda_core::stamp::Stamp`], so
//! every node reaches the same state and the same verdicts; the writer's caller gets the
//! answer its own node computed when it applied the entry (read-your-writes). Events are
//! numbered from the stream by [`ClusterSequencer`], so every node shows the same sequence.
//!
//! The crate knows nothing of HTTP: the server encodes its operations as JSON and applies them
//! through the same code as a single node.

mod archive;
mod error;
mod node;
mod sequencer;
mod snapshots;

pub use archive::{MAX_ENTRIES, MAX_EVENTS};
pub use error::ClusterError;
pub use node::{Apply, Cluster, Entry, Status};
pub use sequencer::{ClusterSequencer, EVENTS_PER_ENTRY};
pub use snapshots::{Snapshot, Snapshots};
