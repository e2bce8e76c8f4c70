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
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\nshort_term_max_turns = 9\n",
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

mod snapshot_commands {
    use super::*;
    use coda::snapshot::SnapshotStore;

    fn store_with_snapshots(dir: &std::path::Path) -> (std::path::PathBuf, Vec<String>) {
        let config = dir.join("Coda.toml");
        let snaps = dir.join("snaps");
        std::fs::write(
            &config,
            format!(
                "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[stores.fs]\ndir = \"{}\"\n",
                snaps.display()
            ),
        )
        .expect("write config");
        let store = coda::snapshot_fs::FsStore::open(&snaps).expect("store");
        let now = chrono::Utc::now();
        let mut ids = Vec::new();
        for days in [10, 5, 0] {
            let mut s = coda::testkit::sample_snapshot(now - chrono::Duration::days(days));
            if days == 0 {
                let (_, memory) = s.long_term.memories.first_mut().expect("a memory");
                memory.content = "The user owns a kayak.".into();
            }
            store.save(&s).expect("save");
            ids.push(s.snapshot_id);
        }
        (config, ids)
    }

    fn json(cmd: &mut Command) -> serde_json::Value {
        let (ok, stdout, stderr) = run(cmd);
        assert!(ok, "{stderr}");
        serde_json::from_str(&stdout).expect("JSON output")
    }

    #[test]
    fn list_show_diff_and_prune_work_on_the_configured_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, ids) = store_with_snapshots(dir.path());
        let snapshot = |args: &[&str]| {
            let mut cmd = coda();
            cmd.arg("--config").arg(&config).arg("snapshot").args(args);
            cmd
        };
        let listed = json(&mut snapshot(&["list", "--json"]));
        assert_eq!(listed.as_array().expect("array").len(), 3);
        assert_eq!(listed[0]["snapshot_id"], ids[2], "newest first");
        let kayak = json(&mut snapshot(&["list", "--q", "kayak", "--json"]));
        assert_eq!(kayak.as_array().expect("array").len(), 1);
        let (ok, stdout, _) = run(&mut snapshot(&["list"]));
        assert!(
            ok && stdout.lines().count() == 3 && stdout.contains(&ids[0]),
            "{stdout}"
        );

        let (ok, stdout, _) = run(&mut snapshot(&["show", &ids[1]]));
        assert!(
            ok && stdout.contains(&ids[1]) && stdout.contains("memories"),
            "{stdout}"
        );
        let shown = json(&mut snapshot(&["show", &ids[1], "--json"]));
        assert_eq!(shown["snapshot_id"], ids[1]);

        let diff = json(&mut snapshot(&["diff", &ids[0], &ids[2], "--json"]));
        assert_eq!(
            diff["memories"]["added"].as_array().expect("added").len(),
            1
        );
        let (ok, stdout, _) = run(&mut snapshot(&["diff", &ids[0], &ids[2]]));
        assert!(
            ok && stdout.contains("memories: 1 added, 1 removed"),
            "{stdout}"
        );

        let pruned = json(&mut snapshot(&[
            "prune",
            "--keep",
            "2",
            "--older-than",
            "7d",
            "--json",
        ]));
        assert_eq!(pruned["removed"], serde_json::json!([ids[0]]));
        let (ok, stdout, _) = run(&mut snapshot(&["prune", "--keep", "1"]));
        assert!(ok && stdout.contains("removed 1 snapshot"), "{stdout}");
        assert_eq!(
            json(&mut snapshot(&["list", "--json"]))
                .as_array()
                .expect("array")
                .len(),
            1
        );

        let (ok, _, stderr) = run(&mut snapshot(&[
            "show",
            "snapshot_20200101_000000_deadbeef",
        ]));
        assert!(!ok && stderr.contains("not found"), "{stderr}");
        let (ok, _, stderr) = run(&mut snapshot(&["prune"]));
        assert!(!ok && stderr.contains("keep"), "{stderr}");
        let (ok, _, stderr) = run(&mut snapshot(&["prune", "--older-than", "soon"]));
        assert!(!ok && stderr.contains("older_than"), "{stderr}");
    }
}
