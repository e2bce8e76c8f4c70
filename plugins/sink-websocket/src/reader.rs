//! The read half of a connection: client operations answered through the outbox, and the
//! client's side of the closing handshake.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::closing::{self, INTERNAL_ERROR};
use crate::ops::{answer_deep, Subscription};
use crate::protocol;
use crate::queue::{Close, Control, Outbox};
use crate::sink::WebSocketHub;

/// How the reader ended.
pub(crate) enum ReadEnd<S> {
    /// The closing handshake is done (whichever side started it), or the client has gone.
    Closed,
    /// The client broke the protocol and the connection must be failed with this close; the
    /// read half comes back so the socket can be put together for it.
    Failed(SplitStream<WebSocketStream<S>>, Close),
}

/// The reader's end; a reader that panicked (a bug) gets the client a 1011 close.
pub(crate) fn reader_outcome<S>(
    joined: Result<ReadEnd<S>, JoinError>,
    outbox: &Outbox,
) -> ReadEnd<S> {
    match joined {
        Ok(end) => end,
        Err(e) => {
            tracing::error!(error = %e, "websocket reader failed");
            outbox.close(Close {
                code: INTERNAL_ERROR,
                reason: "internal error",
                drain: false,
                send: true,
            });
            ReadEnd::Closed
        }
    }
}

/// Reads client frames until the stream ends, answering operations through the outbox.
///
/// A close from the client is not the end: tungstenite has queued its echo (1002 instead for
/// a code nobody may send), and the next read sends it and ends the stream — the server closes
/// TCP first, as RFC 6455 §7.1.1 asks. Pings are answered the same way, with their payload.
/// Text fragments are put together by tungstenite within `max_message_bytes`, which it also
/// enforces per frame.
pub(crate) async fn read_loop<S>(
    mut stream: SplitStream<WebSocketStream<S>>,
    outbox: Arc<Outbox>,
    hub: Arc<WebSocketHub>,
    mut subscription: Subscription,
    last_heard: Arc<AtomicU64>,
    clock: Instant,
) -> ReadEnd<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let failure = loop {
        let Some(message) = stream.next().await else {
            break None;
        };
        last_heard.store(clock.elapsed().as_millis() as u64, Ordering::Relaxed);
        match message {
            Ok(Message::Text(text)) => answer_deep(&hub, &outbox, &mut subscription, &text).await,
            Ok(Message::Binary(_)) => outbox.control(Control::Frame(protocol::error(
                "binary frames are not understood; send JSON text",
            ))),
            Ok(Message::Close(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Err(e) => {
                tracing::debug!(error = %e, "websocket read failed");
                break closing::failure_close(&e);
            }
        }
    };
    match failure {
        Some(close) => {
            // The writer stops; the close goes out once the socket is whole again.
            outbox.close(close);
            ReadEnd::Failed(stream, close)
        }
        None => {
            // The handshake is done or the client has gone: nothing more is worth writing.
            outbox.close(Close {
                code: 1000,
                reason: "",
                drain: false,
                send: false,
            });
            ReadEnd::Closed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overflow;

    #[tokio::test]
    async fn a_reader_that_panicked_gets_the_client_a_1011() {
        let outbox = Outbox::new(4, Overflow::DropOldest);
        let joined = tokio::spawn(async {
            panic!("a bug in the reader");
            #[allow(unreachable_code)]
            ReadEnd::<tokio::io::DuplexStream>::Closed
        })
        .await;
        assert!(matches!(reader_outcome(joined, &outbox), ReadEnd::Closed));
        let close = outbox.take().close.expect("a close");
        assert_eq!((close.code, close.send), (1011, true));
    }
}
