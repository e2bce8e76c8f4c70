//! Why a backup is consistent (SPEC §13): a write holding the manager's write gate has changed
//! the backend but not yet published its event; a backup started then waits for it, so the
//! manifest's `seq` covers every change the copy holds.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coda::backend_file::{FileBackend, FileOptions};
use coda::{HashingEmbedder, MemoryBackend, MemoryRecord, NewMemory, Result, Scope};

const DEADLINE: Duration = Duration::from_secs(10);

/// The file backend, except that an armed insert, once applied, stops until released: a write
/// caught between its change and its event.
struct Stalling {
    inner: FileBackend,
    armed: Mutex<Option<(Sender<()>, Receiver<()>)>>,
}

impl MemoryBackend for Stalling {
    fn insert(&self, scope: &Scope, record: MemoryRecord) -> Result<()> {
        self.inner.insert(scope, record)?;
        if let Some((applied, release)) = self.armed.lock().unwrap().take() {
            applied.send(()).unwrap();
            release.recv_timeout(DEADLINE).unwrap();
        }
        Ok(())
    }
    fn update(&self, scope: &Scope, record: MemoryRecord) -> Result<()> {
        self.inner.update(scope, record)
    }
    common::delegate_backend!(inner);
    fn begin_backup(&self) -> Result<Box<dyn coda::backup::BackupCopy>> {
        self.inner.begin_backup()
    }
}

#[test]
fn a_backup_waits_for_the_write_in_flight_so_its_seq_covers_every_change_it_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let embedder: Arc<dyn coda::Embedder> = Arc::new(HashingEmbedder::new(64).unwrap());
    let options = |dir: std::path::PathBuf| FileOptions::in_dir(dir);
    let backend = Arc::new(Stalling {
        inner: FileBackend::open(options(tmp.path().join("data")), embedder.clone()).unwrap(),
        armed: Mutex::new(None),
    });
    let toml = format!(
        "[memory]\nbackend = \"file\"\n[stores.fs]\ndir = \"{}\"\n",
        tmp.path().join("snaps").display()
    );
    let manager = coda::MemoryManager::builder(coda::Config::from_toml_str(&toml).unwrap())
        .backend(backend.clone())
        .embedder(embedder.clone())
        .configured_sinks(false)
        .build()
        .unwrap();
    manager
        .user("ann")
        .unwrap()
        .add_memory(NewMemory::new("first", "note"))
        .unwrap();

    let (applied_tx, applied) = channel();
    let (release, release_rx) = channel();
    *backend.armed.lock().unwrap() = Some((applied_tx, release_rx));
    let writer = {
        let manager = Arc::clone(&manager);
        std::thread::spawn(move || {
            let _writing = manager.write_gate();
            manager
                .user("ann")
                .unwrap()
                .add_memory(NewMemory::new("second", "note"))
                .unwrap();
        })
    };
    applied.recv_timeout(DEADLINE).unwrap();
    assert_eq!(manager.bus().latest_seq(), 1, "changed, not yet announced");

    let dir = tmp.path().join("backup");
    std::fs::create_dir(&dir).unwrap();
    let (done_tx, done) = channel();
    let backup = {
        let (manager, dir) = (Arc::clone(&manager), dir.clone());
        std::thread::spawn(move || done_tx.send(manager.backup(&dir).unwrap()).unwrap())
    };
    // While the write is in flight the backup cannot capture (this wait shows it does not
    // finish; it is not what makes the test pass).
    assert!(
        done.recv_timeout(Duration::from_millis(300)).is_err(),
        "captured mid-write"
    );
    release.send(()).unwrap();
    writer.join().unwrap();
    let manifest = done.recv_timeout(DEADLINE).unwrap();
    backup.join().unwrap();
    assert_eq!(manifest.seq, 2, "both events");

    // The copy holds exactly the two changes those events announce.
    drop(manager);
    let copy = FileBackend::open(options(dir.join("backend")), embedder).unwrap();
    assert_eq!(copy.count(&Scope::user("ann").unwrap()).unwrap(), 2);
}
