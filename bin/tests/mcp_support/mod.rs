//! Helpers for `mcp_stdio.rs` and `mcp_inspector.rs`: a store's configuration in a temp dir,
//! a `coda serve` process on loopback, processes run to a deadline, and the external clients
//! (the MCP Python SDK, the MCP Inspector), skipped with a notice when missing unless CI=true.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to listen.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// The `coda` binary under test.
pub fn coda() -> &'static str {
    env!("CARGO_BIN_EXE_coda")
}

/// A script in the workspace's `tests/mcp/`.
pub fn script(name: &str) -> String {
    format!("{}/../tests/mcp/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Writes `dir/Coda.toml`: an in-memory backend, the hashing embedder, the log sink writing
/// `dir/events.jsonl`, then `extra` (e.g. a `[server]` table).
pub fn config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("Coda.toml");
    std::fs::write(
        &path,
        format!(
            "{extra}\n[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n\
             [stores.fs]\ndir = \"{}\"\n[[sinks]]\ntype = \"log\"\npath = \"{}\"\n",
            dir.join("snapshots").display(),
            dir.join("events.jsonl").display(),
        ),
    )
    .unwrap();
    path
}

/// The events the log sink wrote to `dir/events.jsonl`.
pub fn events(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// `coda serve` on `127.0.0.1:0` in a temp dir; SIGKILLed on drop unless [`Served::stop`]ped.
pub struct Served {
    child: Option<Child>,
    /// `HOST:PORT` it listens on.
    pub addr: String,
    /// Its temp dir (config, events, snapshots).
    pub dir: tempfile::TempDir,
}

impl Served {
    /// Starts `coda serve`; `server` is TOML put right after `[server]` and its `bind`
    /// (keys of `[server]`, then any further tables such as `[[server.tenants]]`).
    pub fn start(server: &str) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let extra = format!("[server]\nbind = \"127.0.0.1:0\"\n{server}");
        let config = config(dir.path(), &extra);
        let mut child = Command::new(coda())
            .args(["serve", "--config"])
            .arg(&config)
            .env("CODA_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(START_DEADLINE)
            .unwrap_or_else(|_| panic!("coda serve did not listen within {START_DEADLINE:?}"));
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Served {
            child: Some(child),
            addr,
            dir,
        }
    }

    /// Stops it with SIGTERM (flushing its sinks), waits for it to exit, and hands back its
    /// temp dir.
    pub fn stop(mut self) -> tempfile::TempDir {
        let child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let output = wait(child, START_DEADLINE, "coda serve stopping");
        assert!(output.status.success(), "{output:?}");
        let empty = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, empty)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for `child` to exit, collecting its output; kills it and panics at the deadline.
pub fn wait(mut child: Child, deadline: Duration, what: &str) -> Output {
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = pipe(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = pipe(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let Ok(status) = rx.recv_timeout(deadline) else {
        let _ = Command::new("kill")
            .args(["-KILL", &id.to_string()])
            .status();
        panic!("{what} did not finish within {deadline:?}");
    };
    Output {
        status: status.unwrap(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs `command` to completion within `deadline`; panics with its output unless it succeeds.
pub fn run_ok(command: &mut Command, deadline: Duration, what: &str) -> String {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let output = wait(child, deadline, what);
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(
        output.status.success(),
        "{what} failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// Says a tool is missing: a panic under CI=true, else a skip notice.
fn missing(what: &str, notice: &str) {
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{notice}");
    eprintln!("skipping the {what} test: {notice}");
}

/// The venv interpreter with the MCP Python SDK (`.ci/mcp.sh`, `CODA_MCP_PYTHON`), if any.
pub fn mcp_python() -> Option<String> {
    let python = std::env::var("CODA_MCP_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/coda/venv-mcp/bin/python")
    });
    let ready = Command::new(&python)
        .args(["-c", "import mcp.client.stdio"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    missing(
        "MCP stdio",
        &format!("{python} with the MCP Python SDK is needed (source .ci/mcp.sh)"),
    );
    None
}

/// The MCP Inspector's CLI script (`.ci/mcp.sh`, `CODA_MCP_INSPECTOR`) and `node`, if both
/// are there.
pub fn inspector() -> Option<PathBuf> {
    let script = std::env::var("CODA_MCP_INSPECTOR").map_or_else(
        |_| {
            let home = std::env::var("HOME").unwrap_or_default();
            PathBuf::from(format!(
                "{home}/.cache/coda/npm-inspector/node_modules/@modelcontextprotocol/inspector/cli/build/cli.js"
            ))
        },
        PathBuf::from,
    );
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if node && script.is_file() {
        return Some(script);
    }
    missing(
        "MCP Inspector",
        &format!(
            "node and the MCP Inspector at {} are needed (source .ci/mcp.sh)",
            script.display()
        ),
    );
    None
}
