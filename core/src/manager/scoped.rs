//! [`Scoped`]: the manager seen from one scope. Every operation is a method of it, so the scope
//! travels with every call and an unscoped read cannot be written.

use crate::bus::Dedup;
use crate::event::{EventBody, EventScope};
use crate::scope::Scope;

use super::MemoryManager;

/// The manager acting in one [`Scope`]: `coda.session("alice", "chat-1")?.add_turn(...)`.
///
/// Session operations (turns, persist, clear, stats) act on the scope's session, `default`
/// when it names none; memory operations read and write the scope's user, narrowed to its
/// agent and session when it names them. Cheap to make: one per request.
#[derive(Clone)]
pub struct Scoped<'a> {
    pub(super) manager: &'a MemoryManager,
    pub(super) scope: Scope,
}

impl<'a> Scoped<'a> {
    pub(super) fn new(manager: &'a MemoryManager, scope: Scope) -> Self {
        Scoped { manager, scope }
    }

    /// The scope this handle acts in.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The manager behind the handle.
    pub fn manager(&self) -> &'a MemoryManager {
        self.manager
    }

    /// Publishes `body` about this scope.
    pub(super) fn emit(&self, body: &EventBody, dedup: Dedup) {
        self.manager
            .bus
            .emit_in(&EventScope::of(&self.scope), body, dedup);
    }
}
