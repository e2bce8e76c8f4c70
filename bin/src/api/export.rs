//! Export and import (SPEC §13): `GET /users/{uid}/export`, `GET /export` (the caller's whole
//! tenant) and `POST /import`. Exports stream from a blocking thread through a bounded channel,
//! so a user with a million memories costs a few buffers and their ids, not a copy of them; an import's body
//! is spooled to a temporary file (up to `server.max_import_bytes`) and read from there twice,
//! once to validate it whole and once to apply it.

use std::io::Write;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, StatusCode};
use warp::reply::{Reply as _, Response};

use super::{ok, ApiError, Reply, Request};
use crate::state::State;

/// Lines buffered before a chunk goes to the client, and chunks in flight: together they bound
/// what an export holds in memory.
const CHUNK_BYTES: usize = 64 * 1024;
const CHUNKS_IN_FLIGHT: usize = 8;

/// The media type of an export.
const JSON_LINES: &str = "application/x-ndjson";

/// How long a chunk may wait for the client to take the previous ones: a client that stops
/// reading has its export ended instead of holding a blocking thread forever.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Hands the export's bytes to the response body in chunks; the client going away (or reading
/// nothing for [`SEND_TIMEOUT`]) makes the next write fail, which ends the export.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    runtime: tokio::runtime::Handle,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        // On a blocking-pool thread, outside any async context: waiting here is allowed.
        let sent = self
            .runtime
            .block_on(tokio::time::timeout(SEND_TIMEOUT, self.tx.send(Ok(chunk))));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client went away",
            )),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client read nothing for 30 s",
            )),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A 200 whose body `produce` writes on the blocking pool. A failure after the first bytes
/// cannot change the status: the body then ends without its `end` line (and the connection
/// is reset), which any reader of the format detects as a truncated file.
fn stream<F>(state: &State, produce: F) -> Response
where
    F: FnOnce(&coda::MemoryManager, &mut dyn Write) -> coda::Result<u64> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
    let manager = Arc::clone(&state.manager);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx,
            runtime,
            buf: Vec::with_capacity(CHUNK_BYTES),
        };
        if let Err(e) = produce(&manager, &mut out) {
            tracing::warn!(error = %e, "an export stopped before its end");
            // Ends the body abnormally; if the client is gone there is no one to tell.
            let _ = out.tx.try_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = warp::reply::stream(body).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(JSON_LINES),
    );
    response
}

/// Refuses the scope parameters an export route takes from its path or the token.
fn no_scope_params(r: &Request<'_>) -> Result<(), ApiError> {
    for name in ["user_id", "agent_id", "session_id"] {
        if r.query.get(name).is_some() {
            return Err(ApiError::invalid(
                name,
                "is not a parameter of export routes",
            ));
        }
    }
    Ok(())
}

/// `GET /users/{uid}/export`: the user's memories, histories, sessions and turns. A user with
/// nothing stored (or another tenant's) exports as a header and an end line, nothing else.
pub async fn user(r: Request<'_>, uid: &str) -> Reply {
    no_scope_params(&r)?;
    let scope = coda::Scope::parse(&r.tenant, Some(uid), None, None)?;
    Ok(stream(r.state, move |m, out| {
        coda::export::export_user(m, &scope, out)
    }))
}

/// `GET /export`: every user of the caller's tenant (an admin's: `X-Coda-Tenant`, else
/// `default`).
pub async fn tenant(r: Request<'_>) -> Reply {
    no_scope_params(&r)?;
    let tenant = r.tenant.clone();
    Ok(stream(r.state, move |m, out| {
        coda::export::export_tenant(m, &tenant, out)
    }))
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the import is over the limit of {max} bytes (server.max_import_bytes)"),
    )
}

/// `POST /import`: the body is an export; it goes into the caller's tenant whatever tenant the
/// file names. Answers the [`coda::export::ImportReport`]; bad input is a 422 naming its line,
/// and changes nothing.
pub async fn import<S, B>(
    state: &State,
    tenant: String,
    raw_query: &str,
    headers: &HeaderMap,
    body: S,
) -> Reply
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    if !raw_query.is_empty() {
        let query = super::Query::parse(raw_query)?;
        if let Some((name, _)) = query.0.first() {
            return Err(ApiError::invalid(
                name.clone(),
                "is not a parameter of /import",
            ));
        }
    }
    let max = state.config.server.max_import_bytes;
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let spool = tempfile::NamedTempFile::new().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot create a temporary file for the import: {e}"),
        )
    })?;
    let mut file = std::io::BufWriter::new(spool.as_file());
    let mut written: u64 = 0;
    let mut body = std::pin::pin!(body);
    let write_failed = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot spool the import: {e}"),
        )
    };
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("reading the body: {e}"),
            )
        })?;
        written += chunk.remaining() as u64;
        if written > max {
            return Err(too_large(max));
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            let n = piece.len();
            file.write_all(piece).map_err(write_failed)?;
            chunk.advance(n);
        }
    }
    file.flush().map_err(write_failed)?;
    drop(file);
    let report = super::blocking_global(state, None, move |m| {
        coda::export::import_file(m, &tenant, spool.path())
    })
    .await?;
    ok(&report)
}
