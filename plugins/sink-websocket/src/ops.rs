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
