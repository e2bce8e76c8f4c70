//! One node's part in the cluster: publishing entries to the stream and applying every entry,
//! its own and the others', in stream order.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State as Connection;
use async_nats::jetstream::{self, stream};
use chrono::{DateTime, Utc};
use coda_core::cluster::ClusterConfig;
use coda_core::{EventArchive, MemoryBackend, ReplayRing};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::archive::Archive;
use crate::error::ClusterError;
use crate::sequencer::{ClusterSequencer, EVENTS_PER_ENTRY};
use crate::snapshots::Snapshots;

mod apply;

use apply::RecentIds;

/// How long a write waits for the stream's acknowledgment.
const ACK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a write waits, after the acknowledgment, for this node to apply it.
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening the stream is retried while JetStream elects its leaders.
const STREAM_WAIT: Duration = Duration::from_secs(15);

/// One entry of the stream: an operation with the time and id every node applies it with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The operation's id: `Nats-Msg-Id` on publish, the seed of the ids it creates.
    pub id: Uuid,
    /// When the writer accepted it: the operation's clock on every node.
    pub at: DateTime<Utc>,
    /// The node that published it (whose caller waits for the answer).
    pub node: String,
    /// The operation, as the server encodes it.
    pub op: serde_json::Value,
}

/// Applies one entry on this node and returns the answer for the writer's caller.
pub type Apply<A> =
    Arc<dyn Fn(Entry, u64) -> Pin<Box<dyn Future<Output = A> + Send>> + Send + Sync>;

/// Where a node stands, for `/healthz` and `/metrics`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Status {
    /// This node's name.
    pub node_id: String,
    /// The stream sequence of the last entry applied here.
    pub applied_seq: u64,
    /// The stream's last sequence, as last seen.
    pub stream_seq: u64,
    /// Entries in the stream not yet applied here.
    pub lag: u64,
    /// Whether the NATS connection is up.
    pub connected: bool,
}

/// A node of the cluster, generic over the answer `A` an applied operation gives its caller.
pub struct Cluster<A> {
    inner: Arc<Inner<A>>,
}

