//! Cluster snapshots (SPEC §12): a node's online backup, uploaded to the JetStream object store
//! `<stream>_snapshots`, so that the stream can be bounded by `max_age_h` and a node behind its
//! first sequence can start from the newest snapshot instead of the entries it lost.
//!
//! One node at a time writes them: the holder of a lease, the last message of subject
//! `<stream>.lease` in the stream `<stream>_lease` (one message per subject), taken and renewed
//! by compare-and-set on the subject's last sequence (`Nats-Expected-Last-Subject-Sequence`).
//! That is how NATS KV works underneath; the KV API of async-nats 0.46 cannot create a bucket
//! on the nats-server 2.9 Debian ships, so the lease uses the stream directly.
//!
//! A snapshot is one object per file, named `snapshot/<applied, 20 digits>/<path>`, with the
//! backup's `manifest.json` uploaded last: a snapshot without its manifest is unfinished and
//! never used. `<applied>` is a stream sequence the backup holds every entry up to (at least).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::{self, object_store, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::ClusterError;

/// The manifest's object, inside a snapshot's prefix.
const MANIFEST: &str = "manifest.json";

/// A snapshot in the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The stream sequence it holds every entry up to.
    pub applied: u64,
    /// Its files, `/`-separated paths inside the backup (the manifest included).
    pub files: Vec<String>,
}

/// The lease as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    node: String,
    /// Milliseconds since the Unix epoch after which another node may take it.
    until_ms: i64,
}

/// The snapshot store and the lease of one cluster.
#[derive(Clone)]
pub struct Snapshots {
    jetstream: jetstream::Context,
    store: object_store::ObjectStore,
    lease_stream: stream::Stream,
    lease_subject: String,
    node_id: String,
    lease_ttl: Duration,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Unavailable(format!("{what}: {e}"))
}

fn prefix(applied: u64) -> String {
    format!("snapshot/{applied:020}/")
}

impl Snapshots {
    /// Opens (creating when missing) the object store and the lease stream of `stream`.
    pub(crate) async fn open(
        jetstream: &jetstream::Context,
        stream: &str,
        replicas: usize,
        lease_ttl: Duration,
        node_id: &str,
    ) -> Result<Snapshots, ClusterError> {
        let bucket = format!("{stream}_snapshots");
        let store = match jetstream.get_object_store(&bucket).await {
            Ok(store) => store,
            Err(_) => jetstream
                .create_object_store(object_store::Config {
                    bucket: bucket.clone(),
                    description: Some("Coda cluster snapshots".into()),
                    num_replicas: replicas,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable(&format!("cannot open object store `{bucket}`"), e))?,
        };
        let name = format!("{stream}_lease");
        let lease_subject = format!("{stream}.lease");
        let lease_stream = jetstream
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![lease_subject.clone()],
                max_messages_per_subject: 1,
                num_replicas: replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(&format!("cannot open stream `{name}`"), e))?;
        Ok(Snapshots {
            jetstream: jetstream.clone(),
            store,
            lease_stream,
            lease_subject,
            node_id: node_id.to_owned(),
            lease_ttl,
        })
    }

