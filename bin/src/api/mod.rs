//! The HTTP API under `/api/v1` (SPEC §6): one dispatch over method and path, handlers that run
//! the manager's (possibly fsyncing) calls on the blocking pool, JSON errors throughout.

mod backup;
mod body;
mod conversation;
mod error;
mod export;
mod memories;
mod openapi;
mod sessions;
mod snapshots;
mod tenants;
mod users;

use std::sync::Arc;
use std::time::Instant;

use bytes::Buf;
use futures_util::Stream;
use http::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use warp::reply::Response;

pub use error::ApiError;

use coda::{Scope, Scoped};

use crate::metrics::Metrics;
use crate::state::State;

/// What handlers return.
pub type Reply = Result<Response, ApiError>;

/// A JSON response with `status`.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = Response::new(body.into());
            *response.status_mut() = status;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "response failed to serialise");
            let mut response = Response::new("{}".into());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

fn ok<T: Serialize>(value: &T) -> Reply {
    Ok(json_response(StatusCode::OK, value))
}

fn created<T: Serialize>(value: &T) -> Reply {
    Ok(json_response(StatusCode::CREATED, value))
}

fn no_content() -> Reply {
    let mut response = Response::new(Default::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// Runs `f` in `scope` as [`blocking_global`] does: every data operation goes through here, so no
/// handler can reach the manager without the request's scope. Records latency under `op`.
async fn scoped<T, F>(
    state: &State,
    op: Option<&'static str>,
    scope: Scope,
    f: F,
) -> Result<T, ApiError>
where
    F: FnOnce(&Scoped<'_>) -> coda::Result<T> + Send + 'static,
    T: Send + 'static,
{
    blocking_global(state, op, move |m| f(&m.scope(scope))).await
}

/// Runs `f` on the blocking pool (backend calls may wait on I/O), or on this task when it is
/// quick ([`runs_inline`]), inside [`coda::durability::defer`]: the answer waits for the
/// fsyncs its writes handed off, without a thread asleep meanwhile. Records its latency,
/// those waits included, under `op`. Only for settings that belong to no scope (automatic
/// snapshots); data goes through [`scoped`].
async fn blocking_global<T, F>(state: &State, op: Option<&'static str>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&coda::MemoryManager) -> coda::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let manager = Arc::clone(&state.manager);
    let metrics: Arc<Metrics> = Arc::clone(&state.metrics);
    // An operation applied from the cluster's stream runs with its time and id seed.
    let stamp = crate::cluster::current_stamp();
    let start = Instant::now();
    // Writes hand their fsync wait back (`durability::defer`) instead of holding a thread
    // asleep; the answer waits for it below.
    let run = move || {
        // A change and its event happen together with respect to an online backup.
        let _writing = manager.write_gate();
        coda::durability::defer(|| match stamp {
            Some(stamp) => stamp.apply(|| f(&manager)),
            None => f(&manager),
        })
    };
    let (result, waits) = if runs_inline(&state.manager, op) {
        run()
    } else {
        match tokio::task::spawn_blocking(run).await {
            Ok(ran) => ran,
            Err(e) => {
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("the operation did not complete: {e}"),
                ))
            }
        }
    };
    let durable = waits.wait().await;
    if let Some(op) = op {
        metrics.observe(op, start.elapsed());
    }
    let value = result?;
    durable?;
    Ok(value)
}

/// Whether `op` is quick enough to run on an async thread: adding a memory, searching, or
/// adding a turn (unless automatic snapshots are on: a turn may then write one to the
/// store), with a backend whose quick calls never block inside a deferral scope
/// ([`coda::MemoryBackend::quick_when_deferred`]) and a cheap embedder. Two thread hand-offs
/// are most of such a request's cost.
fn runs_inline(manager: &coda::MemoryManager, op: Option<&'static str>) -> bool {
    let quick = match op {
        Some("add" | "search") => true,
        Some("turn") => !manager.auto_snapshot_settings().0,
        _ => false,
    };
    quick && manager.answers_inline()
}

/// The query string as pairs.
pub struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Result<Query, ApiError> {
        serde_urlencoded::from_str(raw)
            .map(Query)
            .map_err(|e| ApiError::invalid("query", e))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A `true`/`false` parameter; absent is false.
    fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(ApiError::invalid(
                name,
                format!("`{v}` is not `true` or `false`"),
            )),
        }
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| ApiError::invalid(name, format!("`{v}` is not a number")))
            })
            .transpose()
    }
}

