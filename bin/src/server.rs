//! The server: one listener for `/ws`, `/api/v1`, `/metrics`, `/healthz` and `/`, an accept loop
//! that sets TCP_NODELAY, and graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coda::sink_websocket::{self, Access, WebSocketHub, WebSocketSink};
use coda::{Config, MemoryManager};
use http::{HeaderMap, StatusCode};
use hyper::service::Service as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::api::{self, json_response, ApiError};
use crate::http_semantics::HttpRules;
use crate::metrics::Metrics;
use crate::state::State;

/// How long shutdown waits for requests and WebSocket closes to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server listens on (with the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The memory manager the server serves.
    pub fn manager(&self) -> &Arc<MemoryManager> {
        &self.state.manager
    }

    /// Stops accepting, lets requests finish, closes WebSockets with 1001 after writing what
    /// they have queued, then flushes the backend and every sink.
    pub async fn shutdown(self) -> coda::Result<()> {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "server task failed");
        }
        if let Some(node) = &self.state.cluster {
            node.stop().await;
        }
        let manager = Arc::clone(&self.state.manager);
        tokio::task::spawn_blocking(move || manager.shutdown())
            .await
            .map_err(|e| coda::Error::Unavailable(format!("shutdown did not complete: {e}")))?
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> coda::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Opens Coda from `config` and starts serving on `server.bind`; must run inside a tokio
/// runtime.
pub async fn start(config: Config) -> coda::Result<ServerHandle> {
    if config.cluster.enabled() {
        let (node, manager) = crate::cluster::connect(&config).await?;
        return serve(config, manager, Some(node)).await;
    }
    let opened = config.clone();
    let manager = tokio::task::spawn_blocking(move || MemoryManager::open(opened))
        .await
        .map_err(|e| coda::Error::Unavailable(format!("opening Coda failed: {e}")))??;
    start_with(config, manager).await
}

/// Starts serving an already opened manager.
pub async fn start_with(config: Config, manager: Arc<MemoryManager>) -> coda::Result<ServerHandle> {
    serve(config, manager, None).await
}

