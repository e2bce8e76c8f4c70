//! A real `nats-server` (Debian's 2.9) with JetStream on a random loopback port and a temp
//! store, for the cluster tests here and in `bin/tests/` (which include this file by path).

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long starting a server may take.
const START: Duration = Duration::from_secs(10);

/// The `nats-server` to run: `$CODA_NATS_SERVER`, else the one on `PATH`; `None` (the test
/// skips with a notice) when there is none, unless `CI=true`, where that fails.
pub fn nats_binary() -> Option<PathBuf> {
    let named = std::env::var_os("CODA_NATS_SERVER").map(PathBuf::from);
    let found = named.or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("nats-server"))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no nats-server (apt-get install nats-server, or set CODA_NATS_SERVER)"
        );
        eprintln!("skipped: no nats-server on PATH (apt-get install nats-server)");
    }
    found
}

/// A running `nats-server -js`.
pub struct Nats {
    child: Child,
    pub port: u16,
    binary: PathBuf,
    store: PathBuf,
    extra: Vec<String>,
}

impl Nats {
    /// Starts one server with JetStream, its store under `dir`, on a random port.
    pub fn start(binary: &Path, dir: &Path, extra: &[&str]) -> Nats {
        let store = dir.join("nats");
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let (child, port) = spawn(binary, &store, "-1", &extra);
        Nats {
            child,
            port,
            binary: binary.to_owned(),
            store,
            extra,
        }
    }

    /// Starts `n` servers clustered with each other (JetStream replicas need them), each with
    /// its own store under `dir`.
    pub fn cluster(binary: &Path, dir: &Path, n: usize) -> Vec<Nats> {
        // Routes must name ports before the servers start: reserve free ones.
        let ports: Vec<u16> = (0..n)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            })
            .collect();
        (0..n)
            .map(|i| {
                let routes: Vec<String> = (0..n)
                    .filter(|j| *j != i)
                    .map(|j| format!("nats://127.0.0.1:{}", ports[j]))
                    .collect();
                let own = format!("nats://127.0.0.1:{}", ports[i]);
                let name = format!("s{i}");
                let routes = routes.join(",");
                let args = [
                    "--cluster_name",
                    "coda",
                    "-n",
                    name.as_str(),
                    "--cluster",
                    own.as_str(),
                    "--routes",
                    routes.as_str(),
                ];
                Nats::start(binary, &dir.join(&name), &args)
            })
            .collect()
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        let (child, _) = spawn(
            &self.binary,
            &self.store,
            &self.port.to_string(),
            &self.extra,
        );
        self.child = child;
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns `nats-server` and waits for the line naming its client port.
fn spawn(binary: &Path, store: &Path, port: &str, extra: &[String]) -> (Child, u16) {
    let deadline = Instant::now() + START;
    loop {
        let mut child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", port, "-sd"])
            .arg(store)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("Listening for client connections on ") {
                    let addr = &line[at + "Listening for client connections on ".len()..];
                    let port = addr.rsplit(':').next().and_then(|p| p.trim().parse().ok());
                    let _ = tx.send(port);
                }
            }
        });
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Some(port)) => return (child, port),
            _ if Instant::now() < deadline => {
                // The port of a restart may still be held for a moment: try again.
                let _ = child.kill();
                let _ = child.wait();
            }
            _ => panic!("nats-server did not start listening in time"),
        }
    }
}
