#!/usr/bin/env bash
# The test suite: set up if needed, lint (ruff, line length 119: pyproject.toml), then pytest (slow tests
# deselected; add `-m slow` for them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check .
exec .venv/bin/python -m pytest "$@"