    /// Takes or renews the lease; returns whether this node holds it now. Another node's
    /// unexpired lease, or losing a race for it, is `false`.
    pub async fn hold_lease(&self) -> Result<bool, ClusterError> {
        let now = chrono::Utc::now().timestamp_millis();
        let last = match self
            .lease_stream
            .get_last_raw_message_by_subject(&self.lease_subject)
            .await
        {
            Ok(message) => Some(message),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => None,
            Err(e) => return Err(unavailable("cannot read the snapshot lease", e)),
        };
        let expected = match &last {
            None => 0,
            Some(message) => {
                let held: Option<Lease> = serde_json::from_slice(&message.payload).ok();
                match held {
                    Some(lease) if lease.node != self.node_id && lease.until_ms > now => {
                        return Ok(false)
                    }
                    _ => message.sequence,
                }
            }
        };
        let ttl = i64::try_from(self.lease_ttl.as_millis()).unwrap_or(i64::MAX);
        let lease = Lease {
            node: self.node_id.clone(),
            until_ms: now.saturating_add(ttl),
        };
        let payload = serde_json::to_vec(&lease)
            .map_err(|e| unavailable("cannot encode the snapshot lease", e))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            expected.to_string().as_str(),
        );
        let ack = self
            .jetstream
            .publish_with_headers(self.lease_subject.clone(), headers, payload.into())
            .await
            .map_err(|e| unavailable("cannot publish the snapshot lease", e))?
            .await;
        match ack {
            Ok(_) => Ok(true),
            // Another node renewed or took it first.
            Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                Ok(false)
            }
            Err(e) => Err(unavailable("cannot take the snapshot lease", e)),
        }
    }

    /// Uploads the backup in `dir` (its manifest last) as the snapshot of `applied`, then
    /// deletes all but the newest `keep` snapshots.
    pub async fn upload(
        &self,
        applied: u64,
        dir: &Path,
        files: &[String],
        keep: usize,
    ) -> Result<(), ClusterError> {
        let base = prefix(applied);
        let ordered = files
            .iter()
            .filter(|f| f.as_str() != MANIFEST)
            .chain(std::iter::once(&MANIFEST.to_owned()))
            .cloned()
            .collect::<Vec<_>>();
        for file in &ordered {
            let path = dir.join(file);
            let mut reader = tokio::fs::File::open(&path)
                .await
                .map_err(|e| unavailable(&format!("cannot open {}", path.display()), e))?;
            let name = format!("{base}{file}");
            self.store
                .put(name.as_str(), &mut reader)
                .await
                .map_err(|e| unavailable(&format!("cannot upload `{name}`"), e))?;
        }
        let snapshots = self.list().await?;
        let old = snapshots.len().saturating_sub(keep.max(1));
        for snapshot in &snapshots[..old] {
            self.delete(snapshot).await?;
        }
        Ok(())
    }

    async fn delete(&self, snapshot: &Snapshot) -> Result<(), ClusterError> {
        let base = prefix(snapshot.applied);
        // The manifest first: a half-deleted snapshot is an unfinished one.
        let mut files = snapshot.files.clone();
        files.sort_by_key(|f| f.as_str() != MANIFEST);
        for file in files {
            let name = format!("{base}{file}");
            self.store
                .delete(name.as_str())
                .await
                .map_err(|e| unavailable(&format!("cannot delete `{name}`"), e))?;
        }
        Ok(())
    }

    /// The finished snapshots (those with a manifest), oldest first.
    pub async fn list(&self) -> Result<Vec<Snapshot>, ClusterError> {
        let mut objects = self
            .store
            .list()
            .await
            .map_err(|e| unavailable("cannot list cluster snapshots", e))?;
        let mut found: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        while let Some(object) = objects.next().await {
            let object = object.map_err(|e| unavailable("cannot list cluster snapshots", e))?;
            let Some(rest) = object.name.strip_prefix("snapshot/") else {
                continue;
            };
            let Some((applied, file)) = rest.split_once('/') else {
                continue;
            };
            if let Ok(applied) = applied.parse::<u64>() {
                found.entry(applied).or_default().push(file.to_owned());
            }
        }
        Ok(found
            .into_iter()
            .filter(|(_, files)| files.iter().any(|f| f == MANIFEST))
            .map(|(applied, mut files)| {
                files.sort();
                Snapshot { applied, files }
            })
            .collect())
    }

    /// Downloads `snapshot` into `dir` (created, and empty), keeping its layout; the caller
    /// checks it against the manifest.
    pub async fn download(&self, snapshot: &Snapshot, dir: &Path) -> Result<(), ClusterError> {
        let base = prefix(snapshot.applied);
        for file in &snapshot.files {
            let mut to = PathBuf::from(dir);
            for part in file.split('/') {
                if part.is_empty() || part == "." || part == ".." {
                    return Err(ClusterError::Unavailable(format!(
                        "cluster snapshot {} lists `{file}`, not a plain relative path",
                        snapshot.applied
                    )));
                }
                to.push(part);
            }
            if let Some(parent) = to.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| unavailable(&format!("cannot create {}", parent.display()), e))?;
            }
            let name = format!("{base}{file}");
            let mut object = self
                .store
                .get(name.as_str())
                .await
                .map_err(|e| unavailable(&format!("cannot download `{name}`"), e))?;
            let mut out = tokio::fs::File::create(&to)
                .await
                .map_err(|e| unavailable(&format!("cannot create {}", to.display()), e))?;
            tokio::io::copy(&mut object, &mut out)
                .await
                .map_err(|e| unavailable(&format!("cannot download `{name}`"), e))?;
            out.sync_all()
                .await
                .map_err(|e| unavailable(&format!("cannot write {}", to.display()), e))?;
        }
        Ok(())
    }
}
