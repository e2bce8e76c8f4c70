//! One WebSocket connection: a writer task that alone writes to the socket, and a reader that
//! answers client operations by queueing frames for that writer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

use crate::filter::EventFilter;
use crate::ops::{answer, initial_replay, Subscription};
use crate::protocol;
use crate::queue::{Close, Control, Outbox, Wire};
use crate::sink::{Admission, WebSocketHub, COALESCE};

/// Events in one `batch` frame at most.
const MAX_BATCH: usize = 512;
/// How long a closing connection waits for the client's close reply.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What the client asked for in the upgrade request's query.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectParams {
    /// What to send (`types=`, `user_id=`, `agent_id=`, `session_id=`).
    pub filter: EventFilter,
    /// `since=` and `epoch=`.
    pub since: Option<(u64, Option<Uuid>)>,
    /// `replay=` (default: the sink's `replay_on_connect`).
    pub replay: Option<usize>,
    /// `batch=1`.
    pub batch: bool,
}

/// Serves one upgraded connection until it closes.
pub(crate) async fn run<S>(
    hub: Arc<WebSocketHub>,
    socket: WebSocketStream<S>,
    params: ConnectParams,
    admission: Admission,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let options = &hub.options;
    let outbox = Arc::new(Outbox::new(options.queue, options.overflow));
    // Register before reading the ring: an event is then either in the ring read, in the
    // outbox, or both (skipped by seq), never neither.
    let (id, latest) = hub.register(Arc::clone(&outbox), params.filter.clone());
    hub.start_beat();
    outbox.control(Control::Frame(protocol::welcome(hub.epoch, latest)));
    let baseline = initial_replay(&hub, &outbox, &params, latest);

    let (sink, stream) = socket.split();
    let clock = Instant::now();
    let last_heard = Arc::new(AtomicU64::new(0));
    let subscription = Subscription {
        id,
        filter: params.filter,
    };
    let mut reader = tokio::spawn(read_loop(
        stream,
        Arc::clone(&outbox),
        Arc::clone(&hub),
        subscription,
        Arc::clone(&last_heard),
        clock,
    ));
    let writer = Writer {
        hub: Arc::clone(&hub),
        outbox: Arc::clone(&outbox),
        batch: params.batch,
        last_sent: baseline,
        clock,
        last_heard,
    };
    let closed_cleanly = writer.run(sink).await;
    if closed_cleanly {
        // Let the client's close reply arrive so the socket shuts down without a reset.
        let _ = tokio::time::timeout(CLOSE_GRACE, &mut reader).await;
    }
    reader.abort();
    hub.unregister(id);
    drop(admission);
}

struct Writer {
    hub: Arc<WebSocketHub>,
    outbox: Arc<Outbox>,
    batch: bool,
    /// The highest `seq` written; live events at or below it are skipped.
    last_sent: u64,
    clock: Instant,
    last_heard: Arc<AtomicU64>,
}

