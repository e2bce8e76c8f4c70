//! What a connection is sent besides live events: the connect-time replay or resume, and the
//! answers to client operations (SPEC §5). Every replay sends only what the connection's
//! filter wants; a `replay_gap` still names every asked-for `seq` no longer held, whether or not
//! those events would have matched (nobody can know any more).

use coda_core::{Archived, SharedEvent};

use crate::connection::ConnectParams;
use crate::filter::{EventFilter, ScopeFilter, TypeSet};
use crate::protocol::{self, ClientOp};
use crate::queue::{Control, Outbox, Wire};
use crate::sink::WebSocketHub;

/// A connection's filter as its reader knows it: the reader alone changes it (`subscribe`), so
/// it keeps the current one for replays and hands the hub a copy for delivery.
pub(crate) struct Subscription {
    /// The connection's id in the hub.
    pub id: u64,
    /// What the connection wants now.
    pub filter: EventFilter,
}

/// What the events archive held of a resume older than the ring: every event with `seq` in
/// `since+1 ..= to`, but for the ranges it names missing.
pub(crate) struct Deep {
    /// The ring's floor when fetched: the ring is read after it.
    to: u64,
    archived: Archived,
}

impl Deep {
    /// The gaps to report and the events to send for a resume after `since`: the archive's,
    /// then the ring's after them (and a gap if the ring moved on during the fetch).
    fn join(
        deep: Option<Deep>,
        hub: &WebSocketHub,
        since: u64,
    ) -> (Vec<(u64, u64)>, Vec<SharedEvent>) {
        let (after, mut gaps, mut events) = match deep {
            Some(deep) => (deep.to, deep.archived.missing, deep.archived.events),
            None => (since, Vec::new(), Vec::new()),
        };
        let replay = hub.ring.after(after);
        gaps.extend(replay.gap);
        events.extend(replay.events);
        (gaps, events)
    }
}

/// Fetches from the hub's archive what a resume after `since` needs beyond the ring, if the
/// hub has an archive and the ring no longer holds everything after `since`.
pub(crate) async fn deep_replay(hub: &WebSocketHub, since: u64) -> Option<Deep> {
    let archive = hub.archive.get()?;
    let floor = hub.ring.floor();
    if since >= floor {
        return None;
    }
    let from = since + 1;
    let archived = match archive.fetch(from, floor).await {
        Ok(archived) => archived,
        Err(e) => {
            tracing::warn!(error = %e, from, to = floor, "the events archive cannot be read; the client gets a replay_gap");
            Archived {
                events: Vec::new(),
                missing: vec![(from, floor)],
            }
        }
    };
    Some(Deep {
        to: floor,
        archived,
    })
}

/// Queues the welcome's replay: a resume after `since` (with what `deep` fetched from the
/// archive, if anything), or the last N events. Returns the `seq` the client has already seen,
/// below which live events are skipped.
pub(crate) fn initial_replay(
    hub: &WebSocketHub,
    outbox: &Outbox,
    params: &ConnectParams,
    deep: Option<Deep>,
) -> u64 {
    let filter = &params.filter;
    // Queues the events this connection wants, as one replay.
    let send_held = |events: &[SharedEvent]| {
        let events = events
            .iter()
            .filter(|e| filter.wants(e))
            .map(Wire::new)
            .collect();
        outbox.control(Control::Replay {
            events,
            advance: true,
        });
    };
    match params.since {
        Some((since, epoch)) if epoch.is_none_or(|e| e == hub.epoch) => {
            // The ring says what it no longer holds (numbers need not be dense in a cluster),
            // so no arithmetic on the client's `since` happens here.
            let (gaps, events) = Deep::join(deep, hub, since);
            for (from, to) in gaps {
                outbox.control(Control::Frame(protocol::replay_gap(from, to)));
            }
            send_held(&events);
            since
        }
        Some(_) => {
            // Another epoch's sequence numbers mean nothing here: everything before what is
            // held is gone. `to < from` says nothing of this epoch was lost.
            let replay = hub.ring.after(0);
            let to = replay.gap.map_or(0, |(_, to)| to);
            outbox.control(Control::Frame(protocol::replay_gap(1, to)));
            send_held(&replay.events);
            0
        }
        None => {
            let n = params.replay.unwrap_or(hub.options.replay_on_connect);
            if n > 0 {
                let all = hub.ring.after(0).events;
                let mut chosen: Vec<Wire> = all
                    .iter()
                    .rev()
                    .filter(|e| filter.wants(e))
                    .take(n)
                    .map(Wire::new)
                    .collect();
                chosen.reverse();
                outbox.control(Control::Replay {
                    events: chosen,
                    advance: true,
                });
            }
            0
        }
    }
}

