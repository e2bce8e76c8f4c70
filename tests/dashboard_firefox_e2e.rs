//! The dashboard's main end-to-end flow (the one `dashboard_e2e` runs in Chromium) in Firefox ESR,
//! driven over WebDriver BiDi by puppeteer-core: this test starts a real server on an ephemeral
//! port and runs `tests/firefox/dashboard.cjs` against it, which performs the steps and
//! assertions and exits non-zero on a failure. Skips with a notice when `firefox-esr`, `node` or
//! the puppeteer-core module (`.ci/firefox.sh` installs it in `~/.cache/coda/node-firefox`, or
//! `CODA_NODE_FIREFOX_DIR`) is missing, unless `CI=true`. A second run covers the token dialog.

#![allow(clippy::unwrap_used)]

mod browser;
mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use browser::{in_path, BROWSER};
use common::Server;

/// How long the whole Firefox run may take: the launch plus the scenario's waits.
const RUN_DEADLINE: Duration = Duration::from_secs(180);

/// Where `.ci/firefox.sh` installs puppeteer-core.
fn node_modules() -> PathBuf {
    std::env::var_os("CODA_NODE_FIREFOX_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/coda/node-firefox"))
        })
        .unwrap_or_default()
        .join("node_modules")
}

/// Firefox, node and the node_modules holding puppeteer-core, or None (after a notice) when one
/// is missing outside CI.
fn tools() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let firefox = in_path(&["firefox-esr"]);
    let node = in_path(&["node", "nodejs"]);
    let modules = node_modules();
    let puppeteer = modules.join("puppeteer-core/package.json").is_file();
    match (firefox, node) {
        (Some(f), Some(n)) if puppeteer => return Some((f, n, modules)),
        _ => {}
    }
    let what = "firefox-esr, node and puppeteer-core are not all installed (source .ci/firefox.sh)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {what}");
    }
    eprintln!("NOTICE: skipping the Firefox dashboard test: {what}");
    None
}

/// Runs the script's `scenario` in a headless Firefox against `server`; panics with its output
/// when it fails or overruns [`RUN_DEADLINE`]. Returns its report line.
async fn run_in_firefox(server: &Server, scenario: &str, screenshot: &Path) -> String {
    let (firefox, node, modules) = tools().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/firefox/dashboard.cjs");
    let started = Instant::now();
    let child = tokio::process::Command::new(node)
        .arg(script)
        .arg(scenario)
        .env("NODE_PATH", &modules)
        .env("CODA_URL", format!("http://{}", server.addr()))
        .env("CODA_FIREFOX", &firefox)
        .env("CODA_PROFILE", profile.path())
        .env("CODA_SCREENSHOT", screenshot)
        .env("MOZ_CRASHREPORTER_DISABLE", "1")
        .env("PUPPETEER_SKIP_DOWNLOAD", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(RUN_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the Firefox run `{scenario}` took over {RUN_DEADLINE:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Firefox dashboard run `{scenario}` failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let report = format!("ok {scenario}: ");
    assert!(stdout.contains(&report), "{stdout}\n{stderr}");
    eprintln!("firefox: {} in {:?}", stdout.trim(), started.elapsed());
    stdout.trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_firefox_shows_live_memory_conversation_search_and_snapshots() {
    if tools().is_none() {
        return;
    }
    let _one = BROWSER.lock().await;
    let server = Server::start("", "").await;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-firefox.png");
    let _ = std::fs::remove_file(&screenshot);
    run_in_firefox(&server, "main", &screenshot).await;
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    eprintln!("firefox screenshot: {}", screenshot.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_firefox_asks_for_a_token_and_shows_a_refused_one() {
    if tools().is_none() {
        return;
    }
    let _one = BROWSER.lock().await;
    let server = Server::start("", "[server]\ntokens = [\"s3cret\"]").await;
    let unused = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-firefox-token.png");
    run_in_firefox(&server, "token", &unused).await;
}
