#!/usr/bin/env bash
# One-time set-up, safe to re-run: system packages (FFmpeg for torchcodec's audio decoding,
# espeak-ng for the embedded demo corpus), then a virtualenv in .venv with hf_mtkd[dev] (and the plots,
# tensorboard and ge2e extras).
# Re-installs only when setup.cfg changes.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.hf_mtkd-setup
want=$(sha256sum setup.cfg | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing hf_mtkd[dev,plots,tensorboard,ge2e] into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev,plots,tensorboard,ge2e]"
  echo "$want" > "$stamp"
fi
