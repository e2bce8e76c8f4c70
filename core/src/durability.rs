//! Deferred durability: answering a write once it is on disk without holding a thread until then.
//!
//! A backend that fsyncs before a write returns (the `file` backend with `sync = "always"`)
//! would keep the calling thread asleep for the whole fsync. An async caller can do better: it
//! runs the operation inside [`defer`], the backend appends and applies the change as usual, and
//! instead of waiting it [`hand_off`]s a [`Durable`] — a future that resolves when the change's
//! bytes are on disk — to the scope. The caller awaits the returned [`Waits`] before it answers,
//! so nothing is acknowledged earlier than before; the thread meanwhile serves other requests.
//!
//! The scope lives in a thread-local (like [`Stamp`](crate::stamp::Stamp)): a write made on any
//! other thread, or outside a scope, waits for its fsync itself, so forgetting the scope costs
//! speed, never durability. What is handed off is visible to readers and to the event stream
//! as soon as the call returns, as it always was (a change is applied in memory before its
//! fsync completes); only the answer to the writer waits.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::{Error, Result};

/// A write's wait for its bytes to be on disk; resolves once its [`Settle`] is settled.
#[must_use = "a durability wait must be awaited before the write is acknowledged"]
pub struct Durable {
    slot: Arc<Mutex<Slot>>,
}

/// The backend's end of a [`Durable`]: settles it once the fsync covering the write is done.
pub struct Settle {
    /// Taken by the one settling, so a settled wait is never settled again on drop.
    slot: Option<Arc<Mutex<Slot>>>,
}

#[derive(Default)]
struct Slot {
    outcome: Option<Result<()>>,
    waker: Option<Waker>,
}

/// A wait and the handle that ends it.
pub fn promise() -> (Settle, Durable) {
    let slot = Arc::new(Mutex::new(Slot::default()));
    (
        Settle {
            slot: Some(Arc::clone(&slot)),
        },
        Durable { slot },
    )
}

impl Settle {
    /// Ends the wait with `outcome`, waking whoever awaits it.
    pub fn settle(mut self, outcome: Result<()>) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Result<()>) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let waker = {
            let mut slot = slot.lock();
            slot.outcome = Some(outcome);
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for Settle {
    /// A wait whose backend went away unsettled fails rather than hangs.
    fn drop(&mut self) {
        self.finish(Err(Error::Unavailable(
            "the memory backend stopped before the write was known to be durable".into(),
        )));
    }
}

impl Future for Durable {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut slot = self.slot.lock();
        match slot.outcome.take() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The durability waits an operation run in [`defer`] handed off, in the order it made them.
#[derive(Default)]
#[must_use = "the waits must be awaited before the operation is acknowledged"]
pub struct Waits(Vec<Durable>);

impl Waits {
    /// Whether the operation handed nothing off (it wrote nothing, or waited itself).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Resolves once every handed-off write is durable, or with the first failure.
    pub async fn wait(self) -> Result<()> {
        for durable in self.0 {
            durable.await?;
        }
        Ok(())
    }
}

thread_local! {
    static SCOPE: RefCell<Option<Vec<Durable>>> = const { RefCell::new(None) };
}

/// Runs `f` with durability waits deferred on this thread, returning its result and the waits
/// its writes handed off: the caller must await them before acknowledging the operation. A
/// scope already in force is set aside for `f` and restored afterwards (also when `f` panics).
pub fn defer<R>(f: impl FnOnce() -> R) -> (R, Waits) {
    struct Restore(Option<Option<Vec<Durable>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.0.take() {
                SCOPE.with(|s| *s.borrow_mut() = previous);
            }
        }
    }
    let previous = SCOPE.with(|s| s.borrow_mut().replace(Vec::new()));
    let mut restore = Restore(Some(previous));
    let result = f();
    let handed = SCOPE.with(|s| {
        let mut scope = s.borrow_mut();
        let handed = scope.take().unwrap_or_default();
        *scope = restore.0.take().flatten();
        handed
    });
    (result, Waits(handed))
}

/// Inside a [`defer`] scope on this thread, hands the wait `make` returns to the scope and
/// returns `true`; outside one returns `false` without calling `make`, and the backend must
/// wait for durability itself.
pub fn hand_off(make: impl FnOnce() -> Durable) -> bool {
    SCOPE.with(|s| match s.borrow_mut().as_mut() {
        Some(handed) => {
            handed.push(make());
            true
        }
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn poll(durable: &mut Durable, waker: &Waker) -> Poll<Result<()>> {
        Pin::new(durable).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_wait_resolves_when_settled_and_wakes_its_waiter() {
        let flag = Arc::new(Flag(false.into()));
        let waker = Waker::from(Arc::clone(&flag));
        let (settle, mut durable) = promise();
        assert!(poll(&mut durable, &waker).is_pending());
        settle.settle(Ok(()));
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        assert!(matches!(poll(&mut durable, &waker), Poll::Ready(Ok(()))));
    }

    #[test]
    fn a_wait_whose_settle_is_dropped_fails_instead_of_hanging() {
        let waker = Waker::from(Arc::new(Flag(false.into())));
        let (settle, mut durable) = promise();
        drop(settle);
        assert!(matches!(
            poll(&mut durable, &waker),
            Poll::Ready(Err(Error::Unavailable(_)))
        ));
    }

    #[test]
    fn only_a_defer_scope_takes_hand_offs_and_nested_scopes_keep_their_own() {
        assert!(!hand_off(|| unreachable!(
            "no scope: the backend waits itself"
        )));
        let keep = std::cell::RefCell::new(Vec::new());
        let ((), outer) = defer(|| {
            let (settle, durable) = promise();
            keep.borrow_mut().push(settle);
            assert!(hand_off(|| durable));
            let ((), inner) = defer(|| {
                let (settle, durable) = promise();
                keep.borrow_mut().push(settle);
                assert!(hand_off(|| durable));
            });
            assert_eq!(inner.0.len(), 1);
        });
        assert_eq!(outer.0.len(), 1);
        assert!(!hand_off(|| unreachable!("the scope ended")));
    }

    #[test]
    fn a_panic_inside_a_scope_ends_it() {
        let caught = std::panic::catch_unwind(|| defer(|| panic!("inside")));
        assert!(caught.is_err());
        assert!(!hand_off(|| unreachable!("the scope ended with the panic")));
    }
}
