#!/usr/bin/env bash
# Everything the tests need on a fresh machine, then the whole suite with lint and type checks.
#   scripts/test.sh            # install what is missing, ruff, mypy, pytest
#   scripts/test.sh -k rules   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: PostgreSQL server binaries, Prometheus (with promtool), Alertmanager (with amtool) and Chromium
# (headless, for the report's rendering check). The tests start their own servers on free loopback ports; the
# packages' own services are never used.
missing=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # renders the report's HTML in tests/e2e/test_report_e2e.py
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go builds the OpenTelemetry Collector (and Jaeger) for the end-to-end tests, from Go modules, into a cache
# (collector-config/build-*.sh; rebuilt only when the manifest changes).
if ! command -v go >/dev/null 2>&1; then
  echo "error: the end-to-end tests need Go (to build the collector with the Collector Builder)" >&2
  exit 1
fi

# Python dependencies in a project virtualenv.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
echo "== installing tenantwatch[dev]"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'

echo "== ruff"
.venv/bin/ruff check src tests bench examples
.venv/bin/ruff format --check src tests bench examples
echo "== mypy (strict, src/)"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
