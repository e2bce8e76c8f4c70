//! `[cluster]` in the server (SPEC §12): every `/api/v1` call that changes data (or raises an
//! event: a search) is published to the stream as an operation, and every node applies each
//! operation through the same dispatcher a single node uses, under the operation's
//! [`Stamp`], so all nodes agree. The caller gets the answer its own node computed when it
//! applied the operation: read-your-writes, and verdicts (a 404 for a memory deleted
//! meanwhile) decided at apply, identical on every node.

mod metrics;
mod snapshot;

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use coda::stamp::Stamp;
use coda::{Config, MemoryManager, Principal};
use coda_cluster_nats::{Apply, Cluster, ClusterError, Entry};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use warp::reply::Response;

use crate::api::ApiError;
use crate::state::State;

/// A node of the cluster, answering with a finished HTTP response.
pub type Node = Cluster<Answer>;

/// What applying an operation answered: a response whose body has been read.
pub struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    async fn of(response: Response) -> Answer {
        let (parts, body) = response.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                tracing::error!(error = %e, "an applied operation's answer could not be read");
                Bytes::new()
            }
        };
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    fn into_response(self) -> Response {
        let mut response = Response::new(self.body.into());
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

tokio::task_local! {
    /// The stamp of the operation being applied on this task.
    static STAMP: Stamp;
}

/// The stamp of the operation this task applies, if any: blocking calls enter it.
pub(crate) fn current_stamp() -> Option<Stamp> {
    STAMP.try_with(Clone::clone).ok()
}

/// An operation as the stream carries it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Op {
    /// An `/api/v1` call (or an MCP tool call, which is one), already authenticated.
    Request {
        tenant: String,
        /// The tenant token's tenant; absent for an admin.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        principal: Option<String>,
        method: String,
        path: Vec<String>,
        query: Vec<(String, String)>,
        body: String,
    },
    /// Delete the memories expired at the operation's time.
    Sweep,
}

/// Whether `method` on `path` (under `/api/v1`) goes through the stream: everything but plain
/// reads, and searches, whose `memory_retrieve` event every node must show.
pub(crate) fn replicated(method: &Method, path: &[&str]) -> bool {
    let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    !read || matches!(path, ["memories", "search"])
}

/// Publishes one call and answers with what this node computed when it applied it.
pub(crate) async fn submit(
    node: &Node,
    tenant: &str,
    principal: &Principal,
    method: &Method,
    path: &[&str],
    query: &[(String, String)],
    body: &Bytes,
) -> Result<Response, ClusterError> {
    let body = match std::str::from_utf8(body) {
        Ok(body) => body.to_owned(),
        // Nothing to replicate: the body cannot be parsed anywhere.
        Err(_) => {
            return Ok(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
                "the body is not UTF-8 JSON",
            )
            .into_response())
        }
    };
    let op = Op::Request {
        tenant: tenant.to_owned(),
        principal: match principal {
            Principal::Admin => None,
            Principal::Tenant(t) => Some(t.clone()),
        },
        method: method.as_str().to_owned(),
        path: path.iter().map(|s| (*s).to_owned()).collect(),
        query: query.to_vec(),
        body,
    };
    let op = serde_json::to_value(op)
        .map_err(|e| ClusterError::Unavailable(format!("cannot encode the operation: {e}")))?;
    Ok(node.submit(op).await?.into_response())
}

/// The API's answer to a failed submission.
pub(crate) fn refused(error: ClusterError) -> ApiError {
    match error {
        ClusterError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            error.to_string(),
        ),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster_unavailable",
            error.to_string(),
        ),
    }
}

/// Connects to the stream, then opens the manager numbering events from it; the node starts
/// applying once [`start`] has the server's state.
pub(crate) async fn connect(config: &Config) -> coda::Result<(Node, Arc<MemoryManager>)> {
    let node_id = node_id(config);
    let node = Node::connect(&config.cluster, node_id)
        .await
        .map_err(|e| coda::Error::Unavailable(e.to_string()))?;
    // A new node (no data yet) on a stream that no longer starts at 1.
    if snapshot::fresh(config) && !node.reachable(0) {
        snapshot::bootstrap(config, &node, 0).await?;
    }
    let manager = open(config, &node).await?;
    let committed = manager.backend().committed()?;
    if node.reachable(committed) {
        return Ok((node, manager));
    }
    // The stream no longer holds what this node has not applied: start from the newest
    // cluster snapshot instead. The manager must be gone first (it holds the data's lock).
    let only = Arc::try_unwrap(manager).map_err(|_| {
        coda::Error::Unavailable("cannot close Coda to bootstrap this node from a snapshot".into())
    })?;
    tokio::task::spawn_blocking(move || drop(only))
        .await
        .map_err(|e| coda::Error::Unavailable(format!("closing Coda failed: {e}")))?;
    snapshot::bootstrap(config, &node, committed).await?;
    let manager = open(config, &node).await?;
    Ok((node, manager))
}

