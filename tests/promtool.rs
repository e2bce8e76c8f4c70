//! `promtool check metrics` (Debian's `prometheus` package) on what `/metrics` serves after
//! traffic from several tenants, users, sessions and a WebSocket client: the exposition must
//! lint clean. Skipped with a notice when promtool is missing, unless `CI=true`
//! (`.ci/promtool.sh` installs it).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;

use common::{http, Server, DEADLINE};
use tokio::io::AsyncWriteExt;

const JSON: (&str, &str) = ("content-type", "application/json");
const ADMIN: (&str, &str) = ("authorization", "Bearer root-token");

/// Whether `promtool` runs; panics under CI when it does not.
fn promtool_ready() -> bool {
    let ready = std::process::Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let notice = "promtool is needed (apt-get install --no-install-recommends prometheus)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{notice}");
        eprintln!("skipping the promtool test: {notice}");
    }
    ready
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_check_after_traffic() {
    if !promtool_ready() {
        return;
    }
    let server = Server::start(
        "",
        "[server]\ntokens = [\"root-token\"]\n\
         [[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-token\"]\n\
         [[server.tenants]]\nid = \"beta\"\ntokens = [\"beta-token\"]\n",
    )
    .await;
    let addr = server.addr();
    let (mut ws, _) = common::ws(&addr, "token=root-token").await;
    for (token, user) in [
        ("Bearer acme-token", "ann"),
        ("Bearer acme-token", "bob"),
        ("Bearer beta-token", "cy"),
        ("Bearer root-token", "default"),
    ] {
        let auth = ("authorization", token);
        let turn = format!(r#"{{"role":"user","content":"Hi, I'm {user}.","user_id":"{user}"}}"#);
        let path = format!("/api/v1/sessions/s-{user}/turns");
        let r = http(&addr, "POST", &path, &[auth, JSON], Some(&turn)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let path = format!("/api/v1/sessions/s-{user}/persist?user_id={user}");
        assert_eq!(http(&addr, "POST", &path, &[auth], None).await.status, 200);
        let memory = format!(r#"{{"content":"{user} likes tea","user_id":"{user}"}}"#);
        let r = http(
            &addr,
            "POST",
            "/api/v1/memories",
            &[auth, JSON],
            Some(&memory),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let search = format!(r#"{{"query":"tea","user_id":"{user}"}}"#);
        let r = http(
            &addr,
            "POST",
            "/api/v1/memories/search",
            &[auth, JSON],
            Some(&search),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = http(
            &addr,
            "POST",
            "/api/v1/snapshots",
            &[auth, JSON],
            Some("{}"),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // The admin's WebSocket saw the default tenant's events.
    let events = common::next_events(&mut ws).await;
    assert!(!events.is_empty());

    let r = http(&addr, "GET", "/metrics", &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("# TYPE"), "{}", r.text);

    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(r.text.as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("promtool in time")
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && report.trim().is_empty(),
        "promtool check metrics: {report}\n--- metrics:\n{}",
        r.text
    );
}
