//! `coda snapshot ...`: work on the configured snapshot store while the server is stopped.

use std::sync::Arc;

use clap::Subcommand;
use coda::diff::SnapshotDiff;
use coda::retention::{self, parse_duration, PrunePolicy, SnapshotFilter};
use coda::snapshot::{Snapshot, SnapshotStore, StoredSnapshot};
use coda::Config;

type Outcome = Result<(), Box<dyn std::error::Error>>;

/// Snapshot commands.
#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// List saved snapshots, newest first.
    List {
        /// Only snapshots taken at or after this RFC 3339 time.
        #[arg(long)]
        from: Option<String>,
        /// Only snapshots taken at or before this RFC 3339 time.
        #[arg(long)]
        to: Option<String>,
        /// Only snapshots whose memories, turns or topics contain this text.
        #[arg(long)]
        q: Option<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Show one snapshot.
    Show {
        /// The snapshot id.
        id: String,
        /// Print the whole snapshot as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compare two snapshots.
    Diff {
        /// The earlier snapshot id.
        a: String,
        /// The later snapshot id.
        b: String,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove old snapshots: those beyond the newest N and (if given) older than DUR.
    Prune {
        /// Keep this many of the newest snapshots.
        #[arg(long)]
        keep: Option<usize>,
        /// Only remove snapshots older than this (e.g. 30d, 12h, 90m).
        #[arg(long, value_name = "DUR")]
        older_than: Option<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

fn time(
    text: Option<String>,
    field: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, coda::Error> {
    text.map(|t| {
        coda::model::timestamp::parse(&t)
            .ok_or_else(|| coda::Error::invalid(field, format!("`{t}` is not an RFC 3339 time")))
    })
    .transpose()
}

fn find(store: &dyn SnapshotStore, id: &str) -> Result<(StoredSnapshot, Snapshot), coda::Error> {
    let stored = store
        .list()?
        .into_iter()
        .find(|s| s.meta.snapshot_id == id)
        .ok_or_else(|| coda::Error::snapshot_not_found(id))?;
    let snapshot = store.load(&stored.location)?;
    Ok((stored, snapshot))
}

fn print_json(value: &impl serde::Serialize) -> Outcome {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs a snapshot command against the store `config` selects.
pub fn run(config: &Config, command: SnapshotCommand) -> Outcome {
    let store: Arc<dyn SnapshotStore> = config.snapshot_store()?;
    match command {
        SnapshotCommand::List { from, to, q, json } => {
            let filter = SnapshotFilter {
                from: time(from, "from")?,
                to: time(to, "to")?,
                q,
            };
            let listed = retention::list_store(store.as_ref(), &filter)?;
            if json {
                return print_json(&listed);
            }
            if listed.is_empty() {
                println!("no snapshots in store `{}`", store.name());
            }
            for s in listed {
                let m = &s.meta;
                println!(
                    "{}  {}  {:>4} turns  {:>6} memories  {:>4} topics  user {} session {}",
                    m.snapshot_id,
                    coda::model::timestamp::format(&m.timestamp),
                    m.short_term_turns,
                    m.long_term_memories,
                    m.topics,
                    m.scope.user_id,
                    m.scope.session_id
                );
            }
            Ok(())
        }
        SnapshotCommand::Show { id, json } => {
            let (stored, snapshot) = find(store.as_ref(), &id)?;
            if json {
                return print_json(&snapshot);
            }
            let stats = &snapshot.memory_stats;
            println!("snapshot   {}", snapshot.snapshot_id);
            println!(
                "taken      {}",
                coda::model::timestamp::format(&snapshot.timestamp)
            );
            println!("location   {}", stored.location);
            println!(
                "scope      user {}, session {}",
                snapshot.scope.user_id, snapshot.scope.session_id
            );
            println!(
                "turns      {} in window, {} in session",
                snapshot.short_term.turns.len(),
                snapshot.short_term.turn_count
            );
            println!(
                "memories   {} (average importance {:.2})",
                snapshot.long_term.memory_count, stats.long_term.average_importance
            );
            for (kind, n) in &stats.long_term.source_types {
                println!("  {kind:<12} {n}");
            }
            println!("topics     {}", snapshot.long_term.topics.join(", "));
            for turn in &snapshot.short_term.turns {
                println!(
                    "  [{}] {}: {}",
                    turn.turn_index,
                    turn.role.as_str(),
                    turn.content
                );
            }
            Ok(())
        }
        SnapshotCommand::Diff { a, b, json } => {
            let (_, from) = find(store.as_ref(), &a)?;
            let (_, to) = find(store.as_ref(), &b)?;
            let diff = coda::diff::diff(&from, &to, &a, &b);
            if json {
                return print_json(&diff);
            }
            print_diff(&diff);
            Ok(())
        }
        SnapshotCommand::Prune {
            keep,
            older_than,
            json,
        } => {
            let policy = PrunePolicy {
                keep,
                older_than: older_than.as_deref().map(parse_duration).transpose()?,
            };
            let removed = retention::prune_store(store.as_ref(), &policy, &|_| true)?;
            if json {
                return print_json(&serde_json::json!({ "removed": removed }));
            }
            println!("removed {} snapshot(s)", removed.len());
            for id in removed {
                println!("  {id}");
            }
            Ok(())
        }
    }
}

fn print_diff(diff: &SnapshotDiff) {
    println!("{} -> {}", diff.from, diff.to);
    let m = &diff.memories;
    println!(
        "memories: {} added, {} removed, {} changed",
        m.added.len(),
        m.removed.len(),
        m.changed.len()
    );
    for a in &m.added {
        println!("  + {}  {}", a.id, a.memory.content);
    }
    for r in &m.removed {
        println!("  - {}  {}", r.id, r.memory.content);
    }
    for c in &m.changed {
        println!(
            "  ~ {}  {:?} -> {:?}",
            c.id, c.before.content, c.after.content
        );
    }
    println!(
        "turns: {} added, {} removed",
        diff.turns.added.len(),
        diff.turns.removed.len()
    );
    for t in &diff.turns.added {
        println!("  + [{}] {}: {}", t.turn_index, t.role.as_str(), t.content);
    }
    for t in &diff.turns.removed {
        println!("  - [{}] {}: {}", t.turn_index, t.role.as_str(), t.content);
    }
    if !diff.topics.added.is_empty() || !diff.topics.removed.is_empty() {
        println!(
            "topics: +[{}] -[{}]",
            diff.topics.added.join(", "),
            diff.topics.removed.join(", ")
        );
    }
    let s = &diff.stats;
    println!(
        "stats: memories {:+}, turns {:+}, topics {:+}, average importance {:+.3}",
        s.total_memories, s.turn_count, s.topics, s.average_importance
    );
}