/// Opens the manager numbering events from the stream.
async fn open(config: &Config, node: &Node) -> coda::Result<Arc<MemoryManager>> {
    let opened = config.clone();
    let sequencer = node.sequencer();
    tokio::task::spawn_blocking(move || {
        MemoryManager::builder(opened)
            .sequencer(sequencer)
            .expiry_sweeper(false)
            .build()
    })
    .await
    .map_err(|e| coda::Error::Unavailable(format!("opening Coda failed: {e}")))?
}

/// Starts applying the stream with `state`'s dispatcher, and the sweeps of expired memories.
pub(crate) fn start(node: &Node, state: &Arc<State>) -> coda::Result<()> {
    let backend = Arc::clone(state.manager.backend());
    // Each entry this node writes has its events archived, so a WebSocket client can resume
    // on any node from further back than that node's ring.
    node.archive_events_from(Arc::clone(state.manager.bus().replay()));
    if let Some(hub) = &state.hub {
        hub.set_archive(node.events_archive());
    }
    node.start(backend, applier(Arc::downgrade(state)))
        .map_err(|e| coda::Error::Unavailable(e.to_string()))?;
    state
        .metrics
        .register(Box::new(metrics::ClusterMetrics::new(node.clone())));
    snapshot::spawn_writer(node.clone(), Arc::downgrade(&state.manager), &state.config);
    let every = Duration::from_secs(state.config.memory.expiry_sweep_s);
    let sweeper = node.clone();
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if weak.strong_count() == 0 {
                return;
            }
            let sweep = serde_json::json!({"kind": "sweep"});
            if let Err(e) = sweeper.submit(sweep).await {
                tracing::debug!(error = %e, "no expiry sweep this round");
            }
        }
    });
    Ok(())
}

/// This node's name: `cluster.node_id`, else the host name and the bind port.
fn node_id(config: &Config) -> String {
    if !config.cluster.node_id.is_empty() {
        return config.cluster.node_id.clone();
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "coda".into());
    let port = config.server.bind.rsplit(':').next().unwrap_or("0");
    // Port 0 picks a port only once bound: make such nodes distinct anyway.
    if port == "0" {
        return format!("{host}-{}", uuid::Uuid::new_v4().simple());
    }
    format!("{host}:{port}")
}

fn applier(state: Weak<State>) -> Apply<Answer> {
    Arc::new(move |entry: Entry, seq: u64| {
        let state = state.clone();
        Box::pin(async move {
            let stamp = Stamp::new(entry.at, entry.id);
            let Some(state) = state.upgrade() else {
                return gone();
            };
            let op = match serde_json::from_value::<Op>(entry.op) {
                Ok(op) => op,
                Err(e) => {
                    tracing::error!(seq, error = %e, "skipped a stream entry this version cannot read");
                    return gone();
                }
            };
            STAMP.scope(stamp.clone(), apply(state, op, stamp)).await
        })
    })
}

async fn apply(state: Arc<State>, op: Op, stamp: Stamp) -> Answer {
    match op {
        Op::Request {
            tenant,
            principal,
            method,
            path,
            query,
            body,
        } => {
            let Ok(method) = Method::from_bytes(method.as_bytes()) else {
                return gone();
            };
            let principal = match principal {
                None => Principal::Admin,
                Some(tenant) => Principal::Tenant(tenant),
            };
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let response = crate::api::call_applied(
                &state,
                tenant,
                principal,
                method,
                &path,
                query,
                Bytes::from(body),
            )
            .await;
            Answer::of(response).await
        }
        Op::Sweep => {
            let manager = Arc::clone(&state.manager);
            let swept = tokio::task::spawn_blocking(move || {
                // Deletes and their events together, with respect to an online backup.
                let _writing = manager.write_gate();
                stamp.apply(|| manager.sweep_expired())
            })
            .await;
            match swept {
                Ok(Ok(n)) if n > 0 => tracing::debug!(swept = n, "expired memories deleted"),
                Ok(Err(e)) => tracing::warn!(error = %e, "sweeping expired memories failed"),
                _ => {}
            }
            gone()
        }
    }
}

/// The answer of an operation nobody waits for (or that could not be read).
fn gone() -> Answer {
    Answer {
        status: StatusCode::NO_CONTENT,
        headers: HeaderMap::new(),
        body: Bytes::new(),
    }
}
