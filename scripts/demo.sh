#!/usr/bin/env bash
# The main job: set up if needed, then run the demo pipeline on the embedded corpus
# (classic and pretrained floors; the pretrained floor per language as teachers; the compact student fine-tuned
# alone and distilled with MTKD; three seeds, a table over seeds with paired verdicts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The demo's models are tiny: one intra-op thread is several times faster than two, which
# spend their time synchronising (measured: 2.7 vs 0.2 steps/s on a busy 2-core machine).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec .venv/bin/hf-mtkd pipeline --config recipes/demo/pipeline.yaml "$@"
