//! The `coda` command: run the server, list plugins, check configuration, manage snapshots
//! and embedding models.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod models;
mod snapshot_cmd;
mod transfer_cmd;

use coda_server::restore as restore_cmd;

/// jemalloc rather than the system allocator: a server allocates and frees small objects on
/// many threads (requests, events, a replay's records), where glibc's arenas cost a fifth of a
/// large log's open and contend under load (see README, Benchmarks).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Coda: a memory service for AI assistants.
#[derive(Parser)]
#[command(name = "coda", version, about, long_about = None)]
struct Cli {
    /// Configuration file (default: $CODA_CONFIG, else ./Coda.toml, else built-in defaults).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: /ws, /api/v1, /metrics, /healthz and / on `server.bind`.
    Serve,
    /// List registered plugins by kind.
    Plugins,
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Work on saved snapshots in the configured store (with the server stopped).
    Snapshot {
        #[command(subcommand)]
        command: snapshot_cmd::SnapshotCommand,
    },
    /// Embedding models: what is installed, and fetching them (`coda models pull minilm`).
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// Write one user's (or, without --user, a whole tenant's) memories, histories, sessions
    /// and turns as JSON Lines, from the configured store (with the server stopped).
    Export {
        /// The user to export; without it, every user of the tenant.
        #[arg(long, value_name = "UID")]
        user: Option<String>,
        /// The tenant.
        #[arg(long, value_name = "T", default_value = "default")]
        tenant: String,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Read an export into the configured store (with the server stopped): validated whole
    /// first, so a bad file changes nothing; re-importing the same file changes nothing.
    Import {
        /// The export file.
        file: PathBuf,
        /// The tenant to import into (whatever tenant the file names).
        #[arg(long, value_name = "T", default_value = "default")]
        tenant: String,
    },
    /// Check a backup (from POST /api/v1/backup) against its manifest and restore it as a data
    /// directory: the backend's files in DATA_DIR, the snapshots in DATA_DIR/snapshots.
    Restore {
        /// The backup directory (holding manifest.json).
        dir: PathBuf,
        /// The data directory to restore into: new or empty.
        #[arg(long, value_name = "DATA_DIR")]
        to: PathBuf,
        /// Replace the data already in DATA_DIR (only Coda's own files; stop the server first).
        #[arg(long)]
        force: bool,
    },
    /// Serve MCP on stdin/stdout for an assistant: over the configured store (with no server
    /// running on it), or with `--url` through a running server.
    Mcp {
        /// Proxy every tool call to the Coda server at this base URL (http://HOST:PORT)
        /// instead of opening the store.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// The server's bearer token (with `--url`; default: $CODA_TOKEN).
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
        /// The tenant to work on (default `default`); with `--url`, sent as X-Coda-Tenant.
        #[arg(long, value_name = "ID")]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective config, defaults filled in.
    Check,
}

fn main() -> ExitCode {
    if let Err(e) = init_logging() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `CODA_LOG` (an `EnvFilter` directive, default `info`) and `CODA_LOG_FORMAT` (`text`, the
/// default, or `json`: one JSON object a line). An unknown format is an error rather than a
/// warning: an operator who asked for JSON feeds the lines to a parser, and plain text there
/// would fail far from the cause.
fn init_logging() -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CODA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let format = std::env::var("CODA_LOG_FORMAT").unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format.as_str() {
        "" | "text" => builder
            // Colour only for a terminal: logs redirected to files stay plain text.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        "json" => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        other => {
            return Err(format!(
                "CODA_LOG_FORMAT is `{other}`; it must be `text` (the default) or `json`"
            ))
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Serve => serve(cli.config),
        Command::Plugins => {
            for (kind, names) in coda::registry::all_names()? {
                println!("{kind}: {}", names.join(", "));
            }
            // A broken configuration should not hide the plugin list; `auto` then resolves
            // as it would with no `[embedders.minilm]` table.
            let config = coda::Config::load(cli.config.as_deref()).unwrap_or_default();
            println!("{}", models::auto_line(&config));
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let config = coda::Config::load(cli.config.as_deref())?;
            let effective = config.effective()?;
            if config.memory.embedder == coda::embed::auto::AUTO_NAME {
                // A TOML comment, so the printed configuration still loads as it is.
                println!("# {}", models::auto_line(&config));
            }
            print!("{}", toml::to_string_pretty(&effective)?);
            eprintln!("configuration is valid");
            Ok(())
        }
        Command::Snapshot { command } => {
            let config = coda::Config::load(cli.config.as_deref())?;
            snapshot_cmd::run(&config, command)
        }
        Command::Models { command } => {
            let config = coda::Config::load(cli.config.as_deref())?;
            Ok(models::run(&config, command)?)
        }
        Command::Export { user, tenant, out } => {
            let config = coda::Config::load(cli.config.as_deref())?;
            transfer_cmd::export(config, user, tenant, out)
        }
        Command::Restore { dir, to, force } => restore_cmd::restore(&dir, &to, force),
        Command::Import { file, tenant } => {
            let config = coda::Config::load(cli.config.as_deref())?;
            transfer_cmd::import(config, file, tenant)
        }
        Command::Mcp { url, token, tenant } => {
            use coda_server::mcp::stdio::{run, Target};
            match url {
                Some(url) => {
                    let token = token.or_else(|| std::env::var("CODA_TOKEN").ok());
                    run(Target::Remote { url, token, tenant })
                }
                None if token.is_some() => Err(
                    "`--token` is for `--url`: without it, coda mcp opens the configured \
                         store itself"
                        .into(),
                ),
                None => {
                    let config = coda::Config::load(cli.config.as_deref())?;
                    run(Target::Local { config, tenant })
                }
            }
        }
    }
}

fn serve(config: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let config = coda::Config::load(config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = coda_server::start(config).await?;
        // Exactly one line on stdout, so scripts and tests can find the port.
        println!("listening on {}", server.addr());
        std::io::Write::flush(&mut std::io::stdout())?;
        server.run_until_signal().await?;
        Ok(())
    })
}
