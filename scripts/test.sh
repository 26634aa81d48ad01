#!/usr/bin/env bash
# The test suite: set up if needed, then pytest (slow tests deselected; add `-m slow` for them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
