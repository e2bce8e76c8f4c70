//! The core conformance kits against the components that live in core.

use coda::embed::HashingEmbedder;

#[test]
fn hashing_embedder_passes_the_embedder_kit() {
    for dims in [64, 384, 1024] {
        coda::testkit::embedder_conformance(&HashingEmbedder::new(dims).expect("dims"));
    }
}
