//! What a connection is sent besides live events: the connect-time replay or resume, and the
//! answers to client operations (SPEC §5).

use coda_core::{EventType, SharedEvent};

use crate::connection::ConnectParams;
use crate::protocol::{self, ClientOp};
use crate::queue::{mask_of, Control, Outbox, Wire};
use crate::sink::WebSocketHub;

/// Queues the welcome's replay: a resume after `since`, or the last N events. Returns the `seq`
/// the client has already seen, below which live events are skipped.
pub(crate) fn initial_replay(
    hub: &WebSocketHub,
    outbox: &Outbox,
    params: &ConnectParams,
    latest: u64,
) -> u64 {
    let held = |e: &SharedEvent| outbox.wants(e.event_type);
    // Queues the events this connection subscribes to, as one replay.
    let send_held = |events: &[SharedEvent]| {
        let events = events.iter().filter(|e| held(e)).map(Wire::new).collect();
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
                .map_or(latest.max(since) + 1, |e| e.seq);
            if first > since + 1 {
                outbox.control(Control::Frame(protocol::replay_gap(since + 1, first - 1)));
            }
            send_held(&replay.events);
            since
        }
        Some(_) => {
            // Another epoch's sequence numbers mean nothing here: everything before what is
            // held is gone. `to < from` says nothing of this epoch was lost.
            let replay = hub.ring.after(0);
            let first = replay.events.first().map_or(latest + 1, |e| e.seq);
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
                    .filter(|e| held(e))
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
pub(crate) fn answer(hub: &WebSocketHub, outbox: &Outbox, text: &str) {
    let op = match ClientOp::parse(text) {
        Ok(op) => op,
        Err(message) => return outbox.control(Control::Frame(protocol::error(&message))),
    };
    match op {
        ClientOp::Ping {} => outbox.control(Control::Frame(protocol::pong())),
        ClientOp::Subscribe { types } => match protocol::parse_types(&types) {
            Ok(types) => outbox.subscribe(mask_of(&types)),
            Err(message) => outbox.control(Control::Frame(protocol::error(&message))),
        },
        ClientOp::Replay {
            since,
            types,
            from,
            to,
            limit,
        } => {
            let types = match protocol::parse_types(&types) {
                Ok(types) => types,
                Err(message) => return outbox.control(Control::Frame(protocol::error(&message))),
            };
            let wanted = |t: EventType| {
                if types.is_empty() {
                    outbox.wants(t)
                } else {
                    types.contains(&t)
                }
            };
            let replay = hub.ring.after(since.unwrap_or(0));
            if let (Some(_), Some((from, to))) = (since, replay.gap) {
                outbox.control(Control::Frame(protocol::replay_gap(from, to)));
            }
            let events: Vec<Wire> = replay
                .events
                .iter()
                .filter(|e| wanted(e.event_type))
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
