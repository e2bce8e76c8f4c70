//! The server: one listener for `/ws`, `/api/v1`, `/metrics`, `/healthz`, `/readyz` and `/`,
//! bound before the backend opens (answering 503 until it has), an accept loop that sets
//! TCP_NODELAY and logs every request, and graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coda::sink_websocket::{Access, WebSocketHub, WebSocketSink};
use coda::{Config, MemoryManager};
use hyper::service::Service as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::http_semantics::HttpRules;
use crate::metrics::Metrics;
use crate::readiness::{serve_unready, Readiness, Unready, UnreadyServer};
use crate::state::State;

/// How long shutdown waits for requests and WebSocket closes to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    state: Arc<State>,
    readiness: Arc<Readiness>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Option<UnreadyServer>>,
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

    /// Turns `/readyz` 503, stops serving new requests (the listener stays open, answering
    /// 503 `shutting_down`), lets requests finish, closes WebSockets with 1001 after writing
    /// what they have queued, then flushes the backend and every sink and closes the listener.
    pub async fn shutdown(self) -> coda::Result<()> {
        self.readiness.stop();
        let _ = self.stop.send(true);
        let unready = match self.task.await {
            Ok(unready) => unready,
            Err(e) => {
                tracing::error!(error = %e, "server task failed");
                None
            }
        };
        if let Some(node) = &self.state.cluster {
            node.stop().await;
        }
        let manager = Arc::clone(&self.state.manager);
        let flushed = tokio::task::spawn_blocking(move || manager.shutdown())
            .await
            .map_err(|e| coda::Error::Unavailable(format!("shutdown did not complete: {e}")));
        if let Some(unready) = unready {
            drop(unready.stop().await);
        }
        flushed?
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

/// A server bound to `server.bind` but not serving yet: `/healthz` answers 200, `/readyz` 503
/// and every other route 503 `starting` with `Retry-After`, until [`Starting::open`] or
/// [`Starting::serve`] hands it a manager.
pub struct Starting {
    config: Config,
    addr: SocketAddr,
    unready: UnreadyServer,
}

impl Starting {
    /// The address bound (with the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens Coda from the configuration (backend, embedder, sinks; with `[cluster]`, this
    /// node joined to its stream), then serves it.
    pub async fn open(self) -> coda::Result<ServerHandle> {
        let opened = if self.config.cluster.enabled() {
            crate::cluster::connect(&self.config)
                .await
                .map(|(node, manager)| (manager, Some(node)))
        } else {
            let config = self.config.clone();
            tokio::task::spawn_blocking(move || MemoryManager::open(config))
                .await
                .map_err(|e| coda::Error::Unavailable(format!("opening Coda failed: {e}")))
                .and_then(|opened| opened)
                .map(|manager| (manager, None))
        };
        match opened {
            Ok((manager, cluster)) => self.serve_cluster(manager, cluster).await,
            Err(e) => {
                drop(self.unready.stop().await);
                Err(e)
            }
        }
    }

    /// Serves an already opened manager on the bound listener.
    pub async fn serve(self, manager: Arc<MemoryManager>) -> coda::Result<ServerHandle> {
        self.serve_cluster(manager, None).await
    }

    async fn serve_cluster(
        self,
        manager: Arc<MemoryManager>,
        cluster: Option<crate::cluster::Node>,
    ) -> coda::Result<ServerHandle> {
        let Some(listener) = self.unready.stop().await else {
            return Err(coda::Error::Unavailable(
                "the listener was lost while starting".into(),
            ));
        };
        serve_on(listener, self.addr, self.config, manager, cluster)
    }
}

/// Binds `server.bind` and answers "not ready" on it; must run inside a tokio runtime.
pub async fn bind(config: Config) -> coda::Result<Starting> {
    let bind = config.server.bind.clone();
    let listener = TcpListener::bind(&bind)
        .await
        .map_err(|e| coda::Error::io("bind", &bind, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| coda::Error::io("bind", &bind, e))?;
    Ok(Starting {
        config,
        addr,
        unready: serve_unready(listener, Unready::Starting),
    })
}

/// Opens Coda from `config` and starts serving on `server.bind` (bound first, answering 503
/// while the backend opens); returns once it serves. Must run inside a tokio runtime.
pub async fn start(config: Config) -> coda::Result<ServerHandle> {
    bind(config).await?.open().await
}

/// Starts serving an already opened manager.
pub async fn start_with(config: Config, manager: Arc<MemoryManager>) -> coda::Result<ServerHandle> {
    bind(config).await?.serve(manager).await
}

fn serve_on(
    listener: TcpListener,
    addr: SocketAddr,
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
    if let Some(warning) = open_to_the_network(addr, &state.access.auth) {
        tracing::warn!("{warning}");
    }
    let readiness = Arc::new(Readiness::default());
    let (stop, stopped) = watch::channel(false);
    let routes = crate::routes::routes(Arc::clone(&state), Arc::clone(&readiness));
    let task = tokio::spawn(accept_loop(listener, routes, Arc::clone(&state), stopped));
    Ok(ServerHandle {
        addr,
        state,
        readiness,
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
) -> Option<UnreadyServer> {
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
        let state = Arc::clone(&state);
        let service = hyper::service::service_fn(move |request: http::Request<_>| {
            let (rules, route, mcp) = (Arc::clone(&rules), route.clone(), mcp.clone());
            let state = Arc::clone(&state);
            async move {
                let started = Instant::now();
                let (method, path) = (request.method().clone(), request.uri().path().to_owned());
                let tenant = logged_tenant(&state, &request);
                // `/mcp` is the MCP SDK's own service (SPEC §11), beside warp's routes.
                let response = if crate::mcp::is_mcp(&path) {
                    mcp.serve(request).await
                } else {
                    rules
                        .serve(request, |request| async move {
                            match route.call(request).await {
                                Ok(response) => response,
                                Err(never) => match never {},
                            }
                        })
                        .await
                };
                let status = response.status();
                crate::access_log::log(
                    &method,
                    &path,
                    status,
                    started.elapsed(),
                    tenant.as_deref(),
                );
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
    // The listener stays open while connections drain, answering 503 (`/readyz` included), so
    // a load balancer sees the server leave instead of a refused connection.
    let unready = serve_unready(listener, Unready::ShuttingDown);
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
    Some(unready)
}

/// The tenant a request is logged under: the one its token (and an admin's `X-Coda-Tenant`)
/// selects, decided as the routes decide it (`/ws` also takes `?token=`, as browsers cannot
/// set headers there); `None` without a valid token. Only worked out when request lines are
/// logged at all.
fn logged_tenant<B>(state: &State, request: &http::Request<B>) -> Option<String> {
    if !tracing::enabled!(target: crate::access_log::TARGET, tracing::Level::DEBUG) {
        return None;
    }
    let query_token = (request.uri().path() == "/ws")
        .then(|| request.uri().query())
        .flatten()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "token"))
        .map(|(_, token)| token);
    let headers = request.headers();
    let principal = state.authenticate(headers, query_token.as_deref())?;
    state.tenant_for(&principal, headers).ok()
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