impl<A> Clone for Cluster<A> {
    fn clone(&self) -> Self {
        Cluster {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<A> {
    node_id: String,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: String,
    subject: String,
    epoch: Uuid,
    sequencer: Arc<ClusterSequencer>,
    waiters: Mutex<HashMap<Uuid, oneshot::Sender<A>>>,
    applied: watch::Sender<u64>,
    stream_last: AtomicU64,
    /// The stream's first sequence when this node connected (retention drops older ones).
    stream_first: u64,
    applied_total: AtomicU64,
    recent: Mutex<RecentIds>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The cluster's snapshots and the lease to write them.
    snapshots: Snapshots,
    /// Notified when the connection (re)opens: the consumer is then recreated, since one
    /// from before an outage may wait a long time before it notices.
    reconnected: Arc<tokio::sync::Notify>,
    /// Where this node's entries' events are published, and deep resumes read them.
    archive: Arc<Archive>,
}

impl<A: Send + 'static> Cluster<A> {
    /// Connects to NATS (any of the comma-listed URLs), creates the stream if it does not
    /// exist, and derives the epoch from its identity. Nothing is applied until
    /// [`start`](Self::start).
    pub async fn connect(config: &ClusterConfig, node_id: String) -> Result<Self, ClusterError> {
        let urls = config.urls().join(",");
        let servers = config
            .urls()
            .iter()
            .map(|url| {
                url.parse::<async_nats::ServerAddr>().map_err(|e| {
                    ClusterError::Unavailable(format!("`cluster.nats_url`: `{url}`: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let reconnected = Arc::new(tokio::sync::Notify::new());
        let notify = Arc::clone(&reconnected);
        let client = async_nats::ConnectOptions::new()
            .name(format!("coda {node_id}"))
            .event_callback(move |event| {
                let notify = Arc::clone(&notify);
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("connected to NATS");
                            notify.notify_one();
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("lost the NATS connection; writes fail until it returns")
                        }
                        other => tracing::debug!(event = %other, "NATS"),
                    }
                }
            })
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .connect(servers)
            .await
            .map_err(|e| ClusterError::Unavailable(format!("cannot reach NATS at {urls}: {e}")))?;
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(ACK_TIMEOUT);
        let subject = format!("{}.log", config.stream);
        let wanted = stream::Config {
            name: config.stream.clone(),
            subjects: vec![subject.clone()],
            max_age: Duration::from_secs(config.max_age_h.saturating_mul(3600)),
            num_replicas: config.replicas,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        // A NATS cluster that is just starting has no JetStream leader for a moment.
        let deadline = tokio::time::Instant::now() + STREAM_WAIT;
        let mut handle = loop {
            match jetstream.get_or_create_stream(wanted.clone()).await {
                Ok(handle) => break handle,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(error = %e, "JetStream not ready yet; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return Err(ClusterError::Unavailable(format!(
                        "cannot open JetStream stream `{}`: {e}",
                        config.stream
                    )))
                }
            }
        };
        let info = handle.info().await.map_err(|e| {
            ClusterError::Unavailable(format!("cannot read stream `{}`: {e}", config.stream))
        })?;
        let identity = format!(
            "coda-cluster/{}/{}",
            config.stream,
            info.created.unix_timestamp_nanos()
        );
        let epoch = Uuid::new_v5(&Uuid::NAMESPACE_OID, identity.as_bytes());
        let last = info.state.last_sequence;
        let first = info.state.first_sequence;
        let lease_ttl = Duration::from_secs(config.snapshot_every_s.saturating_mul(2));
        let snapshots = loop {
            let opened = Snapshots::open(
                &jetstream,
                &config.stream,
                config.replicas,
                lease_ttl,
                &node_id,
            )
            .await;
            match opened {
                Ok(snapshots) => break snapshots,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(error = %e, "JetStream not ready yet; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let archive = Arc::new(Archive::open(&jetstream, config, epoch, last).await?);
        Ok(Cluster {
            inner: Arc::new(Inner {
                node_id,
                client,
                jetstream,
                stream: config.stream.clone(),
                subject,
                epoch,
                sequencer: Arc::new(ClusterSequencer::new(epoch, 0)),
                waiters: Mutex::new(HashMap::new()),
                applied: watch::channel(0).0,
                stream_last: AtomicU64::new(last),
                stream_first: first,
                applied_total: AtomicU64::new(0),
                recent: Mutex::new(RecentIds::default()),
                stop: watch::channel(false).0,
                task: Mutex::new(None),
                snapshots,
                reconnected,
                archive,
            }),
        })
    }

    /// The epoch every node shares.
    pub fn epoch(&self) -> Uuid {
        self.inner.epoch
    }

    /// The cluster's snapshots.
    pub fn snapshots(&self) -> &Snapshots {
        &self.inner.snapshots
    }

    /// Whether a backend that committed `committed` (an event position) can go on from the
    /// stream: nothing it has not applied is gone from it.
    pub fn reachable(&self, committed: u64) -> bool {
        let applied = committed / EVENTS_PER_ENTRY;
        let last = self.inner.stream_last.load(Ordering::SeqCst);
        last == 0 || applied + 1 >= self.inner.stream_first
    }

    /// The stream's first sequence when this node connected.
    pub fn stream_first(&self) -> u64 {
        self.inner.stream_first
    }

    /// Archive the events of this node's entries, read from `ring` (the event bus's) after
    /// each is applied; call before [`start`](Self::start), which also tells `ring` where the
    /// node starts, so a resume from before that is a gap rather than "nothing missed".
    pub fn archive_events_from(&self, ring: Arc<ReplayRing>) {
        self.inner.archive.record_from(ring);
    }

    /// The events archive every node's writes go to, for resuming from beyond the ring.
    pub fn events_archive(&self) -> Arc<dyn EventArchive> {
        Arc::clone(&self.inner.archive) as Arc<dyn EventArchive>
    }

    /// The sequencer the node's event bus must use.
    pub fn sequencer(&self) -> Arc<ClusterSequencer> {
        Arc::clone(&self.inner.sequencer)
    }

    /// Starts applying the stream after what `backend` committed, with `apply`; each applied
    /// entry is committed to `backend` before the next.
    pub fn start(
        &self,
        backend: Arc<dyn MemoryBackend>,
        apply: Apply<A>,
    ) -> Result<(), ClusterError> {
        let committed = backend.committed().map_err(|e| {
            ClusterError::Unavailable(format!("cannot read the applied position: {e}"))
        })?;
        let applied = committed / EVENTS_PER_ENTRY;
        let last = self.inner.stream_last.load(Ordering::SeqCst);
        if applied > last {
            return Err(ClusterError::Diverged(format!(
                "this node's data has applied stream sequence {applied}, but stream `{}` ends \
                 at {last}: it belongs to another stream (recreated?); start the node on an \
                 empty data directory",
                self.inner.stream
            )));
        }
        let first = self.inner.stream_first;
        if last > 0 && applied + 1 < first {
            return Err(ClusterError::Diverged(format!(
                "this node has applied stream sequence {applied}, but stream `{}` now starts at \
                 {first} (older entries passed `cluster.max_age_h`): the entries in between are \
                 gone, and this node did not bootstrap from a cluster snapshot (only the \
                 `file` backend can)",
                self.inner.stream
            )));
        }
        // A marker at the current position: proves the backend can record them, and makes
        // the changes of the first entry applied from here count only once it commits.
        backend.commit(committed).map_err(|e| {
            ClusterError::Unavailable(format!(
                "a cluster node's backend must record its applied position: {e}"
            ))
        })?;
        self.inner.sequencer.reset(committed);
        self.inner.archive.started(committed);
        self.inner.applied.send_replace(applied);
        let inner = Arc::clone(&self.inner);
        let mut stopped = self.inner.stop.subscribe();
        let task = tokio::spawn(async move {
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => {}
                _ = inner.run(backend, apply) => {}
            }
        });
        *self.inner.task.lock() = Some(task);
        Ok(())
    }

    /// Stops applying (an entry being applied finishes; if it had not committed, the node
    /// applies it again when it starts) and closes the NATS connection after flushing.
    pub async fn stop(&self) {
        self.inner.stop.send_replace(true);
        let task = self.inner.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let _ = self.inner.client.flush().await;
    }

    /// Publishes `op` and returns this node's answer once it has applied it: read-your-writes.
    /// Fails fast, with nothing published, when NATS is unreachable or `op` is too large.
    pub async fn submit(&self, op: serde_json::Value) -> Result<A, ClusterError> {
        let inner = &self.inner;
        if inner.client.connection_state() != Connection::Connected {
            return Err(ClusterError::Unavailable(
                "NATS is unreachable; writes are refused until it returns (reads still work)"
                    .into(),
            ));
        }
        let entry = Entry {
            id: Uuid::new_v4(),
            at: Utc::now(),
            node: inner.node_id.clone(),
            op,
        };
        let payload = serde_json::to_vec(&entry)
            .map_err(|e| ClusterError::Unavailable(format!("cannot encode the entry: {e}")))?;
        let max = inner.client.server_info().max_payload;
        if max > 0 && payload.len() > max {
            return Err(ClusterError::TooLarge {
                size: payload.len(),
                max,
            });
        }
        let (tx, rx) = oneshot::channel();
        inner.waiters.lock().insert(entry.id, tx);
        let forget = || {
            inner.waiters.lock().remove(&entry.id);
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            entry.id.to_string().as_str(),
        );
        let published = inner
            .jetstream
            .publish_with_headers(inner.subject.clone(), headers, payload.into())
            .await;
        let ack = match published {
            Ok(ack) => ack.await,
            Err(e) => {
                forget();
                return Err(ClusterError::Unavailable(format!("publishing failed: {e}")));
            }
        };
        let ack = match ack {
            Ok(ack) => ack,
            Err(e) => {
                forget();
                return Err(ClusterError::Unacknowledged(e.to_string()));
            }
        };
        inner.stream_last.fetch_max(ack.sequence, Ordering::SeqCst);
        match tokio::time::timeout(APPLY_TIMEOUT, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            _ => {
                forget();
                Err(ClusterError::NotApplied(ack.sequence))
            }
        }
    }

    /// Where this node stands.
    pub fn status(&self) -> Status {
        let inner = &self.inner;
        let applied = *inner.applied.borrow();
        let stream = inner.stream_last.load(Ordering::SeqCst).max(applied);
        Status {
            node_id: inner.node_id.clone(),
            applied_seq: applied,
            stream_seq: stream,
            lag: stream - applied,
            connected: inner.client.connection_state() == Connection::Connected,
        }
    }

    /// Entries applied by this node since it started.
    pub fn applied_total(&self) -> u64 {
        self.inner.applied_total.load(Ordering::Relaxed)
    }

    /// Waits until this node has applied stream sequence `seq`, or `timeout` passes; returns
    /// whether it has.
    pub async fn wait_applied(&self, seq: u64, timeout: Duration) -> bool {
        let mut applied = self.inner.applied.subscribe();
        tokio::time::timeout(timeout, applied.wait_for(|a| *a >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Asks the server for the stream's last sequence (for catching up and `/healthz`).
    pub async fn refresh(&self) -> Result<u64, ClusterError> {
        self.inner.refresh().await
    }
}