/// Scope ids a request body may carry beside the query string's.
#[derive(Debug, Default)]
struct ScopeIds {
    user_id: Option<String>,
    agent_id: Option<String>,
    session_id: Option<String>,
}

/// A request as the dispatcher sees it.
pub struct Request<'a> {
    state: &'a State,
    /// The tenant every scope of this request lies in, decided once by
    /// [`State::tenant_for`] from the token (and an admin's `X-Coda-Tenant`), never the body.
    tenant: String,
    /// Who sent it.
    principal: coda::Principal,
    query: Query,
    body: bytes::Bytes,
    /// Applied from the cluster's stream: run here, never published again.
    applying: bool,
}

impl<'a> Request<'a> {
    /// A call from outside HTTP (MCP, the cluster's stream) by a caller already admitted.
    fn called(
        state: &'a State,
        tenant: String,
        principal: coda::Principal,
        query: Vec<(String, String)>,
        body: bytes::Bytes,
    ) -> Self {
        Request {
            state,
            tenant,
            principal,
            query: Query(query),
            body,
            applying: false,
        }
    }

    /// The request's scope from its query string: `user_id` (default `default`), `agent_id`,
    /// `session_id`, each validated (422 naming the field).
    fn scope(&self) -> Result<Scope, ApiError> {
        self.scope_with(ScopeIds::default())
    }

    /// The request's scope from body fields and the query string; an id given in both with
    /// different values is a 422.
    fn scope_with(&self, body: ScopeIds) -> Result<Scope, ApiError> {
        let pick = |name: &str, from_body: Option<String>| -> Result<Option<String>, ApiError> {
            match (from_body, self.query.get(name)) {
                (Some(b), Some(q)) if b != q => Err(ApiError::invalid(
                    name,
                    format!("is `{b}` in the body but `{q}` in the query string"),
                )),
                (Some(b), _) => Ok(Some(b)),
                (None, q) => Ok(q.map(str::to_owned)),
            }
        };
        let user = pick("user_id", body.user_id)?;
        let agent = pick("agent_id", body.agent_id)?;
        let session = pick("session_id", body.session_id)?;
        Ok(Scope::parse(
            &self.tenant,
            user.as_deref(),
            agent.as_deref(),
            session.as_deref(),
        )?)
    }

    /// The scope of a `/sessions/{sid}/...` route: the query's user and agent, session `sid`.
    fn session_scope(&self, sid: &str, body: ScopeIds) -> Result<Scope, ApiError> {
        if body.session_id.is_some() || self.query.get("session_id").is_some_and(|q| q != sid) {
            return Err(ApiError::invalid(
                "session_id",
                "is given by the path; do not repeat it",
            ));
        }
        Ok(self.scope_with(body)?.with_session(sid)?)
    }

    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        body::json(&self.body, false)
    }

    fn json_or_empty<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        body::json(&self.body, true)
    }
}

