//! One line of an export: what each `kind` holds, how it is written and how it is parsed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::base64;
use crate::history::Version;
use crate::model::{timestamp, Memory, MemoryId, Turn};
use crate::session::SessionInfo;
use crate::{Error, Result};

/// The `format` every export's header names.
pub const FORMAT: &str = "coda-export";

/// The format version this Coda writes and reads.
pub const VERSION: u32 = 1;

/// Which embedder made a file's vectors: an import by another embedder re-embeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderInfo {
    /// Its registered name, e.g. `minilm`.
    pub name: String,
    /// Its [`fingerprint`](crate::Embedder::fingerprint); vectors are reused only when it
    /// equals the importing embedder's.
    pub fingerprint: String,
    /// Length of every vector.
    pub dims: usize,
}

/// The first line of every export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version, [`VERSION`].
    pub version: u32,
    /// The embedder of the file's vectors; absent in a file converted from elsewhere, whose
    /// memories carry no vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedder: Option<EmbedderInfo>,
    /// The tenant exported (informational: an import writes into the importer's tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The user exported, for a one-user export; every line then belongs to this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// When the export was written.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "timestamp::option"
    )]
    pub exported_at: Option<DateTime<Utc>>,
}

/// One parsed line after the header.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A memory; `embedding` is `None` when the line has none (it is embedded on import).
    Memory {
        /// The memory, every field of it.
        memory: Memory,
        /// Its vector, decoded.
        embedding: Option<Vec<f32>>,
    },
    /// Every version of one memory, oldest first.
    History {
        /// Whose versions.
        memory_id: MemoryId,
        /// The versions.
        versions: Vec<Version>,
    },
    /// A session, without its turns (they follow as `turn` lines).
    Session(SessionInfo),
    /// One turn of the window of the session line before it.
    Turn {
        /// The session's id.
        session_id: String,
        /// The session's user.
        user_id: String,
        /// The turn.
        turn: Turn,
    },
    /// The last line: how many lines lie between the header and it.
    End {
        /// That count.
        count: u64,
    },
}

/// Keys a `memory` line may hold: a [`Memory`]'s fields plus `kind` and `embedding`.
const MEMORY_KEYS: [&str; 13] = [
    "id",
    "content",
    "user_id",
    "agent_id",
    "session_id",
    "tenant",
    "metadata",
    "slot",
    "superseded_by",
    "expires_at",
    "updated_at",
    "source_turns",
    "embedding",
];

/// `{"kind": KIND, ...value's fields}` as one line (with its newline), `kind` first so a
/// reader sees what a line is at a glance.
pub(super) fn render<T: Serialize>(kind: &str, value: &T) -> Result<String> {
    let body = serde_json::to_string(value)
        .map_err(|e| Error::invalid(kind, format!("cannot be written as JSON: {e}")))?;
    let rest = body.strip_prefix('{').unwrap_or("}");
    let sep = if rest == "}" { "" } else { "," };
    Ok(format!("{{\"kind\":\"{kind}\"{sep}{rest}\n"))
}

/// A memory line's body: the memory's fields and its vector in base64.
#[derive(Serialize)]
pub(super) struct MemoryOut<'a> {
    #[serde(flatten)]
    pub memory: &'a Memory,
    pub embedding: String,
}

/// A history line's body.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryLine {
    pub memory_id: MemoryId,
    pub versions: Vec<Version>,
}

/// A turn line's body.
#[derive(Serialize)]
pub(super) struct TurnOut<'a> {
    pub session_id: &'a str,
    pub user_id: &'a str,
    #[serde(flatten)]
    pub turn: &'a Turn,
}

/// An end line's body.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EndLine {
    pub count: u64,
}

/// What a line is: its `kind` and the rest of its object. Errors name the line.
pub(super) fn split(number: u64, text: &str) -> Result<(String, Map<String, Value>)> {
    let at = || format!("line {number}");
    let mut object: Map<String, Value> = serde_json::from_str(text)
        .map_err(|e| Error::invalid(at(), format!("is not a JSON object: {e}")))?;
    match object.remove("kind") {
        Some(Value::String(kind)) => Ok((kind, object)),
        Some(_) => Err(Error::invalid(at(), "`kind` must be a string")),
        None => Err(Error::invalid(at(), "has no `kind`")),
    }
}

fn typed<T: serde::de::DeserializeOwned>(number: u64, object: Map<String, Value>) -> Result<T> {
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            Error::invalid(format!("line {number}"), inner.to_string())
        } else {
            Error::invalid(format!("line {number}"), format!("`{path}`: {inner}"))
        }
    })
}

/// The header in line `number`'s object (`kind` already taken off).
pub(super) fn header(number: u64, object: Map<String, Value>) -> Result<Header> {
    let at = format!("line {number}");
    match object.get("format") {
        Some(Value::String(f)) if f == FORMAT => {}
        Some(Value::String(f)) => {
            return Err(Error::invalid(
                at,
                format!("is a `{f}` file, not a `{FORMAT}` export"),
            ))
        }
        _ => {
            return Err(Error::invalid(
                at,
                format!("has no `format`; a Coda export's header says \"format\":\"{FORMAT}\""),
            ))
        }
    }
    match object.get("version").and_then(Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(Error::invalid(
                at,
                format!("is format version {v}; this Coda reads version {VERSION}"),
            ))
        }
        None => return Err(Error::invalid(at, "has no numeric `version`")),
    }
    typed(number, object)
}

/// Line `number` after the header, parsed.
pub(super) fn entry(number: u64, kind: &str, mut object: Map<String, Value>) -> Result<Entry> {
    let at = || format!("line {number}");
    match kind {
        "memory" => {
            if let Some(key) = object.keys().find(|k| !MEMORY_KEYS.contains(&k.as_str())) {
                return Err(Error::invalid(
                    at(),
                    format!("unknown key `{key}` in a memory line"),
                ));
            }
            let embedding = match object.remove("embedding") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(
                    base64::decode_f32(&text)
                        .map_err(|e| Error::invalid(at(), format!("`embedding` {e}")))?,
                ),
                Some(_) => return Err(Error::invalid(at(), "`embedding` must be a string")),
            };
            let memory: Memory = typed(number, object)?;
            Ok(Entry::Memory { memory, embedding })
        }
        "history" => {
            let line: HistoryLine = typed(number, object)?;
            if line.versions.is_empty() {
                return Err(Error::invalid(at(), "`versions` is empty"));
            }
            if line.versions.iter().any(|v| v.memory.id != line.memory_id) {
                return Err(Error::invalid(
                    at(),
                    "a version's memory id differs from `memory_id`",
                ));
            }
            Ok(Entry::History {
                memory_id: line.memory_id,
                versions: line.versions,
            })
        }
        "session" => Ok(Entry::Session(typed(number, object)?)),
        "turn" => {
            let mut id = |name: &str| match object.remove(name) {
                Some(Value::String(s)) => Ok(s),
                _ => Err(Error::invalid(at(), format!("`{name}` must be a string"))),
            };
            let session_id = id("session_id")?;
            let user_id = id("user_id")?;
            Ok(Entry::Turn {
                session_id,
                user_id,
                turn: typed(number, object)?,
            })
        }
        "end" => {
            let end: EndLine = typed(number, object)?;
            Ok(Entry::End { count: end.count })
        }
        "header" => Err(Error::invalid(at(), "a second header; only line 1 is one")),
        other => Err(Error::invalid(
            at(),
            format!("unknown kind `{other}`; expected memory, history, session, turn or end"),
        )),
    }
}
