# Sourced by .ci/run: promtool, from Debian's `prometheus` package, for tests/promtool.rs.
# Without recommends; a container that cannot start the package's service still gets the
# binary, which is all the test needs. Idempotent.
if ! command -v promtool >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
    || command -v promtool >/dev/null 2>&1
fi
