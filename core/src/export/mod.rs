//! Export and import as JSON Lines (SPEC §13): one user's or one tenant's memories, their
//! history, sessions and turns, in a file another Coda (or a migration script) can read.
//!
//! A file is a `header` line, then `memory`, `history`, `session` and `turn` lines, then an
//! `end` line counting the lines between, so a truncated file is detected. Writing streams
//! from the backend's visitors and reading validates the whole file before applying any of it,
//! so both run in constant memory whatever the file's size. docs/export-format.md is the
//! reference.

pub mod base64;
mod line;
mod line_reader;
mod read;
mod report;
mod write;

pub use line::{EmbedderInfo, Entry, Header, FORMAT, VERSION};
pub use line_reader::LineReader;
pub use read::import_file;
pub use report::ImportReport;
pub use write::{export_tenant, export_user, ExportWriter};
