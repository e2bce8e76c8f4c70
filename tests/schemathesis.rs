//! schemathesis (PyPI) against a real server: every check, the examples, coverage, fuzzing
//! and stateful phases, a fixed seed, once without tokens and once with a token (given as
//! `Authorization: Bearer`), each under a deadline; any failure fails the test. Skipped with
//! a notice when schemathesis is missing, unless `CI=true` (`.ci/schemathesis.sh` installs it
//! and sets `CODA_SCHEMATHESIS`).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

// Keep every bundled plugin's registration linked.
use coda as _;

/// How long one schemathesis run may take (both run at once).
const RUN_DEADLINE: Duration = Duration::from_secs(240);
/// Test cases per operation and phase: enough to find what the checks look for, small
/// enough for CI.
const MAX_EXAMPLES: &str = "20";
/// The same cases every run, so a failure reproduces.
const SEED: &str = "20261202";

/// The schemathesis executable: `CODA_SCHEMATHESIS`, the venv `.ci/schemathesis.sh` makes,
/// or `schemathesis` on PATH; `None` (a skip, a failure under CI) when none runs.
fn schemathesis() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("CODA_SCHEMATHESIS") {
        candidates.push(path.into());
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/coda/venv-schemathesis/bin/schemathesis"));
    }
    candidates.push("schemathesis".into());
    let found = candidates.into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        let notice = "schemathesis is needed (source .ci/schemathesis.sh, or pip install \
                      schemathesis and set CODA_SCHEMATHESIS)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{notice}");
        eprintln!("skipping the schemathesis test: {notice}");
    }
    found
}

/// Starts a server over a temp dir on a free loopback port, with `token` if given. Content is
/// limited to 1 KiB so the generated texts stay small; the served document says so.
async fn server(token: Option<&str>) -> (coda_server::ServerHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = token.map_or(String::new(), |t| format!("tokens = [\"{t}\"]"));
    let toml = format!(
        r#"
        [server]
        bind = "127.0.0.1:0"
        backup_dir = "{backups}"
        {tokens}
        [memory]
        backend = "memory"
        max_content_bytes = 1024
        [stores.fs]
        dir = "{snaps}"
        "#,
        snaps = dir.path().join("snapshots").display(),
        backups = dir.path().join("backups").display(),
    );
    let config = coda::Config::from_toml_str(&toml).unwrap();
    (coda_server::start(config).await.unwrap(), dir)
}

/// One run; returns (passed, the output's tail).
async fn run(tool: PathBuf, token: Option<&'static str>) -> (bool, String) {
    let (server, dir) = server(token).await;
    let url = format!("http://{}/api/v1/openapi.json", server.addr());
    let mut command = tokio::process::Command::new(tool);
    command
        .args(["--no-color", "run", &url, "--checks", "all"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args([
            "--seed",
            SEED,
            "--max-examples",
            MAX_EXAMPLES,
            "--workers",
            "1",
        ])
        .args(["--request-timeout", "10"])
        // Its example database and reports stay in the temp dir.
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(token) = token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    let started = Instant::now();
    let output = tokio::time::timeout(RUN_DEADLINE, command.spawn().unwrap().wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis did not finish within {RUN_DEADLINE:?}"))
        .unwrap();
    let label = if token.is_some() {
        "with a token"
    } else {
        "without tokens"
    };
    eprintln!("schemathesis {label} took {:?}", started.elapsed());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    server.shutdown().await.unwrap();
    // The summary tells why; failures come before it, so keep enough to show them.
    let tail: String = text
        .lines()
        .rev()
        .take(300)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    // The last line sums up: "N failures, ... in 12.3s" or "N errors" when anything failed.
    let summary = text
        .lines()
        .rev()
        .find(|l| l.contains(" in "))
        .unwrap_or("");
    let passed = output.status.success()
        && !summary.contains("failure")
        && !summary.contains("error")
        && text.contains(" passed");
    (passed, format!("schemathesis {label}:\n{tail}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_with_or_without_tokens() {
    let Some(tool) = schemathesis() else {
        return;
    };
    let (open, guarded) = tokio::join!(run(tool.clone(), None), run(tool, Some("st-token")));
    assert!(open.0, "{}", open.1);
    assert!(guarded.0, "{}", guarded.1);
}
