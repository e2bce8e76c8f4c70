# Sourced by .ci/run: Firefox ESR (Debian) and puppeteer-core (npm) for tests/dashboard_firefox_e2e.rs,
# which drives the dashboard in Firefox over WebDriver BiDi. Idempotent; puppeteer-core goes to a
# cache dir with a pinned version and never downloads a browser: the test uses the system firefox-esr.
echo "== firefox-esr and puppeteer-core for the Firefox dashboard test"
if ! command -v firefox-esr >/dev/null 2>&1; then
  apt-get update
  apt-get install -y --no-install-recommends firefox-esr
fi
CODA_PUPPETEER_VERSION=25.16.0
CODA_NODE_FIREFOX_DIR=${CODA_NODE_FIREFOX_DIR:-$HOME/.cache/coda/node-firefox}
if [ "$(node -p "try { require('$CODA_NODE_FIREFOX_DIR/node_modules/puppeteer-core/package.json').version } catch (e) { '' }" 2>/dev/null)" != "$CODA_PUPPETEER_VERSION" ]; then
  mkdir -p "$CODA_NODE_FIREFOX_DIR"
  PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix "$CODA_NODE_FIREFOX_DIR" --no-save --no-audit --no-fund \
    "puppeteer-core@$CODA_PUPPETEER_VERSION"
fi
export CODA_NODE_FIREFOX_DIR