impl Writer {
    /// Writes until the connection closes; returns whether a close frame was sent.
    ///
    /// One long-lived timer paces pings and bounds writes: registering a timer per write
    /// would put every event of every connection through the runtime's timer wheel.
    async fn run<S>(mut self, mut sink: SplitSink<WebSocketStream<S>, Message>) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let interval = Duration::from_secs(self.hub.options.ping_interval_s.max(1));
        let stale_after = interval * 3;
        let tick = tokio::time::sleep(interval);
        tokio::pin!(tick);
        let mut ping_due = false;
        let mut last_write = Instant::now()
            .checked_sub(COALESCE)
            .unwrap_or_else(Instant::now);
        loop {
            if ping_due {
                ping_due = false;
                let heard = Duration::from_millis(self.last_heard.load(Ordering::Relaxed));
                if self.clock.elapsed().saturating_sub(heard) > stale_after {
                    self.hub
                        .counters
                        .disconnected_timeout
                        .fetch_add(1, Ordering::Relaxed);
                    let close = close_message(1008, "no answer to pings");
                    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close)).await;
                    return false;
                }
                if sink.feed(Message::Ping(bytes::Bytes::new())).await.is_err() {
                    return false;
                }
            }
            let work = self.outbox.take();
            if work.is_empty() {
                if let Err(e) = sink.flush().await {
                    tracing::debug!(error = %e, "websocket flush failed; closing");
                    return false;
                }
                tokio::select! {
                    _ = self.outbox.woken() => {}
                    _ = &mut tick => {
                        ping_due = true;
                        tick.as_mut().reset((Instant::now() + interval).into());
                        continue;
                    }
                }
                // Woken by an event soon after a write: hold it until the next beat, so a
                // busy connection writes at most once per beat with everything queued, while
                // an idle one writes at once.
                if last_write.elapsed() < COALESCE {
                    let beat = self.hub.beat.notified();
                    tokio::select! {
                        _ = beat => {}
                        _ = &mut tick => {
                            ping_due = true;
                            tick.as_mut().reset((Instant::now() + interval).into());
                        }
                    }
                }
                continue;
            }
            let close = work.close;
            let messages = self.frames(work);
            // Queue everything, then flush once: one write for a burst of events.
            let write = async {
                for message in messages {
                    sink.feed(message).await?;
                }
                if let Some(close) = close {
                    sink.feed(close_message(close.code, close.reason)).await?;
                }
                sink.flush().await
            };
            tokio::pin!(write);
            let started = Instant::now();
            let written = loop {
                tokio::select! {
                    result = &mut write => break Some(result),
                    _ = &mut tick => {
                        ping_due = true;
                        tick.as_mut().reset((Instant::now() + interval).into());
                        // A client that stops reading cannot hold its writer for long.
                        if started.elapsed() > stale_after {
                            break None;
                        }
                    }
                }
            };
            match written {
                Some(Ok(())) if close.is_some() => return true,
                Some(Ok(())) => last_write = Instant::now(),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "websocket write failed; closing");
                    return false;
                }
                None => {
                    self.hub
                        .counters
                        .disconnected_timeout
                        .fetch_add(1, Ordering::Relaxed);
                    return false;
                }
            }
        }
    }

    /// The frames for one batch of work, in order: control frames and replays, a `lagged`
    /// notice, then live events not yet sent.
    fn frames(&mut self, work: crate::queue::Work) -> Vec<Message> {
        let mut out = Vec::with_capacity(work.control.len() + work.events.len() + 1);
        let mut delivered = 0u64;
        for control in work.control {
            match control {
                Control::Frame(text) => out.push(Message::Text(text.into())),
                Control::Replay { events, advance } => {
                    // The connect-time replay is the start of the live stream. A replay the
                    // client asks for later is history, sent as asked (a filtered one may
                    // skip events still queued, so it must not move the live position).
                    if advance {
                        self.last_sent = self.last_sent.max(events.last().map_or(0, |w| w.seq));
                    }
                    delivered += events.len() as u64;
                    self.push_events(&mut out, events);
                }
            }
        }
        if let Some(lag) = work.lag {
            self.hub.counters.lagged.fetch_add(1, Ordering::Relaxed);
            out.push(Message::Text(
                protocol::lagged(lag.dropped, lag.from, lag.to).into(),
            ));
        }
        // Queued events are what the filter wants: the hub filters before queueing, and drops
        // what was queued under a replaced filter.
        let last_sent = self.last_sent;
        let live: Vec<Wire> = work
            .events
            .into_iter()
            .filter(|w| w.seq > last_sent)
            .collect();
        if let Some(last) = live.last() {
            self.last_sent = last.seq;
        }
        delivered += live.len() as u64;
        self.push_events(&mut out, live);
        self.hub
            .counters
            .delivered
            .fetch_add(delivered, Ordering::Relaxed);
        out
    }

    fn push_events(&self, out: &mut Vec<Message>, events: Vec<Wire>) {
        if self.batch && events.len() > 1 {
            for chunk in events.chunks(MAX_BATCH) {
                let size = chunk.iter().map(|w| w.text.len()).sum();
                let frame = protocol::batch(chunk.iter().map(|w| w.text.as_str()), size);
                out.push(Message::Text(frame.into()));
            }
        } else {
            out.extend(events.into_iter().map(|w| Message::Text(w.text)));
        }
    }
}

fn close_message(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from_static(reason),
    }))
}

async fn read_loop<S>(
    mut stream: SplitStream<WebSocketStream<S>>,
    outbox: Arc<Outbox>,
    hub: Arc<WebSocketHub>,
    mut subscription: Subscription,
    last_heard: Arc<AtomicU64>,
    clock: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let max = hub.options.max_message_bytes;
    let too_big = Close {
        code: 1009,
        reason: "message too big",
        drain: false,
    };
    while let Some(message) = stream.next().await {
        last_heard.store(clock.elapsed().as_millis() as u64, Ordering::Relaxed);
        match message {
            Ok(Message::Text(text)) if text.len() > max => {
                outbox.close(too_big);
                return;
            }
            Ok(Message::Text(text)) => answer(&hub, &outbox, &mut subscription, &text),
            Ok(Message::Binary(data)) if data.len() > max => {
                outbox.close(too_big);
                return;
            }
            Ok(Message::Binary(_)) => outbox.control(Control::Frame(protocol::error(
                "binary frames are not understood; send JSON text",
            ))),
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(WsError::Capacity(CapacityError::MessageTooLong { .. })) => {
                outbox.close(too_big);
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "websocket read failed");
                break;
            }
        }
    }
    // The client has gone (or closed): nothing more is worth writing.
    outbox.close(Close {
        code: 1000,
        reason: "",
        drain: false,
    });
}