/// Serves one `/api/v1/...` request.
pub async fn handle<S, B>(
    state: Arc<State>,
    method: Method,
    tail: String,
    raw_query: String,
    headers: HeaderMap,
    body: S,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let reply = async {
        let segments: Vec<String> = tail.trim_end_matches('/').split('/').map(decode).collect();
        let path: Vec<&str> = segments.iter().map(String::as_str).collect();
        if path == ["openapi.json"] {
            // The API's description is public: no token, no tenant, no principal.
            return match method {
                Method::GET => Ok(openapi::response(&state)),
                _ => Err(method_not_allowed(&method, &path)),
            };
        }
        let principal = state
            .authenticate(&headers, None)
            .ok_or_else(ApiError::unauthorized)?;
        let tenant = state.tenant_for(&principal, &headers)?;
        // A tenant token's requests count against its tenant's rate; admins are not limited,
        // so an operator is never locked out by a tenant's burst.
        if matches!(principal, coda::Principal::Tenant(_)) {
            if let Err(wait) = state.rates.admit(&tenant) {
                return Ok(ApiError::rate_limited(wait));
            }
        }
        if method == Method::POST && path == ["import"] {
            // An import may be far over `max_body_bytes`: it is spooled to disk, not memory.
            return export::import(&state, tenant, &raw_query, &headers, body).await;
        }
        let body = if method == Method::GET || method == Method::HEAD {
            bytes::Bytes::new()
        } else {
            body::read(&headers, body, state.config.server.max_body_bytes).await?
        };
        let request = Request {
            state: &state,
            tenant,
            principal,
            query: Query::parse(&raw_query)?,
            body,
            applying: false,
        };
        dispatch(&method, &path, request).await
    }
    .await;
    reply.unwrap_or_else(ApiError::into_response)
}

/// Serves one API call for a caller already authenticated and admitted by its transport (the
/// MCP tools, [`crate::mcp`]): the same dispatch, scopes, events and metrics as `/api/v1`, and
/// the same JSON answer, errors included.
pub(crate) async fn call_as(
    state: &State,
    tenant: String,
    principal: coda::Principal,
    method: Method,
    path: &[&str],
    query: Vec<(String, String)>,
    body: bytes::Bytes,
) -> Response {
    let request = Request::called(state, tenant, principal, query, body);
    dispatch(&method, path, request)
        .await
        .unwrap_or_else(ApiError::into_response)
}

/// Applies one call from the cluster's stream on this node ([`crate::cluster`]): the same
/// dispatch, run here and never published again.
pub(crate) async fn call_applied(
    state: &State,
    tenant: String,
    principal: coda::Principal,
    method: Method,
    path: &[&str],
    query: Vec<(String, String)>,
    body: bytes::Bytes,
) -> Response {
    let request = Request {
        applying: true,
        ..Request::called(state, tenant, principal, query, body)
    };
    dispatch(&method, path, request)
        .await
        .unwrap_or_else(ApiError::into_response)
}

/// Parses a JSON object as a request body is parsed: any error is the API's answer (422 or
/// 400, naming the field), for callers that take arguments outside HTTP ([`crate::mcp`]).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    body::json(bytes, true)
}

/// A path segment with its `%XX` escapes decoded (`s%40x` is `s@x`); one that does not decode
/// to UTF-8 is kept as sent, for validation to refuse by name.
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_owned())
}

/// Every route `dispatch` serves, as (method, path template under `/api/v1`), in its order.
/// `openapi.json` documents exactly these (tests/openapi.rs checks both ways against a server).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/turns"),
    ("GET", "/turns"),
    ("DELETE", "/turns"),
    ("POST", "/persist"),
    ("GET", "/stats"),
    ("POST", "/memories"),
    ("GET", "/memories"),
    ("POST", "/memories/search"),
    ("GET", "/memories/search"),
    ("GET", "/memories/{id}"),
    ("GET", "/memories/{id}/history"),
    ("PATCH", "/memories/{id}"),
    ("DELETE", "/memories/{id}"),
    ("GET", "/snapshots"),
    ("POST", "/snapshots"),
    ("POST", "/snapshots/load"),
    ("POST", "/snapshots/prune"),
    ("GET", "/snapshots/{id}"),
    ("DELETE", "/snapshots/{id}"),
    ("POST", "/snapshots/{id}/save"),
    ("POST", "/snapshots/{id}/apply"),
    ("GET", "/snapshots/{a}/diff/{b}"),
    ("PUT", "/auto-snapshot"),
    ("GET", "/sessions"),
    ("GET", "/sessions/{sid}"),
    ("DELETE", "/sessions/{sid}"),
    ("POST", "/sessions/{sid}/turns"),
    ("GET", "/sessions/{sid}/turns"),
    ("DELETE", "/sessions/{sid}/turns"),
    ("POST", "/sessions/{sid}/persist"),
    ("GET", "/users"),
    ("GET", "/users/{uid}/stats"),
    ("GET", "/users/{uid}/export"),
    ("DELETE", "/users/{uid}"),
    ("GET", "/export"),
    ("POST", "/import"),
    ("POST", "/backup"),
    ("GET", "/tenants"),
    ("GET", "/openapi.json"),
];

