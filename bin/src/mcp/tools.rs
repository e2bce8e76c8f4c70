//! The eleven MCP tools of SPEC §11. Each is one `/api/v1` call, made through the
//! [`Dispatcher`]: in the server (or `coda mcp`) by [`crate::api::call_as`] with the caller's
//! tenant, or sent to a running server (`coda mcp --url`): the same scopes, validation, events
//! and JSON either way. A 2xx answer is the tool's text; any other is a tool error
//! (`isError: true`) whose text is the API's error JSON, which names the bad field.

use std::sync::Arc;

use http::Method;
use rmcp::handler::server::common::{schema_for_empty_input, schema_for_input};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, Extensions, Implementation, JsonObject, ServerCapabilities, ServerConfig,
};
use rmcp::{tool, tool_handler, tool_router, ErrorData, ServerHandler};
use schemars::JsonSchema;
use serde_json::{Map, Value};

use super::args::{
    AddMemoryArgs, ListArgs, MemoryArgs, ScopeArgs, SearchArgs, SnapshotArgs, TurnArgs, UpdateArgs,
};
use super::dispatch::{answer, body, parse, refuse, scope_query, ApiCall, Dispatcher, Query};
use crate::state::State;

/// What a tool answers: a result, error or not; `Err` only when the call never reached Coda.
type ToolResult = Result<CallToolResult, ErrorData>;

/// Coda's MCP server: the tools, bound to where their calls go.
#[derive(Clone)]
pub struct CodaTools {
    dispatcher: Dispatcher,
}

/// The JSON Schema `tools/list` gives for arguments `T`.
fn input<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    schema_for_input::<T>().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a tool's argument schema failed to generate");
        schema_for_empty_input()
    })
}

/// The session a turn tool works on: `session_id`, default `default`.
fn session(session_id: Option<String>) -> String {
    session_id.unwrap_or_else(|| "default".to_owned())
}

impl CodaTools {
    /// The tools of the server whose state is `state` (`/mcp`).
    pub fn new(state: Arc<State>) -> CodaTools {
        CodaTools::with(Dispatcher::Server(state))
    }

    /// The tools, their calls going to `dispatcher`.
    pub(crate) fn with(dispatcher: Dispatcher) -> CodaTools {
        CodaTools { dispatcher }
    }

    /// Makes the `/api/v1` call and turns its answer into a tool result.
    async fn call(
        &self,
        extensions: &Extensions,
        method: Method,
        path: &[&str],
        query: Query,
        body: bytes::Bytes,
    ) -> ToolResult {
        let call = ApiCall {
            method,
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            query: query.0,
            body,
        };
        Ok(answer(self.dispatcher.call(extensions, call).await?))
    }
}

