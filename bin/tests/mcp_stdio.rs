//! `coda mcp`: MCP over stdio (SPEC §11), the real binary.
//! - Raw JSON-RPC, no SDK needed: stdout carries only JSON-RPC even with debug logs on,
//!   a bad argument is a tool error naming the field, closing stdin exits cleanly and the log
//!   sink has the tool's event; bad command lines are refused naming the flag.
//! - The official MCP Python SDK's stdio client (`tests/mcp/stdio_client.py`) launching it in
//!   both modes, local and proxied to a `coda serve`: every tool, bad arguments, expiry, a
//!   missing and a wrong token, tenants. Skipped with a notice without the SDK unless CI=true.

#![allow(clippy::unwrap_used)]

mod mcp_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mcp_support::{coda, config, events, run_ok, script, wait, Served};
use serde_json::{json, Value};

/// How long one exchange, or one client script, may take.
const DEADLINE: Duration = Duration::from_secs(90);

/// The event types the client's flow publishes for alice, as the `/mcp` test expects.
const ALICE_EVENTS: [&str; 5] = [
    "memory_store",
    "memory_update",
    "memory_delete",
    "conversation_turn",
    "memory_snapshot",
];

#[test]
fn stdout_is_only_json_rpc_and_closing_stdin_flushes_the_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let mut child = Command::new(coda())
        .args(["mcp", "--config"])
        .arg(&config)
        // Debug logs must all go to stderr.
        .env("CODA_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let call = |id: u64, name: &str, arguments: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": name, "arguments": arguments}})
    };
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        call(
            3,
            "add_memory",
            json!({"content": "Zoe plays the oboe", "user_id": "zoe"}),
        ),
        call(
            4,
            "add_memory",
            json!({"content": "x", "importance": "high"}),
        ),
        call(
            5,
            "update_memory",
            json!({"id": "00000000-0000-4000-8000-000000000000", "expires_at": "soon"}),
        ),
    ];
    for message in &messages {
        writeln!(stdin, "{message}").unwrap();
    }
    stdin.flush().unwrap();

    let started = Instant::now();
    let mut answers = HashMap::new();
    while answers.len() < 5 {
        let left = DEADLINE.saturating_sub(started.elapsed());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("answers so far: {answers:?}"));
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        if let Some(id) = message["id"].as_u64() {
            answers.insert(id, message);
        }
    }
    assert_eq!(answers[&1]["result"]["serverInfo"]["name"], "coda");
    let tools = answers[&2]["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 11, "{tools:?}");
    let stored = &answers[&3]["result"];
    assert_eq!(stored["isError"], false, "{stored}");
    let memory: Value =
        serde_json::from_str(stored["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(memory["user_id"], "zoe", "{memory}");
    for (id, field) in [(4, "importance"), (5, "expires_at")] {
        let refused = &answers[&id]["result"];
        assert_eq!(refused["isError"], true, "{refused}");
        let error: Value =
            serde_json::from_str(refused["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(error["error"]["field"], field, "{error}");
    }

    // The client closes stdin: the process ends by itself, successfully, sinks flushed.
    drop(stdin);
    let output = wait(child, DEADLINE, "coda mcp after stdin closed");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("DEBUG"), "debug logs belong on stderr: {err}");
    reader.join().unwrap();
    let mut lines = rx.try_iter();
    assert!(lines.next().is_none(), "nothing after the answers");
    let events = events(dir.path());
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "memory_store" && e["memory_id"] == memory["id"]),
        "{events:?}"
    );
}

#[test]
fn bad_command_lines_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let config = config.to_str().unwrap();
    for (args, flag) in [
        (vec!["mcp", "--token", "t"], "--token"),
        (
            vec!["mcp", "--config", config, "--tenant", "nobody"],
            "--tenant",
        ),
        (vec!["mcp", "--url", "127.0.0.1:7700"], "--url"),
    ] {
        let child = Command::new(coda())
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = wait(child, DEADLINE, "coda mcp with a bad command line");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

/// Event types the log sink in `dir` wrote for alice.
fn alice_events(dir: &std::path::Path) -> Vec<String> {
    events(dir)
        .iter()
        .filter(|e| e["user_id"] == "alice")
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn python_sdk_drives_every_tool_over_stdio_in_one_process() {
    let Some(python) = mcp_support::mcp_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let out = run_ok(
        Command::new(python)
            .arg(script("stdio_client.py"))
            .args([coda(), "local"])
            .arg(&config),
        DEADLINE,
        "stdio_client.py local",
    );
    assert!(out.contains("OK: 11 tools over stdio (local)"), "{out}");
    // The store was this process's own: the events went to its configured log sink.
    let types = alice_events(dir.path());
    for expected in ALICE_EVENTS {
        assert!(types.iter().any(|t| t == expected), "{expected}: {types:?}");
    }
}

#[test]
fn python_sdk_drives_every_tool_over_stdio_through_a_server() {
    let Some(python) = mcp_support::mcp_python() else {
        return;
    };
    let server = Served::start(
        "tokens = [\"admin-token\"]\n\
         [[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-token\"]\n",
    );
    let url = format!("http://{}", server.addr);
    let out = run_ok(
        Command::new(python)
            .arg(script("stdio_client.py"))
            .args([coda(), "proxy", &url, "admin-token"])
            .env_remove("CODA_TOKEN"),
        DEADLINE,
        "stdio_client.py proxy",
    );
    assert!(out.contains("OK: 11 tools over stdio (proxy)"), "{out}");
    // The calls reached the server: its own log sink has the events, flushed at its stop.
    let dir = server.stop();
    let types = alice_events(dir.path());
    for expected in ALICE_EVENTS {
        assert!(types.iter().any(|t| t == expected), "{expected}: {types:?}");
    }
}
