//! Tenants (SPEC §9): `GET /tenants`, for admin tokens only.

use serde_json::json;

use super::{ok, scoped, ApiError, Reply, Request};
use crate::state::State;

/// `GET /tenants`: every tenant with its memory and session counts. Anyone but an admin gets
/// the very 404 an unknown route gets, so the route does not even show it exists.
pub async fn list(r: Request<'_>) -> Reply {
    if !State::is_admin(&r.principal) {
        return Err(ApiError::not_found("route /api/v1/tenants"));
    }
    let mut tenants = Vec::new();
    for id in r.state.access.auth.tenant_ids() {
        let scope = coda::Scope::parse(&id, None, None, None)?;
        let (memories, sessions) = scoped(r.state, None, scope, |s| s.tenant_totals()).await?;
        tenants.push(json!({"id": id, "memories": memories, "sessions": sessions}));
    }
    ok(&json!({ "tenants": tenants }))
}
