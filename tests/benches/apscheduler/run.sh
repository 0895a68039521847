#!/usr/bin/env bash
# Creates a venv with APScheduler 3.10 (from PyPI) and runs bench.py in it.
# Prints bench.py's JSON on stdout; progress on stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${WASMCRON_BENCH_VENV:-${TMPDIR:-/tmp}/wasmcron-apscheduler-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/pip" install --quiet "apscheduler==3.10.4" "sqlalchemy<2.1" >&2
exec "$venv/bin/python" "$here/bench.py" "$@"
