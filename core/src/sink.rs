//! The `EventSink` trait: where published events go.

use std::any::Any;
use std::sync::Arc;

use uuid::Uuid;

use crate::bus::ReplayRing;
use crate::event::SharedEvent;
use crate::Result;

/// What a sink factory is given besides its options.
#[non_exhaustive]
#[derive(Clone)]
pub struct SinkContext {
    /// The bus's epoch: sequence numbers are comparable only within it.
    pub epoch: Uuid,
    /// The bus's replay ring, for sinks that serve replay or resume (the WebSocket sink).
    pub replay: Arc<ReplayRing>,
}

impl SinkContext {
    /// A context for a bus with `epoch` and `replay`.
    pub fn new(epoch: Uuid, replay: Arc<ReplayRing>) -> Self {
        SinkContext { epoch, replay }
    }
}

/// A destination for events.
///
/// `deliver` is called in `seq` order from whatever thread emitted the event, with the bus's
/// ordering lock held: it must not block, wait on I/O or call back into the bus. A sink that
/// does I/O queues the event and writes it from its own task or thread; when its queue is full it
/// drops (and counts) rather than waits.
pub trait EventSink: Send + Sync + 'static {
    /// The sink's registered name, for logs and metrics.
    fn name(&self) -> &str;

    /// Takes one event; never blocks. An error is counted and logged by the bus, nothing more.
    fn deliver(&self, event: &SharedEvent) -> Result<()>;

    /// Waits until every delivered event has been written.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Flushes and releases the sink's resources; later deliveries may be dropped.
    fn shutdown(&self) -> Result<()> {
        self.flush()
    }

    /// The concrete sink, for code that configured it and needs its own API (the server finds
    /// its WebSocket sink this way).
    fn as_any(&self) -> Option<&dyn Any> {
        None
    }
}

impl<S: EventSink + ?Sized> EventSink for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn deliver(&self, event: &SharedEvent) -> Result<()> {
        (**self).deliver(event)
    }

    fn flush(&self) -> Result<()> {
        (**self).flush()
    }

    fn shutdown(&self) -> Result<()> {
        (**self).shutdown()
    }

    fn as_any(&self) -> Option<&dyn Any> {
        (**self).as_any()
    }
}
