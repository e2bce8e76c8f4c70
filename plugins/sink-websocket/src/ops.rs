//! What a connection is sent besides live events: the connect-time replay or resume, and the
//! answers to client operations (SPEC §5). Every replay sends only what the connection's
//! filter wants; a `replay_gap` still names every asked-for `seq` no longer held, whether or not
//! those events would have matched (nobody can know any more).

use coda_core::SharedEvent;

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

/// Queues the welcome's replay: a resume after `since`, or the last N events. Returns the `seq`
/// the client has already seen, below which live events are skipped.
pub(crate) fn initial_replay(
    hub: &WebSocketHub,
    outbox: &Outbox,
    params: &ConnectParams,
    latest: u64,
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
            let replay = hub.ring.after(since);
            let first = replay
                .events
                .first()
                .map_or(latest.max(since).saturating_add(1), |e| e.seq);
            // `since` is the client's number (`?since=18446744073709551615` is valid): no
            // arithmetic on it may overflow.
            if first > since.saturating_add(1) {
                outbox.control(Control::Frame(protocol::replay_gap(since + 1, first - 1)));
            }
            send_held(&replay.events);
            since
        }
        Some(_) => {
            // Another epoch's sequence numbers mean nothing here: everything before what is
            // held is gone. `to < from` says nothing of this epoch was lost.
            let replay = hub.ring.after(0);
            let first = replay
                .events
                .first()
                .map_or(latest.saturating_add(1), |e| e.seq);
            outbox.control(Control::Frame(protocol::replay_gap(1, first - 1)));
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

/// Answers one client operation by queueing frames for the writer.
pub(crate) fn answer(
    hub: &WebSocketHub,
    outbox: &Outbox,
    subscription: &mut Subscription,
    text: &str,
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
            let replay = hub.ring.after(since.unwrap_or(0));
            if let (Some(_), Some((from, to))) = (since, replay.gap) {
                outbox.control(Control::Frame(protocol::replay_gap(from, to)));
            }
            let events: Vec<Wire> = replay
                .events
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
