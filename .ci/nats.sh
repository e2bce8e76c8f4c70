# Sourced by .ci/run: Debian's nats-server (2.9, JetStream) for the cluster tests (tests/cluster.rs,
# bin/tests/cluster_kill.rs), which start their own servers on random loopback ports.
echo "== nats-server for the cluster tests"
if ! command -v nats-server >/dev/null 2>&1; then
  apt-get update && apt-get install -y nats-server
fi
nats-server --version
