//! Sessions: one conversation each, with its own window and counters (SPEC §8).
//!
//! Backends store sessions through [`SessionChange`]s, the same way they store memories through
//! [`Change`](crate::Change)s; [`SessionTable`] is the in-memory state every bundled backend (and
//! the custom-backend example) keeps them in.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{timestamp, Role, Turn};
use crate::scope::{Owner, DEFAULT_ID};
use crate::{Error, Result};

/// A session's identity. Named session ids are unique within a tenant (a session belongs to
/// the user of its first turn); session `default` is one per user, so every user has a default
/// conversation of their own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionKey {
    /// The tenant.
    pub tenant: String,
    /// The session id, or `default/<user>` for a user's default session (`/` is not a scope-id
    /// character, so no named session can take that key).
    pub session_id: String,
}

impl SessionKey {
    /// The key stored for `session_id` as a raw key of `tenant` (no default-session mapping).
    pub fn new(tenant: impl Into<String>, session_id: impl Into<String>) -> Self {
        SessionKey {
            tenant: tenant.into(),
            session_id: session_id.into(),
        }
    }

    /// The key of session `session_id` as `owner` names it: `default` maps to the owner's own
    /// default session.
    pub fn of(owner: &Owner, session_id: &str) -> Self {
        if session_id == DEFAULT_ID {
            SessionKey::new(
                owner.tenant.clone(),
                format!("{DEFAULT_ID}/{}", owner.user_id),
            )
        } else {
            SessionKey::new(owner.tenant.clone(), session_id)
        }
    }
}

fn default_tenant() -> String {
    DEFAULT_ID.to_owned()
}

fn is_default(s: &str) -> bool {
    s == DEFAULT_ID
}

/// Everything about a session but its turns: what `GET /sessions` lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session's id.
    pub session_id: String,
    /// The user it belongs to, fixed by its first turn.
    pub user_id: String,
    /// The agent it belongs to, if its first turn named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The tenant (not on the wire for tenant `default`).
    #[serde(default = "default_tenant", skip_serializing_if = "is_default")]
    pub tenant: String,
    /// Turns added so far; the next turn's index.
    pub turn_count: u64,
    /// When the session started.
    #[serde(with = "timestamp")]
    pub session_start: DateTime<Utc>,
    /// When its last turn was added.
    #[serde(default, with = "timestamp::option")]
    pub last_turn_at: Option<DateTime<Utc>>,
    /// Turns with `turn_index` below this have been persisted or cleared.
    #[serde(default)]
    pub persisted_upto: u64,
    /// The name of the last `tool` turn's tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tool_used: Option<String>,
    /// Automatic snapshots taken of this session.
    #[serde(default)]
    pub auto_snapshots: u64,
}

impl SessionInfo {
    /// Session `session_id` of `owner` with no turns yet, started at `start`.
    pub fn new(
        owner: &Owner,
        session_id: &str,
        agent_id: Option<&str>,
        start: DateTime<Utc>,
    ) -> Self {
        SessionInfo {
            session_id: session_id.to_owned(),
            user_id: owner.user_id.clone(),
            agent_id: agent_id.map(str::to_owned),
            tenant: owner.tenant.clone(),
            turn_count: 0,
            session_start: start,
            last_turn_at: None,
            persisted_upto: 0,
            last_tool_used: None,
            auto_snapshots: 0,
        }
    }

    /// The session's key.
    pub fn key(&self) -> SessionKey {
        SessionKey::of(&self.owner(), &self.session_id)
    }

    /// Its owner.
    pub fn owner(&self) -> Owner {
        Owner::new(self.tenant.clone(), self.user_id.clone())
    }
}

/// A session with its window of turns, as backends store it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    /// Counters and ownership.
    pub info: SessionInfo,
    /// The short-term window, oldest first.
    pub turns: VecDeque<Turn>,
}

/// One change to a session, as a durable backend logs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SessionChange {
    /// A turn appended: `info` is the session after it (a new session when `turn_count` is 1),
    /// and the window keeps at most `window` turns.
    Turn {
        /// The session after the turn.
        info: SessionInfo,
        /// The turn.
        turn: Turn,
        /// Most turns the window keeps.
        window: usize,
    },
    /// The whole session replaced (clear, persist position, snapshot apply).
    Put(SessionState),
    /// The session removed.
    Delete(SessionKey),
}

/// Sessions in memory, by key; applies [`SessionChange`]s.
#[derive(Debug, Default, Clone)]
pub struct SessionTable {
    sessions: HashMap<SessionKey, SessionState>,
}

impl SessionTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `change`. A turn for a session owned by another user is a
    /// [`Error::Conflict`]; nothing changes then.
    pub fn apply(&mut self, change: SessionChange) -> Result<()> {
        match change {
            SessionChange::Turn { info, turn, window } => {
                let key = info.key();
                let state = self.sessions.entry(key).or_insert_with(|| SessionState {
                    info: info.clone(),
                    turns: VecDeque::new(),
                });
                if state.info.user_id != info.user_id {
                    return Err(Error::Conflict(format!(
                        "session `{}` belongs to another user",
                        info.session_id
                    )));
                }
                state.info = info;
                state.turns.push_back(turn);
                while state.turns.len() > window.max(1) {
                    state.turns.pop_front();
                }
            }
            SessionChange::Put(state) => {
                self.sessions.insert(state.info.key(), state);
            }
            SessionChange::Delete(key) => {
                self.sessions.remove(&key);
            }
        }
        Ok(())
    }

    /// The session with `key`, without its turns.
    pub fn info(&self, key: &SessionKey) -> Option<SessionInfo> {
        self.sessions.get(key).map(|s| s.info.clone())
    }

    /// The session with `key`, with its turns.
    pub fn state(&self, key: &SessionKey) -> Option<SessionState> {
        self.sessions.get(key).cloned()
    }

    /// Every session of `tenant`, in no particular order.
    pub fn visit(&self, tenant: &str, visit: &mut dyn FnMut(&SessionState)) {
        for state in self.sessions.values() {
            if state.info.tenant == tenant {
                visit(state);
            }
        }
    }

    /// Every session of every tenant.
    pub fn visit_all(&self, visit: &mut dyn FnMut(&SessionState)) {
        self.sessions.values().for_each(visit);
    }

    /// Removes every session of `owner`; returns how many there were.
    pub fn remove_owner(&mut self, owner: &Owner) -> usize {
        let before = self.sessions.len();
        self.sessions
            .retain(|_, s| !(s.info.user_id == owner.user_id && s.info.tenant == owner.tenant));
        before - self.sessions.len()
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// The last tool named by a `tool` turn, or the previous value.
pub fn last_tool(previous: Option<String>, turn: &Turn) -> Option<String> {
    match (&turn.role, &turn.name) {
        (Role::Tool, Some(name)) => Some(name.clone()),
        _ => previous,
    }
}
