//! What can go wrong between a node and the stream.

use std::fmt;

/// A cluster operation that did not happen, or whose outcome this node cannot tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterError {
    /// NATS or the stream cannot be reached: nothing was published.
    Unavailable(String),
    /// The entry is larger than the NATS server's `max_payload`: nothing was published.
    TooLarge {
        /// The entry's size in bytes.
        size: usize,
        /// The server's limit.
        max: usize,
    },
    /// Published, but the stream did not acknowledge it in time: it may or may not be in the
    /// stream (and then applied everywhere).
    Unacknowledged(String),
    /// In the stream at this sequence, but not applied on this node in time.
    NotApplied(u64),
    /// This node's data does not belong to the stream.
    Diverged(String),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Unavailable(why) => write!(f, "the cluster is unavailable: {why}"),
            ClusterError::TooLarge { size, max } => write!(
                f,
                "the operation is {size} bytes encoded; the NATS server takes at most {max}"
            ),
            ClusterError::Unacknowledged(why) => write!(
                f,
                "the stream did not acknowledge the operation ({why}); it may still be applied"
            ),
            ClusterError::NotApplied(seq) => write!(
                f,
                "the operation is in the stream at sequence {seq} but this node has not applied \
                 it yet; it will be"
            ),
            ClusterError::Diverged(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ClusterError {}
