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

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_nats::jetstream::stream::{self, LastRawMessageErrorKind};
use async_nats::jetstream::{self, consumer};
use coda_core::cluster::ClusterConfig;
use coda_core::{ArchiveFetch, Archived, Event, EventArchive, ReplayRing, SharedEvent};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ClusterError;
use crate::sequencer::EVENTS_PER_ENTRY;

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
        let events: Vec<String> = ring
            .after(base)
            .events
            .iter()
            .filter(|e| e.seq / EVENTS_PER_ENTRY == entry)
            .map(|e| e.json().to_owned())
            .collect();
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
        let record = Record {
            entry,
            epoch: self.epoch,
            events,
        };
        let payload = match serde_json::to_vec(&record) {
            Ok(payload) => bytes::Bytes::from(payload),
            Err(e) => {
                tracing::warn!(entry, error = %e, "cannot encode an archive record");
                return;
            }
        };
        let jetstream = self.jetstream.clone();
        let subject = self.subject.clone();
        tokio::spawn(async move {
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

    /// The events of entries `first..=last` with `from <= seq <= to`, and the entries it could
    /// not find.
    async fn collect(
        &self,
        first: u64,
        last: u64,
        from: u64,
        to: u64,
    ) -> Result<Found, ClusterError> {
        let unavailable = |e: String| ClusterError::Unavailable(e);
        let main = self
            .jetstream
            .get_stream_no_info(&self.main)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        // When the main stream stored an entry: records come after it.
        let stored = |seq: u64| {
            let main = &main;
            async move {
                match main.get_raw_message(seq).await {
                    Ok(message) => Ok(Some(message.time)),
                    Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
                    Err(e) => Err(unavailable(format!("reading entry {seq}: {e}"))),
                }
            }
        };
        let deliver_policy = match stored(first).await? {
            Some(at) => consumer::DeliverPolicy::ByStartTime {
                start_time: at - CLOCK_SKEW,
            },
            // Past the main stream's retention: the archive (kept as long) starts later anyway.
            None => consumer::DeliverPolicy::All,
        };
        let late = stored(last).await?.map(|at| at + LATE);
        let archive = self
            .jetstream
            .get_stream_no_info(&self.name)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let consumer = archive
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut found = Found::default();
        let wanted = last - first + 1;
        let mut at_end = consumer.cached_info().num_pending == 0;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + FETCH_TIMEOUT;
        loop {
            let idle = if at_end { SETTLE } else { IDLE_TIMEOUT };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let wait = idle.min(left);
            let message = match tokio::time::timeout(wait, messages.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => {
                    tracing::debug!(error = %e, "reading the events archive failed");
                    break;
                }
                Ok(None) | Err(_) => break,
            };
            let (pending, published) = match message.info() {
                Ok(info) => (info.pending, info.published),
                Err(_) => break,
            };
            match serde_json::from_slice::<Record>(&message.payload) {
                Ok(record) if record.epoch == self.epoch => {
                    if (first..=last).contains(&record.entry) {
                        found.add(record, from, to);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "skipped an events archive record"),
            }
            if found.seen.len() as u64 == wanted {
                break;
            }
            at_end = pending == 0;
            if late.is_some_and(|late| published > late) {
                break;
            }
        }
        Ok(found)
    }
}

/// The records a fetch found, bounded by [`MAX_EVENTS`].
#[derive(Default)]
struct Found {
    /// Entries whose record was read.
    seen: HashSet<u64>,
    /// Their events, by entry.
    events: BTreeMap<u64, Vec<SharedEvent>>,
    held: usize,
    /// Entries up to this one were dropped to stay within [`MAX_EVENTS`].
    cut: u64,
}

impl Found {
    fn add(&mut self, record: Record, from: u64, to: u64) {
        if !self.seen.insert(record.entry) || record.entry <= self.cut {
            return;
        }
        let mut events = Vec::with_capacity(record.events.len());
        for json in &record.events {
            match Event::from_json(json) {
                Ok(event) if (from..=to).contains(&event.seq) => events.push(Arc::new(event)),
                Ok(_) => {}
                Err(e) => {
                    // An unreadable record vouches for nothing: the entry is missing.
                    tracing::warn!(entry = record.entry, error = %e, "an events archive record is corrupt");
                    self.seen.remove(&record.entry);
                    return;
                }
            }
        }
        self.held += events.len();
        self.events.insert(record.entry, events);
        while self.held > MAX_EVENTS {
            let Some((entry, dropped)) = self.events.pop_first() else {
                break;
            };
            self.held -= dropped.len();
            self.cut = self.cut.max(entry);
        }
    }
}

/// The `seq`s entry `entry`'s events may have: `entry × 1,000,000 + 1 ..= + 999,999`.
fn numbers_of(entry: u64) -> (u64, u64) {
    let base = entry.saturating_mul(EVENTS_PER_ENTRY);
    (base + 1, base + EVENTS_PER_ENTRY - 1)
}

impl EventArchive for Archive {
    fn fetch(&self, from: u64, to: u64) -> ArchiveFetch<'_> {
        Box::pin(async move {
            // Entry 0 does not exist (stream sequences start at 1); `x × 1,000,000` is never
            // an event's number.
            let first_entry = (from / EVENTS_PER_ENTRY).max(1);
            let last_entry = to.saturating_sub(1) / EVENTS_PER_ENTRY;
            if from > to || first_entry > last_entry {
                return Ok(Archived::default());
            }
            let first = first_entry.max(last_entry.saturating_sub(MAX_ENTRIES - 1));
            let found = self
                .collect(first, last_entry, from, to)
                .await
                .map_err(|e| coda_core::Error::Unavailable(e.to_string()))?;
            let mut missing: Vec<(u64, u64)> = Vec::new();
            let mut lack = |entry: u64| {
                let (start, end) = numbers_of(entry);
                let (start, end) = (start.max(from), end.min(to));
                match missing.last_mut() {
                    // Nothing is numbered between one entry's last and the next's first.
                    Some(gap) if gap.1 + 2 >= start => gap.1 = end,
                    _ => missing.push((start, end)),
                }
            };
            for entry in first_entry..=last_entry {
                if entry <= found.cut || entry < first {
                    lack(entry);
                } else if !found.seen.contains(&entry) {
                    lack(entry);
                }
            }
            let events = found.events.into_values().flatten().collect();
            Ok(Archived { events, missing })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_owns_the_numbers_below_the_next() {
        assert_eq!(numbers_of(3), (3_000_001, 3_999_999));
    }

    #[test]
    fn over_max_events_the_oldest_entries_go() {
        let event = |seq: u64| {
            format!(
                r#"{{"type":"memory_clear","user_id":"default","seq":{seq},"event_id":"{}","timestamp":"2026-12-02T00:00:00.000000Z"}}"#,
                Uuid::nil()
            )
        };
        let mut found = Found::default();
        let per_entry = MAX_EVENTS / 2;
        for entry in 1..=3u64 {
            let base = entry * EVENTS_PER_ENTRY;
            let events = (1..=per_entry as u64).map(|n| event(base + n)).collect();
            found.add(
                Record {
                    entry,
                    epoch: Uuid::nil(),
                    events,
                },
                0,
                u64::MAX,
            );
        }
        assert_eq!(found.cut, 1);
        assert_eq!(found.held, MAX_EVENTS);
        assert_eq!(found.events.keys().copied().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(found.seen.len(), 3);
    }
}
