#!/usr/bin/env bash
# Sourced by main.sh and test.sh (which set -euo pipefail): creates .venv/ with the project installed when it is
# missing, pyproject.toml changed or an extra in WORKBENCH_EXTRAS (comma list, default dev; test.sh adds ray) is
# not installed yet, then puts it on PATH. The stamp file lists the extras installed under this pyproject.toml.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
want="${WORKBENCH_EXTRAS:-dev}"
missing=""
for extra in ${want//,/ }; do
  { [ -f "$stamp" ] && grep -qx "$extra" "$stamp"; } || missing="$missing $extra"
done
if [ ! -x .venv/bin/python ] || [ -n "$missing" ]; then
  have="$( [ -f "$stamp" ] && cat "$stamp" || true)"
  extras="$(printf '%s\n' $have ${want//,/ } | sort -u | paste -sd, -)"
  echo "[setup] creating .venv/ and installing the workbench [$extras] (torch CPU build pinned in pyproject.toml)..."
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v -i "location\|warning" || true
  PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e ".[$extras]" 2>&1 | grep -v -i "location '\|is ignored" || true
  check="import workbench, torch, cv2, librosa, papermill"
  case ",$extras," in *,ray,*) check="$check, ray" ;; esac
  .venv/bin/python -c "$check" \
    || { echo "[setup] the environment is incomplete; see the pip output above" >&2; exit 1; }
  rm -f .venv/.installed-*
  printf '%s\n' ${extras//,/ } > "$stamp"
  echo "[setup] done"
fi
export PATH="$ROOT/.venv/bin:$PATH"
export MPLBACKEND="${MPLBACKEND:-Agg}"
