//! `coda export` and `coda import` on the configured store, run as a user would.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

fn coda(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coda"));
    cmd.env_remove("CODA_CONFIG").arg("--config").arg(config);
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

fn store(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("Coda.toml");
    let toml = format!(
        "[memory]\nbackend = \"file\"\nembedder = \"hashing\"\n\
         [backends.file]\ndir = \"{d}/memory\"\n[stores.fs]\ndir = \"{d}/snapshots\"\n\
         [[sinks]]\ntype = \"log\"\npath = \"{d}/events.jsonl\"\n",
        d = dir.display()
    );
    std::fs::write(&path, toml).unwrap();
    path
}

/// A converted file: two users, no vectors.
fn converted() -> String {
    let memory = |id: &str, user: &str, content: &str| {
        json!({"kind": "memory", "id": id, "content": content, "user_id": user,
               "metadata": {"source_type": "fact", "importance": 0.5,
                            "timestamp": "2024-05-01T10:00:00Z", "topics": []}})
    };
    [
        json!({"kind": "header", "format": "coda-export", "version": 1}),
        memory(
            "00000000-0000-4000-8000-00000000000a",
            "erin",
            "Erin sails on Sundays",
        ),
        memory(
            "00000000-0000-4000-8000-00000000000b",
            "erin",
            "Erin's boat is the Petrel",
        ),
        memory(
            "00000000-0000-4000-8000-00000000000c",
            "finn",
            "Finn bakes rye bread",
        ),
        json!({"kind": "end", "count": 3}),
    ]
    .map(|l| l.to_string())
    .join("\n")
}

#[test]
fn import_then_export_round_trips_and_bad_files_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = store(tmp.path());
    let file = tmp.path().join("in.jsonl");
    std::fs::write(&file, converted()).unwrap();

    let (ok, stdout, stderr) = run(coda(&config).arg("import").arg(&file));
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["memories_added"], 3, "{stdout}");
    assert_eq!(report["memories_reembedded"], 3, "{stdout}");
    let events = std::fs::read_to_string(tmp.path().join("events.jsonl")).unwrap();
    assert_eq!(
        events.matches("\"memory_store\"").count(),
        3,
        "imports publish events"
    );

    let (ok, again, stderr) = run(coda(&config).arg("import").arg(&file));
    assert!(ok, "{stderr}");
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["memories_unchanged"], 3, "{again}");
    assert_eq!(again["memories_added"], 0, "{again}");

    let out = tmp.path().join("erin.jsonl");
    let (ok, _, stderr) = run(coda(&config)
        .args(["export", "--user", "erin", "--out"])
        .arg(&out));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("user `erin`"), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["user_id"], "erin");
    assert_eq!(lines.iter().filter(|l| l["kind"] == "memory").count(), 2);
    assert!(lines
        .iter()
        .filter(|l| l["kind"] == "memory")
        .all(|l| l["embedding"].is_string()));
    assert!(!text.contains("Finn"));

    let (ok, whole, stderr) = run(coda(&config).arg("export"));
    assert!(ok, "{stderr}");
    assert!(
        whole.contains("Finn") && whole.contains("Petrel"),
        "{whole}"
    );

    let truncated = tmp.path().join("cut.jsonl");
    let text = converted();
    let head: Vec<&str> = text.lines().take(3).collect();
    std::fs::write(
        &truncated,
        head.join("\n").replace("Erin sails", "Erin rows"),
    )
    .unwrap();
    let (ok, _, stderr) = run(coda(&config).arg("import").arg(&truncated));
    assert!(!ok);
    assert!(
        stderr.contains("line 4") && stderr.contains("cut short"),
        "{stderr}"
    );
    let (_, after, _) = run(coda(&config).args(["export", "--user", "erin"]));
    assert!(
        !after.contains("Erin rows"),
        "nothing of a bad file is applied"
    );
}
