//! Sessions: turns, windows, persist, clear, listing and deletion — each in one scope.

use serde::Serialize;

use super::{Conversation, PersistOutcome, Scoped};
use crate::bus::Dedup;
use crate::event::{EventBody, EventScope};
use crate::model::{timestamp, Role, Turn};
use crate::scope::DEFAULT_ID;
use crate::session::{last_tool, SessionChange, SessionInfo, SessionKey, SessionState};
use crate::stats::{MemoryStats, ShortTermStats};
use crate::{Error, Result};

/// A session with its window, as `GET /sessions/{sid}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionListing {
    /// Ownership and counters.
    #[serde(flatten)]
    pub info: SessionInfo,
    /// The window, oldest first.
    pub turns: Vec<Turn>,
}

impl Scoped<'_> {
    fn session_key(&self) -> SessionKey {
        self.scope.session_key()
    }

    /// Whether `info` is visible from this scope: the same user, and the same agent where the
    /// scope names one. Another user's session is "not found", never "forbidden".
    fn sees(&self, info: &SessionInfo) -> bool {
        info.user_id == self.scope.user_id()
            && self
                .scope
                .agent_id()
                .is_none_or(|a| info.agent_id.as_deref() == Some(a))
    }

    /// The scope's session with its window: `None` when it does not exist, not-found when
    /// another user (or agent) owns it.
    fn visible_state(&self) -> Result<Option<SessionState>> {
        let key = self.session_key();
        match self.manager.backend.session_state(&key)? {
            Some(state) if self.sees(&state.info) => Ok(Some(state)),
            Some(_) => Err(Error::session_not_found(self.scope.session_or_default())),
            None => Ok(None),
        }
    }

    /// Like [`visible_state`](Self::visible_state), but a missing named session is not found;
    /// session `default` always exists, empty until its first turn.
    fn existing_state(&self) -> Result<Option<SessionState>> {
        let state = self.visible_state()?;
        if state.is_none() && self.scope.session_or_default() != DEFAULT_ID {
            return Err(Error::session_not_found(self.scope.session_or_default()));
        }
        Ok(state)
    }

    /// Events about the session: its user, agent and id.
    fn session_event_scope(&self, info: Option<&SessionInfo>) -> EventScope {
        let mut scope = EventScope::of(&self.scope);
        scope.session_id = Some(self.scope.session_or_default().to_owned());
        if let Some(info) = info {
            scope.agent_id.clone_from(&info.agent_id);
        }
        scope
    }

    /// Adds a conversation turn to the scope's session, creating it (owned by the scope's user
    /// and agent) with its first turn. A session of another user or agent is a conflict.
    pub fn add_turn(&self, role: Role, content: &str) -> Result<Turn> {
        self.add_turn_named(role, content, None)
    }

    /// Adds a turn; for `tool` turns, `name` is the tool's name (`last_tool_used`).
    pub fn add_turn_named(&self, role: Role, content: &str, name: Option<&str>) -> Result<Turn> {
        let m = self.manager;
        m.check_content("content", content)?;
        let key = self.session_key();
        let (info, turn, due_persist, due_snapshot) = {
            let _session = m.session_locks.lock(&key);
            let mut info = match m.backend.session(&key)? {
                Some(info) => {
                    if info.user_id != self.scope.user_id() {
                        return Err(Error::Conflict(format!(
                            "session `{}` belongs to another user",
                            self.scope.session_or_default()
                        )));
                    }
                    if let Some(agent) = self.scope.agent_id() {
                        if info.agent_id.as_deref() != Some(agent) {
                            return Err(Error::Conflict(format!(
                                "session `{}` belongs to another agent",
                                self.scope.session_or_default()
                            )));
                        }
                    }
                    info
                }
                None => SessionInfo::new(
                    self.scope.owner(),
                    self.scope.session_or_default(),
                    self.scope.agent_id(),
                    timestamp::now(),
                ),
            };
            let turn = Turn {
                role,
                content: content.to_owned(),
                turn_index: info.turn_count,
                timestamp: timestamp::now(),
                name: name.map(str::to_owned),
            };
            info.turn_count += 1;
            info.last_turn_at = Some(turn.timestamp);
            info.last_tool_used = last_tool(info.last_tool_used.take(), &turn);
            m.backend.apply_session(SessionChange::Turn {
                info: info.clone(),
                turn: turn.clone(),
                window: m.config.memory.short_term_max_turns,
            })?;
            // Published under the session lock so turn order and seq order agree.
            m.bus.emit_in(
                &self.session_event_scope(Some(&info)),
                &EventBody::ConversationTurn {
                    role,
                    content: turn.content.clone(),
                    turn_index: turn.turn_index,
                },
                Dedup::Skip,
            );
            let interval = m.config.memory.persist_interval;
            let due_persist = interval > 0 && info.turn_count - info.persisted_upto >= interval;
            let auto = *m.auto.lock();
            let due_snapshot = auto.enabled && info.turn_count % auto.interval == 0;
            (info, turn, due_persist, due_snapshot)
        };
        if due_persist || due_snapshot {
            // Automatic work acts on exactly this session, with its own agent.
            let mut scope = self
                .scope
                .whole_user()
                .with_session(self.scope.session_or_default())?;
            if let Some(agent) = &info.agent_id {
                scope = scope.with_agent(agent)?;
            }
            let session = m.scope(scope);
            if due_persist {
                if let Err(e) = session.persist() {
                    tracing::warn!(error = %e, "automatic persist failed");
                }
            }
            if due_snapshot {
                if let Err(e) = session.auto_snapshot() {
                    tracing::warn!(error = %e, "automatic snapshot failed");
                }
            }
        }
        Ok(turn)
    }

    /// The scope's session window.
    pub fn conversation(&self) -> Result<Conversation> {
        Ok(match self.existing_state()? {
            Some(state) => Conversation {
                turns: state.turns.into_iter().collect(),
                turn_count: state.info.turn_count,
                session_start: state.info.session_start,
            },
            None => Conversation {
                turns: Vec::new(),
                turn_count: 0,
                session_start: self.manager.default_started,
            },
        })
    }

    /// The scope's session with its window.
    pub fn session_detail(&self) -> Result<SessionListing> {
        let state = self
            .visible_state()?
            .ok_or_else(|| Error::session_not_found(self.scope.session_or_default()))?;
        Ok(SessionListing {
            info: state.info,
            turns: state.turns.into_iter().collect(),
        })
    }

    /// Distils the session's turns since its last persist into long-term memories of its user,
    /// tagged with the session and its agent.
    pub fn persist(&self) -> Result<PersistOutcome> {
        let m = self.manager;
        let key = self.session_key();
        let _one_at_a_time = m.persist_locks.lock(&key);
        let state = self.existing_state()?;
        let (pending, upto, agent) = match &state {
            Some(state) => (
                state
                    .turns
                    .iter()
                    .filter(|t| t.turn_index >= state.info.persisted_upto)
                    .cloned()
                    .collect::<Vec<Turn>>(),
                state.info.turn_count,
                state.info.agent_id.clone(),
            ),
            None => (Vec::new(), 0, None),
        };
        let mut into = self
            .scope
            .whole_user()
            .with_session(self.scope.session_or_default())?;
        if let Some(agent) = &agent {
            into = into.with_agent(agent)?;
        }
        let target = m.scope(into);
        // Everything that can fail before the write: validation, embedding, planning.
        let batch = if pending.is_empty() {
            super::lifecycle::Batch::default()
        } else {
            let turns: Vec<u64> = pending.iter().map(|t| t.turn_index).collect();
            target.plan_batch(m.extractor.extract(&pending), &turns)?
        };
        let (records, summary_keys) = (batch.records, batch.summary_keys);
        let memories: Vec<_> = records.iter().map(|r| r.memory.clone()).collect();
        let adding = records.len();
        let write = || -> Result<_> {
            let _session = m.session_locks.lock(&key);
            Ok(match m.backend.session_state(&key)? {
                Some(mut now) if self.sees(&now.info) => {
                    // Deleted and started again (or restored) while extracting: `upto` counts
                    // the old session's turns, and moving it onto this one would skip turns no
                    // persist has seen.
                    let same = state
                        .as_ref()
                        .is_some_and(|s| s.info.session_start == now.info.session_start);
                    if same && now.info.persisted_upto < upto && upto <= now.info.turn_count {
                        now.info.persisted_upto = upto;
                        // One atomic write: a crash keeps the memories and the new position
                        // together, so a restart never extracts these turns again.
                        m.backend.persist(target.scope(), records, now.clone())?;
                    } else {
                        for record in records {
                            m.backend.insert(target.scope(), record)?;
                        }
                    }
                    now.info.turn_count
                }
                _ => {
                    for record in records {
                        m.backend.insert(target.scope(), record)?;
                    }
                    upto
                }
            })
        };
        let turn_count = m
            .quotas
            .within(m.backend.as_ref(), self.scope.tenant(), adding, write)?;
        for memory in &memories {
            target.stored(memory);
        }
        target.supersede_after(batch.stored_superseded, batch.batch_superseded)?;
        for key in summary_keys {
            m.indexes.write(self.scope.owner(), |index| {
                index.user_summary_keys.insert(key)
            });
        }
        m.bus.emit_in(
            &self.session_event_scope(state.as_ref().map(|s| &s.info)),
            &EventBody::MemoryPersist {
                turn_count,
                memories_added: memories.len(),
            },
            Dedup::Skip,
        );
        Ok(PersistOutcome {
            turn_count,
            memories_added: memories.len(),
            memories,
        })
    }

    /// Empties the session's window; cleared turns are not persisted later.
    pub fn clear_turns(&self) -> Result<()> {
        let m = self.manager;
        let key = self.session_key();
        let _session = m.session_locks.lock(&key);
        let state = self.existing_state()?;
        if let Some(mut state) = state.clone() {
            state.turns.clear();
            state.info.persisted_upto = state.info.turn_count;
            m.backend.apply_session(SessionChange::Put(state))?;
        }
        m.bus.emit_in(
            &self.session_event_scope(state.as_ref().map(|s| &s.info)),
            &EventBody::MemoryClear {},
            Dedup::Skip,
        );
        Ok(())
    }

    /// Deletes the session and its turns; memories persisted from it stay.
    pub fn delete_session(&self) -> Result<SessionInfo> {
        let m = self.manager;
        let key = self.session_key();
        let _session = m.session_locks.lock(&key);
        let state = self
            .visible_state()?
            .ok_or_else(|| Error::session_not_found(self.scope.session_or_default()))?;
        m.backend.apply_session(SessionChange::Delete(key))?;
        m.bus.emit_in(
            &self.session_event_scope(Some(&state.info)),
            &EventBody::SessionDelete {},
            Dedup::Skip,
        );
        Ok(state.info)
    }

    /// A page of the user's sessions (narrowed to the scope's agent when it names one), the
    /// most recently active first.
    pub fn list_sessions(&self, offset: usize, limit: usize) -> Result<Vec<SessionInfo>> {
        super::memories::check_limit(limit)?;
        let mut sessions = Vec::new();
        self.manager
            .backend
            .owner_sessions(&self.scope, &mut |state| {
                if self.sees(&state.info) {
                    sessions.push(state.info.clone());
                }
            })?;
        sessions.sort_by(|a, b| {
            let last = |s: &SessionInfo| s.last_turn_at.unwrap_or(s.session_start);
            last(b)
                .cmp(&last(a))
                .then_with(|| a.session_id.cmp(&b.session_id))
        });
        Ok(sessions.into_iter().skip(offset).take(limit).collect())
    }

    /// The seed's `memory_stats` object for the scope's user and session.
    pub fn stats(&self) -> MemoryStats {
        let m = self.manager;
        // Counters only: the window is not needed, so it is not copied.
        let info = m
            .backend
            .session(&self.session_key())
            .ok()
            .flatten()
            .filter(|info| self.sees(info));
        let (turn_count, session_start, last_tool_used) = match info {
            Some(info) => (info.turn_count, info.session_start, info.last_tool_used),
            None => (0, m.default_started, None),
        };
        let duration = (timestamp::now() - session_start).num_milliseconds() as f64 / 1000.0;
        let (long_term, recent_topics) = m.indexes.read(self.scope.owner(), |index| {
            (
                index
                    .summary
                    .stats(index.user_summary_keys.iter().cloned().collect()),
                index.summary.recent_topics(),
            )
        });
        MemoryStats {
            short_term: ShortTermStats {
                turn_count,
                session_duration: duration.max(0.0),
            },
            long_term,
            recent_topics,
            last_tool_used,
        }
    }
}
