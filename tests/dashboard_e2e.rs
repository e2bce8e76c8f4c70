//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! against a real server on an ephemeral port. Skips with a notice when Chromium or
//! chromedriver is missing, unless `CI=true`.
//!
//! `CODA_UPDATE_SCREENSHOT=1 cargo test --test dashboard_e2e` also writes the README's
//! screenshot, `docs/dashboard.png`; otherwise it goes to the target directory.

#![allow(clippy::unwrap_used)]

mod browser;
mod common;

use browser::{
    browser_binaries, click, live, post, save_screenshot, text, wait_for, wait_text, Driver,
    BROWSER, JSON,
};
use common::{http, Server};
use fantoccini::Locator;
use serde_json::json;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_live_memory_conversation_search_and_snapshots() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let _one = BROWSER.lock().await;
    let server = Server::start("", "").await;
    let addr = server.addr();
    let api = |p: &str| format!("/api/v1{p}");

    // Something to show on load: a turn and a memory from before the page opened.
    post(
        &addr,
        &api("/turns"),
        json!({"role": "system", "content": "You are Coda, a helpful voice assistant."}),
    )
    .await;
    post(&addr, &api("/memories"), json!({"content": "The user's name is Alice.", "memory_type": "fact", "importance": 0.9, "metadata": {"topics": ["name"]}})).await;

    let driver = Driver::spawn(chromium, &driver);
    let client = driver.session().await;
    client.goto(&format!("http://{addr}/")).await.unwrap();
    live(&client).await;
    wait_text(&client, "#memory-list", "The user's name is Alice.").await;
    wait_text(&client, "#turns", "You are Coda").await;

    // Live: a turn and a memory added through the API appear without reloading the page.
    post(
        &addr,
        &api("/turns"),
        json!({"role": "user", "content": "Hi! I live in Lyon and I love green tea."}),
    )
    .await;
    post(
        &addr,
        &api("/turns"),
        json!({"role": "assistant", "content": "Nice to meet you, Alice. Green tea it is."}),
    )
    .await;
    wait_text(&client, "#turns", "I love green tea").await;
    post(&addr, &api("/memories"), json!({"content": "The user likes green tea.", "memory_type": "preference", "importance": 0.8, "metadata": {"topics": ["tea", "drinks"]}})).await;
    wait_text(&client, "#memory-list", "The user likes green tea.").await;
    assert_eq!(
        client
            .execute(
                "return document.querySelectorAll('#memory-list li').length;",
                vec![]
            )
            .await
            .unwrap(),
        json!(2),
        "each memory shown once"
    );

    // Search through the page: results carry their similarity; the assistant's retrieval
    // shows up live with its query.
    let q = client.find(Locator::Css("#search-q")).await.unwrap();
    q.send_keys("what does the user drink").await.unwrap();
    click(&client, "#search-go").await;
    wait_text(&client, "#search-results", "The user likes green tea.").await;
    assert!(text(&client, "#search-results")
        .await
        .contains("similarity"));
    wait_text(&client, "#retrievals", "what does the user drink").await;
    post(
        &addr,
        &api("/memories/search"),
        json!({"query": "where does the user live", "limit": 2}),
    )
    .await;
    wait_text(&client, "#retrievals", "where does the user live").await;

    // Resume: drop the socket; the page reconnects with since/epoch, shows what happened
    // meanwhile and nothing twice.
    client
        .execute("window.coda.ws.close(); return true;", vec![])
        .await
        .unwrap();
    post(
        &addr,
        &api("/turns"),
        json!({"role": "user", "content": "I prefer short answers."}),
    )
    .await;
    wait_text(&client, "#system-rows", "resumed after seq").await;
    wait_text(&client, "#turns", "I prefer short answers.").await;
    live(&client).await;
    assert_eq!(
        client
            .execute(
                "return document.querySelectorAll('#turns li').length;",
                vec![]
            )
            .await
            .unwrap(),
        json!(4),
        "every turn exactly once after resuming"
    );

    // Snapshots: create one from the page, change memory, diff it against now side by side.
    click(&client, "#tab-btn-snapshots").await;
    click(&client, "#snap-create").await;
    wait_for(
        &client,
        "the new snapshot in the list",
        "return document.querySelectorAll('#snap-rows tr').length === 1;",
        vec![],
    )
    .await;
    wait_text(&client, "#system-rows", "create snapshot_").await;
    post(&addr, &api("/memories"), json!({"content": "The user lives in Lyon, France.", "memory_type": "fact", "importance": 0.7, "metadata": {"topics": ["location"]}})).await;
    wait_text(&client, "#memory-list", "Lyon, France").await;
    click(&client, "#snap-rows tr [data-action=diff]").await;
    wait_text(
        &client,
        "#diff [data-side=to]",
        "The user lives in Lyon, France.",
    )
    .await;
    let from_side = text(&client, "#diff [data-side=from]").await;
    assert!(!from_side.contains("Lyon, France"), "{from_side}");
    assert!(text(&client, "#diff .diff-summary")
        .await
        .contains("memories +1"));
    save_screenshot(&client, "dashboard-diff.png").await;

    // Apply asks first; cancelling changes nothing, confirming restores the snapshot and the
    // page reloads its views.
    click(&client, "#snap-rows tr [data-action=apply]").await;
    wait_for(
        &client,
        "the confirmation",
        "return document.getElementById('confirm-dialog').open;",
        vec![],
    )
    .await;
    click(&client, "#confirm-cancel").await;
    assert!(text(&client, "#memory-list").await.contains("Lyon, France"));
    click(&client, "#snap-rows tr [data-action=apply]").await;
    wait_for(
        &client,
        "the confirmation",
        "return document.getElementById('confirm-dialog').open;",
        vec![],
    )
    .await;
    click(&client, "#confirm-ok").await;
    wait_for(
        &client,
        "the restored memories",
        "return !document.getElementById('memory-list').textContent.includes('Lyon, France');",
        vec![],
    )
    .await;
    wait_text(&client, "#system-rows", "apply snapshot_").await;

    // A snapshot kept in memory only, then saved from the list; then two snapshots compared.
    click(&client, "#snap-save").await;
    click(&client, "#snap-create").await;
    wait_for(
        &client,
        "an unsaved snapshot in the list",
        "return document.querySelectorAll('#snap-rows tr').length === 2 && \
         !!document.querySelector('#snap-rows [data-action=save]');",
        vec![],
    )
    .await;
    click(&client, "#snap-rows [data-action=save]").await;
    wait_for(
        &client,
        "the snapshot saved",
        "return !document.querySelector('#snap-rows [data-action=save]') && \
         !document.getElementById('snap-rows').textContent.includes('in memory');",
        vec![],
    )
    .await;
    wait_text(&client, "#system-rows", "save snapshot_").await;
    let ids = client
        .execute(
            "return [...document.querySelectorAll('#snap-rows tr')].map(r => r.dataset.id);",
            vec![],
        )
        .await
        .unwrap();
    let (newer, older) = (ids[0].as_str().unwrap(), ids[1].as_str().unwrap());
    client
        .execute(
            "document.getElementById('diff-a').value = arguments[0]; \
             document.getElementById('diff-b').value = arguments[1]; return true;",
            vec![json!(older), json!(newer)],
        )
        .await
        .unwrap();
    click(&client, "#diff-go").await;
    wait_text(&client, "#diff .diff-title", &format!("{older} → {newer}")).await;
    wait_text(&client, "#diff", "No differences.").await;

    // Metrics: this page is a connected client; latency was measured.
    click(&client, "#tab-btn-metrics").await;
    wait_text(&client, "#m-clients", "1").await;
    wait_text(&client, "#legend-latency", "add:").await;

    // The screenshot for the README: the Memory view after some activity.
    post(&addr, &api("/memories"), json!({"content": "The user prefers short answers.", "memory_type": "preference", "importance": 0.7, "metadata": {"topics": ["style"]}})).await;
    post(&addr, &api("/memories"), json!({"content": "Alice is planning a trip to Kyoto in April.", "memory_type": "event", "importance": 0.6, "metadata": {"topics": ["travel", "kyoto"]}})).await;
    post(&addr, &api("/memories"), json!({"content": "The user lives in Lyon, France.", "memory_type": "fact", "importance": 0.7, "metadata": {"topics": ["location"]}})).await;
    post(
        &addr,
        &api("/memories/search"),
        json!({"query": "what does the user drink", "limit": 3}),
    )
    .await;
    click(&client, "#tab-btn-memory").await;
    wait_text(&client, "#memory-list", "Lyon, France").await;
    save_screenshot(&client, "dashboard.png").await;

    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_asks_for_a_token_and_shows_a_refused_one() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let _one = BROWSER.lock().await;
    let server = Server::start("", "[server]\ntokens = [\"s3cret\"]").await;
    let addr = server.addr();
    let driver = Driver::spawn(chromium, &driver);
    let client = driver.session().await;
    client.goto(&format!("http://{addr}/")).await.unwrap();

    wait_for(
        &client,
        "the token dialog",
        "return document.getElementById('token-dialog').open;",
        vec![],
    )
    .await;
    let input = client.find(Locator::Css("#token-input")).await.unwrap();
    input.send_keys("wrong").await.unwrap();
    click(&client, "#token-submit").await;
    wait_text(&client, "#token-error", "refused").await;
    assert!(text(&client, "#conn").await.contains("Token needed"));

    input.clear().await.unwrap();
    input.send_keys("s3cret").await.unwrap();
    click(&client, "#token-submit").await;
    live(&client).await;
    let auth = ("authorization", "Bearer s3cret");
    let r = http(
        &addr,
        "POST",
        "/api/v1/memories",
        &[JSON, auth],
        Some(r#"{"content":"Only for token holders."}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    wait_text(&client, "#memory-list", "Only for token holders.").await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_reloads_when_the_server_restarts_with_a_new_epoch() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let _one = BROWSER.lock().await;
    let first = Server::start("", "").await;
    let addr = first.addr();
    post(
        &addr,
        "/api/v1/memories",
        json!({"content": "From the first server."}),
    )
    .await;
    let driver = Driver::spawn(chromium, &driver);
    let client = driver.session().await;
    client.goto(&format!("http://{addr}/")).await.unwrap();
    live(&client).await;
    wait_text(&client, "#memory-list", "From the first server.").await;

    // A new process on the same address: new epoch, other memories (the memory backend).
    first.handle.shutdown().await.unwrap();
    let snaps = tempfile::tempdir().unwrap();
    let mut config = coda::Config::from_toml_str(&format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[stores.fs]\ndir = \"{}\"\n[[sinks]]\ntype = \"websocket\"",
        snaps.path().display()
    ))
    .unwrap();
    config.server.bind = addr.clone();
    let second = coda_server::start(config).await.unwrap();
    post(
        &addr,
        "/api/v1/memories",
        json!({"content": "From the second server."}),
    )
    .await;
    wait_text(&client, "#memory-list", "From the second server.").await;
    wait_for(
        &client,
        "the first server's memories gone",
        "return !document.getElementById('memory-list').textContent.includes('first server');",
        vec![],
    )
    .await;
    wait_text(&client, "#system-rows", "server restarted").await;
    client.close().await.unwrap();
    second.shutdown().await.unwrap();
}
