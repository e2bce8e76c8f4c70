//! The dashboard's user and session picker in a real browser (SPEC §8): every view shows the
//! chosen user and session only, the live stream carries only that user's events, and the
//! address keeps the choice. Skips with a notice when Chromium or chromedriver is missing,
//! unless `CI=true`.

#![allow(clippy::unwrap_used)]

mod browser;
mod common;

use browser::{
    browser_binaries, click, count, live, pick, post, text, wait_for, wait_text, Driver, BROWSER,
};
use common::Server;
use fantoccini::Locator;
use serde_json::{json, Value};

/// `POST /api/v1/sessions/{sid}/turns` for `user`.
async fn say(addr: &str, user: &str, session: &str, content: &str) {
    post(
        addr,
        &format!("/api/v1/sessions/{session}/turns"),
        json!({"role": "user", "content": content, "user_id": user}),
    )
    .await;
}

async fn remember(addr: &str, user: &str, content: &str) {
    post(
        addr,
        "/api/v1/memories",
        json!({"content": content, "memory_type": "preference", "user_id": user}),
    )
    .await;
}

/// What the page says it has received since its scope last changed, by user.
async fn received_from(client: &fantoccini::Client) -> Vec<String> {
    let users = client
        .execute("return Object.keys(window.coda.received).sort();", vec![])
        .await
        .unwrap();
    users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn selected(client: &fantoccini::Client) -> (String, String) {
    let value = client
        .execute(
            "return [document.getElementById('scope-user').value, \
             document.getElementById('scope-session').value];",
            vec![],
        )
        .await
        .unwrap();
    let get = |i: usize| value[i].as_str().unwrap_or_default().to_owned();
    (get(0), get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_picker_scopes_every_view_and_the_live_stream() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let _one = BROWSER.lock().await;
    let server = Server::start("", "").await;
    let addr = server.addr();

    // Three users: default (as before scopes), Alice with two sessions, Bob with one. Alice's
    // and Bob's memories say nearly the same, so an unscoped search would find both.
    say(&addr, "default", "default", "Default user's turn.").await;
    remember(&addr, "default", "The default user likes maps.").await;
    say(
        &addr,
        "alice",
        "chat-1",
        "Hi, my name is Alice and I live in Paris.",
    )
    .await;
    say(&addr, "alice", "chat-1", "Alice's second turn in chat-1.").await;
    say(&addr, "alice", "chat-2", "Alice in another conversation.").await;
    remember(&addr, "alice", "Alice likes green tea.").await;
    say(&addr, "bob", "bob-1", "Bob says hello.").await;
    remember(&addr, "bob", "Bob likes green tea too.").await;

    let driver = Driver::spawn(chromium, &driver);
    let client = driver.session().await;
    client.goto(&format!("http://{addr}/")).await.unwrap();
    live(&client).await;

    // User default and session default are preselected, and show only their own data.
    wait_text(&client, "#turns", "Default user's turn.").await;
    wait_text(&client, "#memory-list", "The default user likes maps.").await;
    assert_eq!(
        selected(&client).await,
        ("default".into(), "default".into())
    );
    assert!(!text(&client, "#memory-list").await.contains("green tea"));
    wait_text(&client, "#scope-user", "alice").await;
    wait_text(&client, "#scope-user", "bob").await;

    // Alice, chat-1: her turns of that session, her memories only; every view says so.
    pick(&client, "scope-user", "alice").await;
    wait_text(&client, "#scope-session", "chat-2 (1 turn)").await;
    pick(&client, "scope-session", "chat-1").await;
    wait_text(&client, "#turns", "Alice's second turn in chat-1.").await;
    wait_text(&client, "#memory-list", "Alice likes green tea.").await;
    let turns = text(&client, "#turns").await;
    assert!(turns.contains("my name is Alice"), "{turns}");
    assert!(
        !turns.contains("another conversation") && !turns.contains("Default user"),
        "{turns}"
    );
    let memories = text(&client, "#memory-list").await;
    assert!(
        !memories.contains("Bob") && !memories.contains("maps"),
        "{memories}"
    );
    wait_text(&client, "#turn-count", "2 this session").await;
    for part in ["session", "memory"] {
        let label = text(&client, &format!(".scope-label[data-part={part}]")).await;
        assert!(label.contains("user alice"), "{part}: {label}");
    }
    assert!(text(&client, ".scope-label[data-part=session]")
        .await
        .contains("session chat-1"));
    let address = client.current_url().await.unwrap();
    assert!(
        address.as_str().contains("user_id=alice")
            && address.as_str().contains("session_id=chat-1"),
        "{address}"
    );

    // Search finds Alice's memory, never Bob's.
    let q = client.find(Locator::Css("#search-q")).await.unwrap();
    q.send_keys("green tea").await.unwrap();
    click(&client, "#search-go").await;
    wait_text(&client, "#search-results", "Alice likes green tea.").await;
    assert!(!text(&client, "#search-results").await.contains("Bob"));
    wait_text(&client, "#retrievals", "green tea").await;

    // Live: other users' events never reach the page; Alice's other session is not shown.
    say(&addr, "bob", "bob-1", "Bob talks while Alice is shown.").await;
    remember(&addr, "bob", "Bob's live memory.").await;
    say(&addr, "default", "default", "Default talks too.").await;
    say(&addr, "alice", "chat-2", "Alice elsewhere, live.").await;
    remember(&addr, "alice", "Alice's live memory.").await;
    say(&addr, "alice", "chat-1", "Alice's live turn in chat-1.").await;
    wait_text(&client, "#turns", "Alice's live turn in chat-1.").await;
    wait_text(&client, "#memory-list", "Alice's live memory.").await;
    let turns = text(&client, "#turns").await;
    assert!(
        !turns.contains("elsewhere") && !turns.contains("talks"),
        "{turns}"
    );
    assert!(!text(&client, "#memory-list")
        .await
        .contains("Bob's live memory."));
    assert_eq!(
        received_from(&client).await,
        ["alice"],
        "the stream carried only Alice's events"
    );
    wait_text(&client, "#scope-session", "chat-2 (2 turns)").await;

    // Persist from the page: the session's turns become Alice's memories, tagged with chat-1;
    // narrowed to the session, the memory views show only those.
    click(&client, "#tab-btn-conversation").await;
    click(&client, "#persist").await;
    wait_text(&client, "#memory-list", "The user lives in Paris.").await;
    click(&client, "#tab-btn-memory").await;
    click(&client, "#scope-session-only").await;
    wait_for(
        &client,
        "only chat-1's memories",
        "const t = document.getElementById('memory-list').textContent; \
         return t.includes('The user lives in Paris.') && !t.includes('Alice likes green tea.');",
        vec![],
    )
    .await;
    wait_text(&client, ".scope-label[data-part=memory]", "session chat-1").await;

    // Snapshots are per user and session: Alice's is not listed for user default.
    click(&client, "#tab-btn-snapshots").await;
    click(&client, "#snap-create").await;
    wait_for(
        &client,
        "Alice's snapshot",
        "return document.querySelectorAll('#snap-rows tr').length === 1;",
        vec![],
    )
    .await;
    let alices: Value = client
        .execute(
            "return document.querySelector('#snap-rows tr').dataset.id;",
            vec![],
        )
        .await
        .unwrap();
    pick(&client, "scope-user", "default").await;
    wait_text(&client, "#turns", "Default talks too.").await;
    click(&client, "#snap-create").await;
    wait_for(
        &client,
        "default's own snapshot",
        "return document.querySelectorAll('#snap-rows tr').length === 1 && \
         document.querySelector('#snap-rows tr').dataset.id !== arguments[0];",
        vec![alices],
    )
    .await;
    assert_eq!(count(&client, "#snap-rows tr").await, 1);
    assert_eq!(
        selected(&client).await,
        ("default".into(), "default".into())
    );

    // The address keeps the scope: opening it again shows Alice's chat-1.
    client
        .goto(&format!(
            "http://{addr}/?user_id=alice&session_id=chat-1#conversation"
        ))
        .await
        .unwrap();
    live(&client).await;
    wait_text(&client, "#turns", "Alice's live turn in chat-1.").await;
    assert_eq!(selected(&client).await, ("alice".into(), "chat-1".into()));
    client.close().await.unwrap();
}
