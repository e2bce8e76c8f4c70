//! `[cluster]` (SPEC §12): several nodes sharing one NATS JetStream stream. The engine lives in
//! the `coda-cluster-nats` crate; this is its configuration, checked with the rest.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// NATS server URLs, comma-separated for failover; empty means one node, as before.
    pub nats_url: String,
    /// The JetStream stream holding every change, in order.
    pub stream: String,
    /// Stream replicas (3 on a 3-server NATS cluster).
    pub replicas: usize,
    /// This node's name; empty means the host name and bind port.
    pub node_id: String,
    /// Stream retention in hours.
    pub max_age_h: u64,
    /// Seconds between cluster snapshots (written by the node holding the lease).
    pub snapshot_every_s: u64,
    /// Cluster snapshots kept in the object store.
    pub snapshot_keep: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats_url: String::new(),
            stream: "CODA".into(),
            replicas: 1,
            node_id: String::new(),
            max_age_h: 168,
            snapshot_every_s: 3600,
            snapshot_keep: 2,
        }
    }
}

impl ClusterConfig {
    /// Whether a cluster is configured.
    pub fn enabled(&self) -> bool {
        !self.nats_url.trim().is_empty()
    }

    /// The NATS URLs, trimmed, empty entries dropped.
    pub fn urls(&self) -> Vec<String> {
        self.nats_url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Checks the values; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        for url in self.urls() {
            let scheme = url.split("://").next().unwrap_or_default();
            if !url.contains("://") || !matches!(scheme, "nats" | "tls") {
                return Err(Error::config(
                    "cluster.nats_url",
                    format!("`{url}` is not a nats:// or tls:// URL"),
                ));
            }
        }
        // JetStream stream names: no spaces, dots, `*`, `>`, path separators.
        let bad = |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if self.stream.is_empty() || self.stream.chars().any(bad) {
            return Err(Error::config(
                "cluster.stream",
                "must be letters, digits, `-` or `_`",
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(Error::config("cluster.replicas", "must be 1 to 5"));
        }
        if self.max_age_h == 0 {
            return Err(Error::config("cluster.max_age_h", "must be at least 1"));
        }
        // A lease outlives its holder by two periods: the newest snapshot may then be three
        // periods old, and must still be inside the stream's retention.
        if self.snapshot_every_s == 0
            || self.snapshot_every_s.saturating_mul(4) > self.max_age_h.saturating_mul(3600)
        {
            return Err(Error::config(
                "cluster.snapshot_every_s",
                "must be at least 1 and at most a quarter of `cluster.max_age_h`",
            ));
        }
        if self.snapshot_keep == 0 {
            return Err(Error::config("cluster.snapshot_keep", "must be at least 1"));
        }
        if self
            .node_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::config(
                "cluster.node_id",
                "must not hold spaces or control characters",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn error_of(toml: &str) -> String {
        match Config::from_toml_str(toml) {
            Ok(_) => panic!("accepted: {toml}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_values_and_unknown_keys_name_the_key() {
        let e = error_of("[cluster]\nnats_url = \"http://x:4222\"\n");
        assert!(e.contains("cluster.nats_url"), "{e}");
        let e = error_of("[cluster]\nnats_url = \"nats://a:1\"\nstream = \"A.B\"\n");
        assert!(e.contains("cluster.stream"), "{e}");
        let e = error_of("[cluster]\nnats_url = \"nats://a:1\"\nreplicas = 0\n");
        assert!(e.contains("cluster.replicas"), "{e}");
        let e = error_of("[cluster]\nnats_url = \"nats://a:1\"\nmax_age_h = 0\n");
        assert!(e.contains("cluster.max_age_h"), "{e}");
        let e = error_of(
            "[cluster]\nnats_url = \"nats://a:1\"\nmax_age_h = 1\nsnapshot_every_s = 1000\n",
        );
        assert!(e.contains("cluster.snapshot_every_s"), "{e}");
        let e = error_of("[cluster]\nnats_url = \"nats://a:1\"\nsnapshot_keep = 0\n");
        assert!(e.contains("cluster.snapshot_keep"), "{e}");
        let e = error_of("[cluster]\nnats = \"nats://a:1\"\n");
        assert!(e.contains("nats"), "{e}");
    }

    #[test]
    fn a_comma_list_gives_every_url_and_empty_means_one_node() {
        let config = Config::from_toml_str("[cluster]\nnats_url = \"nats://a:1, nats://b:2,\"\n")
            .expect("a valid list");
        assert!(config.cluster.enabled());
        assert_eq!(config.cluster.urls(), ["nats://a:1", "nats://b:2"]);
        assert!(!Config::default().cluster.enabled());
    }
}
