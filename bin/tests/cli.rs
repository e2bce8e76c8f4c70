//! The `coda` binary's commands, run as a user would.

use std::process::Command;

fn coda() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coda"));
    cmd.env_remove("CODA_CONFIG");
    cmd
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run coda");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plugins_lists_every_kind() {
    let (ok, stdout, _) = run(coda().arg("plugins"));
    assert!(ok);
    for line in ["backend: ", "embedder: ", "sink: ", "snapshot store: "] {
        assert!(stdout.contains(line), "{line:?} in {stdout}");
    }
    assert!(stdout.contains("memory") && stdout.contains("hashing") && stdout.contains("fs"));
}

#[test]
fn config_check_prints_the_effective_config_and_env_overrides_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("Coda.toml");
    std::fs::write(
        &path,
        "[memory]\nbackend = \"memory\"\nshort_term_max_turns = 9\n",
    )
    .expect("write");
    let (ok, stdout, stderr) = run(coda()
        .args(["config", "check", "--config"])
        .arg(&path)
        .env("CODA_MEMORY__SHORT_TERM_MAX_TURNS", "7"));
    assert!(ok, "{stderr}");
    let effective: toml::Value = toml::from_str(&stdout).expect("effective config is TOML");
    assert_eq!(
        effective["memory"]["short_term_max_turns"].as_integer(),
        Some(7),
        "env wins"
    );
    assert_eq!(
        effective["embedders"]["hashing"]["dims"].as_integer(),
        Some(384),
        "defaults filled"
    );
    assert!(stderr.contains("configuration is valid"));
}

#[test]
fn config_errors_exit_non_zero_with_the_key_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("Coda.toml");
    std::fs::write(&path, "[memory]\nbackend = \"nope\"\n").expect("write");
    let (ok, _, stderr) = run(coda().args(["config", "check", "--config"]).arg(&path));
    assert!(!ok);
    assert!(
        stderr.contains("`memory.backend`") && stderr.contains("registered backends"),
        "{stderr}"
    );
    let (ok, _, stderr) = run(coda()
        .args(["config", "check"])
        .env("CODA_CONFIG", dir.path().join("missing.toml")));
    assert!(!ok);
    assert!(stderr.contains("missing.toml"), "{stderr}");
    let (ok, _, stderr) = run(coda()
        .args(["config", "check", "--config"])
        .arg(&path)
        .env("CODA_MEMORY__BAKCEND", "memory"));
    assert!(!ok);
    assert!(stderr.contains("`memory.bakcend`"), "{stderr}");
}

#[test]
fn help_and_version() {
    let (ok, stdout, _) = run(coda().arg("--help"));
    assert!(ok && stdout.contains("plugins") && stdout.contains("config"));
    let (ok, stdout, _) = run(coda().arg("--version"));
    assert!(ok && stdout.starts_with("coda "), "{stdout}");
}
