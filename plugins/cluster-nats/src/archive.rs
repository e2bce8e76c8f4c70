//! The events archive: a second JetStream stream, `<stream>_EVENTS`, holding the events of
//! every entry, so a WebSocket client can resume on any node from further back than that
//! node's replay ring.
//!
//! The writer of an entry publishes one record for it after applying it —
//! `{"entry": s, "epoch": E, "events": ["<event JSON>", ...]}`, also for an entry that raised
//! no event, with `Nats-Msg-Id: events-<s>`. Because *every* entry gets a record, a reader
//! knows exactly which entries it could not find (the writer died between applying and
//! publishing, the record was too large, NATS was down) and reports those as missing: it
//! never skips silently. Every node numbers and stamps an entry's events identically, so the
//! writer's copy is every node's.
//!
//! Records are published after the entry was stored, so the reader looks for the records of
//! entries `a..=b` from the time the main stream stored entry `a` (less [`CLOCK_SKEW`], for a
//! NATS cluster's clocks), and stops when it has all of them, at the archive's end, or at
//! records published [`LATE`] after entry `b` was stored.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use coda_core::cluster::ClusterConfig;
use coda_core::ReplayRing;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ClusterError;
use crate::sequencer::EVENTS_PER_ENTRY;

mod read;

/// How much earlier than its entry a record's publish time may look (clock skew between the
/// servers of a NATS cluster).
const CLOCK_SKEW: Duration = Duration::from_secs(10);
/// A record published this long after its entry was stored is not waited for: its writer
/// was far behind, or died.
const LATE: Duration = Duration::from_secs(60);
/// The most events one fetch returns; older ones are reported missing.
pub const MAX_EVENTS: usize = 100_000;
/// The most entries one fetch looks at; older ones are reported missing.
pub const MAX_ENTRIES: u64 = 100_000;
/// How long one fetch may take in all, and how long it waits for the next record.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// At the archive's end with records still missing, how long a fetch waits for them: a writer
/// publishes its record a moment after its entry is applied.
const SETTLE: Duration = Duration::from_millis(500);
/// How often a record is published before the writer gives up on it.
const PUBLISH_ATTEMPTS: u32 = 3;

/// One entry's events, as the archive holds them.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    entry: u64,
    /// The epoch of the main stream: a record left over from a deleted and recreated stream
    /// is not this one's.
    epoch: Uuid,
    /// Each event's JSON, exactly as sent to clients.
    events: Vec<String>,
}

/// The events archive of one node: the writer's side and the reader's.
pub(crate) struct Archive {
    jetstream: jetstream::Context,
    main: String,
    name: String,
    subject: String,
    epoch: Uuid,
    /// The stream's last entry when this process connected: entries up to it were written
    /// (and archived) by an earlier run, and applying them again archives nothing.
    written_before: u64,
    /// The node's replay ring, where the events of the entry just applied are read.
    ring: OnceLock<Arc<ReplayRing>>,
}

impl Archive {
    /// Opens (creating if needed) the archive stream of `config.stream`, whose main stream
    /// ends at `last`.
    pub(crate) async fn open(
        jetstream: &jetstream::Context,
        config: &ClusterConfig,
        epoch: Uuid,
        last: u64,
    ) -> Result<Archive, ClusterError> {
        let name = format!("{}_EVENTS", config.stream);
        let subject = format!("{}.events", config.stream);
        let wanted = stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            max_age: Duration::from_secs(config.max_age_h.saturating_mul(3600)),
            num_replicas: config.replicas,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        // Called right after the main stream opened, so JetStream has its leader; a new
        // stream's own leader may still take a moment.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            match jetstream.get_or_create_stream(wanted.clone()).await {
                Ok(_) => break,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(error = %e, "the events archive is not ready yet; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return Err(ClusterError::Unavailable(format!(
                        "cannot open JetStream stream `{name}`: {e}"
                    )))
                }
            }
        }
        Ok(Archive {
            jetstream: jetstream.clone(),
            main: config.stream.clone(),
            name,
            subject,
            epoch,
            written_before: last,
            ring: OnceLock::new(),
        })
    }

    /// Reads the events of this node's entries from `ring` (the event bus's).
    pub(crate) fn record_from(&self, ring: Arc<ReplayRing>) {
        if self.ring.set(ring).is_err() {
            tracing::warn!("the events archive already reads a replay ring; kept the first");
        }
    }

    /// The node starts at event `committed`: its ring holds nothing numbered before.
    pub(crate) fn started(&self, committed: u64) {
        if let Some(ring) = self.ring.get() {
            ring.start_after(committed);
        }
    }

    /// Publishes the record of `entry`, which this node wrote and has just applied (nothing
    /// else was applied since, so its events are the ring's newest); `latest` is the last
    /// event number handed out. The publish runs on its own task: the write's answer does not
    /// wait for it, and a failure only logs (the entry is then reported missing to readers).
    pub(crate) fn record(&self, entry: u64, latest: u64) {
        let Some(ring) = self.ring.get() else {
            return;
        };
        if entry <= self.written_before {
            return;
        }
        let base = entry.saturating_mul(EVENTS_PER_ENTRY);
        let raised = latest.saturating_sub(base);
        let mut events = ring.after(base).events;
        events.retain(|e| e.seq / EVENTS_PER_ENTRY == entry);
        if events.len() as u64 != raised {
            // More events than the ring holds: a partial record would hide the rest.
            tracing::warn!(
                entry,
                raised,
                held = events.len(),
                "the replay ring no longer holds all of an entry's events; it is not archived \
                 (raise `events.replay_capacity`)"
            );
            return;
        }
        let epoch = self.epoch;
        let jetstream = self.jetstream.clone();
        let subject = self.subject.clone();
        // Encoding, too, happens off the apply loop.
        tokio::spawn(async move {
            let record = Record {
                entry,
                epoch,
                events: events.iter().map(|e| e.json().to_owned()).collect(),
            };
            let payload = match serde_json::to_vec(&record) {
                Ok(payload) => bytes::Bytes::from(payload),
                Err(e) => {
                    tracing::warn!(entry, error = %e, "cannot encode an archive record");
                    return;
                }
            };
            let mut delay = Duration::from_millis(100);
            for attempt in 1..=PUBLISH_ATTEMPTS {
                let mut headers = async_nats::HeaderMap::new();
                let id = format!("events-{entry}");
                headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
                let published = jetstream
                    .publish_with_headers(subject.clone(), headers, payload.clone())
                    .await;
                let outcome = match published {
                    Ok(ack) => ack.await.map(drop).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(()) => return,
                    Err(e) if attempt == PUBLISH_ATTEMPTS => {
                        tracing::warn!(entry, error = %e, "cannot archive an entry's events; \
                                       resuming across it will report a gap");
                    }
                    Err(e) => {
                        tracing::debug!(entry, error = %e, "archiving an entry's events failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
            }
        });
    }
}
