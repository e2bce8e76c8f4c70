//! The registry holds exactly the bundled plugins, and unknown names list them.

mod common;

use coda::registry::{self, BackendFactory, EmbedderFactory, SinkFactory, StoreFactory};

#[test]
fn registry_lists_exactly_the_bundled_plugins() {
    let names = registry::all_names().expect("no duplicate names");
    let got: Vec<(&str, Vec<&str>)> = names.into_iter().collect();
    let want: Vec<(&str, Vec<&str>)> = vec![
        ("backend", vec!["file", "memory"]),
        ("embedder", vec!["auto", "hashing", "minilm"]),
        ("sink", vec!["log", "websocket"]),
        ("snapshot store", vec!["fs", "zstd"]),
    ];
    assert_eq!(got, want);
    let bundled: Vec<(&str, Vec<&str>)> = common::BUNDLED
        .iter()
        .map(|(kind, names)| {
            let mut names = names.to_vec();
            names.sort_unstable();
            (*kind, names)
        })
        .collect();
    assert_eq!(
        bundled, want,
        "the facade's BUNDLED list matches the registry"
    );
}

#[test]
fn unknown_names_list_what_is_registered() {
    let err = registry::find::<BackendFactory>("redis")
        .err()
        .expect("unknown backend");
    assert!(
        err.to_string()
            .starts_with("unknown backend `redis`; registered backends: file, memory"),
        "{err}"
    );
    let err = registry::find::<SinkFactory>("kafka")
        .err()
        .expect("unknown sink");
    assert!(
        err.to_string().contains("registered sinks: log, websocket"),
        "{err}"
    );
    let err = registry::find::<StoreFactory>("s3")
        .err()
        .expect("unknown store");
    assert!(
        err.to_string()
            .contains("registered snapshot stores: fs, zstd"),
        "{err}"
    );
    let err = registry::find::<EmbedderFactory>("bert")
        .err()
        .expect("unknown embedder");
    assert!(
        err.to_string()
            .contains("registered embedders: auto, hashing, minilm"),
        "{err}"
    );
}
