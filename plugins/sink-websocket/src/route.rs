//! `GET /ws`: authentication, Origin check and limits before the upgrade, then the connection.

use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use coda_core::{Authenticator, Principal, TenantDenied};

use crate::connection::{self, ConnectParams};
use crate::filter::{EventFilter, ScopeFilter, TypeSet};
use crate::protocol;
use crate::sink::WebSocketHub;

/// Who may connect: the configured tokens (admin and tenants) and `allowed_origins`.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Every configured token, and the tenant each opens; none means no authentication.
    pub auth: Authenticator,
    /// Accepted `Origin` values; empty means any.
    pub allowed_origins: Vec<String>,
}

impl Access {
    /// Who presents `presented`; `None` is a 401. Constant time over every configured token.
    pub fn authenticate(&self, presented: Option<&str>) -> Option<Principal> {
        self.auth.authenticate(presented)
    }

    /// Whether `origin` (absent for non-browser clients) is allowed.
    pub fn origin_ok(&self, origin: Option<&str>) -> bool {
        match origin {
            Some(origin) if !self.allowed_origins.is_empty() => {
                self.allowed_origins.iter().any(|allowed| allowed == origin)
            }
            _ => true,
        }
    }
}

/// The bearer token of `Authorization: Bearer T`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A JSON error response in the API's shape: `{"error":{"code","message"}}`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// 422 for a bad query value, shaped like the API's: `{"error":{"code","message","field"}}`.
fn invalid_field(field: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "error": {"code": "invalid_field", "message": message, "field": field}
    });
    let mut response = Response::new(body.to_string().into());
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The `/ws` route for `hub`, guarded by `access`.
pub fn route(hub: Arc<WebSocketHub>, access: Arc<Access>) -> BoxedFilter<(Response,)> {
    warp::path("ws")
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::ext::optional::<OnUpgrade>())
        .map(
            move |headers: HeaderMap, query: String, upgrade: Option<OnUpgrade>| {
                accept(&hub, &access, &headers, &query, upgrade)
            },
        )
        .boxed()
}

fn accept(
    hub: &Arc<WebSocketHub>,
    access: &Access,
    headers: &HeaderMap,
    query: &str,
    upgrade: Option<OnUpgrade>,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let token = bearer(headers).or_else(|| param("token"));
    let Some(principal) = access.authenticate(token) else {
        return error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required (Authorization header or `token` query)",
        );
    };
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if !access.origin_ok(origin) {
        return error_response(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "this Origin is not in server.allowed_origins",
        );
    }
    let mut params = match connect_params(&param) {
        Ok(params) => params,
        Err((field, message)) => return invalid_field(field, &message),
    };
    // Naming a tenant the token may not see reads the same whether or not it exists.
    params.filter.tenant = match stream_tenant(&access.auth, &principal, param("tenant")) {
        Ok(tenant) => tenant,
        Err(TenantDenied::NotFound) => {
            return error_response(StatusCode::NOT_FOUND, "not_found", "no such tenant")
        }
        Err(TenantDenied::Invalid(reason)) => {
            return invalid_field("tenant", &format!("invalid `tenant`: {reason}"))
        }
    };
    let Some(key) = websocket_key(headers) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "not_websocket",
            "expected a WebSocket upgrade (Upgrade: websocket, Sec-WebSocket-Version: 13)",
        );
    };
    let Some(upgrade) = upgrade else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "not_websocket",
            "this connection cannot be upgraded",
        );
    };
    let Some(admission) = hub.admit() else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "the server has max_connections WebSocket connections open (or is shutting down)",
        );
    };
    let max = hub.options.max_message_bytes;
    // tungstenite zeroes up to `read_buffer_size` bytes before each read: clients send
    // little, so a small buffer saves work on every wakeup.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let hub = Arc::clone(hub);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                connection::run(hub, socket, params, admission).await;
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut response = Response::new(Default::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// The tenant whose events a connection carries: a tenant token's own; for an admin, `tenant=ID`,
/// every tenant for `tenant=*` (`None`), else `default` (as on the HTTP API).
fn stream_tenant(
    auth: &Authenticator,
    principal: &Principal,
    asked: Option<&str>,
) -> Result<Option<Box<str>>, TenantDenied> {
    if *principal == Principal::Admin && asked == Some("*") {
        return Ok(None);
    }
    auth.tenant_for(principal, asked)
        .map(|tenant| Some(tenant.into_boxed_str()))
}

/// `Sec-WebSocket-Key`, if this is a well-formed version-13 upgrade request.
fn websocket_key(headers: &HeaderMap) -> Option<String> {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(token))
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION)?.as_bytes() != b"13" {
        return None;
    }
    Some(
        headers
            .get(header::SEC_WEBSOCKET_KEY)?
            .to_str()
            .ok()?
            .to_owned(),
    )
}

