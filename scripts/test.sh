#!/usr/bin/env bash
# The test command: creates .venv/ when missing, then runs the whole suite on the CPU.
set -euo pipefail
export WORKBENCH_EXTRAS="${WORKBENCH_EXTRAS:-dev,ray}"  # the Ray engine's tests need the optional ray extra
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec python -m pytest -q -p no:cacheprovider "$@"