async fn dispatch(method: &Method, path: &[&str], r: Request<'_>) -> Reply {
    use Method as M;
    if let Some(node) = r.state.cluster.as_ref() {
        if !r.applying && crate::cluster::replicated(method, path) {
            let query = &r.query.0;
            let submitted =
                crate::cluster::submit(node, &r.tenant, &r.principal, method, path, query, &r.body)
                    .await;
            match submitted {
                Ok(response) => return Ok(response),
                // While NATS is away a search still answers from this node's view (its
                // `memory_retrieve` event, which only the stream can number, is not raised).
                Err(coda_cluster_nats::ClusterError::Unavailable(_))
                    if path == ["memories", "search"] => {}
                Err(e) => return Err(crate::cluster::refused(e)),
            }
        }
    }
    if !takes_body(method, path) {
        r.json_or_empty::<NoBody>()?;
    }
    match (method, path) {
        (&M::POST, ["turns"]) => conversation::add_turn(r).await,
        (&M::GET, ["turns"]) => conversation::turns(r).await,
        (&M::DELETE, ["turns"]) => conversation::clear(r).await,
        (&M::POST, ["persist"]) => conversation::persist(r).await,
        (&M::GET, ["stats"]) => conversation::stats(r).await,
        (&M::POST, ["memories"]) => memories::add(r).await,
        (&M::GET, ["memories"]) => memories::list(r).await,
        (&M::POST, ["memories", "search"]) => memories::search_body(r).await,
        (&M::GET, ["memories", "search"]) => memories::search_query(r).await,
        (&M::GET, ["memories", id]) => memories::get(r, id).await,
        (&M::GET, ["memories", id, "history"]) => memories::history(r, id).await,
        (&M::PATCH, ["memories", id]) => memories::update(r, id).await,
        (&M::DELETE, ["memories", id]) => memories::delete(r, id).await,
        (&M::GET, ["snapshots"]) => snapshots::list(r).await,
        (&M::POST, ["snapshots"]) => snapshots::create(r).await,
        (&M::POST, ["snapshots", "load"]) => snapshots::load(r).await,
        (&M::POST, ["snapshots", "prune"]) => snapshots::prune(r).await,
        (&M::GET, ["snapshots", id]) => snapshots::get(r, id).await,
        (&M::DELETE, ["snapshots", id]) => snapshots::delete(r, id).await,
        (&M::POST, ["snapshots", id, "save"]) => snapshots::save(r, id).await,
        (&M::POST, ["snapshots", id, "apply"]) => snapshots::apply(r, id).await,
        (&M::GET, ["snapshots", a, "diff", b]) => snapshots::diff(r, a, b).await,
        (&M::PUT, ["auto-snapshot"]) => snapshots::auto(r).await,
        (&M::GET, ["sessions"]) => sessions::list(r).await,
        (&M::GET, ["sessions", sid]) => sessions::get(r, sid).await,
        (&M::DELETE, ["sessions", sid]) => sessions::delete(r, sid).await,
        (&M::POST, ["sessions", sid, "turns"]) => sessions::add_turn(r, sid).await,
        (&M::GET, ["sessions", sid, "turns"]) => sessions::turns(r, sid).await,
        (&M::DELETE, ["sessions", sid, "turns"]) => sessions::clear(r, sid).await,
        (&M::POST, ["sessions", sid, "persist"]) => sessions::persist(r, sid).await,
        (&M::GET, ["users"]) => users::list(r).await,
        (&M::GET, ["users", uid, "stats"]) => users::stats(r, uid).await,
        (&M::GET, ["users", uid, "export"]) => export::user(r, uid).await,
        (&M::GET, ["export"]) => export::tenant(r).await,
        (&M::POST, ["import"]) => {
            // Reached only through `call_as`: `handle` streams HTTP imports itself.
            let body = futures_util::stream::once(async move { Ok::<_, warp::Error>(r.body) });
            export::import(r.state, r.tenant, "", &HeaderMap::new(), body).await
        }
        (&M::DELETE, ["users", uid]) => users::erase(r, uid).await,
        (&M::GET, ["tenants"]) => tenants::list(r).await,
        (&M::POST, ["backup"]) => backup::create(r).await,
        (&M::GET, ["openapi.json"]) => Ok(openapi::response(r.state)),
        (_, path) if !methods_for(path).is_empty() => Err(method_not_allowed(method, path)),
        (_, path) => Err(ApiError::not_found(format!(
            "route /api/v1/{}",
            path.join("/")
        ))),
    }
}

