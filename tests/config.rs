//! Configuration errors through the public API, with every plugin linked.

mod common;

use coda::{Config, MemoryManager};

fn open_err(toml: &str) -> String {
    let config = match Config::from_toml_str(toml) {
        Ok(config) => config,
        Err(e) => return e.to_string(),
    };
    match MemoryManager::builder(config)
        .configured_sinks(false)
        .build()
    {
        Ok(_) => panic!("configuration should be refused:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_plugins_are_refused_with_the_registered_names() {
    let msg = open_err("[memory]\nbackend = \"redis\"");
    assert!(msg.contains("`memory.backend`"), "{msg}");
    assert!(
        msg.contains("unknown backend `redis`; registered backends: "),
        "{msg}"
    );
    let msg = open_err("[memory]\nbackend = \"memory\"\n[[sinks]]\ntype = \"kafka\"");
    assert!(
        msg.contains("`sinks[0].type`") && msg.contains("registered sinks"),
        "{msg}"
    );
    let msg = open_err("[memory]\nbackend = \"memory\"\n[stores.s3]\nbucket = \"x\"");
    assert!(
        msg.contains("`stores.s3`") && msg.contains("registered snapshot stores"),
        "{msg}"
    );
}

#[test]
fn plugin_option_errors_name_the_key_path() {
    let msg = open_err("[memory]\nbackend = \"memory\"\n[embedders.hashing]\ndims = \"wide\"");
    assert!(msg.contains("`embedders.hashing.dims`"), "{msg}");
    let msg = open_err("[memory]\nbackend = \"memory\"\n[stores.fs]\ndirectory = \"x\"");
    assert!(
        msg.contains("`stores.fs") && msg.contains("unknown field `directory`"),
        "{msg}"
    );
    let msg = open_err("[memory]\nbackend = \"memory\"\n[[sinks]]\ntype = \"log\"\nqueue = -1");
    assert!(msg.contains("`sinks[0].queue`"), "{msg}");
}

#[test]
fn unknown_keys_and_bad_values_name_the_key_path() {
    let msg = open_err("[events]\nreplay_capacty = 10");
    assert!(msg.contains("`events.replay_capacty`"), "{msg}");
    let msg = open_err("[snapshots]\nauto = \"yes\"");
    assert!(msg.contains("`snapshots.auto`"), "{msg}");
}

#[test]
fn the_repository_config_opens() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/Coda.toml");
    let text = std::fs::read_to_string(path).expect("Coda.toml");
    let config = Config::from_toml_str(&text).expect("repository Coda.toml parses");
    assert_eq!(
        config,
        Config::default(),
        "the built-in defaults equal Coda.toml"
    );
    config
        .effective()
        .expect("every plugin it names is registered");
}
