//! A minimal assistant loop on Coda, no LLM needed: an echo "assistant" that stores every turn,
//! persists at the end of each session, and recalls what it learnt in the next session of the
//! same user — with a fact that changed in between (the newer one supersedes the older).
//!
//! `cargo run --example chat_loop`

use coda::{Config, Error, MemoryManager, Role};

/// The "assistant": recalls the user's memories that match what was said, and echoes.
fn reply(coda: &MemoryManager, user: &str, said: &str) -> coda::Result<String> {
    let facts =
        coda::Filter::parse(&serde_json::json!({"source_type": {"in": ["fact", "preference"]}}))?;
    let recalled = coda.user(user)?.search_memories(
        said,
        1,
        -1.0,
        Some(&facts),
        Some(coda::SearchMode::Lexical),
    )?;
    // The example pins `hashing` so it runs anywhere, and hashing does not match paraphrases:
    // recall by shared words, and only what matches well. With minilm (`embedder = "auto"` and
    // `coda models pull minilm`) the default hybrid ranking does better.
    let facts: Vec<&str> = recalled
        .iter()
        .filter(|m| m.score >= 0.3)
        .map(|m| m.content.as_str())
        .collect();
    Ok(match facts.as_slice() {
        [] => format!("You said: {said}"),
        known => format!("You said: {said} (I remember: {})", known.join(" ")),
    })
}

/// One session: each user line becomes a turn, the reply another; persist at the end.
fn session(coda: &MemoryManager, user: &str, id: &str, lines: &[&str]) -> coda::Result<()> {
    let chat = coda.session(user, id)?;
    println!("-- {user}, session {id}");
    for line in lines {
        chat.add_turn(Role::User, line)?;
        let answer = reply(coda, user, line)?;
        println!("{user}: {line}\ncoda: {answer}");
        chat.add_turn(Role::Assistant, &answer)?;
    }
    let persisted = chat.persist()?;
    println!("(persisted {} memories)", persisted.memories_added);
    Ok(())
}

fn main() -> coda::Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("create", "temp dir", e))?;
    let config = Config::from_toml_str(&format!(
        "[memory]\nbackend = \"file\"\nembedder = \"hashing\"\n[backends.file]\ndir = \"{}\"\n\
         [stores.fs]\ndir = \"{}\"",
        dir.path().join("memory").display(),
        dir.path().join("snapshots").display()
    ))?;
    let coda = MemoryManager::builder(config.clone())
        .configured_sinks(false)
        .build()?;
    session(
        &coda,
        "alice",
        "monday",
        &[
            "Hi, my name is Alice and I live in Paris.",
            "I love green tea.",
        ],
    )?;
    // The process restarts between sessions: memory is durable.
    coda.shutdown()?;
    drop(coda);
    let coda = MemoryManager::builder(config)
        .configured_sinks(false)
        .build()?;
    session(
        &coda,
        "alice",
        "friday",
        &[
            "Where do I live again?",
            "Actually, I moved to Berlin last month.",
        ],
    )?;
    let alice = coda.user("alice")?;
    let facts = coda::Filter::source_type("fact");
    let home = alice.search_memories("where does the user live", 1, -1.0, Some(&facts), None)?;
    let home = home.first().map(|m| m.content.clone()).unwrap_or_default();
    println!("-- what Coda believes now: {home}");
    assert_eq!(home, "The user lives in Berlin.");
    // Paris is kept, superseded, with its history.
    let all = alice.list_visible(
        0,
        50,
        None,
        coda::Visibility {
            include_superseded: true,
            ..Default::default()
        },
    )?;
    if let Some(paris) = all.iter().find(|m| m.content == "The user lives in Paris.") {
        let history = alice.memory_history(paris.id)?;
        let actions: Vec<_> = history.iter().map(|v| format!("{:?}", v.action)).collect();
        println!("-- \"{}\": {}", paris.content, actions.join(" → "));
    }
    // Bob shares the server and sees none of it.
    assert!(coda
        .user("bob")?
        .search_memories("where does the user live", 5, -1.0, None, None)?
        .is_empty());
    coda.shutdown()
}

#[test]
fn example_runs() {
    main().expect("the example succeeds");
}
