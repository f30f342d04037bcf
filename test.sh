#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs first.
# Extra arguments go to pytest (e.g. ./test.sh tests/core -k brain).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
# Lint and format first (rules in pyproject.toml [tool.ruff]); a finding stops the run.
.venv/bin/ruff check
.venv/bin/ruff format --check
# The core tests run first in a process that never imports Qt.
.venv/bin/python -m pytest -p no:pytestqt tests/core "$@"
if [ -d tests/app ] && ls tests/app/test_*.py >/dev/null 2>&1; then
  .venv/bin/python -m pytest tests/app "$@"
fi
