//! Scopes: whose memory a call reads or writes (SPEC §8).
//!
//! Every manager operation and every backend call that touches data takes a [`Scope`]: the
//! tenant, the user, and optionally an agent and a session. It is built once from a request and
//! travels with the call, so an unscoped read cannot be written by accident.

use serde::{Deserialize, Serialize};

use crate::model::Memory;
use crate::{Error, Result};

/// The id used when a request names no tenant, user or session.
pub const DEFAULT_ID: &str = "default";

/// Longest scope id, in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// Checks that `value` is a scope id: 1–128 bytes of `[A-Za-z0-9._:@-]`; errors name `field`.
pub fn check_id(field: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_ID_BYTES {
        return Err(Error::invalid(
            field,
            format!(
                "must be 1..={MAX_ID_BYTES} bytes; got {} bytes",
                value.len()
            ),
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-')))
    {
        return Err(Error::invalid(
            field,
            format!("may hold only A-Z a-z 0-9 . _ : @ -; found {bad:?}"),
        ));
    }
    Ok(())
}

/// Who owns a memory or session: a user within a tenant. Backends keep one index per owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    /// The tenant (`default` without tenants).
    pub tenant: String,
    /// The user.
    pub user_id: String,
}

impl Owner {
    /// User `user_id` of tenant `tenant`, unchecked (the caller validated both).
    pub fn new(tenant: impl Into<String>, user_id: impl Into<String>) -> Self {
        Owner {
            tenant: tenant.into(),
            user_id: user_id.into(),
        }
    }

    /// User `default` of tenant `default`: where data without a scope lives.
    pub fn default_user() -> Self {
        Owner::new(DEFAULT_ID, DEFAULT_ID)
    }

    /// The owner of `memory`.
    pub fn of(memory: &Memory) -> Self {
        Owner::new(memory.tenant.clone(), memory.user_id.clone())
    }

    /// Whether `memory` belongs to this owner.
    pub fn owns(&self, memory: &Memory) -> bool {
        memory.user_id == self.user_id && memory.tenant == self.tenant
    }
}

/// The scope of one call: a tenant and user always, an agent and a session when given.
///
/// As in mem0, the given ids are ANDed exact matches and an absent agent or session matches
/// any. Session operations use session `default` when none is given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    owner: Owner,
    agent_id: Option<String>,
    session_id: Option<String>,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            owner: Owner::default_user(),
            agent_id: None,
            session_id: None,
        }
    }
}

impl Scope {
    /// The scope of `user_id` in tenant `default`; the id is validated as field `user_id`.
    pub fn user(user_id: &str) -> Result<Scope> {
        Scope::parse(DEFAULT_ID, Some(user_id), None, None)
    }

    /// A scope from request parts: `user_id` defaults to `default`; each given id is validated
    /// and an invalid one is an error naming its field.
    pub fn parse(
        tenant: &str,
        user_id: Option<&str>,
        agent_id: Option<&str>,
        session_id: Option<&str>,
    ) -> Result<Scope> {
        check_id("tenant", tenant)?;
        let user_id = user_id.unwrap_or(DEFAULT_ID);
        check_id("user_id", user_id)?;
        if let Some(agent) = agent_id {
            check_id("agent_id", agent)?;
        }
        if let Some(session) = session_id {
            check_id("session_id", session)?;
        }
        Ok(Scope {
            owner: Owner::new(tenant, user_id),
            agent_id: agent_id.map(str::to_owned),
            session_id: session_id.map(str::to_owned),
        })
    }

    /// The same scope narrowed to `agent_id` (validated).
    pub fn with_agent(mut self, agent_id: &str) -> Result<Scope> {
        check_id("agent_id", agent_id)?;
        self.agent_id = Some(agent_id.to_owned());
        Ok(self)
    }

    /// The same scope narrowed to `session_id` (validated).
    pub fn with_session(mut self, session_id: &str) -> Result<Scope> {
        check_id("session_id", session_id)?;
        self.session_id = Some(session_id.to_owned());
        Ok(self)
    }

    /// The same scope without its agent and session: the whole user.
    pub fn whole_user(&self) -> Scope {
        Scope {
            owner: self.owner.clone(),
            agent_id: None,
            session_id: None,
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.owner.tenant
    }

    /// The user.
    pub fn user_id(&self) -> &str {
        &self.owner.user_id
    }

    /// The agent, if the scope names one.
    pub fn agent_id(&self) -> Option<&str> {
        self.agent_id.as_deref()
    }

    /// The session, if the scope names one.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The session session operations act on: the named one, else `default`.
    pub fn session_or_default(&self) -> &str {
        self.session_id.as_deref().unwrap_or(DEFAULT_ID)
    }

    /// Tenant and user.
    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// The key of the session this scope's session operations act on.
    pub fn session_key(&self) -> crate::session::SessionKey {
        crate::session::SessionKey::of(&self.owner, self.session_or_default())
    }

    /// Whether `memory` is inside this scope: same tenant and user, and the same agent and
    /// session where the scope names them.
    pub fn matches(&self, memory: &Memory) -> bool {
        self.owner.owns(memory)
            && self
                .agent_id
                .as_deref()
                .is_none_or(|a| memory.agent_id.as_deref() == Some(a))
            && self
                .session_id
                .as_deref()
                .is_none_or(|s| memory.session_id.as_deref() == Some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_by_length_and_alphabet() {
        for good in ["a", "alice@example.com", "u-1_2:3.4", &"x".repeat(128)] {
            check_id("user_id", good).expect(good);
        }
        for bad in ["", "has space", "slash/", "é", &"x".repeat(129)] {
            let err = check_id("user_id", bad).expect_err(bad);
            assert!(err.to_string().contains("user_id"), "{err}");
        }
    }

    #[test]
    fn parse_names_the_bad_field_and_defaults_the_user() {
        let scope = Scope::parse(DEFAULT_ID, None, None, None).expect("default");
        assert_eq!(scope, Scope::default());
        assert_eq!(scope.session_or_default(), DEFAULT_ID);
        let err = Scope::parse(DEFAULT_ID, Some("ok"), Some("bad agent"), None).expect_err("agent");
        assert!(err.to_string().contains("agent_id"), "{err}");
        let err = Scope::parse(DEFAULT_ID, Some("ok"), None, Some("")).expect_err("session");
        assert!(err.to_string().contains("session_id"), "{err}");
    }
}