/// A bad query value: the parameter, and a message naming it (`invalid `field`: ...`).
type Invalid = (&'static str, String);

pub(crate) fn connect_params<'a>(
    param: &impl Fn(&str) -> Option<&'a str>,
) -> Result<ConnectParams, Invalid> {
    let invalid =
        |field: &'static str, reason: String| (field, format!("invalid `{field}`: {reason}"));
    let number = |name: &'static str| -> Result<Option<u64>, Invalid> {
        param(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| invalid(name, format!("`{v}` is not a whole number")))
            })
            .transpose()
    };
    let types = match param("types") {
        Some(list) => {
            let names: Vec<&str> = list.split(',').collect();
            // The message already reads "invalid `types`: ...".
            TypeSet::of(&protocol::parse_types(&names).map_err(|e| ("types", e))?)
        }
        None => TypeSet::ALL,
    };
    let scope = ScopeFilter::parse(param("user_id"), param("agent_id"), param("session_id"))?;
    let epoch = param("epoch")
        .map(|v| Uuid::parse_str(v).map_err(|_| invalid("epoch", format!("`{v}` is not a uuid"))))
        .transpose()?;
    let since = number("since")?;
    if epoch.is_some() && since.is_none() {
        return Err(invalid("since", "`epoch` needs `since`".to_owned()));
    }
    let batch = match param("batch") {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => return Err(invalid("batch", format!("`{other}` is not 0 or 1"))),
    };
    Ok(ConnectParams {
        filter: EventFilter {
            types,
            scope,
            ..EventFilter::default()
        },
        since: since.map(|since| (since, epoch)),
        replay: number("replay")?.map(|n| n as usize),
        batch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_origins() {
        let open = Access::default();
        assert!(open.authenticate(None).is_some() && open.origin_ok(Some("http://x")));
        let server = coda_core::Config::from_toml_str("[server]\ntokens = [\"alpha\", \"beta\"]")
            .expect("valid")
            .server;
        let guarded = Access {
            auth: Authenticator::new(&server),
            allowed_origins: vec!["http://ok".into()],
        };
        assert_eq!(guarded.authenticate(Some("beta")), Some(Principal::Admin));
        assert!(
            guarded.authenticate(Some("bet")).is_none() && guarded.authenticate(None).is_none()
        );
        assert!(guarded.origin_ok(Some("http://ok")) && guarded.origin_ok(None));
        assert!(!guarded.origin_ok(Some("http://evil")));
    }

    #[test]
    fn bad_query_values_name_the_field() {
        let get = |q: &'static str| {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).expect("query");
            connect_params(&|name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| &*Box::leak(v.clone().into_boxed_str()))
            })
        };
        assert_eq!(get("since=x").expect_err("since").0, "since");
        assert_eq!(
            get("types=memory_store,bogus").expect_err("types").0,
            "types"
        );
        assert_eq!(get("epoch=nope&since=1").expect_err("epoch").0, "epoch");
        assert!(get("types=memory_store&batch=1&since=3").expect("ok").batch);
        for (query, field) in [
            ("user_id=", "user_id"),
            ("user_id=a%20b", "user_id"),
            ("user_id=alice&agent_id=x/y", "agent_id"),
            ("session_id=%C3%A9", "session_id"),
        ] {
            let (named, message) = get(query).expect_err(query);
            assert_eq!(named, field, "{query}");
            assert!(
                message.starts_with(&format!("invalid `{field}`: ")),
                "{message}"
            );
        }
        let (_, message) = get("types=bogus").expect_err("types");
        assert_eq!(message.matches("invalid").count(), 1, "{message}");
        let scoped = get("user_id=alice&session_id=chat-1&types=conversation_turn").expect("ok");
        assert_eq!(
            scoped.filter.scope,
            ScopeFilter::parse(Some("alice"), None, Some("chat-1")).expect("valid")
        );
    }
}
