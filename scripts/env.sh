#!/usr/bin/env bash
# Sourced by main.sh and test.sh (which set -euo pipefail): creates .venv/ with the project installed when it is
# missing or pyproject.toml changed, then puts it on PATH.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ]; then
  echo "[setup] creating .venv/ and installing the workbench (torch CPU build pinned in pyproject.toml)..."
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v -i "location\|warning" || true
  PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v -i "location '\|is ignored" || true
  .venv/bin/python -c "import workbench, torch, cv2, librosa, papermill" \
    || { echo "[setup] the environment is incomplete; see the pip output above" >&2; exit 1; }
  rm -f .venv/.installed-*
  touch "$stamp"
  echo "[setup] done"
fi
export PATH="$ROOT/.venv/bin:$PATH"
export MPLBACKEND="${MPLBACKEND:-Agg}"