async fn serve(
    config: Config,
    manager: Arc<MemoryManager>,
    cluster: Option<crate::cluster::Node>,
) -> coda::Result<ServerHandle> {
    let hub = websocket_hub(&manager);
    let access = Arc::new(Access {
        auth: coda::Authenticator::new(&config.server),
        allowed_origins: config.server.allowed_origins.clone(),
    });
    let metrics = Arc::new(Metrics::new(Arc::clone(&manager), hub.clone()));
    let bind = config.server.bind.clone();
    let rates = crate::rate::RateLimits::new(&config.server.tenants);
    let state = Arc::new(State {
        rates,
        config,
        manager,
        hub,
        access,
        metrics,
        started: Instant::now(),
        cluster,
    });
    if let Some(node) = &state.cluster {
        crate::cluster::start(node, &state)?;
    }
    let listener = TcpListener::bind(&bind)
        .await
        .map_err(|e| coda::Error::io("bind", &bind, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| coda::Error::io("bind", &bind, e))?;
    if let Some(warning) = open_to_the_network(addr, &state.access.auth) {
        tracing::warn!("{warning}");
    }
    let (stop, stopped) = watch::channel(false);
    let routes = routes(Arc::clone(&state));
    let task = tokio::spawn(accept_loop(listener, routes, Arc::clone(&state), stopped));
    Ok(ServerHandle {
        addr,
        state,
        stop,
        task,
    })
}

/// The warning `serve` logs once when anyone who can reach `addr` could read and change every
/// memory: bound beyond loopback with no token configured.
pub fn open_to_the_network(
    addr: std::net::SocketAddr,
    auth: &coda::Authenticator,
) -> Option<String> {
    (auth.is_open() && !addr.ip().is_loopback()).then(|| {
        format!(
            "listening on {addr}, not a loopback address, without any token: anyone who can \
             reach it can read and change every memory; set server.tokens or [[server.tenants]]"
        )
    })
}

/// The WebSocket sink's hub, if one is configured.
fn websocket_hub(manager: &MemoryManager) -> Option<Arc<WebSocketHub>> {
    manager.bus().sinks().iter().find_map(|sink| {
        sink.as_any()?
            .downcast_ref::<WebSocketSink>()
            .map(WebSocketSink::hub)
    })
}

async fn accept_loop(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    state: Arc<State>,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let rules = Arc::new(HttpRules::new(state.config.server.allowed_origins.clone()));
    let mcp = crate::mcp::Mcp::new(Arc::clone(&state));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that never finishes its request headers is dropped instead of held forever.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        // Small event frames must not wait for Nagle's algorithm.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY failed");
        }
        let route = TowerToHyperService::new(warp::service(routes.clone()));
        let rules = Arc::clone(&rules);
        let mcp = mcp.clone();
        let service = hyper::service::service_fn(move |request: http::Request<_>| {
            let (rules, route, mcp) = (Arc::clone(&rules), route.clone(), mcp.clone());
            async move {
                // `/mcp` is the MCP SDK's own service (SPEC §11), beside warp's routes.
                if crate::mcp::is_mcp(request.uri().path()) {
                    return Ok::<_, Infallible>(mcp.serve(request).await);
                }
                let response = rules
                    .serve(request, |request| async move {
                        match route.call(request).await {
                            Ok(response) => response,
                            Err(never) => match never {},
                        }
                    })
                    .await;
                Ok::<_, Infallible>(response)
            }
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Upgraded WebSockets are no longer hyper's: close them ourselves, after their queues.
    if let Some(hub) = &state.hub {
        hub.close_all();
    }
    let requests = graceful.shutdown();
    let sockets = async {
        if let Some(hub) = &state.hub {
            hub.closed().await;
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, async { tokio::join!(requests, sockets) })
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within the shutdown grace period");
    }
}

fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    let with_state = {
        let state = Arc::clone(&state);
        warp::any().map(move || Arc::clone(&state))
    };
    let query = || warp::query::raw().or(warp::any().map(String::new)).unify();

    let health = warp::path("healthz")
        .and(warp::path::end())
        .and(with_state.clone())
        .map(|state: Arc<State>| {
            let bus = state.manager.bus();
            let mut health = json!({
                "status": "ok",
                "uptime_s": state.started.elapsed().as_secs_f64(),
                "epoch": bus.epoch(),
                "seq": bus.latest_seq(),
            });
            if let Some(node) = &state.cluster {
                health["cluster"] = json!(node.status());
            }
            json_response(StatusCode::OK, &health)
        });

    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state.clone())
        .and(warp::header::headers_cloned())
        .map(|state: Arc<State>, headers: HeaderMap| {
            let Some(principal) = state.authenticate(&headers, None) else {
                return ApiError::unauthorized().into_response();
            };
            // Metrics count every tenant's data: with tenants, only admins read them.
            if state.access.auth.has_tenants() && !State::is_admin(&principal) {
                return ApiError::not_found("route").into_response();
            }
            let mut response = Response::new(state.metrics.render().into());
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        });

    let api = warp::path("api")
        .and(warp::path("v1"))
        .and(with_state.clone())
        .and(warp::method())
        .and(warp::path::tail())
        .and(query())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            |state: Arc<State>, method, tail: warp::path::Tail, query: String, headers, body| {
                api::handle(
                    state,
                    method,
                    tail.as_str().to_owned(),
                    query,
                    headers,
                    body,
                )
            },
        );

    let dashboard = crate::dashboard::routes();

    let ws = match &state.hub {
        Some(hub) => sink_websocket::route(Arc::clone(hub), Arc::clone(&state.access)),
        None => warp::path("ws")
            .map(|| {
                sink_websocket::error_response(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no `websocket` sink is configured",
                )
            })
            .boxed(),
    };

    ws.or(api)
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify()
        .or(dashboard)
        .unify()
        .recover(|rejection: Rejection| async move {
            let error = if rejection.is_not_found() {
                ApiError::not_found("route")
            } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "this method is not allowed on this route",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("{rejection:?}"),
                )
            };
            Ok::<_, Infallible>(error.into_response())
        })
        .unify()
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_only_when_open_beyond_loopback() {
        let open = coda::Authenticator::default();
        let guarded = coda::Authenticator::new(
            &Config::from_toml_str("[server]\ntokens = [\"t\"]")
                .expect("valid")
                .server,
        );
        let tenants = coda::Authenticator::new(
            &Config::from_toml_str("[[server.tenants]]\nid = \"a\"\ntokens = [\"t\"]")
                .expect("valid")
                .server,
        );
        let public: std::net::SocketAddr = "0.0.0.0:8765".parse().expect("addr");
        let local: std::net::SocketAddr = "127.0.0.1:8765".parse().expect("addr");
        let local6: std::net::SocketAddr = "[::1]:8765".parse().expect("addr");
        let warning = open_to_the_network(public, &open).expect("a warning");
        assert!(warning.contains("0.0.0.0:8765") && warning.contains("server.tokens"));
        assert!(open_to_the_network(local, &open).is_none());
        assert!(open_to_the_network(local6, &open).is_none());
        assert!(open_to_the_network(public, &guarded).is_none());
        assert!(open_to_the_network(public, &tenants).is_none());
    }
}
