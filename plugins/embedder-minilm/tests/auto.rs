//! `memory.embedder = "auto"` with this plugin linked: it picks minilm when the model is found,
//! and the embedder it builds reports minilm's own fingerprint, so stores re-embed on a switch.

use std::collections::BTreeMap;

use serde_json::json;

use coda_core::embed::auto::{self, AutoChoice, ModelSource};
use coda_core::registry::{find, EmbedderFactory};
use coda_core::EmbedderContext;
use coda_embedder_minilm::test_model_dir;

#[test]
fn auto_builds_minilm_from_a_configured_model_dir_with_its_fingerprint() {
    let Some(dir) = test_model_dir() else { return };
    let tables = BTreeMap::from([("minilm".to_owned(), json!({"model_dir": dir}))]);
    match auto::resolve(&tables) {
        AutoChoice::Minilm(found) => {
            assert_eq!(found.source, ModelSource::Config);
            assert_eq!(found.dir, dir);
        }
        other => panic!("expected minilm, got {other}"),
    }
    let built = find::<EmbedderFactory>(auto::AUTO_NAME)
        .expect("auto is registered")
        .build_with(json!({}), "embedders.auto", &EmbedderContext::new(tables))
        .expect("auto builds");
    let direct = find::<EmbedderFactory>("minilm")
        .expect("minilm is registered")
        .build_with(
            json!({"model_dir": dir}),
            "embedders.minilm",
            &EmbedderContext::default(),
        )
        .expect("minilm builds");
    assert_eq!(built.name(), "minilm");
    assert_eq!(built.fingerprint(), direct.fingerprint());
    assert_eq!(
        built.embed("The user has a dog named Rex.").expect("embed"),
        direct
            .embed("The user has a dog named Rex.")
            .expect("embed")
    );
}
