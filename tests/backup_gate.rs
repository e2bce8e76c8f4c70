//! Why a backup is consistent (SPEC §13): a write holding the manager's write gate has changed
//! the backend but not yet published its event; a backup started then waits for it, so the
//! manifest's `seq` covers every change the copy holds.

#![allow(clippy::unwrap_used)]

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coda::backend_file::{FileBackend, FileOptions};
use coda::{
    By, Erased, Filter, HashingEmbedder, Memory, MemoryBackend, MemoryId, MemoryRecord, NewMemory,
    Owner, Result, Scope, ScoredMemory, SessionChange, SessionInfo, SessionKey, SessionState,
    Version,
};

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
    fn get(&self, scope: &Scope, id: MemoryId) -> Result<Option<MemoryRecord>> {
        self.inner.get(scope, id)
    }
    fn update(&self, scope: &Scope, record: MemoryRecord) -> Result<()> {
        self.inner.update(scope, record)
    }
    fn delete(&self, scope: &Scope, id: MemoryId, by: By) -> Result<bool> {
        self.inner.delete(scope, id, by)
    }
    fn history(&self, scope: &Scope, id: MemoryId) -> Result<Option<Vec<Version>>> {
        self.inner.history(scope, id)
    }
    fn list(&self, s: &Scope, o: usize, l: usize, f: Option<&Filter>) -> Result<Vec<Memory>> {
        self.inner.list(s, o, l, f)
    }
    fn search(
        &self,
        s: &Scope,
        q: &[f32],
        l: usize,
        m: f32,
        f: Option<&Filter>,
    ) -> Result<Vec<ScoredMemory>> {
        self.inner.search(s, q, l, m, f)
    }
    fn len(&self) -> Result<usize> {
        self.inner.len()
    }
    fn count(&self, scope: &Scope) -> Result<usize> {
        self.inner.count(scope)
    }
    fn owners(&self, tenant: &str) -> Result<Vec<(Owner, usize)>> {
        self.inner.owners(tenant)
    }
    fn scan(&self, visit: &mut dyn FnMut(&MemoryRecord)) -> Result<()> {
        self.inner.scan(visit)
    }
    fn scan_owner(&self, scope: &Scope, visit: &mut dyn FnMut(&MemoryRecord)) -> Result<()> {
        self.inner.scan_owner(scope, visit)
    }
    fn replace_owner(&self, scope: &Scope, records: Vec<MemoryRecord>) -> Result<()> {
        self.inner.replace_owner(scope, records)
    }
    fn erase_owner(&self, scope: &Scope) -> Result<Erased> {
        self.inner.erase_owner(scope)
    }
    fn apply_session(&self, change: SessionChange) -> Result<()> {
        self.inner.apply_session(change)
    }
    fn session(&self, key: &SessionKey) -> Result<Option<SessionInfo>> {
        self.inner.session(key)
    }
    fn session_state(&self, key: &SessionKey) -> Result<Option<SessionState>> {
        self.inner.session_state(key)
    }
    fn sessions(&self, tenant: &str, visit: &mut dyn FnMut(&SessionState)) -> Result<()> {
        self.inner.sessions(tenant, visit)
    }
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
