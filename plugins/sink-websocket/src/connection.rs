//! One WebSocket connection: a writer that alone writes to the socket, a reader (`reader.rs`)
//! that answers client operations by queueing frames for it, and the closing handshake between.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

use crate::closing::{self, close_message, CLOSE_GRACE};
use crate::filter::EventFilter;
use crate::ops::{deep_replay, initial_replay, Subscription};
use crate::protocol;
use crate::queue::{Control, Outbox, Wire};
use crate::reader::{read_loop, reader_outcome, ReadEnd};
use crate::sink::{Admission, WebSocketHub};

/// Events in one `batch` frame at most.
const MAX_BATCH: usize = 512;

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
    // A resume from before what the ring holds reads the archive first, before registering,
    // so live events do not pile up in the queue meanwhile; whatever the ring gains in the
    // meantime is read after registering, as always.
    let deep = match params.since {
        Some((since, epoch)) if epoch.is_none_or(|e| e == hub.epoch) => {
            deep_replay(&hub, since).await
        }
        _ => None,
    };
    let outbox = Arc::new(Outbox::new(options.queue, options.overflow));
    // Register before reading the ring: an event is then either in the ring read, in the
    // outbox, or both (skipped by seq), never neither.
    let (id, latest) = hub.register(Arc::clone(&outbox), params.filter.clone());
    hub.start_beat();
    outbox.control(Control::Frame(protocol::welcome(hub.epoch, latest)));
    let baseline = initial_replay(&hub, &outbox, &params, deep);

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
    // Whichever side starts the closing handshake, the reader finishes it: it reads the
    // client's close (tungstenite queues the echo, which the next read sends) or the answer to
    // ours, and ends when tungstenite says TCP may close. So after the writer stops, the
    // reader gets a bounded time to finish, unless the client was judged unresponsive.
    let writer = writer.run(sink);
    tokio::pin!(writer);
    let mut read_end = None;
    let write_end = loop {
        // `biased`: polled in order, without drawing a random number on every wake-up of a
        // busy connection.
        tokio::select! {
            biased;
            end = &mut writer => break end,
            joined = &mut reader, if read_end.is_none() => {
                read_end = Some(reader_outcome(joined, &outbox));
            }
        }
    };
    let read_end = match read_end {
        Some(end) => end,
        None if !write_end.responsive => ReadEnd::Closed,
        None => match tokio::time::timeout(CLOSE_GRACE, &mut reader).await {
            Ok(joined) => reader_outcome(joined, &outbox),
            Err(_) => ReadEnd::Closed,
        },
    };
    reader.abort();
    if let ReadEnd::Failed(stream, close) = read_end {
        if let Ok(socket) = stream.reunite(write_end.sink) {
            closing::fail(socket, close).await;
        }
    }
    hub.unregister(id);
    drop(admission);
}

/// What the writer hands back when it stops.
struct WriteEnd<S> {
    sink: SplitSink<WebSocketStream<S>, Message>,
    /// `false` when the client stopped answering pings or reading: waiting on it is pointless.
    responsive: bool,
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
    /// Writes until the connection closes or the outbox says to stop, and hands the sink back.
    ///
    /// One long-lived timer paces pings and bounds writes: registering a timer per write
    /// would put every event of every connection through the runtime's timer wheel.
    async fn run<S>(mut self, mut sink: SplitSink<WebSocketStream<S>, Message>) -> WriteEnd<S>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let interval = Duration::from_secs(self.hub.options.ping_interval_s.max(1));
        let stale_after = interval * 3;
        let tick = tokio::time::sleep(interval);
        tokio::pin!(tick);
        let mut ping_due = false;
        // A ping was queued and not yet flushed (writes of work flush themselves).
        let mut unflushed = false;
        let coalesce = self.hub.options.coalesce();
        // On tokio's clock, which the beat keeps too (and tests can pause).
        let mut last_write = tokio::time::Instant::now()
            .checked_sub(coalesce)
            .unwrap_or_else(tokio::time::Instant::now);
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
                    return WriteEnd {
                        sink,
                        responsive: false,
                    };
                }
                if let Err(e) = sink.feed(Message::Ping(bytes::Bytes::new())).await {
                    tracing::debug!(error = %e, "websocket ping failed; closing");
                    return WriteEnd {
                        sink,
                        responsive: true,
                    };
                }
                unflushed = true;
            }
            let work = self.outbox.take();
            if work.is_empty() {
                if unflushed {
                    if let Err(e) = sink.flush().await {
                        tracing::debug!(error = %e, "websocket flush failed; closing");
                        return WriteEnd {
                            sink,
                            responsive: true,
                        };
                    }
                    unflushed = false;
                }
                tokio::select! {
                    biased;
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
                if last_write.elapsed() < coalesce {
                    let beat = self.hub.beat.notified();
                    tokio::select! {
                        biased;
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
            let started = Instant::now();
            let written = {
                // Queue everything, then flush once: one write for a burst of events.
                let write = async {
                    for message in messages {
                        sink.feed(message).await?;
                    }
                    if let Some(close) = close.filter(|c| c.send) {
                        sink.feed(close_message(close.code, close.reason)).await?;
                    }
                    sink.flush().await
                };
                tokio::pin!(write);
                loop {
                    // Unbiased: a connection always busy writing still polls its ping timer.
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
                }
            };
            match written {
                Some(Ok(())) if close.is_none() => {
                    // The flush that ended the write sent any ping queued before it too.
                    unflushed = false;
                    last_write = tokio::time::Instant::now();
                }
                Some(result) => {
                    if let Err(e) = result {
                        // After the client's close tungstenite refuses further frames; the
                        // reader sends the echo it queued.
                        tracing::debug!(error = %e, "websocket write failed; closing");
                    }
                    return WriteEnd {
                        sink,
                        responsive: true,
                    };
                }
                None => {
                    self.hub
                        .counters
                        .disconnected_timeout
                        .fetch_add(1, Ordering::Relaxed);
                    return WriteEnd {
                        sink,
                        responsive: false,
                    };
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
