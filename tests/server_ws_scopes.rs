//! `/ws` scope filters (SPEC §5, §8) against a real server: `user_id`, `agent_id` and
//! `session_id` query parameters and `subscribe` fields, ANDed with each other and with `types`,
//! on live events, replay on connect, resume and replay ops.

#![allow(clippy::unwrap_used)]

mod common;

use coda::{NewMemory, Role, Scope};
use common::{http, next, next_events, round_trip, send, try_ws, ws, Server, Ws};
use serde_json::Value;

/// Reads events until the one whose `content` is `marker` (included); returns them all.
async fn until(client: &mut Ws, marker: &str) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        for event in next_events(client).await {
            let done = event["content"] == marker;
            got.push(event);
            if done {
                return got;
            }
        }
    }
}

/// `(user_id, content)` of each event, `content` or `query` or the type when it has neither.
fn who_what(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            let what = e["content"]
                .as_str()
                .or(e["query"].as_str())
                .or(e["type"].as_str())
                .unwrap_or_default();
            (
                e["user_id"].as_str().unwrap_or_default().to_owned(),
                what.to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(u, c)| ((*u).to_owned(), (*c).to_owned()))
        .collect()
}

/// Alice's and Bob's turns and memories, interleaved; returns nothing, emits 6 events.
fn interleaved(server: &Server) {
    let m = server.manager();
    m.session("alice", "chat-1")
        .unwrap()
        .add_turn(Role::User, "alice says hi")
        .unwrap();
    m.session("bob", "chat-b")
        .unwrap()
        .add_turn(Role::User, "bob says hi")
        .unwrap();
    m.user("alice")
        .unwrap()
        .add_memory(NewMemory::new("Alice likes tea.", "preference"))
        .unwrap();
    m.user("bob")
        .unwrap()
        .add_memory(NewMemory::new("Bob likes coffee.", "preference"))
        .unwrap();
    m.session("bob", "chat-b")
        .unwrap()
        .add_turn(Role::Assistant, "bob hears back")
        .unwrap();
    m.session("alice", "chat-1")
        .unwrap()
        .add_turn(Role::Assistant, "alice hears back")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_filter_gets_only_that_users_events_live_and_on_connect() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    let (mut alice, _) = ws(&addr, "user_id=alice&replay=0").await;
    let (mut everyone, _) = ws(&addr, "replay=0").await;
    interleaved(&server);
    let got = until(&mut alice, "alice hears back").await;
    assert_eq!(
        who_what(&got),
        pairs(&[
            ("alice", "alice says hi"),
            ("alice", "Alice likes tea."),
            ("alice", "alice hears back")
        ])
    );
    assert_eq!(until(&mut everyone, "alice hears back").await.len(), 6);

    // On connect, the replay holds only Bob's events, then Bob's live ones follow.
    let (mut bob, welcome) = ws(&addr, "user_id=bob").await;
    assert_eq!(
        welcome["seq"], 6,
        "welcome names the latest seq of the whole stream"
    );
    server
        .manager()
        .session("alice", "chat-1")
        .unwrap()
        .add_turn(Role::User, "alice again")
        .unwrap();
    server
        .manager()
        .session("bob", "chat-b")
        .unwrap()
        .add_turn(Role::User, "bob again")
        .unwrap();
    let got = until(&mut bob, "bob again").await;
    assert_eq!(
        who_what(&got),
        pairs(&[
            ("bob", "bob says hi"),
            ("bob", "Bob likes coffee."),
            ("bob", "bob hears back"),
            ("bob", "bob again")
        ])
    );
    let seqs: Vec<u64> = got.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [2, 4, 5, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_and_agent_filters_match_exactly() {
    let server = Server::start("replay_on_connect = 0", "").await;
    let addr = server.addr();
    let m = server.manager();
    // Session ids are unique within a tenant: a session names one user's conversation.
    let (mut alice_chat1, _) = ws(&addr, "user_id=alice&session_id=chat-1").await;
    let (mut any_chat1, _) = ws(&addr, "session_id=chat-1").await;
    let (mut alice_chat2, _) = ws(&addr, "user_id=alice&session_id=chat-2").await;
    let (mut planner, _) = ws(&addr, "agent_id=planner").await;

    m.session("alice", "chat-1")
        .unwrap()
        .add_turn(Role::User, "a1")
        .unwrap();
    m.session("alice", "chat-2")
        .unwrap()
        .add_turn(Role::User, "a2")
        .unwrap();
    m.session("bob", "chat-b")
        .unwrap()
        .add_turn(Role::User, "b1")
        .unwrap();
    // A memory of the user without a session does not match a session filter.
    m.user("alice")
        .unwrap()
        .add_memory(NewMemory::new("Alice is a user-level memory.", "fact"))
        .unwrap();
    let with_agent = |user: &str| Scope::user(user).unwrap().with_agent("planner").unwrap();
    m.scope(with_agent("carol").with_session("plan-1").unwrap())
        .add_turn(Role::User, "planned")
        .unwrap();
    m.scope(with_agent("carol"))
        .add_memory(NewMemory::new("Carol plans trips.", "fact"))
        .unwrap();
    // Carol without the agent: no match for the agent filter.
    m.session("carol", "chat-c")
        .unwrap()
        .add_turn(Role::User, "c1")
        .unwrap();
    m.session("alice", "chat-1")
        .unwrap()
        .add_turn(Role::User, "end")
        .unwrap();
    m.session("alice", "chat-2")
        .unwrap()
        .add_turn(Role::User, "end 2")
        .unwrap();

    let contents = |events: &[Value]| -> Vec<String> {
        who_what(events).into_iter().map(|(_, c)| c).collect()
    };
    assert_eq!(
        contents(&until(&mut alice_chat1, "end").await),
        ["a1", "end"]
    );
    assert_eq!(contents(&until(&mut any_chat1, "end").await), ["a1", "end"]);
    assert_eq!(
        contents(&until(&mut alice_chat2, "end 2").await),
        ["a2", "end 2"]
    );
    let got = until(&mut planner, "Carol plans trips.").await;
    assert_eq!(contents(&got), ["planned", "Carol plans trips."]);
    assert!(got.iter().all(|e| e["agent_id"] == "planner"), "{got:?}");
    // Nothing else is queued for the planner filter: the next one it gets is the next match.
    m.scope(with_agent("dave"))
        .add_memory(NewMemory::new("Dave too.", "fact"))
        .unwrap();
    assert_eq!(next(&mut planner).await["content"], "Dave too.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_filters_and_with_types() {
    let server = Server::start("replay_on_connect = 0", "").await;
    let (mut client, _) = ws(&server.addr(), "types=memory_store&user_id=alice").await;
    interleaved(&server);
    server
        .manager()
        .user("alice")
        .unwrap()
        .add_memory(NewMemory::new("Alice's last memory.", "fact"))
        .unwrap();
    let got = until(&mut client, "Alice's last memory.").await;
    assert_eq!(
        who_what(&got),
        pairs(&[
            ("alice", "Alice likes tea."),
            ("alice", "Alice's last memory.")
        ])
    );
    assert!(got.iter().all(|e| e["type"] == "memory_store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_since_sends_only_the_filtered_events_missed() {
    let server = Server::start("replay_on_connect = 0", "[events]\nreplay_capacity = 8").await;
    let addr = server.addr();
    let epoch = server.manager().bus().epoch();
    let m = server.manager();
    let say = |user: &str, text: &str| {
        let session = format!("{user}-chat");
        m.session(user, &session)
            .unwrap()
            .add_turn(Role::User, text)
            .unwrap();
    };
    let (mut alice, _) = ws(&addr, "user_id=alice").await;
    say("alice", "first");
    let last = next(&mut alice).await["seq"].as_u64().unwrap();
    drop(alice);
    say("bob", "b1");
    say("alice", "second");
    say("bob", "b2");
    say("alice", "third");
    let query = format!("user_id=alice&since={last}&epoch={epoch}");
    let (mut alice, _) = ws(&addr, &query).await;
    say("bob", "b3");
    say("alice", "live");
    let got = until(&mut alice, "live").await;
    let texts: Vec<String> = who_what(&got).into_iter().map(|(_, c)| c).collect();
    assert_eq!(
        texts,
        ["second", "third", "live"],
        "exactly the missed ones, then live"
    );

    // The ring moves past what Alice asked for while only Bob talks: a gap is still reported
    // (nobody knows any more whether those events were Alice's), and no Bob event is sent.
    let seen = got.last().unwrap()["seq"].as_u64().unwrap();
    drop(alice);
    for i in 0..12 {
        say("bob", &format!("bob {i}"));
    }
    let (mut alice, _) = ws(&addr, &format!("user_id=alice&since={seen}&epoch={epoch}")).await;
    let gap = next(&mut alice).await;
    assert_eq!(gap["type"], "replay_gap", "{gap}");
    assert_eq!(gap["from"].as_u64(), Some(seen + 1));
    let latest = m.bus().latest_seq();
    assert_eq!(
        gap["to"].as_u64(),
        Some(latest - 8),
        "everything older than the ring"
    );
    say("alice", "back");
    assert_eq!(next(&mut alice).await["content"], "back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_changes_the_scope_filter_live_and_replay_ops_obey_it() {
    let server = Server::start("replay_on_connect = 0", "").await;
    let m = server.manager();
    let (mut client, _) = ws(&server.addr(), "user_id=alice").await;
    let say = |user: &str, session: &str, text: &str| {
        m.session(user, session)
            .unwrap()
            .add_turn(Role::User, text)
            .unwrap();
    };

    send(
        &mut client,
        r#"{"op":"subscribe","types":[],"user_id":"bob"}"#,
    )
    .await;
    round_trip(&mut client).await;
    say("alice", "s1", "alice 1");
    say("bob", "b1", "bob 1");
    assert_eq!(next(&mut client).await["content"], "bob 1");

    // A bad id is refused with an error frame naming it, and the filter stays Bob's.
    for (bad, field) in [
        (
            r#"{"op":"subscribe","types":[],"user_id":"not ok"}"#,
            "`user_id`",
        ),
        (
            r#"{"op":"subscribe","types":[],"user_id":"alice","session_id":""}"#,
            "`session_id`",
        ),
        (r#"{"op":"subscribe","types":[],"agent_id":7}"#, "subscribe"),
    ] {
        send(&mut client, bad).await;
        let reply = next(&mut client).await;
        assert_eq!(reply["type"], "error", "{bad}: {reply}");
        assert!(reply["error"].as_str().unwrap().contains(field), "{reply}");
    }
    say("alice", "s1", "alice 2");
    say("bob", "b1", "bob 2");
    assert_eq!(next(&mut client).await["content"], "bob 2");

    // Narrow to a session of any user, with a type; then no ids at all: everything again.
    send(
        &mut client,
        r#"{"op":"subscribe","types":["conversation_turn"],"session_id":"s2"}"#,
    )
    .await;
    round_trip(&mut client).await;
    say("bob", "b1", "bob 3");
    say("alice", "s2", "alice in s2");
    assert_eq!(next(&mut client).await["content"], "alice in s2");
    send(&mut client, r#"{"op":"subscribe","types":[]}"#).await;
    round_trip(&mut client).await;
    say("bob", "b1", "bob 4");
    assert_eq!(next(&mut client).await["content"], "bob 4");

    // Replay ops send only what the connection's scope filter wants.
    send(
        &mut client,
        r#"{"op":"subscribe","types":[],"user_id":"bob"}"#,
    )
    .await;
    send(&mut client, r#"{"op":"replay","since":0}"#).await;
    let got = until(&mut client, "bob 4").await;
    let texts: Vec<String> = who_what(&got).into_iter().map(|(_, c)| c).collect();
    assert_eq!(texts, ["bob 1", "bob 2", "bob 3", "bob 4"]);
    send(
        &mut client,
        r#"{"op":"replay","types":["conversation_turn"],"limit":1}"#,
    )
    .await;
    assert_eq!(next(&mut client).await["content"], "bob 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scope_ids_are_refused_before_the_upgrade_naming_the_field() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    for (query, field) in [
        ("user_id=", "user_id"),
        ("user_id=a%20b", "user_id"),
        ("agent_id=x%2Fy", "agent_id"),
        (&*format!("session_id={}", "s".repeat(129)), "session_id"),
        ("user_id=alice&session_id=%C3%A9t%C3%A9", "session_id"),
    ] {
        assert_eq!(try_ws(&addr, query, &[]).await.err(), Some(422), "{query}");
        let reply = http(&addr, "GET", &format!("/ws?{query}"), &[], None).await;
        assert_eq!(reply.status, 422, "{query}");
        assert_eq!(reply.json["error"]["code"], "invalid_field");
        assert_eq!(reply.json["error"]["field"], field, "{query}");
        let message = reply.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{field}`")), "{message}");
    }
    // The largest valid ids are accepted.
    let long = "u".repeat(128);
    assert!(
        try_ws(&addr, &format!("user_id={long}&agent_id=a.b_c:d@e-f"), &[])
            .await
            .is_ok()
    );
}