fn method_not_allowed(method: &Method, path: &[&str]) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on /api/v1/{}", path.join("/")),
    )
}

/// [`ROUTES`] with each template split into segments and its `{...}` holes counted, once:
/// every request asks [`methods_for`].
fn split_routes() -> &'static [(&'static str, Vec<&'static str>, usize)] {
    static SPLIT: std::sync::OnceLock<Vec<(&str, Vec<&str>, usize)>> = std::sync::OnceLock::new();
    SPLIT.get_or_init(|| {
        ROUTES
            .iter()
            .map(|(method, template)| {
                let segments: Vec<&str> = template.trim_start_matches('/').split('/').collect();
                let holes = segments.iter().filter(|t| t.starts_with('{')).count();
                (*method, segments, holes)
            })
            .collect()
    })
}

/// The methods [`ROUTES`] serves on `path` (segments under `/api/v1`), in [`ROUTES`]' order:
/// the one table both dispatch's 405s and the server's `Allow` headers come from.
pub fn methods_for(path: &[&str]) -> Vec<&'static str> {
    // As in OpenAPI, a concrete path beats a template: `/memories/search` is not the memory
    // `search`, so only the templates with the fewest `{...}` segments that match count.
    let mut best: Option<usize> = None;
    let mut methods = Vec::new();
    for (method, template, holes) in split_routes() {
        let holes = *holes;
        let matches = template.len() == path.len()
            && template
                .iter()
                .zip(path)
                .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()));
        if !matches {
            continue;
        }
        if best.is_some_and(|b| holes > b) {
            continue;
        }
        if best.is_some_and(|b| holes < b) {
            methods.clear();
        }
        best = Some(holes);
        if !methods.contains(method) {
            methods.push(*method);
        }
    }
    methods
}

/// Whether `method` on `path` reads a request body. Any other route refuses a body with
/// fields (422 naming the first), so that a field sent there is never silently ignored; a
/// new body route missing here fails loudly (its fields are 422), never silently.
fn takes_body(method: &Method, path: &[&str]) -> bool {
    use Method as M;
    matches!(
        (method, path),
        (&M::POST, ["turns"])
            | (&M::POST, ["memories"])
            | (&M::POST, ["memories", "search"])
            | (&M::PATCH, ["memories", _])
            | (&M::POST, ["snapshots"])
            | (&M::POST, ["snapshots", "load" | "prune"])
            | (&M::PUT, ["auto-snapshot"])
            | (&M::POST, ["sessions", _, "turns"])
            | (&M::POST, ["import"])
            | (&M::POST, ["backup"])
    )
}

