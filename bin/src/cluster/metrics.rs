//! The cluster's figures on `/metrics`: applied and stream sequences, replication lag, the
//! apply rate (as a counter) and the NATS connection.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntGauge, Opts};

use super::Node;

/// Reads a node's [`coda_cluster_nats::Status`] at scrape time.
pub struct ClusterMetrics {
    node: Node,
    descs: Vec<Desc>,
}

struct Scrape {
    applied: IntGauge,
    stream: IntGauge,
    lag: IntGauge,
    applied_total: IntCounter,
    connected: IntGauge,
}

impl Scrape {
    fn new() -> prometheus::Result<Scrape> {
        let opts =
            |name: &str, help: &str| Opts::new(name, help).namespace("coda").subsystem("cluster");
        Ok(Scrape {
            applied: IntGauge::with_opts(opts(
                "applied_seq",
                "Stream sequence of the last entry this node applied.",
            ))?,
            stream: IntGauge::with_opts(opts(
                "stream_seq",
                "The stream's last sequence, as this node last saw it.",
            ))?,
            lag: IntGauge::with_opts(opts(
                "lag_entries",
                "Entries in the stream this node has not applied yet (replication lag).",
            ))?,
            applied_total: IntCounter::with_opts(opts(
                "applied_entries_total",
                "Entries applied since this node started; rate() gives the apply rate.",
            ))?,
            connected: IntGauge::with_opts(opts(
                "connected",
                "1 while the NATS connection is up, else 0.",
            ))?,
        })
    }

    fn collectors(&self) -> [&dyn Collector; 5] {
        [
            &self.applied,
            &self.stream,
            &self.lag,
            &self.applied_total,
            &self.connected,
        ]
    }
}

impl ClusterMetrics {
    /// The collector for `node`.
    pub fn new(node: Node) -> ClusterMetrics {
        let descs = Scrape::new()
            .map(|s| {
                s.collectors()
                    .iter()
                    .flat_map(|c| c.desc().into_iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        ClusterMetrics { node, descs }
    }
}

impl Collector for ClusterMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(s) = Scrape::new() else {
            return Vec::new();
        };
        let status = self.node.status();
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        s.applied.set(gauge(status.applied_seq));
        s.stream.set(gauge(status.stream_seq));
        s.lag.set(gauge(status.lag));
        s.applied_total.inc_by(self.node.applied_total());
        s.connected.set(i64::from(status.connected));
        s.collectors().iter().flat_map(|c| c.collect()).collect()
    }
}
