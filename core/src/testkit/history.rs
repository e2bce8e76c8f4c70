//! Conformance for memory history (SPEC §10): every version kept in order, after a delete too,
//! scoped like the memory, and gone with its user.

use std::sync::Arc;

use super::backend::scoped;
use crate::backend::MemoryBackend;
use crate::history::Action;
use crate::model::{timestamp, By};
use crate::scope::Scope;
use crate::session::{SessionInfo, SessionState};

/// Versions add, update, supersede and delete in order, with their authors and times.
pub(super) fn versions(backend: Arc<dyn MemoryBackend>) {
    let alice = Scope::user("alice").expect("valid user id");
    let bob = Scope::user("bob").expect("valid user id");
    let first = scoped(&alice, "The user lives in Paris.", 0, 0);
    let id = first.memory.id;
    assert_eq!(backend.history(&alice, id).expect("history"), None);
    backend.insert(&alice, first.clone()).expect("insert");
    let mut edited = first.clone();
    edited.memory.content = "The user lives in Paris, France.".into();
    edited.memory.updated_at = Some(timestamp::now());
    backend.update(&alice, edited.clone()).expect("update");
    let mut superseded = edited.clone();
    let newer = uuid::Uuid::new_v4();
    superseded.memory.superseded_by = Some(newer);
    superseded.memory.changed_by = By::Persist;
    superseded.memory.updated_at = Some(timestamp::now());
    backend.update(&alice, superseded).expect("supersede");
    let history = backend
        .history(&alice, id)
        .expect("history")
        .expect("a stored memory has a history");
    let actions: Vec<Action> = history.iter().map(|v| v.action).collect();
    assert_eq!(actions, [Action::Add, Action::Update, Action::Supersede]);
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(history[0].memory.content, "The user lives in Paris.");
    assert_eq!(
        history[1].memory.content,
        "The user lives in Paris, France."
    );
    assert_eq!(history[2].by, By::Persist);
    assert_eq!(history[2].memory.superseded_by, Some(newer));
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(
        backend.history(&bob, id).expect("history"),
        None,
        "another user never sees the history"
    );
    assert!(backend.delete(&alice, id, By::Expiry).expect("delete"));
    let history = backend
        .history(&alice, id)
        .expect("history")
        .expect("history outlives a delete");
    let last = history.last().expect("versions");
    assert_eq!(
        (last.action, last.by, last.version),
        (Action::Expire, By::Expiry, 4)
    );
    assert_eq!(last.memory.content, "The user lives in Paris, France.");
    let other = scoped(&alice, "The user has a cat.", 1, 1);
    backend.insert(&alice, other.clone()).expect("insert");
    assert!(backend
        .delete(&alice, other.memory.id, By::Api)
        .expect("delete"));
    let deleted = backend
        .history(&alice, other.memory.id)
        .expect("history")
        .expect("deleted memory's history");
    assert_eq!(deleted.last().map(|v| v.action), Some(Action::Delete));
    backend.erase_owner(&alice).expect("erase");
    assert_eq!(
        backend.history(&alice, id).expect("history"),
        None,
        "erasing the user erases its history"
    );
}

/// Memories a persist stores are versions by persist.
pub(super) fn persisted(backend: Arc<dyn MemoryBackend>) {
    let alice = Scope::user("alice").expect("valid user id");
    let mut record = scoped(&alice, "The user likes tea.", 2, 0);
    record.memory.changed_by = By::Persist;
    record.memory.source_turns = vec![3, 4];
    let id = record.memory.id;
    let owner = alice.owner().clone();
    let session = SessionState {
        info: SessionInfo::new(&owner, "default", None, timestamp::now()),
        turns: Default::default(),
    };
    backend
        .persist(&alice, vec![record], session)
        .expect("persist");
    let history = backend
        .history(&alice, id)
        .expect("history")
        .expect("persisted memory's history");
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].action, history[0].by),
        (Action::Add, By::Persist)
    );
    assert_eq!(history[0].memory.source_turns, [3, 4]);
}
