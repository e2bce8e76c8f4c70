//! Crash tests: a child process writes with `sync = "always"` and prints each acknowledged
//! write; the parent SIGKILLs it at a random moment, reopens the log and checks every
//! acknowledged write is there and intact.
//!
//! The child is this same test binary, re-run with `--exact crash_child` and the environment
//! variables below: no extra binary to build, and it works from a clean `cargo test`.
//!
//! Longer run: `CODA_CRASH_CYCLES=1000 cargo test --release -p coda-backend-file --test crash -- --ignored`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coda_backend_file::{FileBackend, FileOptions, SyncPolicy, TEMP_FILE};
use coda_core::MemoryBackend;
use common::{ds, embedder, intact_version, record, DIMS};
use uuid::Uuid;

const CHILD_DIR: &str = "CODA_CRASH_CHILD_DIR";
const CHILD_MODE: &str = "CODA_CRASH_CHILD_MODE";
const WRITERS: usize = 4;

/// `insert`: new memories only. `churn`: a few memories updated over and over, with a
/// compaction threshold so low that kills often land mid-compaction.
fn child_options(dir: &Path, mode: &str) -> FileOptions {
    FileOptions {
        sync: SyncPolicy::Always,
        compact_min_dead: if mode == "churn" { 16 } else { 1000 },
        ..FileOptions::in_dir(dir)
    }
}

/// The child's entry point; does nothing in a normal test run.
#[test]
fn crash_child() {
    let (Ok(dir), Ok(mode)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_MODE)) else {
        return;
    };
    let backend =
        Arc::new(FileBackend::open(child_options(Path::new(&dir), &mode), embedder(DIMS)).unwrap());
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let backend = Arc::clone(&backend);
            let mode = mode.clone();
            std::thread::spawn(move || {
                // Churn keeps the same few ids across runs, so the live set stays small and
                // dead records pile up fast; it continues from the versions already stored.
                let ids: Vec<Uuid> = (0..8)
                    .map(|k| match mode.as_str() {
                        "churn" => Uuid::from_u128((writer * 100 + k + 1) as u128),
                        _ => Uuid::new_v4(),
                    })
                    .collect();
                let mut versions = vec![0u64; ids.len()];
                for (id, version) in ids.iter().zip(&mut versions) {
                    match backend.get(&ds(), *id).unwrap() {
                        Some(stored) => *version = intact_version(&stored).unwrap(),
                        None => backend.insert(&ds(), record(*id, 0)).unwrap(),
                    }
                    println!("ACK {id} {version}");
                }
                loop {
                    if mode == "churn" {
                        let i = fastrand::usize(..ids.len());
                        versions[i] += 1;
                        backend.update(&ds(), record(ids[i], versions[i])).unwrap();
                        println!("ACK {} {}", ids[i], versions[i]);
                    } else {
                        let id = Uuid::new_v4();
                        backend.insert(&ds(), record(id, 0)).unwrap();
                        println!("ACK {id} 0");
                    }
                }
            })
        })
        .collect();
    for w in writers {
        let _ = w.join();
    }
}

/// Kills the child if the parent test fails, so no writer outlives it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one child until it has acknowledged a random number of writes, then SIGKILLs it;
/// returns every acknowledged `(id, version)`.
fn run_and_kill(dir: &Path, mode: &str) -> Vec<(Uuid, u64)> {
    let stderr_path = dir.with_extension("stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir)
            .env(CHILD_MODE, mode)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        // Only whole lines count: a line cut off by the kill was never fully acknowledged.
        while stdout.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
            if let Some(ack) = parse_ack(&line) {
                if tx.send(ack).is_err() {
                    break;
                }
            }
            line.clear();
        }
    });
    let target = fastrand::usize(..150);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acks = Vec::new();
    while acks.len() < target {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(ack) => acks.push(ack),
            Err(e) => panic!(
                "child stopped acknowledging after {} writes ({e}); its stderr:\n{}",
                acks.len(),
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            ),
        }
    }
    // A random extra moment, so the kill does not always follow an acknowledgement.
    std::thread::sleep(Duration::from_micros(fastrand::u64(..2000)));
    drop(child);
    acks.extend(rx.iter());
    reader.join().unwrap();
    acks
}

fn parse_ack(line: &str) -> Option<(Uuid, u64)> {
    let mut parts = line.strip_prefix("ACK ")?.split_whitespace();
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Crash runs take turns: a child forked by one run briefly shares (until it execs) the lock
/// file descriptor of a backend the other run has open, which would lock the other's child out.
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

fn crash_cycles(cycles: usize, mode: &str) {
    let _turn = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().unwrap();
    let mut acked: HashMap<Uuid, u64> = HashMap::new();
    let mut total = 0;
    let mut mid_compaction = 0;
    for cycle in 0..cycles {
        // A fresh directory now and then keeps reopen time flat over long runs.
        let dir = root.path().join(format!("run-{}", cycle / 25));
        if cycle % 25 == 0 {
            acked.clear();
        }
        for (id, version) in run_and_kill(&dir, mode) {
            let latest = acked.entry(id).or_default();
            *latest = (*latest).max(version);
            total += 1;
        }
        if dir.join(TEMP_FILE).exists() {
            mid_compaction += 1;
        }
        let backend = FileBackend::open(child_options(&dir, mode), embedder(DIMS))
            .unwrap_or_else(|e| panic!("cycle {cycle}: the log does not open after a kill: {e}"));
        for (id, version) in &acked {
            let stored = backend.get(&ds(), *id).unwrap();
            let stored = stored.unwrap_or_else(|| panic!("cycle {cycle}: acknowledged {id} lost"));
            let got = intact_version(&stored)
                .unwrap_or_else(|| panic!("cycle {cycle}: {id} is not intact: {stored:?}"));
            assert!(
                got >= *version,
                "cycle {cycle}: {id} went back from v{version} to v{got}"
            );
        }
        backend
            .scan(&mut |r| assert!(intact_version(r).is_some(), "cycle {cycle}: garbage {r:?}"))
            .unwrap();
    }
    eprintln!(
        "{mode}: {cycles} kill cycles ({mid_compaction} mid-compaction), {total} acknowledged \
         writes, none lost"
    );
}

#[test]
fn acknowledged_inserts_survive_sigkill() {
    crash_cycles(30, "insert");
}

#[test]
fn kills_during_compaction_lose_nothing() {
    crash_cycles(30, "churn");
}

/// The long run: `CODA_CRASH_CYCLES` cycles (default 1000) of each mode.
#[test]
#[ignore = "long: run with --ignored (see the module docs)"]
fn many_kill_cycles() {
    let cycles = std::env::var("CODA_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    crash_cycles(cycles, "insert");
    crash_cycles(cycles, "churn");
}
