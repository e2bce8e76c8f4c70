//! Users (SPEC §8): listing, per-user stats, and erasure.

use serde_json::json;

use super::{ok, scoped, ApiError, Reply, Request};

/// Users a listing returns when the caller gives no `limit`.
const DEFAULT_PAGE: usize = 50;

/// The scope of a `/users/{uid}` route: user `uid`, and nothing else.
fn user_scope(r: &Request<'_>, uid: &str) -> Result<coda::Scope, ApiError> {
    for name in ["user_id", "agent_id", "session_id"] {
        if r.query.get(name).is_some() {
            return Err(ApiError::invalid(
                name,
                "is not a parameter of /users/{uid} routes",
            ));
        }
    }
    Ok(coda::Scope::parse(&r.tenant, Some(uid), None, None)?)
}

/// `GET /users?limit&offset`.
pub async fn list(r: Request<'_>) -> Reply {
    let scope = r.scope()?;
    let limit = r.query.number::<usize>("limit")?.unwrap_or(DEFAULT_PAGE);
    let offset = r.query.number::<usize>("offset")?.unwrap_or(0);
    let users = scoped(r.state, None, scope, move |s| s.list_users(offset, limit)).await?;
    ok(&json!({"users": users, "offset": offset, "limit": limit}))
}

/// `GET /users/{uid}/stats`: the seed's `memory_stats` for the user (session `default`).
pub async fn stats(r: Request<'_>, uid: &str) -> Reply {
    let scope = user_scope(&r, uid)?;
    ok(&scoped(r.state, None, scope, |s| Ok(s.stats())).await?)
}

/// `DELETE /users/{uid}`: erases everything the user has, durably.
pub async fn erase(r: Request<'_>, uid: &str) -> Reply {
    let scope = user_scope(&r, uid)?;
    ok(&scoped(r.state, Some("erase"), scope, |s| s.erase_user()).await?)
}
