//! Where a tool's `/api/v1` call goes. The tools build the same call whichever way Coda is
//! reached, so `/mcp`, `coda mcp` and `coda mcp --url` answer the same JSON:
//! - [`Dispatcher::Server`]: `/mcp` in the server, the caller taken from the HTTP request;
//! - [`Dispatcher::Local`]: `coda mcp` with its own store, one fixed caller;
//! - [`Dispatcher::Remote`]: `coda mcp --url`, the call sent to a running server's `/api/v1`.
//!
//! Also here: how a tool's arguments become the call (query, body, parsing as the API parses)
//! and how the API's answer becomes the tool's result.

use std::sync::Arc;

use http::Method;
use http_body_util::BodyExt as _;
use rmcp::model::{CallToolResult, ContentBlock, Extensions, JsonObject};
use rmcp::ErrorData;
use serde::Serialize;

use super::remote::Remote;
use super::Caller;
use crate::api::ApiError;
use crate::state::State;

/// One `/api/v1` call: a method, the path's segments after `/api/v1` (not yet escaped), query
/// pairs and a JSON body (empty for none).
#[derive(Debug, Clone)]
pub(crate) struct ApiCall {
    /// The HTTP method.
    pub(crate) method: Method,
    /// The path's segments after `/api/v1`, as plain text.
    pub(crate) path: Vec<String>,
    /// Query pairs, in order.
    pub(crate) query: Vec<(String, String)>,
    /// The JSON body; empty for none.
    pub(crate) body: bytes::Bytes,
}

/// The API's answer: its status and body.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The HTTP status.
    pub(crate) status: http::StatusCode,
    /// The body (JSON, or empty).
    pub(crate) body: bytes::Bytes,
}

impl Answer {
    /// The answer a server-side reply carries.
    pub(crate) async fn of(response: warp::reply::Response) -> Result<Answer, ErrorData> {
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            .to_bytes();
        Ok(Answer { status, body })
    }
}

/// Where the tools' calls go.
#[derive(Clone)]
pub(crate) enum Dispatcher {
    /// In the server: `/mcp`, each request's [`Caller`] decided by the endpoint.
    Server(Arc<State>),
    /// In this process, for one caller: `coda mcp` over its own store.
    Local {
        /// The store's state.
        state: Arc<State>,
        /// Who every call is made as.
        caller: Caller,
    },
    /// A running server's `/api/v1`: `coda mcp --url`.
    Remote(Arc<Remote>),
}

impl Dispatcher {
    /// Makes `call`; `extensions` are the MCP request's (they carry `/mcp`'s HTTP request).
    pub(crate) async fn call(
        &self,
        extensions: &Extensions,
        call: ApiCall,
    ) -> Result<Answer, ErrorData> {
        let (state, caller) = match self {
            Dispatcher::Server(state) => {
                let caller = extensions
                    .get::<http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<Caller>())
                    .cloned()
                    .ok_or_else(|| {
                        ErrorData::internal_error(
                            "the request reached the tools without passing authentication",
                            None,
                        )
                    })?;
                (state, caller)
            }
            Dispatcher::Local { state, caller } => (state, caller.clone()),
            Dispatcher::Remote(remote) => {
                let remote = Arc::clone(remote);
                return tokio::task::spawn_blocking(move || remote.call(&call))
                    .await
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None));
            }
        };
        let path: Vec<&str> = call.path.iter().map(String::as_str).collect();
        let response = crate::api::call_as(
            state,
            caller.tenant,
            caller.principal,
            call.method,
            &path,
            call.query,
            call.body,
        )
        .await;
        Answer::of(response).await
    }
}

/// Query pairs for the scope ids that are given.
pub(super) fn scope_query(
    user: Option<String>,
    agent: Option<String>,
    session: Option<String>,
) -> Query {
    let mut query = Query::default();
    query.opt("user_id", user);
    query.opt("agent_id", agent);
    query.opt("session_id", session);
    query
}

/// A query string as pairs.
#[derive(Default)]
pub(super) struct Query(pub(super) Vec<(String, String)>);

impl Query {
    pub(super) fn opt(&mut self, name: &str, value: Option<impl ToString>) {
        if let Some(value) = value {
            self.0.push((name.to_owned(), value.to_string()));
        }
    }
}

/// A JSON body, or a tool error when it cannot be written (never for these types).
pub(super) fn body<T: Serialize>(value: &T) -> Result<bytes::Bytes, ErrorData> {
    serde_json::to_vec(value)
        .map(bytes::Bytes::from)
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))
}

/// A tool's answer from the API's: 2xx is the result, any other a tool error (`isError`)
/// whose text is the API's error JSON, naming the field.
pub(super) fn answer(answer: Answer) -> CallToolResult {
    let text = if answer.body.is_empty() {
        "{}".to_owned()
    } else {
        String::from_utf8_lossy(&answer.body).into_owned()
    };
    let content = vec![ContentBlock::text(text)];
    if answer.status.is_success() {
        CallToolResult::success(content)
    } else {
        CallToolResult::error(content)
    }
}

/// The tool error for arguments the API's parser refused.
pub(super) async fn refuse(refused: ApiError) -> Result<CallToolResult, ErrorData> {
    Ok(answer(Answer::of(refused.into_response()).await?))
}

/// A tool's arguments parsed as the API parses a body: a wrong type or unknown field is the
/// API's 422 naming it, answered as a tool error rather than a protocol error.
pub(super) fn parse<T: serde::de::DeserializeOwned>(raw: JsonObject) -> Result<T, ApiError> {
    match serde_json::to_vec(&raw) {
        Ok(bytes) => crate::api::parse_json(&bytes),
        Err(e) => Err(ApiError::invalid("arguments", e)),
    }
}
