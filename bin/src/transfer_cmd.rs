//! `coda export` and `coda import`: move memories between stores as JSON Lines (SPEC §13),
//! on the configured store with the server stopped (the file backend's lock refuses a second
//! opener, so a running server is never written behind its back).

use std::io::Write;
use std::path::PathBuf;

use coda::{Config, MemoryManager};

type Outcome = Result<(), Box<dyn std::error::Error>>;

/// `coda export`: one user, or a whole tenant without `--user`.
pub fn export(
    config: Config,
    user: Option<String>,
    tenant: String,
    out: Option<PathBuf>,
) -> Outcome {
    // A read: no events, so no sinks.
    let manager = MemoryManager::builder(config)
        .configured_sinks(false)
        .build()?;
    let mut sink: Box<dyn Write> = match &out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| coda::Error::io("create", path, e))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let lines = match &user {
        Some(user) => {
            let scope = coda::Scope::parse(&tenant, Some(user), None, None)?;
            coda::export::export_user(&manager, &scope, &mut sink)?
        }
        None => coda::export::export_tenant(&manager, &tenant, &mut sink)?,
    };
    drop(sink);
    let what = match &user {
        Some(user) => format!("user `{user}` of tenant `{tenant}`"),
        None => format!("tenant `{tenant}`"),
    };
    let whither = out.map_or("stdout".to_owned(), |p| p.display().to_string());
    eprintln!("exported {what}: {lines} lines to {whither}");
    manager.shutdown()?;
    Ok(())
}

/// `coda import FILE`: into `tenant`; prints the report as JSON.
pub fn import(config: Config, file: PathBuf, tenant: String) -> Outcome {
    // Events go to the configured sinks, as for any write.
    let manager = MemoryManager::open(config)?;
    let report = coda::export::import_file(&manager, &tenant, &file);
    let shutdown = manager.shutdown();
    let report = report?;
    shutdown?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
