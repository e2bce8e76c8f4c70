//! Crash tests: a child process writes memories and session turns with `sync = "always"` and
//! prints each acknowledged write; the parent SIGKILLs it at a random moment, reopens the log
//! and checks every acknowledged write is there and intact, and every session well-formed.
//!
//! The child is this same test binary, re-run with `--exact crash_child` and the environment
//! variables below: no extra binary to build, and it works from a clean `cargo test`.
//!
//! Longer run: `CODA_CRASH_CYCLES=1000 cargo test --release -p coda-backend-file --test crash -- --ignored`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use coda_backend_file::{FileBackend, FileOptions, SyncPolicy, TEMP_FILE};
use coda_core::{MemoryBackend, Owner, SessionChange, SessionInfo, SessionKey, SessionState};
use common::{ds, embedder, intact_version, record, turn, DIMS};
use uuid::Uuid;

const CHILD_DIR: &str = "CODA_CRASH_CHILD_DIR";
const CHILD_MODE: &str = "CODA_CRASH_CHILD_MODE";
const WRITERS: usize = 4;
/// Sessions each writer owns: one writer per session keeps its turns in order, as the
/// manager's per-session lock does.
const SESSIONS_PER_WRITER: usize = 3;
/// Users the sessions are spread over.
const USERS: usize = 3;
/// The child's window: small, so windows fill and roll over within a run.
const WINDOW: usize = 16;
/// Every this many turns the child moves a session's persist position, as persist does.
const PERSIST_EVERY: u64 = 5;

/// Session `k` of `writer`: its key and the user it belongs to (fixed by its first turn).
fn child_session(writer: usize, k: usize) -> (SessionKey, Owner) {
    let key = SessionKey::new("default", format!("w{writer}-s{k}"));
    (
        key,
        Owner::new("default", format!("user-{}", (writer + k) % USERS)),
    )
}

/// Every child session starts at this moment, so a reader can check it survived unchanged.
fn session_start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_600_000_000, 0).unwrap()
}

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
                // Sessions continue from what is stored, like churned memories.
                let mut sessions: Vec<SessionInfo> = (0..SESSIONS_PER_WRITER)
                    .map(|k| {
                        let (key, owner) = child_session(writer, k);
                        backend.session(&key).unwrap().unwrap_or_else(|| {
                            SessionInfo::new(&owner, &key.session_id, None, session_start())
                        })
                    })
                    .collect();
                for next in 0.. {
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
                    let info = &mut sessions[next % SESSIONS_PER_WRITER];
                    add_turn(&*backend, info);
                }
            })
        })
        .collect();
    for w in writers {
        let _ = w.join();
    }
}

