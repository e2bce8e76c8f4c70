//! Conformance for the scoped side of `MemoryBackend`: users never see each other's memories,
//! agent and session narrow within a user, erasure removes everything of one user, and
//! sessions keep their window, counters and owner.

use std::sync::Arc;

use chrono::DateTime;

use super::backend::{axis, scoped};
use crate::backend::MemoryBackend;
use crate::model::{By, Role, Turn};
use crate::scope::{Owner, Scope};
use crate::session::{SessionChange, SessionInfo, SessionKey, SessionState};
use crate::Error;

fn user(id: &str) -> Scope {
    Scope::user(id).expect("valid user id")
}

pub(super) fn isolation(backend: Arc<dyn MemoryBackend>) {
    let (alice, bob) = (user("alice"), user("bob"));
    let a = scoped(&alice, "alice's secret", 0, 0);
    let b = scoped(&bob, "bob's note", 0, 1);
    backend.insert(&alice, a.clone()).expect("insert alice");
    backend.insert(&bob, b.clone()).expect("insert bob");
    assert!(
        backend
            .insert(&alice, scoped(&bob, "mislabelled", 1, 0))
            .is_err(),
        "a record owned by another user is refused"
    );
    assert_eq!(backend.len().expect("len"), 2);
    assert_eq!(backend.count(&alice).expect("count"), 1);
    assert_eq!(
        backend.get(&bob, a.memory.id).expect("get"),
        None,
        "another user's id is not found"
    );
    let hits = backend
        .search(&bob, &axis(0), 10, -1.0, None)
        .expect("search");
    assert_eq!(hits.len(), 1, "a search reads only its user's memories");
    assert_eq!(hits[0].id, b.memory.id);
    assert_eq!(hits[0].user_id, "bob");
    let listed = backend.list(&bob, 0, 10, None).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, b.memory.id);
    assert!(
        !backend.delete(&bob, a.memory.id, By::Api).expect("delete"),
        "another user's memory cannot be deleted"
    );
    let mut stolen = a.clone();
    stolen.memory.content = "overwritten".into();
    assert!(
        matches!(backend.update(&bob, stolen), Err(Error::NotFound { .. })),
        "another user's memory cannot be updated"
    );
    assert_eq!(backend.get(&alice, a.memory.id).expect("get"), Some(a));
    let mut owners = backend.owners("default").expect("owners");
    owners.sort();
    assert_eq!(
        owners,
        vec![
            (Owner::new("default", "alice"), 1),
            (Owner::new("default", "bob"), 1)
        ]
    );
    backend
        .replace_owner(&bob, Vec::new())
        .expect("replace bob's");
    assert_eq!(
        backend.count(&alice).expect("count"),
        1,
        "replacing one user's memories leaves the others"
    );
}

pub(super) fn narrowing(backend: Arc<dyn MemoryBackend>) {
    let alice = user("alice");
    let chat = alice.clone().with_session("chat").expect("session");
    let voice = alice
        .clone()
        .with_agent("voice")
        .expect("agent")
        .with_session("call")
        .expect("session");
    let plain = scoped(&alice, "no session", 0, 0);
    let in_chat = scoped(&chat, "in chat", 0, 1);
    let in_call = scoped(&voice, "in call", 0, 2);
    for (scope, record) in [(&alice, &plain), (&chat, &in_chat), (&voice, &in_call)] {
        backend.insert(scope, record.clone()).expect("insert");
    }
    let ids = |scope: &Scope| -> Vec<_> {
        let mut ids: Vec<_> = backend
            .search(scope, &axis(0), 10, -1.0, None)
            .expect("search")
            .into_iter()
            .map(|h| h.id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(&alice).len(),
        3,
        "no session or agent matches all of the user's"
    );
    assert_eq!(ids(&chat), vec![in_chat.memory.id], "a session narrows");
    let agent = alice.clone().with_agent("voice").expect("agent");
    assert_eq!(ids(&agent), vec![in_call.memory.id], "an agent narrows");
    assert_eq!(
        backend.list(&chat, 0, 10, None).expect("list").len(),
        1,
        "listing narrows like search"
    );
    assert_eq!(backend.get(&chat, in_call.memory.id).expect("get"), None);
}

fn turn(index: u64, content: &str) -> Turn {
    Turn {
        role: if index % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        },
        content: content.to_owned(),
        turn_index: index,
        timestamp: DateTime::from_timestamp(1_700_000_000 + index as i64, 0).unwrap_or_default(),
        name: None,
    }
}

/// Appends turn `index` to session `key` owned by `owner`, as the manager does.
fn append(backend: &dyn MemoryBackend, key: &SessionKey, owner: &Owner, index: u64, window: usize) {
    let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let mut info = backend
        .session(key)
        .expect("session")
        .unwrap_or_else(|| SessionInfo::new(owner, &key.session_id, None, start));
    let turn = turn(index, &format!("turn {index}"));
    info.turn_count = index + 1;
    info.last_turn_at = Some(turn.timestamp);
    backend
        .apply_session(SessionChange::Turn { info, turn, window })
        .expect("append a turn");
}

