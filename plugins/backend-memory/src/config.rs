//! `[backends.memory]` options.

use serde::{Deserialize, Serialize};

/// The memory backend takes no options; the table exists so unknown keys are still rejected.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryOptions {}
