echo "== schemathesis and promtool for the HTTP conformance tests"
# Sourced by .ci/run (from the repository root): schemathesis (PyPI), pinned, in a venv
# outside the repository, for tests/schemathesis.rs, which finds it through
# CODA_SCHEMATHESIS. Idempotent.
CODA_SCHEMATHESIS_VERSION=4.32.5
CODA_SCHEMATHESIS_VENV=${CODA_SCHEMATHESIS_VENV:-$HOME/.cache/coda/venv-schemathesis}
if ! "$CODA_SCHEMATHESIS_VENV/bin/schemathesis" --version 2>/dev/null \
  | grep -q "$CODA_SCHEMATHESIS_VERSION"; then
  rm -rf "$CODA_SCHEMATHESIS_VENV"
  # Debian's own python3 needs python3-venv for this; pyenv's Pythons have it.
  python3 -m venv "$CODA_SCHEMATHESIS_VENV" || {
    apt-get update && apt-get install -y python3-venv && python3 -m venv "$CODA_SCHEMATHESIS_VENV"
  }
  "$CODA_SCHEMATHESIS_VENV/bin/pip" install --quiet "schemathesis==$CODA_SCHEMATHESIS_VERSION"
fi
export CODA_SCHEMATHESIS="$CODA_SCHEMATHESIS_VENV/bin/schemathesis"
# promtool has its own script; sourcing it from here keeps .ci/run to one line for both.
source .ci/promtool.sh
