//! Driving the dashboard in a real browser: headless Chromium over WebDriver (chromedriver), with
//! helpers that wait on conditions with deadlines. Shared by the dashboard's browser tests; each
//! skips with a notice when Chromium or chromedriver is missing, unless `CI=true`.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::common::http;

pub const JSON: (&str, &str) = ("content-type", "application/json");
/// How long the page may take to show something.
pub const PAGE_DEADLINE: Duration = Duration::from_secs(20);

/// One browser at a time: two headless Chromiums on two shared cores only slow each other.
pub static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn in_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Chromium and chromedriver, or None (after a notice) when they are missing outside CI.
pub fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = in_path(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = in_path(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but chromium and chromedriver are not both installed (apt-get install chromium chromium-driver)")
        }
        _ => {
            eprintln!(
                "NOTICE: skipping the dashboard browser test: chromium and chromedriver are not \
                 both on PATH (Debian: apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

/// A chromedriver process, killed on drop.
pub struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
    chromium: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    pub fn spawn(chromium: PathBuf, driver: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Driver {
            child,
            port,
            profile: tempfile::tempdir().unwrap(),
            chromium,
        }
    }

    /// A new browser session; retries while chromedriver is still starting.
    pub async fn session(&self) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1440,960",
            "--force-device-scale-factor=1",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([format!("--user-data-dir={}", self.profile.path().display())])
        .collect::<Vec<_>>();
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": self.chromium, "args": args}),
        );
        let deadline = Instant::now() + PAGE_DEADLINE;
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{}", self.port))
                .await
            {
                Ok(client) => return client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        }
    }
}

/// Runs `script` (a function body) until it returns something truthy; returns that value.
pub async fn wait_for(client: &Client, what: &str, script: &str, args: Vec<Value>) -> Value {
    let deadline = Instant::now() + PAGE_DEADLINE;
    loop {
        let value = client.execute(script, args.clone()).await.unwrap();
        let truthy = match &value {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            _ => true,
        };
        if truthy {
            return value;
        }
        if Instant::now() > deadline {
            let state = client
                .execute(
                    "return document.getElementById('conn').textContent + ' | ' + \
                     document.getElementById('banner').textContent",
                    vec![],
                )
                .await
                .unwrap_or_default();
            panic!("the page did not show {what} in time (status: {state})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the element `selector` contains `text`.
pub async fn wait_text(client: &Client, selector: &str, text: &str) {
    wait_for(
        client,
        &format!("`{text}` in {selector}"),
        "const el = document.querySelector(arguments[0]); \
         return !!el && el.textContent.includes(arguments[1]);",
        vec![json!(selector), json!(text)],
    )
    .await;
}

pub async fn text(client: &Client, selector: &str) -> String {
    client
        .execute(
            "const el = document.querySelector(arguments[0]); return el ? el.textContent : null;",
            vec![json!(selector)],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Clicks `selector`, finding it again if the page re-rendered it in between.
pub async fn click(client: &Client, selector: &str) {
    let deadline = Instant::now() + PAGE_DEADLINE;
    loop {
        let clicked = match client.find(Locator::Css(selector)).await {
            Ok(element) => element.click().await,
            Err(e) => Err(e),
        };
        match clicked {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline && e.to_string().contains("stale element") => {}
            Err(e) => panic!("clicking {selector} failed: {e}"),
        }
    }
}

/// Saves a screenshot as `name`: in docs/ with `CODA_UPDATE_SCREENSHOT` set (the README's
/// pictures), else in the target directory.
pub async fn save_screenshot(client: &Client, name: &str) {
    wait_for(
        client,
        "finished animations",
        "return document.getAnimations().every(a => a.playState !== 'running');",
        vec![],
    )
    .await;
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let out = if std::env::var_os("CODA_UPDATE_SCREENSHOT").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(name)
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
    };
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, &png).unwrap();
    eprintln!("dashboard screenshot: {}", out.display());
}

pub async fn post(addr: &str, path: &str, body: Value) -> Value {
    let r = http(addr, "POST", path, &[JSON], Some(&body.to_string())).await;
    assert!(r.status < 300, "{path}: {} {}", r.status, r.text);
    r.json
}

pub async fn live(client: &Client) {
    wait_for(
        client,
        "a live connection",
        "return document.getElementById('conn').dataset.state === 'live';",
        vec![],
    )
    .await;
}

/// Chooses `value` in the `<select>` `#id` as a user would (a `change` event), once it offers it.
pub async fn pick(client: &Client, id: &str, value: &str) {
    wait_for(
        client,
        &format!("`{value}` offered in #{id}"),
        "const s = document.getElementById(arguments[0]); \
         if (![...s.options].some(o => o.value === arguments[1])) return false; \
         if (s.value !== arguments[1]) { s.value = arguments[1]; \
           s.dispatchEvent(new Event('change')); } \
         return true;",
        vec![json!(id), json!(value)],
    )
    .await;
}

/// How many elements match `selector` now.
pub async fn count(client: &Client, selector: &str) -> u64 {
    client
        .execute(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(selector)],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap_or_default()
}
