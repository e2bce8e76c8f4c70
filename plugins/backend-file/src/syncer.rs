//! The background fsync threads: one per sync policy that needs one.
//!
//! - `sync = "batch"`: [`BatchSyncer`] fsyncs whatever was appended every `batch_ms`.
//! - `sync = "always"`: [`DurableSyncer`] serves writes that handed their durability wait to an
//!   async caller ([`coda_core::durability`]): it fsyncs, as a group-commit leader like any
//!   blocking writer, everything appended up to the newest waiting write, settles every wait
//!   that fsync covers, and goes straight on while more are waiting. Writes made outside a
//!   deferral scope still wait on the log themselves and share the same fsyncs.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use coda_core::durability::{self, Durable, Settle};
use coda_core::{Error, Result};
use parking_lot::{Condvar, Mutex};

use crate::backend::Shared;

/// With `sync = "batch"`: a thread that fsyncs whatever was appended every `batch_ms`.
pub(crate) struct BatchSyncer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: JoinHandle<()>,
}

impl BatchSyncer {
    pub(crate) fn spawn(shared: &Arc<Shared>) -> Self {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let every = Duration::from_millis(shared.options.batch_ms);
        let (shared, signal) = (Arc::clone(shared), Arc::clone(&stop));
        let handle = std::thread::spawn(move || {
            let (stopped, wake) = &*signal;
            let mut stopped = stopped.lock();
            while !*stopped {
                wake.wait_for(&mut stopped, every);
                if shared.log.has_unsynced() {
                    if let Err(e) = shared.log.sync_all_appended() {
                        tracing::error!(error = %e, "batch fsync failed; further writes will fail");
                    }
                }
            }
        });
        BatchSyncer { stop, handle }
    }

    pub(crate) fn stop(self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        let _ = self.handle.join();
    }
}

/// Writes waiting for an fsync, each with the log position it needs durable.
#[derive(Default)]
struct Queue {
    waiting: Vec<(u64, Settle)>,
    stopped: bool,
}

/// With `sync = "always"`: the thread that makes handed-off writes durable.
pub(crate) struct DurableSyncer {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    handle: JoinHandle<()>,
}

impl DurableSyncer {
    pub(crate) fn spawn(shared: &Arc<Shared>) -> Result<Self> {
        let queue = Arc::new((Mutex::new(Queue::default()), Condvar::new()));
        let (shared, work) = (Arc::clone(shared), Arc::clone(&queue));
        let handle = std::thread::Builder::new()
            .name("coda-file-sync".into())
            .spawn(move || {
                let (queue, wake) = &*work;
                loop {
                    let batch = {
                        let mut queue = queue.lock();
                        while queue.waiting.is_empty() && !queue.stopped {
                            wake.wait(&mut queue);
                        }
                        if queue.waiting.is_empty() {
                            return;
                        }
                        std::mem::take(&mut queue.waiting)
                    };
                    let newest = batch.iter().map(|(lsn, _)| *lsn).max().unwrap_or(0);
                    let outcome = shared.log.wait_durable_now(newest);
                    for (_, settle) in batch {
                        settle.settle(match &outcome {
                            Ok(()) => Ok(()),
                            Err(e) => Err(Error::Unavailable(e.to_string())),
                        });
                    }
                }
            })
            .map_err(|e| Error::Unavailable(format!("could not start the fsync thread: {e}")))?;
        Ok(DurableSyncer { queue, handle })
    }

    /// Inside a deferral scope, hands the wait for `lsn` to the caller and returns `true`;
    /// outside one returns `false`, and the writer waits on the log itself.
    pub(crate) fn hand_off(&self, lsn: u64) -> bool {
        durability::hand_off(|| self.wait_for(lsn))
    }

    fn wait_for(&self, lsn: u64) -> Durable {
        let (settle, durable) = durability::promise();
        let (queue, wake) = &*self.queue;
        let mut queue = queue.lock();
        let was_idle = queue.waiting.is_empty();
        queue.waiting.push((lsn, settle));
        drop(queue);
        if was_idle {
            wake.notify_one();
        }
        durable
    }

    /// Settles what is still waiting (fsyncing it first) and ends the thread.
    pub(crate) fn stop(self) {
        self.queue.0.lock().stopped = true;
        self.queue.1.notify_all();
        let _ = self.handle.join();
    }
}
