//! Readiness (SPEC §13): `GET /readyz` answers 200 only while the server serves, and 503 both
//! before (the listener is bound first, while the backend opens and the embedder loads) and
//! while shutting down (the listener stays open while connections drain). Meanwhile
//! [`serve_unready`] answers every connection: `/healthz` 200 (the process is alive), `/readyz`
//! 503, anything else 503 with `Retry-After`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use http::{HeaderValue, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use warp::reply::Response;

use crate::api::{json_response, ApiError};

/// Seconds a client is told to wait (`Retry-After`) while the server is not ready.
pub const RETRY_AFTER_S: u32 = 1;

/// Why the server is not serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unready {
    /// The backend is opening or the embedder loading.
    Starting,
    /// Shutdown has begun: connections are draining.
    ShuttingDown,
}

impl Unready {
    fn code(self) -> &'static str {
        match self {
            Unready::Starting => "starting",
            Unready::ShuttingDown => "shutting_down",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Unready::Starting => "Coda is starting: the backend is opening; retry shortly",
            Unready::ShuttingDown => "Coda is shutting down",
        }
    }
}

/// Set once shutdown begins, so `/readyz` on the serving routes turns 503 at that moment,
/// before the accept loop has even stopped.
#[derive(Debug, Default)]
pub struct Readiness {
    stopping: AtomicBool,
}

impl Readiness {
    /// Marks the server as shutting down.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether the server serves (opened and not shutting down).
    pub fn is_ready(&self) -> bool {
        !self.stopping.load(Ordering::SeqCst)
    }

    /// `GET /readyz` on the serving routes.
    pub fn response(&self) -> Response {
        if self.is_ready() {
            json_response(StatusCode::OK, &json!({"status": "ready"}))
        } else {
            unready_response("/readyz", Unready::ShuttingDown)
        }
    }
}

/// What a request to `path` gets while the server is `why` unready.
pub fn unready_response(path: &str, why: Unready) -> Response {
    let mut response = match path {
        "/healthz" => return json_response(StatusCode::OK, &json!({"status": "ok"})),
        "/readyz" => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": why.code()}),
        ),
        _ => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why.code(), why.message())
            .into_response(),
    };
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    response
}

/// A listener answering [`unready_response`] until told to stop.
pub struct UnreadyServer {
    stop: watch::Sender<bool>,
    task: JoinHandle<TcpListener>,
}

impl UnreadyServer {
    /// Stops answering and hands the listener back; connections it accepted close after their
    /// current request (keep-alive clients reconnect to whoever serves next).
    pub async fn stop(self) -> Option<TcpListener> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::error!(error = %e, "the not-ready listener failed");
                None
            }
        }
    }
}

/// Answers every connection on `listener` with [`unready_response`] for `why`.
pub fn serve_unready(listener: TcpListener, why: Unready) -> UnreadyServer {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        let builder = auto::Builder::new(TokioExecutor::new());
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stopped.changed() => break,
            };
            let service = hyper::service::service_fn(move |request: Request<_>| async move {
                let started = Instant::now();
                let path = request.uri().path().to_owned();
                let response = unready_response(&path, why);
                crate::access_log::log(
                    request.method(),
                    &path,
                    response.status(),
                    started.elapsed(),
                    None,
                );
                Ok::<_, Infallible>(response)
            });
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let connection = graceful.watch(connection.into_owned());
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
        // Not awaited: a slow client must not hold up opening or shutting down.
        tokio::spawn(graceful.shutdown());
        listener
    });
    UnreadyServer { stop, task }
}
