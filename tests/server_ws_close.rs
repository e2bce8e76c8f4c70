//! The closing handshake of `/ws` over real sockets (RFC 6455 §5, §7): a client's close is
//! echoed and TCP closed; protocol errors close with 1002, invalid UTF-8 with 1007, a message
//! over `max_message_bytes` with 1009 — each followed promptly by the end of the connection; a
//! server-initiated close waits for the client's answer. Fragments are reassembled and pings
//! answered with their payload.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

use common::{close_code, next, seqs, ws, Server, Ws, DEADLINE};

/// Well under the server's 2 s close grace: the server closed TCP itself, it did not time out.
const PROMPT: Duration = Duration::from_millis(1000);

fn frame(opcode: OpCode, is_final: bool, payload: &'static [u8]) -> Message {
    let header = FrameHeader {
        is_final,
        opcode,
        ..FrameHeader::default()
    };
    Message::Frame(Frame::from_payload(header, Bytes::from_static(payload)))
}

fn text_fragment(is_final: bool, payload: &'static [u8]) -> Message {
    frame(OpCode::Data(Data::Text), is_final, payload)
}

/// Reads the server's close frame, then expects the connection to end promptly (reading sends
/// the client's automatic answer first). Returns the close code.
async fn closed_with(ws: &mut Ws) -> u16 {
    let code = close_code(ws).await;
    let end =
        tokio::time::timeout(PROMPT, async { while let Some(Ok(_)) = ws.next().await {} }).await;
    assert!(
        end.is_ok(),
        "the server kept TCP open after closing with {code}"
    );
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_echoed_then_tcp_closes() {
    let server = Server::start("", "").await;
    let (mut client, _) = ws(&server.addr(), "").await;
    let close = CloseFrame {
        code: CloseCode::from(4000),
        reason: "bye".into(),
    };
    client.close(Some(close)).await.unwrap();
    assert_eq!(close_code(&mut client).await, 4000);
    let end = tokio::time::timeout(PROMPT, client.next()).await;
    assert!(
        matches!(end, Ok(None)),
        "after the echo the server closes TCP: {end:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_close_with_1002() {
    let server = Server::start("", "").await;
    let mut rsv = Frame::message("{}", OpCode::Data(Data::Text), true);
    rsv.header_mut().rsv1 = true;
    let cases: Vec<(&str, Vec<Message>)> = vec![
        ("RSV1 set", vec![Message::Frame(rsv)]),
        (
            "fragmented ping",
            vec![frame(OpCode::Control(Control::Ping), false, b"x")],
        ),
        ("126-byte ping", vec![Message::Ping(vec![0u8; 126].into())]),
        (
            "reserved opcode",
            vec![frame(OpCode::Data(Data::Reserved(3)), true, b"x")],
        ),
        (
            "reserved control opcode",
            vec![frame(OpCode::Control(Control::Reserved(11)), true, b"")],
        ),
        (
            "continuation without a start",
            vec![frame(OpCode::Data(Data::Continue), true, b"x")],
        ),
        (
            "text inside a fragmented message",
            vec![text_fragment(false, b"{"), text_fragment(true, b"}")],
        ),
        (
            "close with a 1-byte payload",
            vec![frame(OpCode::Control(Control::Close), true, &[3])],
        ),
    ];
    for (what, messages) in cases {
        let (mut client, _) = ws(&server.addr(), "").await;
        for message in messages {
            client.feed(message).await.unwrap();
        }
        client.flush().await.unwrap();
        assert_eq!(closed_with(&mut client).await, 1002, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_code_nobody_may_send_is_answered_with_1002() {
    let server = Server::start("", "").await;
    // 1005 ("no status") and 999 are never sent on the wire (RFC 6455 §7.4).
    for code in [[0x03, 0xed], [0x03, 0xe7]] {
        let (mut client, _) = ws(&server.addr(), "").await;
        let payload: &'static [u8] = Box::leak(Box::new(code));
        client
            .send(frame(OpCode::Control(Control::Close), true, payload))
            .await
            .unwrap();
        assert_eq!(closed_with(&mut client).await, 1002, "{code:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_closes_with_1007() {
    let server = Server::start("", "").await;
    let cases: [(&str, Message); 3] = [
        ("text", text_fragment(true, b"{\"op\":\"\xff\"}")),
        (
            "close reason",
            frame(
                OpCode::Control(Control::Close),
                true,
                b"\x03\xe8\xce\xba\xff",
            ),
        ),
        ("fragment", text_fragment(false, b"\xed\xa0\x80")),
    ];
    for (what, message) in cases {
        let (mut client, _) = ws(&server.addr(), "").await;
        client.send(message).await.unwrap();
        assert_eq!(closed_with(&mut client).await, 1007, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_are_reassembled_within_max_message_bytes() {
    let server = Server::start("max_message_bytes = 1000", "").await;
    let (mut client, _) = ws(&server.addr(), "").await;
    // A ping op in three fragments, with a ping frame between them, is answered.
    client.feed(text_fragment(false, b"{\"op\"")).await.unwrap();
    client
        .feed(Message::Ping(Bytes::from_static(b"mid")))
        .await
        .unwrap();
    client
        .feed(frame(OpCode::Data(Data::Continue), false, b":\"pi"))
        .await
        .unwrap();
    client
        .feed(frame(OpCode::Data(Data::Continue), true, b"ng\"}"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    assert_eq!(next(&mut client).await["type"], "pong");
    // Fragments each under the limit but over it together close with 1009.
    static PART: [u8; 400] = [b' '; 400];
    client.feed(text_fragment(false, &PART)).await.unwrap();
    for is_final in [false, true] {
        client
            .feed(frame(OpCode::Data(Data::Continue), is_final, &PART))
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    assert_eq!(closed_with(&mut client).await, 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_with_their_payload() {
    let server = Server::start("", "").await;
    let (mut client, _) = ws(&server.addr(), "").await;
    for payload in [&b""[..], b"hello", &[7u8; 125]] {
        client
            .send(Message::Ping(Bytes::copy_from_slice(payload)))
            .await
            .unwrap();
        let pong = tokio::time::timeout(DEADLINE, async {
            loop {
                match client.next().await {
                    Some(Ok(Message::Pong(data))) => return data,
                    Some(Ok(_)) => continue,
                    other => panic!("expected a pong, got {other:?}"),
                }
            }
        })
        .await
        .expect("a pong in time");
        assert_eq!(&pong[..], payload);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_close_waits_for_the_answer_then_closes_tcp() {
    let server = Server::start("replay_on_connect = 0", "").await;
    let (mut client, _) = ws(&server.addr(), "").await;
    server.turns(1);
    assert_eq!(seqs(&mut client, 1).await, [1]);
    let common::Server { handle, dir } = server;
    let shutdown = tokio::spawn(handle.shutdown());
    // Reading the close queues the client's answer without sending it yet.
    let code = tokio::time::timeout(DEADLINE, client.next()).await.unwrap();
    assert!(
        matches!(&code, Some(Ok(Message::Close(Some(f)))) if u16::from(f.code) == 1001),
        "{code:?}"
    );
    let MaybeTlsStream::Plain(tcp) = client.get_ref() else {
        panic!("plain TCP expected");
    };
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), tcp.peek(&mut byte)).await;
    assert!(
        early.is_err(),
        "the server closed TCP before the answer: {early:?}"
    );
    // The next read sends the answer; the server then closes TCP.
    let end = tokio::time::timeout(PROMPT, client.next()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
    tokio::time::timeout(DEADLINE, shutdown)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    drop(dir);
}
