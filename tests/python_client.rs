//! The Python client example (`examples/python/demo.py`) against a real server: it follows
//! `/ws`, drives the HTTP API, reconnects with `since`/`epoch` and checks it saw every event
//! exactly once. Skipped with a notice when `python3` or its `websockets` module is missing,
//! unless `CI=true` (`.ci/run` installs it).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

/// How long the whole demo may take.
const DEMO_DEADLINE: Duration = Duration::from_secs(60);

/// Whether `python3` can import `websockets`; panics under CI when it cannot.
fn python_ready() -> bool {
    let ready = Command::new("python3")
        .args(["-c", "import websockets"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let notice = "python3 with the `websockets` module is needed \
                      (pip install -r examples/python/requirements.txt)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{notice}");
        eprintln!("skipping the Python client test: {notice}");
    }
    ready
}

/// Runs the demo with `args`, killing it at the deadline; returns (success, stdout, stderr).
async fn demo(args: &[&str]) -> (bool, String, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/demo.py");
    let child = tokio::process::Command::new("python3")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let output = tokio::time::timeout(DEMO_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("demo.py did not finish within {DEMO_DEADLINE:?}"))
        .unwrap();
    eprintln!("demo.py took {:?}", started.elapsed());
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_demo_resumes_without_gaps_or_duplicates() {
    if !python_ready() {
        return;
    }
    let server = Server::start("", "[server]\ntokens = [\"py-token\"]").await;
    let url = format!("http://{}", server.addr());

    let (ok, out, err) = demo(&["--url", &url, "--token", "py-token"]).await;
    assert!(ok, "demo.py failed\nstdout:\n{out}\nstderr:\n{err}");
    let summary = out
        .lines()
        .find(|l| l.starts_with("OK: "))
        .unwrap_or_else(|| {
            panic!("no OK line\nstdout:\n{out}\nstderr:\n{err}");
        });
    assert!(
        summary.contains("each exactly once in order across 1 reconnect"),
        "{summary}"
    );
    assert!(out.contains("resumed: "), "{out}");

    // The client reports refusals instead of passing: without the token it must fail.
    let (ok, out, err) = demo(&["--url", &url]).await;
    assert!(
        !ok,
        "demo.py passed without a token\nstdout:\n{out}\nstderr:\n{err}"
    );
}
