//! `coalesce_ms`: a connection that has just written holds further events back until the next
//! beat and sends them in one write. Run on tokio's paused clock over an in-memory stream, so
//! the intervals are exact and no test waits on real time.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use coda_core::{EventType, ReplayRing};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

use crate::connection::{run, ConnectParams};
use crate::sink::WebSocketHub;
use crate::test_events::events;
use crate::WebSocketOptions;

/// The server's end of the stream, counting the writes that carry bytes.
struct Counted {
    inner: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The `seq` of a text frame that is an event, else `None`.
fn seq_of(message: &Message) -> Option<u64> {
    let Message::Text(text) = message else {
        return None;
    };
    let value: serde_json::Value = serde_json::from_str(text.as_str()).ok()?;
    if value["type"] == "welcome" {
        return None;
    }
    value["seq"].as_u64()
}

#[tokio::test(start_paused = true)]
async fn events_after_a_write_wait_for_the_beat_and_share_one_write() {
    let coalesce = Duration::from_millis(250);
    let options = WebSocketOptions {
        coalesce_ms: 250,
        ..WebSocketOptions::default()
    };
    let hub = Arc::new(WebSocketHub::new(
        options,
        Uuid::new_v4(),
        Arc::new(ReplayRing::new(16)),
    ));
    let (server, client) = tokio::io::duplex(1 << 20);
    let writes = Arc::new(AtomicUsize::new(0));
    let server = Counted {
        inner: server,
        writes: Arc::clone(&writes),
    };
    let socket = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
    let admission = hub.admit().expect("a free slot");
    tokio::spawn(run(
        Arc::clone(&hub),
        socket,
        ConnectParams::default(),
        admission,
    ));
    let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
    let welcome = client.next().await.expect("welcome").expect("a frame");
    assert!(welcome.to_text().expect("text").contains("\"welcome\""));

    let wires = events(&[EventType::ConversationTurn; 5]);
    // The first event after an idle stretch is written at once.
    tokio::time::advance(coalesce * 2).await;
    let before = writes.load(Ordering::Relaxed);
    let delivered = tokio::time::Instant::now();
    hub.deliver(&wires[0].event);
    let first = client.next().await.expect("event").expect("a frame");
    assert_eq!(seq_of(&first), Some(wires[0].seq));
    assert_eq!(delivered.elapsed(), Duration::ZERO, "not held");
    assert_eq!(writes.load(Ordering::Relaxed), before + 1);

    // The next ones, right after that write, are held until the beat, however often the
    // writer gets to run meanwhile, then go out together.
    let held_from = tokio::time::Instant::now();
    let before = writes.load(Ordering::Relaxed);
    for wire in &wires[1..] {
        hub.deliver(&wire.event);
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(
        writes.load(Ordering::Relaxed),
        before,
        "nothing written before the beat"
    );
    let mut seqs = Vec::new();
    while seqs.len() < 4 {
        let message = client.next().await.expect("event").expect("a frame");
        seqs.extend(seq_of(&message));
    }
    let held = held_from.elapsed();
    assert_eq!(seqs, wires[1..].iter().map(|w| w.seq).collect::<Vec<_>>());
    assert_eq!(
        writes.load(Ordering::Relaxed),
        before + 1,
        "four events, one write"
    );
    assert!(held > Duration::ZERO && held <= coalesce, "held {held:?}");
}