/// The body of a route that takes none: nothing, or `{}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoBody {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every listed route's path is one the dispatcher knows (405 rather than 404 for other
    /// methods); tests/openapi.rs checks against a running server that each one is served.
    #[test]
    fn every_listed_route_is_a_known_path() {
        for (method, template) in ROUTES {
            assert!(method.parse::<Method>().is_ok(), "{method}");
            let concrete = template
                .replace("{id}", "x")
                .replace("{a}", "x")
                .replace("{sid}", "s")
                .replace("{uid}", "u")
                .replace("{b}", "y");
            let path: Vec<&str> = concrete.trim_start_matches('/').split('/').collect();
            assert!(methods_for(&path).contains(method), "{method} {template}");
        }
    }

    #[test]
    fn every_body_route_is_a_listed_route() {
        for (method, path) in [
            ("POST", "turns"),
            ("POST", "memories/search"),
            ("PATCH", "memories/x"),
            ("POST", "snapshots/load"),
            ("POST", "snapshots/prune"),
            ("PUT", "auto-snapshot"),
            ("POST", "sessions/s/turns"),
        ] {
            let path: Vec<&str> = path.split('/').collect();
            let parsed: Method = method.parse().unwrap_or_default();
            assert!(takes_body(&parsed, &path), "{method} {path:?}");
            assert!(methods_for(&path).contains(&method), "{method} {path:?}");
        }
        assert!(!takes_body(&Method::POST, &["persist"]));
        assert!(!takes_body(&Method::DELETE, &["memories", "x"]));
    }

    fn manager(dir: &std::path::Path, backend: &str, embedder: &str) -> Arc<coda::MemoryManager> {
        let toml = format!(
            "[memory]\nbackend = \"{backend}\"\nembedder = \"{embedder}\"\n\
             [backends.file]\ndir = \"{}\"\n[stores.fs]\ndir = \"{}\"\n",
            dir.join("memory").display(),
            dir.join("snapshots").display()
        );
        let config = coda::Config::from_toml_str(&toml).expect("config");
        coda::MemoryManager::builder(config)
            .build()
            .expect("manager")
    }

    #[test]
    fn only_quick_operations_with_a_cheap_embedder_and_a_quick_backend_run_inline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let quick = manager(dir.path(), "memory", "hashing");
        for op in ["add", "search", "turn"] {
            assert!(runs_inline(&quick, Some(op)), "{op}");
        }
        for op in [None, Some("persist"), Some("snapshot"), Some("erase")] {
            assert!(!runs_inline(&quick, op), "{op:?}");
        }
        // A turn may write an automatic snapshot to the store.
        quick.enable_auto_snapshot(10).expect("auto");
        assert!(!runs_inline(&quick, Some("turn")));
        assert!(runs_inline(&quick, Some("add")));
        // The file backend's quick writes hand their fsync wait back (`durability::defer`):
        // they run inline too, the rest on the blocking pool.
        let file = manager(dir.path(), "file", "hashing");
        assert!(runs_inline(&file, Some("add")));
        assert!(!runs_inline(&file, Some("persist")));
    }

    #[test]
    fn concrete_paths_beat_templates() {
        assert_eq!(methods_for(&["memories", "search"]), ["POST", "GET"]);
        assert_eq!(methods_for(&["memories", "x"]), ["GET", "PATCH", "DELETE"]);
        assert!(methods_for(&["memories", "x", "y"]).is_empty());
    }

    #[test]
    fn percent_escapes_in_segments_are_decoded() {
        assert_eq!(decode("s%40home"), "s@home");
        assert_eq!(decode("a%3Ab"), "a:b");
        // Not an escape, or not UTF-8 once decoded: kept as sent, for validation to name.
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%ff"), "%ff");
    }
}
