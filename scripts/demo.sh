#!/usr/bin/env bash
# The main job: set up if needed, then run the demo pipeline on the embedded corpus
# (one teacher per language -> MTKD student, FT-Multi baseline, side-by-side table).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/hf-mtkd pipeline --config recipes/demo/pipeline.yaml "$@"
