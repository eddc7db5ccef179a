#!/usr/bin/env bash
# The main job: creates .venv/ and the demo data when missing, then runs the study on it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec workbench main "$@"
