# Sourced by .ci/run: Autobahn|Testsuite 0.8.2 for tests/autobahn.rs. It runs only on Python
# 2.7 (pyenv's), so it gets a virtualenv of its own outside the repository, with every
# dependency pinned to what pip chose for Python 2.7 when this was written (and was run).
# Idempotent: a finished virtualenv (marked by .complete) is reused.

echo "== Autobahn|Testsuite (Python 2.7) for tests/autobahn.rs"
autobahn_venv=${CODA_AUTOBAHN_VENV:-$HOME/.cache/coda/autobahn-py27}
if [ ! -f "$autobahn_venv/.complete" ]; then
  autobahn_py=${CODA_PYTHON27:-}
  if [ -z "$autobahn_py" ]; then
    for candidate in "$HOME"/.pyenv/versions/2.7*/bin/python; do
      if [ -x "$candidate" ]; then autobahn_py=$candidate; fi
    done
  fi
  if [ -z "$autobahn_py" ]; then
    echo "no Python 2.7 for Autobahn|Testsuite (install one with pyenv, or set CODA_PYTHON27)" >&2
    return 1
  fi
  autobahn_tmp=$(mktemp -d)
  # virtualenv itself goes to a scratch directory: nothing is added to that Python's site.
  "$autobahn_py" -m pip install --quiet --target "$autobahn_tmp/virtualenv" "virtualenv==20.15.1"
  rm -rf "$autobahn_venv"
  PYTHONPATH="$autobahn_tmp/virtualenv" "$autobahn_py" -m virtualenv --quiet "$autobahn_venv"
  cat > "$autobahn_tmp/constraints.txt" <<'PINS'
attrs==21.4.0
autobahn==0.10.9
Automat==22.10.0
cffi==1.15.1
constantly==15.1.0
cryptography==3.3.2
enum34==1.1.10
hyperlink==21.0.0
idna==2.10
incremental==22.10.0
ipaddress==1.0.23
Jinja2==2.11.3
klein==20.6.0
linecache2==1.0.0
MarkupSafe==1.1.1
pyasn1==0.5.1
pyasn1-modules==0.3.0
pycparser==2.21
PyHamcrest==1.10.1
pyOpenSSL==21.0.0
service-identity==21.1.0
six==1.17.0
traceback2==1.4.0
Tubes==0.2.1
Twisted==20.3.0
txaio==2.1.0
typing==3.10.0.0
ujson==2.0.3
unittest2==1.1.0
Werkzeug==1.0.1
wsaccel==0.6.6
zope.interface==5.5.2
PINS
  "$autobahn_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$autobahn_tmp/constraints.txt" autobahntestsuite==0.8.2
  "$autobahn_venv/bin/wstest" --autobahnversion >/dev/null 2>&1
  touch "$autobahn_venv/.complete"
  rm -rf "$autobahn_tmp"
fi
export CODA_WSTEST="$autobahn_venv/bin/wstest"
