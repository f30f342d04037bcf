#!/usr/bin/env bash
# Starts Hematoma Relay on a fresh machine (installs what it needs first).
#   ./start.sh              opens the desktop application
#   ./start.sh predict ...  any other hemarelay command (see ./start.sh --help)
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh >&2
[ $# -eq 0 ] && set -- gui
exec .venv/bin/hemarelay "$@"
