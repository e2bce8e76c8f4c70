//! Deterministic clocks and ids for replicated operations.
//!
//! A clustered deployment applies every write on every node from a shared log, and each node
//! must reach the same state: the same memory ids, the same timestamps, the same event ids.
//! [`Stamp::apply`] runs an operation with the time and an id seed fixed by the log entry;
//! inside it, [`now`] returns that time and [`new_id`] derives ids from the seed in call
//! order. Outside a stamp both behave as usual (the clock, random v4 ids).
//!
//! The stamp lives in a thread-local, so an operation must run on one thread: the manager's
//! calls are synchronous, and an async caller enters the stamp inside its blocking task.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The time and id seed of one replicated operation; clones share the id counter, so an
/// operation split over several blocking calls still hands out each id once.
#[derive(Debug, Clone)]
pub struct Stamp {
    at: DateTime<Utc>,
    seed: Uuid,
    next: Arc<AtomicU64>,
}

thread_local! {
    static CURRENT: RefCell<Option<Stamp>> = const { RefCell::new(None) };
}

impl Stamp {
    /// A stamp at `at` (truncated to the microseconds timestamps are stored with) whose ids
    /// derive from `seed`, e.g. the operation's id in the log.
    pub fn new(at: DateTime<Utc>, seed: Uuid) -> Stamp {
        use chrono::SubsecRound;
        Stamp {
            at: at.trunc_subsecs(6),
            seed,
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The operation's time.
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// Runs `f` with this stamp in force on the current thread (the previous one, if any, is
    /// restored afterwards, also when `f` panics).
    pub fn apply<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Stamp>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|c| c.borrow_mut().replace(self.clone()));
        let _restore = Restore(previous);
        f()
    }

    /// The stamp in force on this thread, if any.
    pub fn current() -> Option<Stamp> {
        CURRENT.with(|c| c.borrow().clone())
    }

    fn derive(&self) -> Uuid {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut name = [0u8; 8];
        name.copy_from_slice(&n.to_be_bytes());
        Uuid::new_v5(&self.seed, &name)
    }
}

/// The current time: the stamp's inside [`Stamp::apply`], else the clock, at microsecond
/// precision.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    match Stamp::current() {
        Some(stamp) => stamp.at,
        None => Utc::now().trunc_subsecs(6),
    }
}

/// A fresh id: derived from the stamp's seed in call order inside [`Stamp::apply`], else a
/// random v4 uuid.
pub fn new_id() -> Uuid {
    CURRENT.with(|c| match c.borrow().as_ref() {
        Some(stamp) => stamp.derive(),
        None => Uuid::new_v4(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_fixes_time_and_ids_in_call_order() {
        let at = Utc::now();
        let seed = Uuid::new_v4();
        let run = || {
            Stamp::new(at, seed)
                .apply(|| (now(), new_id(), new_id(), crate::model::timestamp::now()))
        };
        let (t1, a1, b1, m1) = run();
        let (t2, a2, b2, m2) = run();
        assert_eq!((t1, a1, b1, m1), (t2, a2, b2, m2));
        assert_ne!(a1, b1);
        assert_eq!(t1, m1, "the model's clock follows the stamp");
    }

    #[test]
    fn clones_share_the_counter_and_the_stamp_ends_with_apply() {
        let stamp = Stamp::new(Utc::now(), Uuid::new_v4());
        let first = stamp.apply(new_id);
        let second = stamp.clone().apply(new_id);
        assert_ne!(first, second);
        assert!(Stamp::current().is_none());
        let outside = (new_id(), new_id());
        assert_ne!(outside.0, outside.1);
    }

    #[test]
    fn nested_stamps_restore_the_outer_one() {
        let outer = Stamp::new(Utc::now(), Uuid::new_v4());
        let inner = Stamp::new(Utc::now() - chrono::Duration::hours(1), Uuid::new_v4());
        outer.apply(|| {
            inner.apply(|| assert_eq!(now(), inner.at()));
            assert_eq!(now(), outer.at());
        });
    }
}
