//! Sessions (SPEC §8): turns, window, persist, listing and deletion of one conversation.

use coda::Role;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, no_content, ok, scoped, ApiError, Reply, Request, ScopeIds};

/// Sessions a listing returns when the caller gives no `limit`.
const DEFAULT_PAGE: usize = 50;

/// `POST /sessions/{sid}/turns`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTurn {
    role: Role,
    content: String,
    /// For `tool` turns, the tool's name.
    #[serde(default)]
    name: Option<String>,
    /// The session's user (fixed by its first turn; another user is 409).
    #[serde(default)]
    user_id: Option<String>,
    /// The session's agent (fixed by its first turn).
    #[serde(default)]
    agent_id: Option<String>,
}

pub async fn add_turn(r: Request<'_>, sid: &str) -> Reply {
    let turn: NewTurn = r.json()?;
    let ids = ScopeIds {
        user_id: turn.user_id,
        agent_id: turn.agent_id,
        session_id: None,
    };
    let scope = r.session_scope(sid, ids)?;
    let (user, session) = (scope.user_id().to_owned(), sid.to_owned());
    let added = scoped(r.state, Some("turn"), scope, move |s| {
        s.add_turn_named(turn.role, &turn.content, turn.name.as_deref())
    })
    .await?;
    let mut reply = serde_json::to_value(&added).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut reply {
        map.insert("session_id".into(), session.into());
        map.insert("user_id".into(), user.into());
    }
    created(&reply)
}

pub async fn turns(r: Request<'_>, sid: &str) -> Reply {
    let scope = r.session_scope(sid, ScopeIds::default())?;
    ok(&scoped(r.state, None, scope, |s| s.conversation()).await?)
}

pub async fn clear(r: Request<'_>, sid: &str) -> Reply {
    let scope = r.session_scope(sid, ScopeIds::default())?;
    scoped(r.state, None, scope, |s| s.clear_turns()).await?;
    no_content()
}

pub async fn persist(r: Request<'_>, sid: &str) -> Reply {
    let scope = r.session_scope(sid, ScopeIds::default())?;
    ok(&scoped(r.state, Some("persist"), scope, |s| s.persist()).await?)
}

pub async fn get(r: Request<'_>, sid: &str) -> Reply {
    let scope = r.session_scope(sid, ScopeIds::default())?;
    ok(&scoped(r.state, None, scope, |s| s.session_detail()).await?)
}

pub async fn delete(r: Request<'_>, sid: &str) -> Reply {
    let scope = r.session_scope(sid, ScopeIds::default())?;
    ok(&scoped(r.state, None, scope, |s| s.delete_session()).await?)
}

/// `GET /sessions?user_id&agent_id&limit&offset`.
pub async fn list(r: Request<'_>) -> Reply {
    if r.query.get("session_id").is_some() {
        return Err(ApiError::invalid(
            "session_id",
            "is not a filter of GET /sessions; use GET /sessions/{sid}",
        ));
    }
    let scope = r.scope()?;
    let limit = r.query.number::<usize>("limit")?.unwrap_or(DEFAULT_PAGE);
    let offset = r.query.number::<usize>("offset")?.unwrap_or(0);
    let sessions = scoped(r.state, None, scope, move |s| {
        s.list_sessions(offset, limit)
    })
    .await?;
    ok(&json!({"sessions": sessions, "offset": offset, "limit": limit}))
}
