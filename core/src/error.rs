//! The one error type every Coda crate returns.

use std::path::PathBuf;

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Coda, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration named a plugin that is not registered.
    #[error("unknown {kind} `{name}`; registered {kind}s: {}", available.join(", "))]
    UnknownPlugin {
        /// The kind of plugin: `backend`, `sink`, `snapshot store` or `embedder`.
        kind: &'static str,
        /// The name that was asked for.
        name: String,
        /// Every name registered for that kind, sorted.
        available: Vec<String>,
    },
    /// Two plugins of one kind registered the same name.
    #[error("{kind} `{name}` is registered twice; plugin names must be unique")]
    DuplicatePlugin {
        /// The kind of plugin.
        kind: &'static str,
        /// The name registered more than once.
        name: String,
    },
    /// A configuration value is missing, unknown or out of range.
    #[error("invalid configuration{}: {reason}", at_path(path))]
    InvalidConfig {
        /// Dotted key path, e.g. `backends.file.sync`.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A caller's input failed validation.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The offending field, e.g. `importance` or `filter.topics`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The named thing does not exist.
    #[error("{what} `{id}` not found")]
    NotFound {
        /// What kind of thing: `memory`, `snapshot`.
        what: &'static str,
        /// Its identifier.
        id: String,
    },
    /// Stored data could not be read back as what it claims to be.
    #[error("corrupt data in {}: {reason}", path.display())]
    Corrupt {
        /// The file (or location) holding the bad data.
        path: PathBuf,
        /// What was wrong, with an offset where one is known.
        reason: String,
    },
    /// An operating-system I/O failure, with the path it concerned.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done: `open`, `write`, `fsync`, ...
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The request contradicts stored state (a turn for a session another user owns).
    #[error("{0}")]
    Conflict(String),
    /// The component is unavailable (locked by another process, shut down, ...).
    #[error("{0}")]
    Unavailable(String),
    /// A write would take the tenant over its `max_memories`; nothing was written.
    #[error("this tenant may hold at most {max} memories; nothing was written")]
    QuotaExceeded {
        /// The tenant's `max_memories`.
        max: u64,
    },
}

fn at_path(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at `{path}`")
    }
}

impl Error {
    /// An [`Error::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::InvalidConfig`] at `path`.
    pub fn config(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::Io`] for `action` on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Corrupt`] for the data at `path`.
    pub fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::NotFound`] for a memory.
    pub fn memory_not_found(id: impl ToString) -> Self {
        Error::NotFound {
            what: "memory",
            id: id.to_string(),
        }
    }

    /// An [`Error::NotFound`] for a session.
    pub fn session_not_found(id: impl ToString) -> Self {
        Error::NotFound {
            what: "session",
            id: id.to_string(),
        }
    }

    /// An [`Error::NotFound`] for a user.
    pub fn user_not_found(id: impl ToString) -> Self {
        Error::NotFound {
            what: "user",
            id: id.to_string(),
        }
    }

    /// An [`Error::NotFound`] for a snapshot.
    pub fn snapshot_not_found(id: impl ToString) -> Self {
        Error::NotFound {
            what: "snapshot",
            id: id.to_string(),
        }
    }

    /// A stable snake_case code for this error, used by the HTTP API's error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnknownPlugin { .. } => "unknown_plugin",
            Error::DuplicatePlugin { .. } => "duplicate_plugin",
            Error::InvalidConfig { .. } => "invalid_config",
            Error::Invalid { .. } => "invalid_field",
            Error::NotFound { .. } => "not_found",
            Error::Corrupt { .. } => "corrupt",
            Error::Io { .. } => "io_error",
            Error::Conflict(_) => "conflict",
            Error::Unavailable(_) => "unavailable",
            Error::QuotaExceeded { .. } => "quota_exceeded",
        }
    }
}