/// Appends the next turn to `info`'s session as the manager does (the info after the turn,
/// then the turn) and acknowledges it; every [`PERSIST_EVERY`] turns also moves the persist
/// position with a `Put` of the whole session and acknowledges that.
fn add_turn(backend: &dyn MemoryBackend, info: &mut SessionInfo) {
    let turn = turn(&info.session_id, info.turn_count);
    info.turn_count += 1;
    info.last_turn_at = Some(turn.timestamp);
    let index = turn.turn_index;
    backend
        .apply_session(SessionChange::Turn {
            info: info.clone(),
            turn,
            window: WINDOW,
        })
        .unwrap();
    println!("TURN {} {index}", info.session_id);
    if info.turn_count % PERSIST_EVERY == 0 {
        let mut state = backend.session_state(&info.key()).unwrap().unwrap();
        state.info.persisted_upto = state.info.turn_count;
        info.persisted_upto = state.info.turn_count;
        backend.apply_session(SessionChange::Put(state)).unwrap();
        println!("UPTO {} {}", info.session_id, info.persisted_upto);
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

/// One acknowledged write.
#[derive(Debug)]
enum Ack {
    /// Memory `id` at `version`.
    Memory(Uuid, u64),
    /// Turn `index` of a session.
    Turn(String, u64),
    /// A session's persist position moved to this turn count.
    Upto(String, u64),
}

/// Runs one child until it has acknowledged a random number of writes, then SIGKILLs it;
/// returns every acknowledged write.
fn run_and_kill(dir: &Path, mode: &str) -> Vec<Ack> {
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

fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = line.split_whitespace();
    let (kind, first, second) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
    match kind {
        "ACK" => Some(Ack::Memory(first.parse().ok()?, second)),
        "TURN" => Some(Ack::Turn(first.to_owned(), second)),
        "UPTO" => Some(Ack::Upto(first.to_owned(), second)),
        _ => None,
    }
}

/// What the parent knows of one child session in the current directory.
#[derive(Debug, Default)]
struct SessionAcks {
    /// Every acknowledged turn index.
    turns: BTreeSet<u64>,
    /// The highest acknowledged persist position.
    upto: u64,
    /// `turn_count` when the log was last reopened.
    seen: u64,
}

/// Checks every stored session is well-formed and every acknowledged turn and persist position
/// of `acked` survived; then notes each session's `turn_count` as seen.
fn check_sessions(cycle: usize, backend: &FileBackend, acked: &mut HashMap<String, SessionAcks>) {
    let mut stored: Vec<SessionState> = Vec::new();
    backend
        .sessions("default", &mut |s| stored.push(s.clone()))
        .unwrap();
    for state in &stored {
        let (info, sid) = (&state.info, &state.info.session_id);
        let owner = (0..WRITERS)
            .flat_map(|w| (0..SESSIONS_PER_WRITER).map(move |k| child_session(w, k)))
            .find(|(key, _)| key.session_id == *sid)
            .map(|(_, owner)| owner)
            .unwrap_or_else(|| panic!("cycle {cycle}: a session nobody wrote: {state:?}"));
        assert_eq!(info.owner(), owner, "cycle {cycle}: {sid} changed owner");
        assert_eq!(
            info.session_start,
            session_start(),
            "cycle {cycle}: {sid} start"
        );
        assert!(
            info.persisted_upto <= info.turn_count,
            "cycle {cycle}: {sid} persisted past its turns: {info:?}"
        );
        // The window is exactly the latest turns: consecutive, ending at the newest turn.
        let expected_len = (info.turn_count as usize).min(WINDOW);
        let first = info.turn_count - expected_len as u64;
        let indexes: Vec<u64> = state.turns.iter().map(|t| t.turn_index).collect();
        assert_eq!(
            indexes,
            (first..info.turn_count).collect::<Vec<_>>(),
            "cycle {cycle}: {sid} window is not its latest turns: {info:?}"
        );
        for t in &state.turns {
            assert_eq!(
                *t,
                turn(sid, t.turn_index),
                "cycle {cycle}: {sid} turn is garbage"
            );
        }
        assert_eq!(
            info.last_turn_at,
            state.turns.back().map(|t| t.timestamp),
            "cycle {cycle}: {sid} last_turn_at"
        );
    }
    for (sid, acks) in acked.iter_mut() {
        let Some(&last) = acks.turns.last() else {
            continue;
        };
        let state = stored
            .iter()
            .find(|s| s.info.session_id == *sid)
            .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged session {sid} lost"));
        let count = state.info.turn_count;
        assert!(
            count > last,
            "cycle {cycle}: {sid} acknowledged turn {last} but holds {count} turns"
        );
        // Only the one turn in flight when the child died may be there unacknowledged.
        assert!(
            count <= acks.seen.max(last + 1) + 1,
            "cycle {cycle}: {sid} holds {count} turns; acknowledged up to {last}, {} before",
            acks.seen
        );
        for index in acks.turns.range(count.saturating_sub(WINDOW as u64)..) {
            assert!(
                state.turns.iter().any(|t| t.turn_index == *index),
                "cycle {cycle}: {sid} lost acknowledged turn {index}"
            );
        }
        assert!(
            state.info.persisted_upto >= acks.upto,
            "cycle {cycle}: {sid} persist position went back from {} to {}",
            acks.upto,
            state.info.persisted_upto
        );
        acks.seen = count;
    }
}

/// Crash runs take turns: a child forked by one run briefly shares (until it execs) the lock
/// file descriptor of a backend the other run has open, which would lock the other's child out.
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

fn crash_cycles(cycles: usize, mode: &str) {
    let _turn = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().unwrap();
    let mut acked: HashMap<Uuid, u64> = HashMap::new();
    let mut sessions: HashMap<String, SessionAcks> = HashMap::new();
    let (mut total, mut turns) = (0, 0);
    let mut mid_compaction = 0;
    for cycle in 0..cycles {
        // A fresh directory now and then keeps reopen time flat over long runs.
        let dir = root.path().join(format!("run-{}", cycle / 25));
        if cycle % 25 == 0 {
            acked.clear();
            sessions.clear();
        }
        for ack in run_and_kill(&dir, mode) {
            total += 1;
            match ack {
                Ack::Memory(id, version) => {
                    let latest = acked.entry(id).or_default();
                    *latest = (*latest).max(version);
                }
                Ack::Turn(sid, index) => {
                    sessions.entry(sid).or_default().turns.insert(index);
                    turns += 1;
                }
                Ack::Upto(sid, upto) => {
                    let acks = sessions.entry(sid).or_default();
                    acks.upto = acks.upto.max(upto);
                }
            }
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
        check_sessions(cycle, &backend, &mut sessions);
    }
    eprintln!(
        "{mode}: {cycles} kill cycles ({mid_compaction} mid-compaction), {total} acknowledged \
         writes ({turns} turns), none lost"
    );
}

#[test]
fn acknowledged_inserts_and_turns_survive_sigkill() {
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
