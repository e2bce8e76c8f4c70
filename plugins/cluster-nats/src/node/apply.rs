//! The apply loop: one ordered consumer per node, each entry applied and its position
//! committed, the consumer recreated after a reconnect, a stall or an error.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer;
use coda_core::{MemoryBackend, Sequencer};
use futures_util::StreamExt;
use uuid::Uuid;

use super::{Apply, Entry, Inner};
use crate::error::ClusterError;

/// Under load, a commit marker every this many entries (and whenever the node has caught up).
const COMMIT_EVERY: u64 = 64;
/// How long a consumer may deliver nothing while the stream holds entries it has not
/// delivered, before it is recreated.
const STALL: Duration = Duration::from_secs(2);
/// Operation ids remembered for duplicate suppression at apply.
const RECENT_IDS: usize = 100_000;

impl<A: Send + 'static> Inner<A> {
    /// Asks the server for the stream's last sequence.
    pub(super) async fn refresh(&self) -> Result<u64, ClusterError> {
        let mut handle = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        let info = handle
            .info()
            .await
            .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        let last = info.state.last_sequence;
        self.stream_last.fetch_max(last, Ordering::SeqCst);
        Ok(last)
    }

    /// The apply loop: an ordered consumer from the entry after the last applied, recreated
    /// after any failure; runs for the life of the process.
    pub(super) async fn run(self: Arc<Self>, backend: Arc<dyn MemoryBackend>, apply: Apply<A>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let start = *self.applied.borrow() + 1;
            match self.consume(start, &backend, &apply).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(ClusterError::Diverged(why)) => {
                    // Applying past a gap would fork this node from the others: stop here,
                    // keep serving reads, and say so loudly.
                    tracing::error!("{why}; this node stops applying the stream");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, from = start, "reading the cluster stream failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    async fn consume(
        &self,
        start: u64,
        backend: &Arc<dyn MemoryBackend>,
        apply: &Apply<A>,
    ) -> Result<(), ClusterError> {
        let unavailable = |e: String| ClusterError::Unavailable(e);
        let handle = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let consumer = handle
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        // A (re)connection before this point is already served by this consumer.
        let _ = tokio::time::timeout(Duration::ZERO, self.reconnected.notified()).await;
        let mut tick = tokio::time::interval(STALL / 2);
        let mut progress = tokio::time::Instant::now();
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                _ = self.reconnected.notified() => {
                    return Err(unavailable("reconnected to NATS; reading the stream again".into()));
                }
                _ = tick.tick() => {
                    // A consumer whose server went away may wait long before it notices (its
                    // connection to another server is fine): once the stream is known to hold
                    // entries it has not delivered for a while, it is recreated.
                    if progress.elapsed() >= STALL {
                        let _ = self.refresh().await;
                        let behind = self.stream_last.load(Ordering::SeqCst) > *self.applied.borrow();
                        if behind && progress.elapsed() >= STALL {
                            return Err(unavailable("the stream's consumer stalled; recreating it".into()));
                        }
                    }
                    continue;
                }
            };
            progress = tokio::time::Instant::now();
            let Some(message) = message else {
                return Ok(());
            };
            let message = message.map_err(|e| unavailable(e.to_string()))?;
            let (seq, pending) = match message.info() {
                Ok(info) => (info.stream_sequence, info.pending),
                Err(e) => {
                    return Err(unavailable(format!(
                        "a message without its stream info: {e}"
                    )))
                }
            };
            self.stream_last.fetch_max(seq + pending, Ordering::SeqCst);
            let applied = *self.applied.borrow();
            if seq <= applied {
                continue;
            }
            if seq > applied + 1 {
                return Err(ClusterError::Diverged(format!(
                    "the stream delivered sequence {seq} after {applied}: entries {} to {} are \
                     gone from it (`cluster.max_age_h`); restart the node: it bootstraps from the \
                     newest cluster snapshot",
                    applied + 1,
                    seq - 1
                )));
            }
            // Commit markers only bound what a restart applies again (an entry applied but not
            // yet committed is cut and re-applied, never lost: it is in the stream), so under
            // load one marker covers a run of entries.
            let commit = pending == 0 || seq % COMMIT_EVERY == 0;
            self.apply_one(seq, &message.payload, backend, apply, commit)
                .await;
        }
    }

    /// Applies the entry at `seq` (and commits the position, if `commit`); the writer's caller
    /// gets the answer.
    async fn apply_one(
        &self,
        seq: u64,
        payload: &[u8],
        backend: &Arc<dyn MemoryBackend>,
        apply: &Apply<A>,
        commit: bool,
    ) {
        self.sequencer.begin(seq);
        match serde_json::from_slice::<Entry>(payload) {
            Err(e) => {
                // Every node skips the same bad entry, so they still agree.
                tracing::error!(seq, error = %e, "skipped a stream entry that is not a Coda operation");
            }
            Ok(entry) if !self.recent.lock().admit(entry.id) => {
                tracing::debug!(seq, id = %entry.id, "skipped a duplicate operation");
                if entry.node == self.node_id {
                    // It raised nothing; its empty record says so to a deep resume.
                    self.archive.record(seq, self.sequencer.latest());
                }
            }
            Ok(entry) => {
                let id = entry.id;
                let mine = entry.node == self.node_id;
                let answer = apply(entry, seq).await;
                if mine {
                    // Now, before the next entry is applied: its events are the ring's newest.
                    self.archive.record(seq, self.sequencer.latest());
                    if let Some(waiter) = self.waiters.lock().remove(&id) {
                        // The caller may have given up; its answer is then dropped.
                        let _ = waiter.send(answer);
                    }
                }
            }
        }
        if commit {
            self.commit(seq, backend).await;
        }
        self.applied.send_replace(seq);
        self.applied_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the position after entry `seq` in the backend, retrying until it can.
    async fn commit(&self, seq: u64, backend: &Arc<dyn MemoryBackend>) {
        let position = self.sequencer.latest();
        let mut delay = Duration::from_millis(10);
        loop {
            let backend = Arc::clone(backend);
            let committed = tokio::task::spawn_blocking(move || backend.commit(position)).await;
            match committed {
                Ok(Ok(())) => break,
                Ok(Err(e)) => {
                    tracing::error!(seq, error = %e, "cannot commit the applied position; retrying")
                }
                Err(e) => tracing::error!(seq, error = %e, "the commit did not complete; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// The last [`RECENT_IDS`] operation ids applied, to skip one published twice.
#[derive(Default)]
pub(super) struct RecentIds {
    order: VecDeque<Uuid>,
    ids: HashSet<Uuid>,
}

impl RecentIds {
    pub(super) fn admit(&mut self, id: Uuid) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > RECENT_IDS {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}
