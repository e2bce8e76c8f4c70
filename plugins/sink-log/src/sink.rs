//! The writer thread behind the log sink.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use coda_core::{Error, EventSink, Result, SharedEvent};
use parking_lot::Mutex;

use crate::rotate::RotatingFile;
use crate::LogOptions;

enum Command {
    Write(SharedEvent),
    /// Flush, then answer on the channel.
    Flush(SyncSender<io::Result<()>>),
}

/// Sink `log`: JSON lines to a file (rotated by size, see [`LogOptions::max_bytes`]) or stderr.
pub struct LogSink {
    tx: Mutex<Option<SyncSender<Command>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    dropped: AtomicU64,
    target: String,
}

impl LogSink {
    /// Opens the target (finishing any rotation a crash interrupted) and starts the writer
    /// thread.
    pub fn open(options: &LogOptions) -> Result<LogSink> {
        let out = if options.path == "stderr" {
            Output::Stderr(BufWriter::new(io::stderr()))
        } else {
            let path = PathBuf::from(&options.path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
            }
            let max_bytes = if options.rotates() {
                options.max_bytes
            } else {
                0
            };
            let file = RotatingFile::open(&path, max_bytes, options.keep)
                .map_err(|e| Error::io("open", &path, e))?;
            Output::File(file)
        };
        let (tx, rx) = mpsc::sync_channel(options.queue.max(1));
        let target = options.path.clone();
        let writer = std::thread::Builder::new()
            .name("coda-sink-log".into())
            .spawn(move || write_loop(rx, out))
            .map_err(|e| Error::Unavailable(format!("cannot start the log writer: {e}")))?;
        Ok(LogSink {
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            dropped: AtomicU64::new(0),
            target,
        })
    }

    /// Events dropped because the writer was too far behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Where the writer thread writes.
enum Output {
    Stderr(BufWriter<io::Stderr>),
    File(RotatingFile),
}

impl Output {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Output::Stderr(out) => out.write_all(line).and_then(|()| out.write_all(b"\n")),
            Output::File(file) => file.write_line(line),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stderr(out) => out.flush(),
            Output::File(file) => file.flush(),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        match self {
            Output::Stderr(out) => out.flush(),
            Output::File(file) => file.finish(),
        }
    }
}

fn write_loop(rx: Receiver<Command>, mut out: Output) {
    let mut failed = false;
    while let Ok(first) = rx.recv() {
        // Write everything queued, then flush once: one syscall per burst, not per event.
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Write(event) => {
                    if let Err(e) = out.write_line(event.json().as_bytes()) {
                        if !failed {
                            tracing::error!(error = %e, "log sink cannot write; events are lost");
                        }
                        failed = true;
                    }
                }
                Command::Flush(reply) => {
                    let _ = reply.send(out.flush());
                }
            }
            next = rx.try_recv().ok();
        }
        if out.flush().is_ok() {
            failed = false;
        }
    }
    if let Err(e) = out.finish() {
        tracing::error!(error = %e, "log sink cannot flush at shutdown");
    }
}

impl EventSink for LogSink {
    fn name(&self) -> &str {
        crate::NAME
    }

    fn deliver(&self, event: &SharedEvent) -> Result<()> {
        let tx = self.tx.lock();
        let Some(tx) = tx.as_ref() else {
            return Err(Error::Unavailable("the log sink is shut down".into()));
        };
        match tx.try_send(Command::Write(SharedEvent::clone(event))) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Err(Error::Unavailable(format!(
                    "log sink {} is behind; event {} dropped",
                    self.target, event.seq
                )))
            }
            Err(TrySendError::Disconnected(_)) => Err(Error::Unavailable(
                "the log writer thread has stopped".into(),
            )),
        }
    }

    fn flush(&self) -> Result<()> {
        let Some(tx) = self.tx.lock().clone() else {
            return Ok(());
        };
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        // A blocking send is fine here: flush is allowed to wait for the writer.
        tx.send(Command::Flush(reply_tx))
            .map_err(|_| Error::Unavailable("the log writer thread has stopped".into()))?;
        match reply_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::io("flush", &self.target, e)),
            Err(_) => Err(Error::Unavailable(
                "the log writer thread has stopped".into(),
            )),
        }
    }

    fn shutdown(&self) -> Result<()> {
        let flushed = self.flush();
        // Dropping the sender ends the writer loop after it drains the queue.
        self.tx.lock().take();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
        flushed
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn passes_the_sink_conformance_kit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/events.jsonl");
        let options = LogOptions {
            path: path.to_string_lossy().into_owned(),
            queue: 1024,
            ..LogOptions::default()
        };
        let sink = Arc::new(LogSink::open(&options).expect("open"));
        let read = || -> Vec<String> {
            std::fs::read_to_string(&path)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect()
        };
        coda_core::testkit::sink_conformance(sink, &read);
    }

    #[test]
    fn an_unwritable_path_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").expect("write");
        let options = LogOptions {
            path: blocker.join("events.jsonl").to_string_lossy().into_owned(),
            queue: 4,
            ..LogOptions::default()
        };
        let err = LogSink::open(&options)
            .err()
            .expect("cannot open under a file");
        assert!(err.to_string().contains("events.jsonl") || err.to_string().contains("file"));
    }
}
