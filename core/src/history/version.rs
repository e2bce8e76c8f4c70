//! The versions [`HistoryTable`](super::HistoryTable) answers with: what each did, when, by whom.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{timestamp, By, Memory};

/// What a version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The memory was added.
    Add,
    /// Its content, metadata or expiry changed.
    Update,
    /// A newer memory replaced it (`superseded_by`).
    Supersede,
    /// It was deleted.
    Delete,
    /// The sweeper deleted it when it expired.
    Expire,
}

/// One version of a memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// 1 for the first version, counting up.
    pub version: u32,
    /// What this version did.
    pub action: Action,
    /// When.
    #[serde(with = "timestamp")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: By,
    /// The memory as this version left it (for a delete: as it was when deleted).
    pub memory: Memory,
}

impl Version {
    /// Whether the memory still existed after this version.
    pub fn is_live(&self) -> bool {
        !matches!(self.action, Action::Delete | Action::Expire)
    }
}
