//! The log sink's rotation: every event back in order across rotated, compressed files; the
//! `keep` bound; a restart finishing what a crash left; bad options named.

use std::path::{Path, PathBuf};

use coda_core::model::Role;
use coda_core::{EventBody, EventBus, EventSink};
use coda_sink_log::{Archive, LogOptions, LogSink};

fn options(path: &Path, max_bytes: u64, keep: usize) -> LogOptions {
    LogOptions {
        path: path.to_string_lossy().into_owned(),
        queue: 100_000,
        max_bytes,
        keep,
    }
}

/// Delivers `count` events (each about 200 bytes), returning their JSON lines in order.
fn deliver(sink: &LogSink, count: u64) -> Vec<String> {
    let bus = EventBus::new(16, 0, None);
    let mut sent = Vec::new();
    for i in 0..count {
        let body = EventBody::ConversationTurn {
            role: Role::User,
            content: format!("message {i} {}", "x".repeat(40)),
            turn_index: i,
        };
        let event = bus.emit(&body).expect("not a duplicate");
        sink.deliver(&event).expect("the queue has room");
        sent.push(event.json().to_owned());
    }
    sent
}

fn read_file(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read");
    let bytes = if path.extension().is_some_and(|e| e == "zst") {
        zstd::decode_all(bytes.as_slice()).expect("a complete zstd file")
    } else {
        bytes
    };
    String::from_utf8(bytes).expect("utf-8")
}

/// Every file of the log, oldest first, the live one last.
fn files(path: &Path, keep: usize) -> Vec<PathBuf> {
    let mut files = Archive::new(path, keep).files_oldest_first().expect("list");
    files.push(path.to_path_buf());
    files
}

/// Every line of every file, oldest first; each file must end at a line boundary.
fn read_all(path: &Path, keep: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for file in files(path, keep) {
        let text = read_file(&file);
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends mid-line",
            file.display()
        );
        lines.extend(text.lines().map(str::to_owned));
    }
    lines
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_event_comes_back_in_order_across_several_rotations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let max_bytes = 4096;
    let sink = LogSink::open(&options(&path, max_bytes, 100)).expect("open");
    let sent = deliver(&sink, 400);
    sink.shutdown().expect("shutdown");

    let files = files(&path, 100);
    assert!(files.len() > 10, "expected many rotations: {files:?}");
    for file in &files[..files.len() - 1] {
        assert!(
            file.to_string_lossy().ends_with(".zst"),
            "rotated files are compressed after shutdown: {file:?}"
        );
        let size = read_file(file).len() as u64;
        assert!(
            size <= max_bytes && size > max_bytes / 2,
            "{file:?} holds {size} bytes"
        );
    }
    assert_eq!(read_all(&path, 100), sent, "every event, once, in order");
}

#[test]
fn only_keep_rotated_files_remain_and_they_hold_the_newest_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let sink = LogSink::open(&options(&path, 2048, 3)).expect("open");
    let sent = deliver(&sink, 300);
    sink.shutdown().expect("shutdown");

    assert_eq!(
        names(dir.path()),
        [
            "events.jsonl",
            "events.jsonl.1.zst",
            "events.jsonl.2.zst",
            "events.jsonl.3.zst"
        ]
    );
    let kept = read_all(&path, 3);
    assert!(kept.len() < sent.len() / 2, "older files were deleted");
    assert_eq!(
        kept,
        sent[sent.len() - kept.len()..],
        "the newest events, in order"
    );
}

#[test]
fn a_restart_finishes_or_cleans_up_what_a_crash_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let archive = Archive::new(&path, 5);
    let lines = |tag: &str| format!("{{\"{tag}\":1}}\n{{\"{tag}\":2}}\n");
    // Compressed, then the crash came before its plain copy was deleted.
    std::fs::write(
        archive.compressed(3),
        zstd::encode_all(lines("c").as_bytes(), 3).expect("encode"),
    )
    .expect("write");
    std::fs::write(archive.plain(3), lines("c")).expect("write");
    // Crashed mid-compression: a partial `.zst.tmp` beside the plain file.
    std::fs::write(archive.plain(2), lines("b")).expect("write");
    std::fs::write(path.with_extension("jsonl.2.zst.tmp"), b"\x28\xb5").expect("write");
    // Renamed, never compressed.
    std::fs::write(archive.plain(1), lines("a")).expect("write");
    // Beyond `keep`, from a configuration that kept more.
    std::fs::write(archive.compressed(9), b"old").expect("write");
    // The live file, its last line cut short by the crash.
    std::fs::write(&path, "{\"live\":1}\n{\"li").expect("write");

    let sink = LogSink::open(&options(&path, 1 << 20, 5)).expect("open");
    let sent = deliver(&sink, 2);
    sink.shutdown().expect("shutdown");

    assert_eq!(
        names(dir.path()),
        [
            "events.jsonl",
            "events.jsonl.1.zst",
            "events.jsonl.2.zst",
            "events.jsonl.3.zst"
        ]
    );
    let mut expected: Vec<String> = [lines("c"), lines("b"), lines("a")]
        .concat()
        .lines()
        .map(str::to_owned)
        .collect();
    expected.extend(["{\"live\":1}".to_owned(), "{\"li".to_owned()]);
    expected.extend(sent);
    assert_eq!(
        read_all(&path, 5),
        expected,
        "nothing lost, and the new events start lines of their own"
    );
}

#[test]
fn a_line_larger_than_max_bytes_gets_a_file_of_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let sink = LogSink::open(&options(&path, 64, 10)).expect("open");
    let sent = deliver(&sink, 5);
    sink.shutdown().expect("shutdown");
    let files = files(&path, 10);
    assert_eq!(files.len(), 5, "one event a file: {files:?}");
    assert_eq!(read_all(&path, 10), sent);
}

#[test]
fn max_bytes_zero_never_rotates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let sink = LogSink::open(&options(&path, 0, 5)).expect("open");
    let sent = deliver(&sink, 100);
    sink.shutdown().expect("shutdown");
    assert_eq!(names(dir.path()), ["events.jsonl"]);
    assert_eq!(read_all(&path, 5), sent);
}

/// The options of `[[sinks]] type = "log"` as the configuration checks them.
fn check(options: serde_json::Value) -> coda_core::Result<serde_json::Value> {
    coda_core::registry::find::<coda_core::registry::SinkFactory>(coda_sink_log::NAME)?
        .check_options(options, "sinks[0]")
}

#[test]
fn bad_rotation_options_are_errors_naming_the_key() {
    use serde_json::json;
    for (options, key) in [
        (json!({"keep": 0}), "`sinks[0].keep`"),
        (json!({"keep": -1}), "`sinks[0].keep`"),
        (json!({"max_bytes": -1}), "`sinks[0].max_bytes`"),
        (json!({"max_bytes": "64MiB"}), "`sinks[0].max_bytes`"),
        (json!({"max_byte": 10}), "max_byte"),
    ] {
        let msg = match check(options.clone()) {
            Ok(_) => panic!("{options} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains(key), "{options}: {msg}");
    }
    let msg = check(json!({"keep": 0})).expect_err("refused").to_string();
    assert!(msg.contains("at least 1"), "{msg}");
}

#[test]
fn defaults_are_64_mib_and_five_files() {
    let effective = check(serde_json::json!({"path": "x.jsonl"})).expect("valid");
    assert_eq!(effective["max_bytes"], 64 * 1024 * 1024);
    assert_eq!(effective["keep"], 5);
    assert!(!LogOptions::default().rotates(), "stderr never rotates");
}
