"""The runtime environment of the bench's two paths and the measurements' fresh processes.

Each measurement runs in a fresh Python process (`run_worker`): `python -m workbench.bench.launch --worker
KIND SPEC.json RESULT.json`, started with the environment of its path (`worker_env`), so the fast path's
runtime settings (FAST_ENV) are in place before that process imports torch, and environments and memory
figures do not leak between measurements.

This module imports no torch at import time, nor any module that does: it is imported before the
environment is set (by the orchestrator and the CLI). It imports the measurements (`workbench.bench.workers`,
which import torch) only inside `run_worker` (in-process, after `apply_fast_env`) and in the worker entry point
(whose environment its parent set).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Runtime settings of the fast path. They must be in the environment before torch is imported.
FAST_ENV = {
    "OMP_WAIT_POLICY": "PASSIVE",  # idle OpenMP threads sleep: spinning ones starve the busy thread on a small/shared CPU
    "THP_MEM_ALLOC_ENABLE": "1",  # transparent huge pages for large CPU tensors: far fewer page faults on fresh activations
}
USER_ENV = {k: os.environ.get(k) for k in FAST_ENV}  # as the user started us (the naive path keeps these)


def apply_fast_env() -> None:
    """The fast path's settings in this process's environment, where the user set none; effective only if
    torch is not imported yet (the CLI's case), so call this before importing any module that imports torch."""
    for k, v in FAST_ENV.items():
        if "torch" not in sys.modules:
            os.environ.setdefault(k, v)


def worker_env(fast: bool) -> dict[str, str]:
    """The environment of a worker process: FAST_ENV for the fast path, the runtime defaults for the naive one."""
    env = dict(os.environ)
    for k, v in FAST_ENV.items():
        if USER_ENV[k] is not None:
            env[k] = USER_ENV[k]  # what the user set wins, for both paths
        elif fast:
            env[k] = v
        else:
            env.pop(k, None)
    pkg_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_worker(kind: str, spec: dict, fast_env: bool, in_process: bool, tmp: Path) -> dict:
    """One measurement, in a fresh Python process (or here with `in_process`)."""
    if in_process:
        from workbench.bench.workers import WORKERS  # imports torch: after the environment is set
        return WORKERS[kind](spec)
    spec_path, res_path = tmp / f"{kind}.spec.json", tmp / f"{kind}.result.json"
    spec_path.write_text(json.dumps(spec))
    res_path.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "workbench.bench.launch", "--worker", kind, str(spec_path),
                           str(res_path)], env=worker_env(fast_env), capture_output=True, text=True)
    if proc.returncode != 0 or not res_path.exists():
        raise RuntimeError(f"bench worker {kind} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(res_path.read_text())


def _worker_main(argv: list[str]) -> int:
    """`python -m workbench.bench.launch --worker KIND SPEC.json RESULT.json` (what run_worker starts).

    The process's environment is the one its parent gave it (`worker_env`): the measurements, and torch
    with them, are imported only now.
    """
    from workbench.bench.workers import WORKERS
    if len(argv) != 4 or argv[0] != "--worker" or argv[1] not in WORKERS:
        print(f"usage: python -m workbench.bench.launch --worker {{{','.join(WORKERS)}}} SPEC.json RESULT.json",
              file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[2]).read_text())
    out = WORKERS[argv[1]](spec)
    Path(argv[3]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
