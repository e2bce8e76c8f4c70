//! Session `default`'s turns and persist (`/turns`, `/persist`), and stats: the routes from
//! before scopes, unchanged for clients that name no scope.

use coda::Role;
use serde::Deserialize;

use super::{created, no_content, ok, scoped, Reply, Request, ScopeIds};

/// `POST /turns`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTurn {
    role: Role,
    content: String,
    /// For `tool` turns, the tool's name.
    #[serde(default)]
    name: Option<String>,
}

pub async fn add_turn(r: Request<'_>) -> Reply {
    let turn: NewTurn = r.json()?;
    let scope = r.scope_with(ScopeIds::default())?;
    let added = scoped(r.state, Some("turn"), scope, move |s| {
        s.add_turn_named(turn.role, &turn.content, turn.name.as_deref())
    })
    .await?;
    created(&added)
}

pub async fn turns(r: Request<'_>) -> Reply {
    let scope = r.scope()?;
    ok(&scoped(r.state, None, scope, |s| s.conversation()).await?)
}

pub async fn clear(r: Request<'_>) -> Reply {
    let scope = r.scope()?;
    scoped(r.state, None, scope, |s| s.clear_turns()).await?;
    no_content()
}

pub async fn persist(r: Request<'_>) -> Reply {
    let scope = r.scope()?;
    ok(&scoped(r.state, Some("persist"), scope, |s| s.persist()).await?)
}

/// `GET /stats?user_id&session_id`: the seed's `memory_stats` for that user and session.
pub async fn stats(r: Request<'_>) -> Reply {
    let scope = r.scope()?;
    ok(&scoped(r.state, None, scope, |s| Ok(s.stats())).await?)
}