pub(super) fn sessions(backend: Arc<dyn MemoryBackend>) {
    let alice = Owner::new("default", "alice");
    let (one, two) = (
        SessionKey::new("default", "one"),
        SessionKey::new("default", "two"),
    );
    for i in 0..5 {
        append(backend.as_ref(), &one, &alice, i, 3);
    }
    append(backend.as_ref(), &two, &alice, 0, 3);
    let state = backend
        .session_state(&one)
        .expect("state")
        .expect("session one exists");
    assert_eq!(state.info.turn_count, 5);
    assert_eq!(state.info.user_id, "alice");
    let indexes: Vec<_> = state.turns.iter().map(|t| t.turn_index).collect();
    assert_eq!(
        indexes,
        vec![2, 3, 4],
        "the window keeps the newest `window` turns"
    );
    let mut cleared: SessionState = state.clone();
    cleared.turns.clear();
    cleared.info.persisted_upto = 5;
    backend
        .apply_session(SessionChange::Put(cleared.clone()))
        .expect("put");
    assert_eq!(
        backend.session_state(&one).expect("state"),
        Some(cleared),
        "a put replaces the session whole"
    );
    let mut listed = Vec::new();
    backend
        .sessions("default", &mut |s| listed.push(s.info.session_id.clone()))
        .expect("sessions");
    listed.sort();
    assert_eq!(listed, vec!["one", "two"]);
    let mut own = Vec::new();
    backend
        .owner_sessions(&user("alice"), &mut |s| own.push(s.info.session_id.clone()))
        .expect("owner sessions");
    own.sort();
    assert_eq!(own, vec!["one", "two"], "a user's sessions");
    let mut bobs = 0;
    backend
        .owner_sessions(&user("bob"), &mut |_| bobs += 1)
        .expect("owner sessions");
    assert_eq!(bobs, 0, "another user's sessions are not listed");
    let mut other_tenant = 0;
    backend
        .sessions("elsewhere", &mut |_| other_tenant += 1)
        .expect("sessions");
    assert_eq!(other_tenant, 0, "sessions are listed per tenant");
    // A persist: memories and the moved position land together.
    let alice_scope = user("alice");
    let mut persisted = backend
        .session_state(&one)
        .expect("state")
        .expect("session one exists");
    persisted.info.persisted_upto = persisted.info.turn_count;
    let records = vec![
        scoped(&alice_scope, "from the session", 0, 0),
        scoped(&alice_scope, "also from it", 1, 0),
    ];
    backend
        .persist(&alice_scope, records, persisted.clone())
        .expect("persist");
    assert_eq!(backend.count(&alice_scope).expect("count"), 2);
    assert_eq!(
        backend.session_state(&one).expect("state"),
        Some(persisted),
        "a persist stores the session with its new position"
    );
    backend
        .apply_session(SessionChange::Delete(two.clone()))
        .expect("delete");
    assert_eq!(backend.session(&two).expect("session"), None);
    backend.flush().expect("flush");
}

pub(super) fn session_conflicts(backend: Arc<dyn MemoryBackend>) {
    let key = SessionKey::new("default", "shared");
    append(
        backend.as_ref(),
        &key,
        &Owner::new("default", "alice"),
        0,
        10,
    );
    let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let mut intruder = SessionInfo::new(
        &Owner::new("default", "mallory"),
        &key.session_id,
        None,
        start,
    );
    intruder.turn_count = 1;
    let refused = backend.apply_session(SessionChange::Turn {
        info: intruder,
        turn: turn(1, "hijack"),
        window: 10,
    });
    assert!(
        matches!(refused, Err(Error::Conflict(_))),
        "a turn for another user's session is a conflict: {refused:?}"
    );
    let state = backend.session_state(&key).expect("state").expect("exists");
    assert_eq!(state.info.user_id, "alice");
    assert_eq!(state.turns.len(), 1, "the refused turn changed nothing");
}

pub(super) fn erasure(backend: Arc<dyn MemoryBackend>) {
    let (alice, bob) = (user("alice"), user("bob"));
    for i in 0..3 {
        backend
            .insert(&alice, scoped(&alice, &format!("a{i}"), i, 0))
            .expect("insert");
    }
    backend
        .insert(&bob, scoped(&bob, "b", 0, 0))
        .expect("insert");
    append(
        backend.as_ref(),
        &SessionKey::new("default", "a-chat"),
        alice.owner(),
        0,
        5,
    );
    append(
        backend.as_ref(),
        &SessionKey::new("default", "b-chat"),
        bob.owner(),
        0,
        5,
    );
    let erased = backend.erase_owner(&alice).expect("erase");
    assert_eq!((erased.memories, erased.sessions), (3, 1));
    assert_eq!(backend.count(&alice).expect("count"), 0);
    assert!(backend
        .search(&alice, &axis(0), 10, -1.0, None)
        .expect("search")
        .is_empty());
    assert_eq!(
        backend
            .session(&SessionKey::new("default", "a-chat"))
            .expect("session"),
        None
    );
    assert_eq!(backend.count(&bob).expect("count"), 1, "other users stay");
    assert!(backend
        .session(&SessionKey::new("default", "b-chat"))
        .expect("session")
        .is_some());
    let again = backend.erase_owner(&alice).expect("erase again");
    assert_eq!((again.memories, again.sessions), (0, 0));
}
