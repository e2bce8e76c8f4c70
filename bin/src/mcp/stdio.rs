//! `coda mcp`: the same eleven tools over stdio (SPEC §11), for assistants that launch their
//! MCP servers as child processes. Stdout carries only JSON-RPC; logs go to stderr.
//!
//! - Local (the default): this process opens the configured store itself and makes every call
//!   through the HTTP API's own dispatcher, as `/mcp` does, so the answers and the events sent
//!   to the configured sinks are the same. Run it with no `coda serve` on the same store.
//! - Proxy (`--url`): every call goes to a running server's `/api/v1` with `--token`
//!   (or `CODA_TOKEN`) and optionally `--tenant`.

use std::sync::Arc;
use std::time::Instant;

use coda::sink_websocket::Access;
use coda::{Config, MemoryManager, Principal, TenantDenied};
use rmcp::ServiceExt as _;

use super::dispatch::Dispatcher;
use super::remote::Remote;
use super::{Caller, CodaTools};
use crate::metrics::Metrics;
use crate::rate::RateLimits;
use crate::state::State;

/// Where `coda mcp` sends the tools' calls.
// Made once per process: boxing the configuration would save nothing worth the noise.
#[allow(clippy::large_enum_variant)]
pub enum Target {
    /// Open the configured store in this process.
    Local {
        /// The configuration, as `coda serve` loads it.
        config: Config,
        /// The tenant to work on (default `default`); it must be configured.
        tenant: Option<String>,
    },
    /// Proxy to a running server.
    Remote {
        /// The server's base URL (`http://127.0.0.1:7700`).
        url: String,
        /// Its bearer token, if it has tokens.
        token: Option<String>,
        /// The tenant an admin token works on (`X-Coda-Tenant`).
        tenant: Option<String>,
    },
}

/// Serves MCP on stdin/stdout until the client closes stdin (or SIGINT/SIGTERM), then, in
/// local mode, flushes the backend and every sink.
pub fn run(target: Target) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(serve(target));
    // A read of stdin still pending after a signal cannot be cancelled; do not wait for it.
    runtime.shutdown_background();
    result
}

async fn serve(target: Target) -> Result<(), Box<dyn std::error::Error>> {
    match target {
        Target::Local { config, tenant } => {
            let state = open(config).await?;
            let tenant = state
                .access
                .auth
                .tenant_for(&Principal::Admin, tenant.as_deref())
                .map_err(|denied| match denied {
                    TenantDenied::NotFound => {
                        "invalid `--tenant`: no such tenant in [[server.tenants]]".to_owned()
                    }
                    TenantDenied::Invalid(e) => format!("invalid `--tenant`: {e}"),
                })?;
            tracing::info!(%tenant, "coda mcp: serving MCP on stdio over the configured store");
            let caller = Caller {
                tenant,
                principal: Principal::Admin,
            };
            let served = speak(Dispatcher::Local {
                state: Arc::clone(&state),
                caller,
            })
            .await;
            let manager = Arc::clone(&state.manager);
            tokio::task::spawn_blocking(move || manager.shutdown()).await??;
            served
        }
        Target::Remote { url, token, tenant } => {
            let remote = Remote::new(&url, token, tenant)?;
            if !remote.has_token() {
                tracing::warn!(
                    "coda mcp: no token given (--token or CODA_TOKEN); a server with tokens \
                     will refuse every call"
                );
            }
            tracing::info!(
                url = remote.base(),
                "coda mcp: serving MCP on stdio, proxying"
            );
            speak(Dispatcher::Remote(Arc::new(remote))).await
        }
    }
}

/// Opens Coda from `config` with the state the API's dispatcher needs (no listener).
async fn open(config: Config) -> Result<Arc<State>, Box<dyn std::error::Error>> {
    if config.cluster.enabled() {
        // Writing to a node's store behind the cluster's back would fork it from the others.
        return Err(
            "this configuration is a cluster node (`[cluster] nats_url` is set): \
                    serve MCP from a node with `coda mcp --url http://NODE` instead"
                .into(),
        );
    }
    let opened = config.clone();
    let manager = tokio::task::spawn_blocking(move || MemoryManager::open(opened)).await??;
    let access = Arc::new(Access {
        auth: coda::Authenticator::new(&config.server),
        allowed_origins: config.server.allowed_origins.clone(),
    });
    Ok(Arc::new(State {
        metrics: Arc::new(Metrics::new(Arc::clone(&manager), None)),
        rates: RateLimits::new(&config.server.tenants),
        config,
        manager,
        // No WebSocket routes here: a `websocket` sink's events reach no one, the others'
        // (the log, …) are written as by the server.
        hub: None,
        access,
        started: Instant::now(),
        cluster: None,
    }))
}

/// Runs the MCP session on stdio until it ends.
async fn speak(dispatcher: Dispatcher) -> Result<(), Box<dyn std::error::Error>> {
    let service = CodaTools::with(dispatcher)
        .serve(rmcp::transport::stdio_pipes())
        .await?;
    let cancel = service.cancellation_token();
    let stopped = tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("coda mcp: stopping on a signal");
        cancel.cancel();
    });
    let reason = service.waiting().await?;
    stopped.abort();
    tracing::debug!(?reason, "coda mcp: the MCP session ended");
    Ok(())
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
