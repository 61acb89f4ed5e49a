#!/usr/bin/env bash
# Install tenantwatch with the SQLAlchemy extra and run the demo on embedded SQLite.
#   scripts/demo.sh            # live table of findings
#   scripts/demo.sh --json     # findings as JSON
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[sqlalchemy,examples]'
exec .venv/bin/tenantwatch demo "$@"
