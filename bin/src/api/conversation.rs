//! Turns, persist and stats.

use coda::Role;
use serde::Deserialize;

use super::{blocking, created, no_content, ok, Reply, Request};

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
    let added = blocking(r.state, Some("turn"), move |m| {
        m.add_turn_named(turn.role, &turn.content, turn.name.as_deref())
    })
    .await?;
    created(&added)
}

pub async fn turns(r: Request<'_>) -> Reply {
    ok(&r.state.manager.conversation())
}

pub async fn clear(r: Request<'_>) -> Reply {
    blocking(r.state, None, |m| {
        m.clear_short_term();
        Ok(())
    })
    .await?;
    no_content()
}

pub async fn persist(r: Request<'_>) -> Reply {
    let outcome = blocking(r.state, Some("persist"), |m| m.persist_short_term_memory()).await?;
    ok(&outcome)
}

pub async fn stats(r: Request<'_>) -> Reply {
    ok(&r.state.manager.stats())
}
