//! `[[sinks]] type = "log"` options.

use serde::{Deserialize, Serialize};

/// Options of the log sink.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogOptions {
    /// A file to append to (its directory is created), or `stderr`.
    #[serde(default = "LogOptions::default_path")]
    pub path: String,
    /// Events the writer may fall behind before new ones are dropped.
    #[serde(default = "LogOptions::default_queue")]
    pub queue: usize,
}

impl LogOptions {
    fn default_path() -> String {
        "stderr".into()
    }

    fn default_queue() -> usize {
        8192
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            path: Self::default_path(),
            queue: Self::default_queue(),
        }
    }
}
