# Sourced by .ci/run: the official MCP Python SDK (PyPI `mcp`) for tests/mcp_http.rs, in its own
# venv so it never touches the system Python. Idempotent: an existing venv with `mcp` is kept.
echo "== MCP Python SDK for the /mcp test"
CODA_MCP_VENV=${CODA_MCP_VENV:-$HOME/.cache/coda/venv-mcp}
if ! "$CODA_MCP_VENV/bin/python" -c "import mcp.client.streamable_http" 2>/dev/null; then
  python3 -m venv "$CODA_MCP_VENV" || { apt-get update && apt-get install -y python3-venv \
    && python3 -m venv "$CODA_MCP_VENV"; }
  "$CODA_MCP_VENV/bin/python" -m pip install --quiet --upgrade pip
  "$CODA_MCP_VENV/bin/python" -m pip install --quiet "mcp>=1.9,<2"
fi
# tests/mcp_http.rs runs its client with this interpreter.
export CODA_MCP_PYTHON="$CODA_MCP_VENV/bin/python"
