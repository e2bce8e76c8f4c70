//! The Python package `clients/python` (`coda-memory`) against a real server: it is installed
//! with `pip install --no-index` into a fresh venv in a temp dir (so its in-tree build backend
//! must work offline), then its unittest suite runs with `CODA_URL`/`CODA_TOKEN` pointing at
//! the server, and so does the Python chat loop example (`examples/python/chat_loop.py`) with
//! the installed package. Skipped with a notice when `python3`, its `venv` module or
//! `websockets` is missing, unless `CI=true` (`.ci/run` installs `websockets`).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

/// How long the install and the whole suite may each take.
const DEADLINE: Duration = Duration::from_secs(120);

/// The package's source tree.
fn package_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/clients/python"))
}

/// Whether `python3` has `venv` and `websockets`; panics under CI when it has not.
fn python_ready() -> bool {
    let ready = Command::new("python3")
        .args(["-c", "import venv, ensurepip, websockets"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let notice = "python3 with the `venv` module and `websockets` is needed \
                      (pip install -r examples/python/requirements.txt)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{notice}");
        eprintln!("skipping the Python package test: {notice}");
    }
    ready
}

/// Runs `program args` in `dir` with `env`, killed at the deadline; panics unless it succeeds.
async fn run(
    what: &str,
    program: &Path,
    args: &[&str],
    dir: &Path,
    env: &[(&str, &str)],
) -> String {
    let started = Instant::now();
    let child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .env("PIP_NO_INDEX", "1")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        // Leave no __pycache__ in the source tree the tests are read from.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {DEADLINE:?}"))
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{what} failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    eprintln!("{what} took {:?}", started.elapsed());
    out + &err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_package_installs_offline_and_passes_its_tests_against_a_server() {
    if !python_ready() {
        return;
    }
    let venv = tempfile::tempdir().unwrap();
    // The venv sees the system's `websockets` (the one dependency), so no index is needed.
    run(
        "python3 -m venv",
        Path::new("python3"),
        &[
            "-m",
            "venv",
            "--system-site-packages",
            venv.path().to_str().unwrap(),
        ],
        venv.path(),
        &[],
    )
    .await;
    let python = venv.path().join("bin").join("python");
    let package = package_dir().to_str().unwrap();
    let log = run(
        "pip install --no-index",
        &python,
        &[
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-cache-dir",
            package,
        ],
        venv.path(),
        &[],
    )
    .await;
    assert!(
        log.contains("Successfully installed coda-memory-0.1.0"),
        "{log}"
    );

    // An admin token, and tenant `acme` for the X-Coda-Tenant tests.
    let server = Server::start(
        "",
        "[server]\ntokens = [\"py-token\"]\n\
         [[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-token\"]\n",
    )
    .await;
    let url = format!("http://{}", server.addr());
    // Run from the temp dir, not the source tree, so the installed package is what is tested.
    let tests = package_dir().join("tests");
    let log = run(
        "the package's unittest suite",
        &python,
        &[
            "-m",
            "unittest",
            "discover",
            "-v",
            "-s",
            tests.to_str().unwrap(),
            "-t",
            tests.to_str().unwrap(),
        ],
        venv.path(),
        &[
            ("CODA_URL", &url),
            ("CODA_TOKEN", "py-token"),
            ("CODA_TENANT", "acme"),
        ],
    )
    .await;
    let ran = log.lines().find(|l| l.starts_with("Ran ")).unwrap_or("");
    eprintln!("{ran}");
    assert!(!log.contains("skipped"), "a test skipped:\n{log}");
    assert!(log.contains("\nOK"), "{log}");
    // The installed copy, not the source tree, was imported.
    let check = run(
        "import check",
        &python,
        &["-c", "import coda_memory; print(coda_memory.__file__)"],
        venv.path(),
        &[],
    )
    .await;
    assert!(check.contains("site-packages"), "{check}");

    // The chat loop example, on the installed package: two sessions of one user, recalled
    // across them, the newer fact superseding the older.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/chat_loop.py");
    let chat = run(
        "examples/python/chat_loop.py",
        &python,
        &[
            example,
            "--url",
            &url,
            "--token",
            "py-token",
            "--user",
            "chat-loop-alice",
        ],
        venv.path(),
        &[],
    )
    .await;
    assert!(
        chat.contains(
            "coda: You said: Where do I live again? (I remember: The user lives in Paris.)"
        ),
        "{chat}"
    );
    assert!(
        chat.contains("-- what Coda believes now: The user lives in Berlin."),
        "{chat}"
    );
    assert!(chat.contains("OK: recalled across sessions"), "{chat}");
}
