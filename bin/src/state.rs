//! What every route shares, and the one place a request's tenant is decided.

use std::sync::Arc;
use std::time::Instant;

use coda::sink_websocket::{Access, WebSocketHub};
use coda::{Config, MemoryManager, Principal, TenantDenied};
use http::HeaderMap;

use crate::api::ApiError;
use crate::metrics::Metrics;
use crate::rate::RateLimits;

/// The header an admin names a tenant with (SPEC §9).
pub const TENANT_HEADER: &str = "x-coda-tenant";

/// The server's shared state.
pub struct State {
    /// The configuration in force.
    pub config: Config,
    /// Coda itself.
    pub manager: Arc<MemoryManager>,
    /// The WebSocket sink's connections, if a `websocket` sink is configured.
    pub hub: Option<Arc<WebSocketHub>>,
    /// Tokens (admin and tenants) and origins.
    pub access: Arc<Access>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Each tenant's `rate_per_s` bucket.
    pub rates: RateLimits,
    /// When the server started.
    pub started: Instant,
    /// This node of the cluster, when `[cluster]` names a NATS server (SPEC §12).
    pub cluster: Option<crate::cluster::Node>,
}

impl State {
    /// Who sends the request: `None` (a 401) when tokens are configured and it carries none
    /// that matches; [`Principal::Admin`] for everyone when no token is configured.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Option<Principal> {
        let token = coda::sink_websocket::bearer(headers).or(query_token);
        self.access.authenticate(token)
    }

    /// Whether `principal` may use admin-only routes (`GET /tenants`; `/metrics` once tenants
    /// are configured). Without tokens everyone is an admin, as before tenants.
    pub fn is_admin(principal: &Principal) -> bool {
        *principal == Principal::Admin
    }

    /// The tenant a request works on: a tenant token's own; an admin's `X-Coda-Tenant`, else
    /// `default`. A tenant token naming any other tenant gets the same 404 as an admin naming
    /// an unknown one: the answer never tells whether another tenant exists.
    pub fn tenant_for(
        &self,
        principal: &Principal,
        headers: &HeaderMap,
    ) -> Result<String, ApiError> {
        // A header that is not even text can name no tenant; it is refused like a bad id.
        let asked = headers
            .get(TENANT_HEADER)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"));
        self.access
            .auth
            .tenant_for(principal, asked)
            .map_err(|denied| match denied {
                TenantDenied::NotFound => ApiError::not_found("tenant"),
                TenantDenied::Invalid(e) => ApiError::invalid("X-Coda-Tenant", e),
            })
    }
}
