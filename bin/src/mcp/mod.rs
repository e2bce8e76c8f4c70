//! MCP (SPEC §11) with the official `rmcp` SDK. Over Streamable HTTP at `/mcp`: the SDK's tower
//! service, mounted in the server's accept loop behind the same bearer tokens, tenants and rate
//! limits as `/api/v1`. Over stdio: `coda mcp` ([`stdio`]). Each tool is one `/api/v1` call
//! (see `CodaTools`), so it answers the same JSON and publishes the same events everywhere.

mod args;
mod dispatch;
mod remote;
pub mod stdio;
mod tools;

use std::sync::Arc;

use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tower_service::Service as _;
use warp::reply::{Reply as _, Response};

use crate::api::ApiError;
use crate::state::State;

pub use tools::CodaTools;

/// The path MCP is served on.
pub const PATH: &str = "/mcp";

/// Who a `/mcp` request comes from, decided before the SDK sees it and handed to each tool
/// call through the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The tenant every call of this request works on.
    pub(crate) tenant: String,
    /// Who sent it.
    pub(crate) principal: coda::Principal,
}

/// The `/mcp` endpoint: authenticates, then hands the request to the SDK.
#[derive(Clone)]
pub struct Mcp {
    state: Arc<State>,
    service: StreamableHttpService<CodaTools, LocalSessionManager>,
}

impl Mcp {
    /// The endpoint for `state`'s server.
    pub fn new(state: Arc<State>) -> Mcp {
        let mut config = StreamableHttpServerConfig::default();
        // Stateless: every POST carries its own token, so every call is authenticated anew.
        config.legacy_session_mode = false;
        config.json_response = true;
        config.max_request_body_bytes = state.config.server.max_body_bytes;
        if !state.access.auth.is_open() {
            // With tokens, a request is only served with one, so a rebinding page gains
            // nothing; the SDK's loopback-only Host check stays on for the open server.
            config.allowed_hosts = Vec::new();
        }
        config.allowed_origins = state.config.server.allowed_origins.clone();
        let for_tools = Arc::clone(&state);
        let service = StreamableHttpService::new(
            move || Ok(CodaTools::new(Arc::clone(&for_tools))),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        Mcp { state, service }
    }

    /// Serves one `/mcp` request: 401 without a valid token, the tenant's 429 over its rate.
    pub async fn serve(&self, mut request: http::Request<Incoming>) -> Response {
        let headers = request.headers();
        let Some(principal) = self.state.authenticate(headers, None) else {
            return ApiError::unauthorized().into_response();
        };
        let tenant = match self.state.tenant_for(&principal, headers) {
            Ok(tenant) => tenant,
            Err(e) => return e.into_response(),
        };
        if matches!(principal, coda::Principal::Tenant(_)) {
            if let Err(wait) = self.state.rates.admit(&tenant) {
                return ApiError::rate_limited(wait);
            }
        }
        request
            .extensions_mut()
            .insert(Caller { tenant, principal });
        let mut service = self.service.clone();
        let response = match service.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let stream = BodyDataStream::new(body);
        let mut reply = warp::reply::stream(stream).into_response();
        *reply.status_mut() = parts.status;
        *reply.headers_mut() = parts.headers;
        reply
    }
}

/// Whether `path` is served by [`Mcp`].
pub fn is_mcp(path: &str) -> bool {
    path == PATH || path == "/mcp/"
}
