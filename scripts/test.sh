#!/usr/bin/env bash
# The test command: creates .venv/ when missing (and Debian's chromium for the browser test, as root), then runs
# the whole suite on the CPU.
set -euo pipefail
export WORKBENCH_EXTRAS="${WORKBENCH_EXTRAS:-dev,ray}"  # the Ray engine's tests need the optional ray extra
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$ROOT/scripts/browser.sh"
exec python -m pytest -q -p no:cacheprovider "$@"