#[tool_router]
impl CodaTools {
    /// Stores a memory.
    #[tool(
        description = "Store a long-term memory for a user (and optionally an agent and session). Returns the memory as JSON.",
        input_schema = input::<AddMemoryArgs>()
    )]
    async fn add_memory(
        &self,
        extensions: Extensions,
        Parameters(raw): Parameters<JsonObject>,
    ) -> ToolResult {
        let args: AddMemoryArgs = match parse(raw) {
            Ok(args) => args,
            Err(refused) => return refuse(refused).await,
        };
        let body = body(&args)?;
        self.call(
            &extensions,
            Method::POST,
            &["memories"],
            Query::default(),
            body,
        )
        .await
    }

    /// Searches memories.
    #[tool(
        description = "Search a user's memories by meaning and words. Returns {\"results\": [...]} best first.",
        input_schema = input::<SearchArgs>()
    )]
    async fn search_memories(
        &self,
        extensions: Extensions,
        Parameters(raw): Parameters<JsonObject>,
    ) -> ToolResult {
        let args: SearchArgs = match parse(raw) {
            Ok(args) => args,
            Err(refused) => return refuse(refused).await,
        };
        let body = body(&args)?;
        self.call(
            &extensions,
            Method::POST,
            &["memories", "search"],
            Query::default(),
            body,
        )
        .await
    }

    /// Lists memories.
    #[tool(
        description = "List a user's memories, newest first, a page at a time.",
        input_schema = input::<ListArgs>()
    )]
    async fn list_memories(
        &self,
        extensions: Extensions,
        Parameters(raw): Parameters<JsonObject>,
    ) -> ToolResult {
        let args: ListArgs = match parse(raw) {
            Ok(args) => args,
            Err(refused) => return refuse(refused).await,
        };
        let mut query = scope_query(args.user_id, args.agent_id, args.session_id);
        query.opt("limit", args.limit);
        query.opt("offset", args.offset);
        query.opt("type", args.memory_type);
        query.opt("include_superseded", args.include_superseded);
        query.opt("include_expired", args.include_expired);
        self.call(
            &extensions,
            Method::GET,
            &["memories"],
            query,
            Default::default(),
        )
        .await
    }

    /// Reads one memory.
    #[tool(
        description = "Read one memory by id.",
        input_schema = input::<MemoryArgs>()
    )]
    async fn get_memory(
        &self,
        extensions: Extensions,
        Parameters(raw): Parameters<JsonObject>,
    ) -> ToolResult {
        let args: MemoryArgs = match parse(raw) {
            Ok(args) => args,
            Err(refused) => return refuse(refused).await,
        };
        let query = scope_query(args.user_id, args.agent_id, args.session_id);
        self.call(
            &extensions,
            Method::GET,
            &["memories", &args.id],
            query,
            Default::default(),
        )
        .await
    }

    /// Changes a memory.
    #[tool(
        description = "Change a memory's content, type, importance, metadata or expiry. Returns the updated memory.",
        input_schema = input::<UpdateArgs>()
    )]
    async fn update_memory(
        &self,
        extensions: Extensions,
        Parameters(raw): Parameters<JsonObject>,
    ) -> ToolResult {
        let args: UpdateArgs = match parse(raw) {
            Ok(args) => args,
            Err(refused) => return refuse(refused).await,
        };
        let query = scope_query(args.user_id, args.agent_id, args.session_id);
        let mut patch = Map::new();
        let mut set = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                patch.insert(key.to_owned(), value);
            }
        };
        set("content", args.content.map(Value::from));
        set("memory_type", args.memory_type.map(Value::from));
        set("importance", args.importance.map(Value::from));
        set("metadata", args.metadata.map(Value::Object));
        // Present but null removes the expiry, as in the PATCH body.
        set(
            "expires_at",
            args.expires_at
                .map(|at| at.map_or(Value::Null, Value::from)),
        );
        set("ttl_s", args.ttl_s.map(Value::from));
        let body = body(&patch)?;
        self.call(
            &extensions,
            Method::PATCH,
            &["memories", &args.id],
            query,
            body,
        )
        .await
    }

    /// Deletes a memory.
    #[tool(
        description = "Delete a memory by id.",
        input_schema = input::<MemoryArgs>()
    )]
    async fn delete_memory(
        &self,
        extensions: Extensions,
        Parameters(raw): Parameters<JsonObject>,
    ) -> ToolResult {
        let args: MemoryArgs = match parse(raw) {
            Ok(args) => args,
            Err(refused) => return refuse(refused).await,
        };
        let query = scope_query(args.user_id, args.agent_id, args.session_id);
        self.call(
            &extensions,
            Method::DELETE,
            &["memories", &args.id],
            query,
            Default::default(),
        )
        .await
    }

    /// A memory's versions.
    #[tool(
        description = "Every version of a memory, oldest first: {\"history\": [...]}.",
        input_schema = input::<MemoryArgs>()
    )]
    async fn memory_history(
        &self,
        extensions: Extensions,
        Parameters(raw): Parameters<JsonObject>,
    ) -> ToolResult {
        let args: MemoryArgs = match parse(raw) {
            Ok(args) => args,
            Err(refused) => return refuse(refused).await,
        };
        let query = scope_query(args.user_id, args.agent_id, args.session_id);
        self.call(
            &extensions,
            Method::GET,
            &["memories", &args.id, "history"],
            query,
            Default::default(),
        )
        .await
    }

    /// Adds a conversation turn.
    #[tool(
        description = "Add a conversation turn to a session (default `default`), creating the session.",
        input_schema = input::<TurnArgs>()
    )]
    async fn add_turn(
        &self,
        extensions: Extensions,
        Parameters(raw): Parameters<JsonObject>,
    ) -> ToolResult {
        let args: TurnArgs = match parse(raw) {
            Ok(args) => args,
            Err(refused) => return refuse(refused).await,
        };
        let sid = session(args.session_id);
        let mut turn = Map::new();
        turn.insert("role".into(), Value::from(args.role));
        turn.insert("content".into(), Value::from(args.content));
        if let Some(name) = args.name {
            turn.insert("name".into(), Value::from(name));
        }
        if let Some(user) = args.user_id {
            turn.insert("user_id".into(), Value::from(user));
        }
        if let Some(agent) = args.agent_id {
            turn.insert("agent_id".into(), Value::from(agent));
        }
        let body = body(&turn)?;
        self.call(
            &extensions,
            Method::POST,
            &["sessions", &sid, "turns"],
            Query::default(),
            body,
        )
        .await
    }

    /// A session's short-term window.
    #[tool(
        description = "The recent turns of a session (default `default`).",
        input_schema = input::<ScopeArgs>()
    )]
    async fn get_turns(
        &self,
        extensions: Extensions,
        Parameters(raw): Parameters<JsonObject>,
    ) -> ToolResult {
        let args: ScopeArgs = match parse(raw) {
            Ok(args) => args,
            Err(refused) => return refuse(refused).await,
        };
        let sid = session(args.session_id);
        let query = scope_query(args.user_id, args.agent_id, None);
        self.call(
            &extensions,
            Method::GET,
            &["sessions", &sid, "turns"],
            query,
            Default::default(),
        )
        .await
    }

    /// Persists a session's new turns.
    #[tool(
        description = "Extract memories from a session's turns not yet persisted (default session `default`).",
        input_schema = input::<ScopeArgs>()
    )]
    async fn persist(
        &self,
        extensions: Extensions,
        Parameters(raw): Parameters<JsonObject>,
    ) -> ToolResult {
        let args: ScopeArgs = match parse(raw) {
            Ok(args) => args,
            Err(refused) => return refuse(refused).await,
        };
        let sid = session(args.session_id);
        let query = scope_query(args.user_id, args.agent_id, None);
        self.call(
            &extensions,
            Method::POST,
            &["sessions", &sid, "persist"],
            query,
            Default::default(),
        )
        .await
    }

    /// Takes a snapshot.
    #[tool(
        description = "Capture a user's memories and one of its sessions as a snapshot; `save` stores it.",
        input_schema = input::<SnapshotArgs>()
    )]
    async fn create_snapshot(
        &self,
        extensions: Extensions,
        Parameters(raw): Parameters<JsonObject>,
    ) -> ToolResult {
        let args: SnapshotArgs = match parse(raw) {
            Ok(args) => args,
            Err(refused) => return refuse(refused).await,
        };
        let query = scope_query(args.user_id, args.agent_id, args.session_id);
        let mut create = Map::new();
        if let Some(save) = args.save {
            create.insert("save".into(), Value::from(save));
        }
        let body = body(&create)?;
        self.call(&extensions, Method::POST, &["snapshots"], query, body)
            .await
    }
}

#[tool_handler]
impl ServerHandler for CodaTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("coda", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Coda: long-term memory and conversation sessions. Every tool takes user_id \
                 (default `default`), agent_id and session_id scope ids.",
            )
    }
}