/// Answers one client operation, fetching from the hub's archive first what a `replay` with
/// an old `since` needs beyond the ring.
pub(crate) async fn answer_deep(
    hub: &WebSocketHub,
    outbox: &Outbox,
    subscription: &mut Subscription,
    text: &str,
) {
    let deep = match ClientOp::parse(text) {
        Ok(ClientOp::Replay {
            since: Some(since), ..
        }) => deep_replay(hub, since).await,
        _ => None,
    };
    answer_with(hub, outbox, subscription, text, deep);
}

/// Answers one client operation by queueing frames for the writer (from the ring alone).
#[cfg(test)]
pub(crate) fn answer(
    hub: &WebSocketHub,
    outbox: &Outbox,
    subscription: &mut Subscription,
    text: &str,
) {
    answer_with(hub, outbox, subscription, text, None);
}

fn answer_with(
    hub: &WebSocketHub,
    outbox: &Outbox,
    subscription: &mut Subscription,
    text: &str,
    deep: Option<Deep>,
) {
    let refuse = |message: &str| outbox.control(Control::Frame(protocol::error(message)));
    let op = match ClientOp::parse(text) {
        Ok(op) => op,
        Err(message) => return refuse(&message),
    };
    match op {
        ClientOp::Ping {} => outbox.control(Control::Frame(protocol::pong())),
        ClientOp::Subscribe {
            types,
            user_id,
            agent_id,
            session_id,
        } => {
            let types = match protocol::parse_types(&types) {
                Ok(types) => TypeSet::of(&types),
                Err(message) => return refuse(&message),
            };
            let scope = ScopeFilter::parse(
                user_id.as_deref(),
                agent_id.as_deref(),
                session_id.as_deref(),
            );
            let scope = match scope {
                Ok(scope) => scope,
                Err((_, message)) => return refuse(&message),
            };
            let filter = EventFilter {
                types,
                scope,
                tenant: subscription.filter.tenant.clone(),
            };
            hub.set_filter(subscription.id, filter.clone());
            subscription.filter = filter;
        }
        ClientOp::Replay {
            since,
            types,
            from,
            to,
            limit,
        } => {
            let types = match protocol::parse_types(&types) {
                Ok(types) => types,
                Err(message) => return refuse(&message),
            };
            // The op's own types replace the subscribed ones; the scope and tenant stay the
            // connection's.
            let current = &subscription.filter;
            let wanted_types = if types.is_empty() {
                current.types
            } else {
                TypeSet::of(&types)
            };
            let wanted = |e: &SharedEvent| wanted_types.contains(e.event_type) && current.admits(e);
            let (gaps, events) = Deep::join(deep, hub, since.unwrap_or(0));
            if since.is_some() {
                for (from, to) in gaps {
                    outbox.control(Control::Frame(protocol::replay_gap(from, to)));
                }
            }
            let events: Vec<Wire> = events
                .iter()
                .filter(|e| wanted(e))
                .filter(|e| from.is_none_or(|from| e.timestamp >= from))
                .filter(|e| to.is_none_or(|to| e.timestamp <= to))
                .take(limit.unwrap_or(usize::MAX))
                .map(Wire::new)
                .collect();
            outbox.control(Control::Replay {
                events,
                advance: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use coda_core::{
        ArchiveFetch, Dedup, EventArchive, EventBody, EventBus, EventScope, EventType, Role,
    };

    use super::*;
    use crate::filter::{EventFilter, TypeSet};
    use crate::queue::Work;
    use crate::{Overflow, WebSocketOptions};

    /// Holds every event but those in `lost`; `broken` fails every fetch.
    struct Shelf {
        events: Vec<SharedEvent>,
        lost: (u64, u64),
        broken: bool,
    }

    impl EventArchive for Shelf {
        fn fetch(&self, from: u64, to: u64) -> ArchiveFetch<'_> {
            Box::pin(async move {
                if self.broken {
                    return Err(coda_core::Error::Unavailable("down".into()));
                }
                let (a, b) = self.lost;
                let events = self
                    .events
                    .iter()
                    .filter(|e| (from..=to).contains(&e.seq) && !(a..=b).contains(&e.seq))
                    .cloned()
                    .collect();
                let (a, b) = (a.max(from), b.min(to));
                let missing = if a <= b { vec![(a, b)] } else { Vec::new() };
                Ok(Archived { events, missing })
            })
        }
    }

    /// A hub whose ring of 3 holds events 8 to 10 (turns and clears, alternately), and every
    /// event published.
    fn hub() -> (WebSocketHub, Vec<SharedEvent>) {
        let bus = EventBus::new(3, 0, None);
        let events: Vec<SharedEvent> = (0..10)
            .map(|n| {
                let body = if n % 2 == 0 {
                    EventBody::ConversationTurn {
                        role: Role::User,
                        content: format!("turn {n}"),
                        turn_index: n,
                    }
                } else {
                    EventBody::MemoryClear {}
                };
                bus.emit_in(&EventScope::default_user(), &body, Dedup::Skip)
                    .expect("published")
            })
            .collect();
        let hub = WebSocketHub::new(
            WebSocketOptions::default(),
            bus.epoch(),
            Arc::clone(bus.replay()),
        );
        (hub, events)
    }

    /// The `replay_gap`s and replayed `seq`s queued, in order.
    fn sent(work: Work) -> (Vec<String>, Vec<u64>) {
        let (mut frames, mut seqs) = (Vec::new(), Vec::new());
        for control in work.control {
            match control {
                Control::Frame(text) => frames.push(text),
                Control::Replay { events, .. } => seqs.extend(events.iter().map(|w| w.seq)),
            }
        }
        (frames, seqs)
    }

    async fn resume(
        hub: &WebSocketHub,
        since: u64,
        filter: EventFilter,
    ) -> (Vec<String>, Vec<u64>) {
        let params = ConnectParams {
            since: Some((since, Some(hub.epoch))),
            filter,
            ..ConnectParams::default()
        };
        let outbox = Outbox::new(64, Overflow::DropOldest);
        let deep = deep_replay(hub, since).await;
        initial_replay(hub, &outbox, &params, deep);
        sent(outbox.take())
    }

    #[tokio::test]
    async fn a_resume_older_than_the_ring_reads_the_archive_and_names_only_what_it_lacks() {
        let (hub, events) = hub();
        // No archive: the ring's gap, as on one node.
        let (gaps, seqs) = resume(&hub, 1, EventFilter::default()).await;
        assert_eq!(gaps, [protocol::replay_gap(2, 7)]);
        assert_eq!(seqs, [8, 9, 10]);
        hub.set_archive(Arc::new(Shelf {
            events,
            lost: (4, 4),
            broken: false,
        }));
        let (gaps, seqs) = resume(&hub, 1, EventFilter::default()).await;
        assert_eq!(gaps, [protocol::replay_gap(4, 4)]);
        assert_eq!(seqs, [2, 3, 5, 6, 7, 8, 9, 10]);
        // Archived events are filtered like held ones.
        let turns = EventFilter {
            types: TypeSet::of(&[EventType::ConversationTurn]),
            ..EventFilter::default()
        };
        let (_, seqs) = resume(&hub, 1, turns).await;
        assert_eq!(seqs, [3, 5, 7, 9]);
        // Within the ring, the archive is not asked.
        let (gaps, seqs) = resume(&hub, 8, EventFilter::default()).await;
        assert!(gaps.is_empty());
        assert_eq!(seqs, [9, 10]);
    }

    #[tokio::test]
    async fn an_archive_that_cannot_be_read_is_one_gap_and_the_ring_still_replays() {
        let (hub, events) = hub();
        hub.set_archive(Arc::new(Shelf {
            events,
            lost: (0, 0),
            broken: true,
        }));
        let (gaps, seqs) = resume(&hub, 1, EventFilter::default()).await;
        assert_eq!(gaps, [protocol::replay_gap(2, 7)]);
        assert_eq!(seqs, [8, 9, 10]);
    }

    #[tokio::test]
    async fn a_replay_op_with_an_old_since_reads_the_archive_too() {
        let (hub, events) = hub();
        hub.set_archive(Arc::new(Shelf {
            events,
            lost: (6, 6),
            broken: false,
        }));
        let outbox = Outbox::new(64, Overflow::DropOldest);
        let mut subscription = Subscription {
            id: 0,
            filter: EventFilter::default(),
        };
        answer_deep(
            &hub,
            &outbox,
            &mut subscription,
            r#"{"op":"replay","since":4}"#,
        )
        .await;
        let (gaps, seqs) = sent(outbox.take());
        assert_eq!(gaps, [protocol::replay_gap(6, 6)]);
        assert_eq!(seqs, [5, 7, 8, 9, 10]);
    }
}
