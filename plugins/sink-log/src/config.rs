//! `[[sinks]] type = "log"` options.

use serde::{Deserialize, Deserializer, Serialize};

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
    /// Size in bytes at which the file is rotated to `<path>.1` (and compressed to
    /// `<path>.1.zst`); `0` never rotates. A `stderr` target never rotates.
    #[serde(default = "LogOptions::default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept (`<path>.1.zst` newest to `<path>.<keep>.zst` oldest); at least 1.
    #[serde(
        default = "LogOptions::default_keep",
        deserialize_with = "at_least_one"
    )]
    pub keep: usize,
}

impl LogOptions {
    fn default_path() -> String {
        "stderr".into()
    }

    fn default_queue() -> usize {
        8192
    }

    fn default_max_bytes() -> u64 {
        64 * 1024 * 1024
    }

    fn default_keep() -> usize {
        5
    }

    /// Whether this configuration rotates its file.
    pub fn rotates(&self) -> bool {
        self.path != "stderr" && self.max_bytes > 0
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            path: Self::default_path(),
            queue: Self::default_queue(),
            max_bytes: Self::default_max_bytes(),
            keep: Self::default_keep(),
        }
    }
}

/// Checked while deserialising, so the registry's error names `sinks[N].keep`: keeping no
/// rotated file would delete events at every rotation, which `max_bytes = 0` already says
/// better (never rotate) or a smaller `max_bytes` does more honestly.
fn at_least_one<'de, D: Deserializer<'de>>(de: D) -> Result<usize, D::Error> {
    let keep = usize::deserialize(de)?;
    if keep == 0 {
        return Err(serde::de::Error::custom(
            "must be at least 1 (use max_bytes = 0 to never rotate)",
        ));
    }
    Ok(keep)
}
