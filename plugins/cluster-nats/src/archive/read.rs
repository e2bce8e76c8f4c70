//! The reader's side of the events archive: the records of a range of entries, and the
//! entries whose record it did not find.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_nats::jetstream::consumer;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use coda_core::{ArchiveFetch, Archived, Event, EventArchive, SharedEvent};
use futures_util::StreamExt;

use super::{
    Archive, Record, CLOCK_SKEW, FETCH_TIMEOUT, IDLE_TIMEOUT, LATE, MAX_ENTRIES, MAX_EVENTS, SETTLE,
};
use crate::error::ClusterError;
use crate::sequencer::EVENTS_PER_ENTRY;

impl Archive {
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

/// The parts of `from..=to` that entries `entries` may have numbered and the archive cannot
/// vouch for: every entry before `vouched_from`, and each later one not `seen`; adjacent
/// entries are merged, since nothing is numbered between one's last and the next's first.
fn missing_ranges(
    entries: std::ops::RangeInclusive<u64>,
    vouched_from: u64,
    from: u64,
    to: u64,
    seen: impl Fn(u64) -> bool,
) -> Vec<(u64, u64)> {
    let (first, last) = (*entries.start(), *entries.end());
    let mut missing: Vec<(u64, u64)> = Vec::new();
    let mut lack = |a: u64, b: u64| {
        let (start, end) = (numbers_of(a).0.max(from), numbers_of(b).1.min(to));
        match missing.last_mut() {
            Some(gap) if gap.1 + 2 >= start => gap.1 = end,
            _ => missing.push((start, end)),
        }
    };
    if vouched_from > first {
        lack(first, (vouched_from - 1).min(last));
    }
    for entry in vouched_from.max(first)..=last {
        if !seen(entry) {
            lack(entry, entry);
        }
    }
    missing
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
            // Entries before `first` were not looked at; those up to `cut` were dropped.
            let vouched_from = first.max(found.cut + 1);
            let missing = missing_ranges(first_entry..=last_entry, vouched_from, from, to, |e| {
                found.seen.contains(&e)
            });
            let events = found.events.into_values().flatten().collect();
            Ok(Archived { events, missing })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn an_entry_owns_the_numbers_below_the_next() {
        assert_eq!(numbers_of(3), (3_000_001, 3_999_999));
    }

    #[test]
    fn missing_entries_are_named_clipped_and_merged() {
        let seen = |e: u64| [3, 6].contains(&e);
        // Asked for 2_000_005 ..= 7_000_002: entries 2 to 7, of which 3 and 6 were found.
        let missing = missing_ranges(2..=7, 0, 2_000_005, 7_000_002, seen);
        assert_eq!(
            missing,
            [
                (2_000_005, 2_999_999),
                (4_000_001, 5_999_999),
                (7_000_001, 7_000_002)
            ]
        );
        // Entries before `vouched_from` were not looked at, whatever was seen.
        let missing = missing_ranges(2..=7, 5, 2_000_001, 7_999_999, seen);
        assert_eq!(missing, [(2_000_001, 5_999_999), (7_000_001, 7_999_999)]);
        assert!(missing_ranges(3..=3, 0, 3_000_001, 3_999_999, seen).is_empty());
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
