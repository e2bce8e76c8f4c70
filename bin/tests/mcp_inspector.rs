//! The MCP Inspector's CLI (npm `@modelcontextprotocol/inspector`, `--cli`), a second official
//! client, lists Coda's eleven tools over Streamable HTTP (`coda serve`'s `/mcp`) and over stdio
//! (launching `coda mcp`). Skipped with a notice without node or the Inspector (`.ci/mcp.sh`,
//! `CODA_MCP_INSPECTOR`) unless CI=true.

#![allow(clippy::unwrap_used)]

mod mcp_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mcp_support::{coda, config, run_ok, Served};

/// How long one Inspector run may take (node starts slowly on a busy machine).
const DEADLINE: Duration = Duration::from_secs(90);

/// The tools SPEC §11 lists.
const TOOLS: [&str; 11] = [
    "add_memory",
    "add_turn",
    "create_snapshot",
    "delete_memory",
    "get_memory",
    "get_turns",
    "list_memories",
    "memory_history",
    "persist",
    "search_memories",
    "update_memory",
];

/// Runs the Inspector's CLI with `args` and the tool names its `tools/list` printed.
fn list_tools(inspector: &Path, args: &[&str]) -> Vec<String> {
    let out = run_ok(
        Command::new("node")
            .arg(inspector)
            .arg("--cli")
            .args(args)
            .args(["--method", "tools/list"]),
        DEADLINE,
        "the MCP Inspector",
    );
    let listed: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("the Inspector printed no JSON ({e}):\n{out}"));
    let mut names: Vec<String> = listed["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {listed}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn inspector_lists_the_tools_over_streamable_http() {
    let Some(inspector) = mcp_support::inspector() else {
        return;
    };
    // The Inspector's CLI sends no token: an open server, on loopback only.
    let server = Served::start("");
    let url = format!("http://{}/mcp", server.addr);
    let names = list_tools(&inspector, &[&url, "--transport", "http"]);
    assert_eq!(names, TOOLS);
    server.stop();
}

#[test]
fn inspector_lists_the_tools_over_stdio() {
    let Some(inspector) = mcp_support::inspector() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    // After `--`, the rest is the server's command line (the Inspector has a `--config` too).
    let names = list_tools(
        &inspector,
        &[
            "--transport",
            "stdio",
            coda(),
            "--",
            "mcp",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(names, TOOLS);
}
