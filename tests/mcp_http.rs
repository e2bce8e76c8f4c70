//! MCP over Streamable HTTP at `/mcp` (SPEC §11), driven by the official MCP Python SDK
//! (`tests/mcp/client.py`): initialize, the eleven tools listed with schemas, every tool called,
//! a bad argument as a tool error naming the field, a missing token refused with 401, and a
//! tenant token's memory invisible to the default tenant.
//! Skipped with a notice when the SDK's venv (`.ci/mcp.sh`, `CODA_MCP_PYTHON`) is missing,
//! unless `CI=true`.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::Server;

/// How long the whole client run may take.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

/// The venv interpreter with the `mcp` package, if there is one; panics under CI without it.
fn mcp_python() -> Option<String> {
    let python = std::env::var("CODA_MCP_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/coda/venv-mcp/bin/python")
    });
    let ready = Command::new(&python)
        .args(["-c", "import mcp.client.streamable_http"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let notice = format!("{python} with the MCP Python SDK is needed (source .ci/mcp.sh)");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{notice}");
        eprintln!("skipping the MCP test: {notice}");
        return None;
    }
    Some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_drives_every_tool_over_streamable_http() {
    let Some(python) = mcp_python() else {
        return;
    };
    let server = Server::start(
        "",
        "[server]\ntokens = [\"mcp-token\"]\n\
         [[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-token\"]\n",
    )
    .await;
    let url = format!("http://{}/mcp", server.addr());
    // Watching alice's events live, as the dashboard does.
    let (mut ws, _) = common::ws(&server.addr(), "token=mcp-token&user_id=alice").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/client.py");
    let child = tokio::process::Command::new(python)
        .args([script, &url, "mcp-token", "acme-token"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(CLIENT_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("client.py did not finish within {CLIENT_DEADLINE:?}"))
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "client.py failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("OK: 11 tools") && l.ends_with("-> 401")),
        "{out}"
    );
    // The tool calls published the same events as the HTTP API, in order.
    let mut types = Vec::new();
    while !types.contains(&"memory_delete".to_owned()) {
        for event in common::next_events(&mut ws).await {
            assert_eq!(event["user_id"], "alice", "{event}");
            types.push(event["type"].as_str().unwrap().to_owned());
        }
    }
    for expected in [
        "memory_store",
        "memory_update",
        "conversation_turn",
        "memory_snapshot",
    ] {
        assert!(types.iter().any(|t| t == expected), "{expected}: {types:?}");
    }
    // The tool calls went through the manager like HTTP calls: alice's memory was stored
    // (then deleted) and her session exists.
    let sessions = common::http(
        &server.addr(),
        "GET",
        "/api/v1/sessions?user_id=alice",
        &[("authorization", "Bearer mcp-token")],
        None,
    )
    .await;
    assert_eq!(sessions.status, 200);
    assert_eq!(
        sessions.json["sessions"][0]["session_id"], "s1",
        "{}",
        sessions.json
    );
    server.handle.shutdown().await.unwrap();
}

/// `initialize` as a client's first POST sends it.
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#;

/// Without the Python SDK too: `/mcp` is behind the tokens (401) and a tenant's rate (429), and
/// a valid token gets the SDK's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_is_behind_tokens_and_tenant_rates() {
    let server = Server::start(
        "",
        "[server]\ntokens = [\"mcp-token\"]\n\
         [[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-token\"]\nrate_per_s = 1\n",
    )
    .await;
    let post = |token: Option<&'static str>| {
        let addr = server.addr();
        async move {
            let auth = token.map(|t| format!("Bearer {t}"));
            let mut headers = vec![
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
            ];
            if let Some(auth) = &auth {
                headers.push(("authorization", auth.as_str()));
            }
            common::http(&addr, "POST", "/mcp", &headers, Some(INITIALIZE)).await
        }
    };
    let refused = post(None).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert_eq!(refused.json["error"]["code"], "unauthorized");
    assert_eq!(post(Some("wrong")).await.status, 401);

    let admin = post(Some("mcp-token")).await;
    assert_eq!(admin.status, 200, "{}", admin.text);
    assert_eq!(
        admin.json["result"]["serverInfo"]["name"], "coda",
        "{}",
        admin.text
    );

    // rate_per_s = 1: a burst of 2, then 429 with Retry-After; the admin is never limited.
    let mut limited = None;
    for _ in 0..6 {
        let reply = post(Some("acme-token")).await;
        if reply.status == 429 {
            limited = Some(reply);
            break;
        }
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let limited = limited.expect("a 429 within 6 requests at rate 1/s");
    assert!(
        limited.headers.contains_key("retry-after"),
        "{:?}",
        limited.headers
    );
    assert_eq!(post(Some("mcp-token")).await.status, 200);
    server.handle.shutdown().await.unwrap();
}
