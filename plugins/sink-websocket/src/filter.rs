//! Which events a connection wants: a set of types and, optionally, the scope ids an event must
//! carry (SPEC §5, §8). Every given part must match: types AND user AND agent AND session.
//!
//! [`EventFilter::wants`] runs for every event and every connection, so it reads only fields
//! the event already has in memory ([`Event::scope`]): a bit test and up to three string
//! comparisons, no JSON, no allocation.

use coda_core::{Event, EventScope, EventType};

/// A set of event types, one bit per [`EventType::index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeSet(u16);

// Every type must have a bit.
const _: () = assert!(EventType::ALL.len() <= u16::BITS as usize);

impl TypeSet {
    /// Every event type.
    pub const ALL: TypeSet = TypeSet(u16::MAX);

    /// `types`, or every type when it is empty (`[]` means all on the wire).
    pub fn of(types: &[EventType]) -> TypeSet {
        if types.is_empty() {
            return TypeSet::ALL;
        }
        TypeSet(types.iter().fold(0, |bits, t| bits | (1 << t.index())))
    }

    /// Whether `event_type` is in the set.
    pub fn contains(self, event_type: EventType) -> bool {
        self.0 & (1 << event_type.index()) != 0
    }
}

/// The scope ids an event must carry; `None` matches any value (and an absent one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ScopeFilter {
    user_id: Option<Box<str>>,
    agent_id: Option<Box<str>>,
    session_id: Option<Box<str>>,
}

impl ScopeFilter {
    /// A filter on the given ids, each checked like a scope id (1–128 bytes of
    /// `[A-Za-z0-9._:@-]`); the error is `(field, message)` naming the bad one.
    pub fn parse(
        user_id: Option<&str>,
        agent_id: Option<&str>,
        session_id: Option<&str>,
    ) -> Result<ScopeFilter, (&'static str, String)> {
        let id = |field: &'static str, value: Option<&str>| {
            value
                .map(|v| {
                    coda_core::scope::check_id(field, v)
                        .map(|()| Box::from(v))
                        .map_err(|e| (field, e.to_string()))
                })
                .transpose()
        };
        Ok(ScopeFilter {
            user_id: id("user_id", user_id)?,
            agent_id: id("agent_id", agent_id)?,
            session_id: id("session_id", session_id)?,
        })
    }

    /// Whether an event about `scope` matches: each given id equals the event's, and an event
    /// without an agent or session does not match a filter on one.
    pub fn matches(&self, scope: &EventScope) -> bool {
        fn same(wanted: &Option<Box<str>>, actual: Option<&str>) -> bool {
            match wanted {
                None => true,
                Some(wanted) => actual == Some(&**wanted),
            }
        }
        same(&self.user_id, Some(&scope.user_id))
            && same(&self.agent_id, scope.agent_id.as_deref())
            && same(&self.session_id, scope.session_id.as_deref())
    }
}

/// What a connection receives: these types, of this scope, in this tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventFilter {
    /// Wanted types.
    pub types: TypeSet,
    /// Wanted scope.
    pub scope: ScopeFilter,
    /// The only tenant whose events the connection may see, fixed by its token when it
    /// connected (`subscribe` never changes it); `None` only for an admin's `tenant=*`.
    pub tenant: Option<Box<str>>,
}

impl Default for EventFilter {
    fn default() -> Self {
        EventFilter {
            types: TypeSet::ALL,
            scope: ScopeFilter::default(),
            tenant: Some(Box::from(coda_core::scope::DEFAULT_ID)),
        }
    }
}

impl EventFilter {
    /// Whether the connection wants `event`.
    pub fn wants(&self, event: &Event) -> bool {
        self.types.contains(event.event_type) && self.admits(event)
    }

    /// Whether `event` lies in the connection's tenant and scope, whatever its type.
    pub fn admits(&self, event: &Event) -> bool {
        self.tenant
            .as_deref()
            .is_none_or(|tenant| tenant == event.scope.tenant)
            && self.scope.matches(&event.scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(user: &str, agent: Option<&str>, session: Option<&str>) -> EventScope {
        EventScope {
            tenant: "default".into(),
            user_id: user.into(),
            agent_id: agent.map(Into::into),
            session_id: session.map(Into::into),
        }
    }

    #[test]
    fn every_type_has_its_own_bit() {
        for t in EventType::ALL {
            let only = TypeSet::of(&[t]);
            for other in EventType::ALL {
                assert_eq!(only.contains(other), other == t, "{t} vs {other}");
            }
            assert!(TypeSet::ALL.contains(t));
        }
        assert_eq!(TypeSet::of(&[]), TypeSet::ALL);
    }

    #[test]
    fn given_ids_are_anded_and_absent_ids_do_not_match_a_filter() {
        let any = ScopeFilter::default();
        assert!(any.matches(&scope("alice", None, None)));
        let alice = ScopeFilter::parse(Some("alice"), None, None).expect("valid");
        assert!(alice.matches(&scope("alice", Some("bot"), Some("chat-1"))));
        assert!(!alice.matches(&scope("bob", None, None)));
        let chat = ScopeFilter::parse(Some("alice"), None, Some("chat-1")).expect("valid");
        assert!(chat.matches(&scope("alice", None, Some("chat-1"))));
        assert!(!chat.matches(&scope("alice", None, Some("chat-2"))));
        assert!(
            !chat.matches(&scope("alice", None, None)),
            "an event without a session does not match a session filter"
        );
        assert!(!chat.matches(&scope("bob", None, Some("chat-1"))));
        let agent = ScopeFilter::parse(None, Some("planner"), None).expect("valid");
        assert!(agent.matches(&scope("bob", Some("planner"), None)));
        assert!(!agent.matches(&scope("bob", None, None)));
    }

    #[test]
    fn bad_ids_name_their_field() {
        for (user, agent, session, field) in [
            (Some(""), None, None, "user_id"),
            (Some("a b"), None, None, "user_id"),
            (None, Some("x/y"), None, "agent_id"),
            (Some("ok"), None, Some(&*"s".repeat(129)), "session_id"),
        ] {
            let (named, message) = ScopeFilter::parse(user, agent, session).expect_err("invalid");
            assert_eq!(named, field);
            assert!(message.contains(field), "{message}");
        }
        let longest = "s".repeat(128);
        assert!(ScopeFilter::parse(Some("a.b_c:d@e-f"), None, Some(&longest)).is_ok());
    }
}
