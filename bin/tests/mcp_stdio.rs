//! `coda mcp`: MCP over stdio (SPEC §11), the real binary.
//! - Raw JSON-RPC, no SDK needed: stdout carries only JSON-RPC even with debug logs on,
//!   a bad argument is a tool error naming the field, closing stdin (or SIGTERM) exits cleanly
//!   and the log sink has the tool's event, `--tenant` picks the tenant; bad command lines are
//!   refused naming the flag.
//! - The official MCP Python SDK's stdio client (`tests/mcp/stdio_client.py`) launching it in
//!   both modes, local and proxied to a `coda serve`: every tool, bad arguments, expiry, a
//!   missing and a wrong token, tenants. Skipped with a notice without the SDK unless CI=true.

#![allow(clippy::unwrap_used)]

mod mcp_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
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

/// `coda mcp` spoken to in raw JSON-RPC lines: what the SDKs do, without them.
struct Raw {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
}

impl Raw {
    /// Starts `coda mcp ARGS` with `CODA_LOG` at `log`.
    fn start(args: &[&str], log: &str) -> Raw {
        let mut child = Command::new(coda())
            .args(args)
            .env("CODA_LOG", log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Raw {
            child,
            stdin,
            lines,
            reader,
        }
    }

    /// Sends `initialize` (id 1) and the `initialized` notification, then `messages`.
    fn send(&mut self, messages: &[Value]) {
        let stdin = self.stdin.as_mut().unwrap();
        let hello = [
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"}}}),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        ];
        for message in hello.iter().chain(messages) {
            writeln!(stdin, "{message}").unwrap();
        }
        stdin.flush().unwrap();
    }

    /// Reads stdout until `count` answers (by id) arrived; every line must be JSON-RPC.
    fn answers(&self, count: usize) -> HashMap<u64, Value> {
        let started = Instant::now();
        let mut answers = HashMap::new();
        while answers.len() < count {
            let left = DEADLINE.saturating_sub(started.elapsed());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("answers so far: {answers:?}"));
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"));
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
            if let Some(id) = message["id"].as_u64() {
                answers.insert(id, message);
            }
        }
        answers
    }

    /// Waits for the process to exit, which must be a success; its stderr. Nothing may
    /// follow the answers on stdout.
    fn finish(mut self) -> String {
        drop(self.stdin.take());
        let output = wait(self.child, DEADLINE, "coda mcp exiting");
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{err}");
        self.reader.join().unwrap();
        assert!(
            self.lines.try_iter().next().is_none(),
            "nothing after the answers"
        );
        err
    }
}

/// A `tools/call` request.
fn call(id: u64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": arguments}})
}

/// A tool result's text as JSON.
fn text(result: &Value) -> Value {
    serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap()
}

#[test]
fn stdout_is_only_json_rpc_and_closing_stdin_flushes_the_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    // Debug logs must all go to stderr.
    let mut raw = Raw::start(&["mcp", "--config", config.to_str().unwrap()], "debug");
    raw.send(&[
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
    ]);
    let answers = raw.answers(5);
    assert_eq!(answers[&1]["result"]["serverInfo"]["name"], "coda");
    let tools = answers[&2]["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 11, "{tools:?}");
    let stored = &answers[&3]["result"];
    assert_eq!(stored["isError"], false, "{stored}");
    let memory = text(stored);
    assert_eq!(memory["user_id"], "zoe", "{memory}");
    for (id, field) in [(4, "importance"), (5, "expires_at")] {
        let refused = &answers[&id]["result"];
        assert_eq!(refused["isError"], true, "{refused}");
        assert_eq!(text(refused)["error"]["field"], field, "{refused}");
    }

    // The client closes stdin: the process ends by itself, successfully, sinks flushed.
    let err = raw.finish();
    assert!(err.contains("DEBUG"), "debug logs belong on stderr: {err}");
    let events = events(dir.path());
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "memory_store" && e["memory_id"] == memory["id"]),
        "{events:?}"
    );
}

#[test]
fn local_mode_works_on_the_given_tenant_and_sigterm_stops_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "[server]\ntokens = [\"admin\"]\n[[server.tenants]]\nid = \"acme\"\ntokens = [\"t\"]\n",
    );
    let mut raw = Raw::start(
        &[
            "mcp",
            "--config",
            config.to_str().unwrap(),
            "--tenant",
            "acme",
        ],
        "warn",
    );
    raw.send(&[call(2, "add_memory", json!({"content": "acme's memory"}))]);
    let memory = text(&raw.answers(2)[&2]["result"]);
    // stdin stays open: the signal alone ends it, after flushing the sinks.
    let status = Command::new("kill")
        .args(["-TERM", &raw.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    raw.finish();
    let events = events(dir.path());
    let stored = events
        .iter()
        .find(|e| e["memory_id"] == memory["id"])
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(stored["tenant"], "acme", "{stored}");
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
