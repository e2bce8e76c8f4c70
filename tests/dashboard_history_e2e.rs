//! A memory's history in the dashboard (SPEC §10), in a real browser: slot badges, the "show
//! superseded" toggle, each memory's versions, a live change refreshing the open history, and a
//! clear message for an unknown memory. Skips with a notice when Chromium or chromedriver is
//! missing, unless `CI=true`.

#![allow(clippy::unwrap_used)]

mod browser;
mod common;

use browser::{
    browser_binaries, click, live, post, text, wait_for, wait_text, Driver, BROWSER, JSON,
};
use common::{http, Server};
use fantoccini::Client;
use serde_json::{json, Value};

async fn patch(addr: &str, id: &str, body: Value) {
    let r = http(
        addr,
        "PATCH",
        &format!("/api/v1/memories/{id}"),
        &[JSON],
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "PATCH {id}: {}", r.text);
}

/// Waits until the open history lists exactly `actions`, oldest first.
async fn wait_versions(client: &Client, actions: &[&str]) {
    wait_for(
        client,
        &format!("the versions {actions:?}"),
        "if (!document.getElementById('history-dialog').open) return false; \
         const shown = [...document.querySelectorAll('#history-versions li')] \
           .map(li => li.dataset.action); \
         return JSON.stringify(shown) === JSON.stringify(arguments[0]);",
        vec![json!(actions)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_each_memorys_versions_live() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let _one = BROWSER.lock().await;
    let server = Server::start("", "").await;
    let addr = server.addr();

    // Paris, then Berlin in the same slot (which supersedes Paris), then a change to Berlin.
    let paris = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "The user lives in Paris.", "memory_type": "fact", "slot": "home_city"}),
    )
    .await;
    let paris = paris["id"].as_str().unwrap().to_owned();
    let berlin = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "The user lives in Berlin.", "memory_type": "fact", "slot": "home_city"}),
    )
    .await;
    assert_eq!(berlin["superseded"], json!([paris]), "{berlin}");
    let berlin = berlin["id"].as_str().unwrap().to_owned();
    patch(
        &addr,
        &berlin,
        json!({"content": "The user lives in Berlin, Germany.", "importance": 0.9, "metadata": {"topics": ["home"]}}),
    )
    .await;

    // A memory that expires in an hour.
    let reminder = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "Call the dentist today.", "memory_type": "note", "ttl_s": 3600}),
    )
    .await;
    let reminder = reminder["id"].as_str().unwrap().to_owned();

    // A memory persisted from the conversation names the turn it came from.
    post(
        &addr,
        "/api/v1/sessions/default/turns",
        json!({"role": "user", "content": "Hi, my name is Alice."}),
    )
    .await;
    let persisted = post(&addr, "/api/v1/sessions/default/persist", json!({})).await;
    let name = persisted["memories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["slot"] == "name")
        .unwrap_or_else(|| panic!("a name memory: {persisted}"));
    let name = name["id"].as_str().unwrap().to_owned();

    let driver = Driver::spawn(chromium, &driver);
    let client = driver.session().await;
    client.goto(&format!("http://{addr}/")).await.unwrap();
    live(&client).await;

    // The list shows Berlin with its slot; Paris only once superseded memories are asked for.
    wait_text(&client, "#memory-list", "Berlin, Germany").await;
    let card = |id: &str| format!("#memory-list li[data-id=\"{id}\"]");
    wait_text(
        &client,
        &format!("{} .chip.slot", card(&berlin)),
        "slot home_city",
    )
    .await;
    wait_text(
        &client,
        &format!("{} .chip.expires", card(&reminder)),
        "expires",
    )
    .await;
    assert!(!text(&client, "#memory-list").await.contains("Paris"));
    click(&client, "#show-superseded").await;
    wait_text(
        &client,
        &format!("{} .chip.superseded", card(&paris)),
        "superseded",
    )
    .await;

    // Paris's history: added, then superseded by Berlin (a link to Berlin's history).
    click(&client, &format!("{} button.history", card(&paris))).await;
    wait_versions(&client, &["add", "supersede"]).await;
    let versions = text(&client, "#history-versions").await;
    assert!(versions.contains("The user lives in Paris."), "{versions}");
    assert!(versions.contains("by api") && versions.contains("slot home_city"));
    let link = format!("#history-versions button.link[data-history=\"{berlin}\"]");
    wait_text(&client, &link, &berlin).await;

    // Berlin's history, through that link: added, then updated with the new text and topics.
    click(&client, &link).await;
    wait_versions(&client, &["add", "update"]).await;
    wait_text(&client, "#history-id", &berlin).await;
    let updated = text(&client, "#history-versions li[data-version=\"2\"]").await;
    assert!(
        updated.contains("Berlin, Germany") && updated.contains("#home"),
        "{updated}"
    );
    assert!(updated.contains("importance 0.90"), "{updated}");

    // Live: a change to the memory whose history is open shows without reopening it.
    patch(&addr, &berlin, json!({"importance": 0.4})).await;
    wait_versions(&client, &["add", "update", "update"]).await;

    // Closing returns to the list.
    click(&client, "#history-close").await;
    wait_for(
        &client,
        "the history closed",
        "return !document.getElementById('history-dialog').open;",
        vec![],
    )
    .await;
    assert!(text(&client, "#memory-list")
        .await
        .contains("Berlin, Germany"));

    // The persisted memory: added by persist, from turn 0.
    click(&client, &format!("{} button.history", card(&name))).await;
    wait_versions(&client, &["add"]).await;
    let versions = text(&client, "#history-versions").await;
    assert!(
        versions.contains("by persist") && versions.contains("from turns #0"),
        "{versions}"
    );
    click(&client, "#history-close").await;

    // A memory the server never saw: a clear message, no versions. (No card can name one, so
    // the test adds a history button for it.)
    let unknown = "00000000-0000-4000-8000-000000000000";
    client
        .execute(
            "const b = document.createElement('button'); b.id = 'ghost'; \
             b.textContent = 'ghost'; b.dataset.history = arguments[0]; \
             document.body.append(b);",
            vec![json!(unknown)],
        )
        .await
        .unwrap();
    click(&client, "#ghost").await;
    wait_text(&client, "#history-status", "No history for memory").await;
    assert_eq!(text(&client, "#history-versions").await, "");

    client.close().await.unwrap();
}
