# Sourced by .ci/run: the official MCP clients the MCP tests drive Coda with, each in a cache dir
# so nothing touches the system Python or node. Idempotent: what is already installed is kept.
#  - the MCP Python SDK (PyPI `mcp`) in its own venv, for tests/mcp_http.rs and
#    bin/tests/mcp_stdio.rs;
#  - the MCP Inspector (npm `@modelcontextprotocol/inspector`), whose `--cli` mode
#    bin/tests/mcp_inspector.rs runs.
echo "== MCP Python SDK for the /mcp and coda mcp tests"
CODA_MCP_VENV=${CODA_MCP_VENV:-$HOME/.cache/coda/venv-mcp}
if ! "$CODA_MCP_VENV/bin/python" -c "import mcp.client.streamable_http, mcp.client.stdio" 2>/dev/null; then
  python3 -m venv "$CODA_MCP_VENV" || { apt-get update && apt-get install -y python3-venv \
    && python3 -m venv "$CODA_MCP_VENV"; }
  "$CODA_MCP_VENV/bin/python" -m pip install --quiet --upgrade pip
  "$CODA_MCP_VENV/bin/python" -m pip install --quiet "mcp>=1.9,<2"
fi
# The MCP tests run their clients with this interpreter.
export CODA_MCP_PYTHON="$CODA_MCP_VENV/bin/python"

echo "== MCP Inspector for the Inspector test"
# 0.15.0 is the newest release that runs on Debian's node 20 (later ones need node >= 22).
CODA_MCP_INSPECTOR_VERSION=0.15.0
CODA_MCP_INSPECTOR_DIR=${CODA_MCP_INSPECTOR_DIR:-$HOME/.cache/coda/npm-inspector}
command -v node >/dev/null 2>&1 || { apt-get update && apt-get install -y nodejs; }
command -v npm >/dev/null 2>&1 || { apt-get update && apt-get install -y npm; }
inspector_pkg="$CODA_MCP_INSPECTOR_DIR/node_modules/@modelcontextprotocol/inspector"
if [ "$(node -p "require('$inspector_pkg/package.json').version" 2>/dev/null)" \
  != "$CODA_MCP_INSPECTOR_VERSION" ]; then
  mkdir -p "$CODA_MCP_INSPECTOR_DIR"
  npm install --prefix "$CODA_MCP_INSPECTOR_DIR" --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/inspector@$CODA_MCP_INSPECTOR_VERSION"
fi
# bin/tests/mcp_inspector.rs runs `node $CODA_MCP_INSPECTOR --cli ...`.
export CODA_MCP_INSPECTOR="$inspector_pkg/cli/build/cli.js"
