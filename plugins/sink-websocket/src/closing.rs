//! The closing handshake (RFC 6455 §5.5.1, §7): which close code a read error earns, and how a
//! connection whose reader broke off is failed — our close sent, the client given a bounded
//! time to answer and hang up, then TCP closed.

use std::time::Duration;

use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::queue::Close;

/// How long a closing connection waits for the client's close answer before closing TCP.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// 1002: the client broke the framing rules (RSV bits, bad opcode, fragmented or oversized
/// control frame, continuation without a start, bad close code or length).
pub(crate) const PROTOCOL_ERROR: u16 = 1002;
/// 1007: a text message or close reason that is not UTF-8.
pub(crate) const INVALID_PAYLOAD: u16 = 1007;
/// 1009: a message (all its fragments together) over `max_message_bytes`.
pub(crate) const TOO_BIG: u16 = 1009;
/// 1011: the server could not go on for a reason of its own.
pub(crate) const INTERNAL_ERROR: u16 = 1011;

/// The close a read error calls for, or `None` when the client has simply gone (end of stream,
/// reset, I/O error) and there is nobody left to tell.
pub(crate) fn failure_close(error: &WsError) -> Option<Close> {
    let (code, reason) = match error {
        WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_) => return None,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => return None,
        WsError::Protocol(_) => (PROTOCOL_ERROR, "protocol error"),
        WsError::Utf8(_) => (INVALID_PAYLOAD, "invalid UTF-8"),
        WsError::Capacity(_) => (TOO_BIG, "message too big"),
        // Nothing a client sends should produce anything else while reading.
        _ => (INTERNAL_ERROR, "internal error"),
    };
    Some(Close {
        code,
        reason,
        drain: false,
        send: false,
    })
}

/// The close frame for `code` and `reason`.
pub(crate) fn close_message(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Fails `socket` with `close` after its reader hit an error (RFC 6455 §7.1.7): sends the
/// close, half-closes TCP, and reads and discards whatever comes until the client hangs up or
/// [`CLOSE_GRACE`] ends; then the socket is dropped.
///
/// tokio-tungstenite ends a stream at its first read error, and what follows may not even
/// start on a frame boundary, so the client's answer is not parsed: our FIN tells it we are
/// done, and it answers by closing its side. Closing with unread input would instead reset the
/// connection, which can destroy our close frame before the client reads it.
pub(crate) async fn fail<S>(mut socket: WebSocketStream<S>, close: Close)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + CLOSE_GRACE;
    // A read error leaves the codec able to write: the close goes out through it, whole.
    let sent = socket.send(close_message(close.code, close.reason));
    if let Ok(Err(e)) = tokio::time::timeout_at(deadline, sent).await {
        tracing::debug!(error = %e, "could not send the close frame");
    }
    let mut raw = socket.into_inner();
    let linger = async {
        let _ = raw.shutdown().await;
        let mut scratch = [0u8; 4096];
        while matches!(raw.read(&mut scratch).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout_at(deadline, linger).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::error::CapacityError;

    #[test]
    fn each_read_error_earns_its_close_code() {
        let code = |e: WsError| failure_close(&e).map(|c| c.code);
        assert_eq!(
            code(WsError::Protocol(ProtocolError::NonZeroReservedBits)),
            Some(1002)
        );
        assert_eq!(
            code(WsError::Protocol(ProtocolError::InvalidCloseSequence)),
            Some(1002)
        );
        assert_eq!(code(WsError::Utf8("bad".into())), Some(1007));
        let long = CapacityError::MessageTooLong {
            size: 2,
            max_size: 1,
        };
        assert_eq!(code(WsError::Capacity(long)), Some(1009));
        assert_eq!(code(WsError::AttackAttempt), Some(1011));
        assert_eq!(code(WsError::ConnectionClosed), None);
        assert_eq!(
            code(WsError::Protocol(
                ProtocolError::ResetWithoutClosingHandshake
            )),
            None
        );
        assert_eq!(
            code(WsError::Io(std::io::ErrorKind::BrokenPipe.into())),
            None
        );
        assert!(failure_close(&WsError::Utf8("x".into())).is_some_and(|c| !c.send));
    }
}
