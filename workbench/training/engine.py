"""The Ray engine: every (condition, fold) of a grid as one Ray task, on this machine or on a cluster.

`engine.kind=local` (the default) never imports this module: `kfold.run_kfold` trains the folds one after
another in the calling process. Under `engine.kind=ray` the driver (this process) connects to Ray (a local
instance, or a cluster with `engine.address`), does each condition's set-up (`kfold.prepare`: dataset scan,
fold plans, splits.json, config.yaml), submits one task per unfinished fold with `engine.num_cpus` CPUs and
`engine.num_gpus` GPUs, and waits on them with `ray.wait`; `workbench kfold` then writes kfold_results.json
(`kfold.collect`), `workbench study` runs each condition's notebook 02, which only collects its finished folds.
Scheduling, placement and reruns are Ray's (core API only: ray.init, ray.remote, ray.wait).

A fold task sets torch's thread count to its CPUs, runs `kfold.run_fold` and writes only its `fold_k/`:
besides the trainer's files, `engine.json` (one entry per attempt: node, pid, the epoch it started from) and
`train.log` (its log lines; the console gets one line per finished fold). A worker that dies (killed, out of
memory, a lost node) is rerun by Ray up to `engine.max_retries` times, and the rerun resumes from the fold's
last checkpoint, which holds every RNG state: it ends with the weights of an uninterrupted run. A task that
raises (bad data, a bad setting) is not rerun; it is reported with its condition, fold and error, and the
rest of the grid goes on.

Every node must see the same paths: outputs and records live on a shared filesystem. The driver makes the
output and data paths absolute before it sends them to the tasks.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from workbench.core.config import Config, EngineConfig
from workbench.core.runtime import torch_threads, usable_cores
from workbench.data.dataset import CONCURRENT_ENV, DatasetSplit
from workbench.data.records import write_json
from workbench.data.splits import FoldPlan
from workbench.training.kfold import collect, prepare, run_fold
from workbench.training.trainer import checkpoint_name

LOCAL_OBJECT_STORE = 256 * 2**20  # a local instance's object store: tasks exchange configs and fold plans only
Log = Callable[[str], None]


def require_ray():
    """The ray module, or an error that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise RuntimeError("engine ray needs Ray, an optional extra: pip install -e '.[ray]' "
                           "(or pip install 'ray>=2.9,<3')") from e
    return ray


# ------------------------------------------------------------------ connecting
def connect(engine: EngineConfig, log: Log = print):
    """Start a local Ray instance (engine.address None) or join a cluster; log what it sees. Returns (ray, started)."""
    ray = require_ray()
    started = False
    if not ray.is_initialized():
        quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
        try:
            if engine.address:
                ray.init(address=engine.address, **quiet)
            else:
                ray.init(address="local", num_cpus=engine.local_cpus or usable_cores(), include_dashboard=False,
                         object_store_memory=LOCAL_OBJECT_STORE, **quiet)
        except ConnectionError as e:
            raise RuntimeError(f"cannot join a Ray cluster at {engine.address!r} ({e}); start one with "
                               f"`ray start --head`, or leave --ray-address out to start a local instance") from e
        started = True
    log(describe(ray, engine))
    return ray, started


def cluster_size(ray) -> dict[str, float]:
    """Alive nodes, CPUs and GPUs of the cluster the driver is connected to."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    res = ray.cluster_resources()
    return {"nodes": len(nodes), "cpus": float(res.get("CPU", 0)), "gpus": float(res.get("GPU", 0))}


def task_threads(engine: EngineConfig, threads: int) -> int:
    """A fold task's torch threads: --task-cpus when given (it sets both), else the run's train.threads."""
    return max(1, int(engine.num_cpus)) if engine.num_cpus else max(1, int(threads or usable_cores()))


def task_resources(engine: EngineConfig, ray, device: str = "auto", threads: int = 0) -> dict[str, float]:
    """CPUs and GPUs of one fold task: as many CPUs as its torch threads (at most the cluster's); num_gpus None:
    1 when the cluster has GPUs (and the device is not cpu)."""
    size = cluster_size(ray)
    gpus = engine.num_gpus
    if gpus is None:
        gpus = 1.0 if size["gpus"] > 0 and device != "cpu" else 0.0
    cpus = float(engine.num_cpus) if engine.num_cpus else float(min(task_threads(engine, threads), size["cpus"] or 1))
    return {"num_cpus": cpus, "num_gpus": float(gpus)}


def describe(ray, engine: EngineConfig) -> str:
    """The first line of a Ray run: the engine, its nodes, CPUs and GPUs, and what each fold task asks for."""
    size = cluster_size(ray)
    where = f"cluster {engine.address}" if engine.address else "a local instance started here"
    task = task_resources(engine, ray)
    return (f"engine ray ({where}): {size['nodes']} node(s), {size['cpus']:g} CPUs, {size['gpus']:g} GPUs; "
            f"each (condition, fold) task: {task['num_cpus']:g} CPU" + ("" if engine.num_cpus else " (train.threads)")
            + f", {task['num_gpus']:g} GPU, "
            f"up to {engine.max_retries} reruns")


# ------------------------------------------------------------------ one fold, in a Ray worker
def where_am_i() -> dict[str, Any]:
    """The node and process a task runs in."""
    import ray
    ctx = ray.get_runtime_context()
    return {"node_ip": ray.util.get_node_ip_address(), "node_id": ctx.get_node_id(), "hostname": socket.gethostname(),
            "pid": os.getpid()}


def _start_epoch(cfg: Config, fdir: Path) -> int:
    """The epoch a fit in `fdir` starts from: 0, or the one after its last checkpoint."""
    last = fdir / checkpoint_name(cfg, "last")
    if not last.exists():
        return 0
    import torch
    return int(torch.load(last, map_location="cpu", weights_only=False)["epoch"]) + 1


def record_attempt(cfg: Config, fdir: Path, node: dict[str, Any]) -> int:
    """Append this attempt (node, pid, start epoch, time) to fold_k/engine.json; returns the attempt number."""
    path = fdir / "engine.json"
    attempts = json.loads(path.read_text())["attempts"] if path.exists() else []
    attempts.append({**node, "start_epoch": _start_epoch(cfg, fdir), "started": time.time()})
    write_json(path, {"attempts": attempts})
    return len(attempts)


def fold_task(cfg: Config, plan: FoldPlan, data: DatasetSplit, num_cpus: float) -> dict[str, Any]:
    """One (condition, fold) in a Ray worker: torch threads = train.threads (set by the driver), run_fold."""
    torch.set_num_threads(max(1, int(cfg.train.threads)))
    if CONCURRENT_ENV not in os.environ:  # the node's data.cache_gb shared by as many fold tasks as fit on it
        os.environ[CONCURRENT_ENV] = str(max(1, int((os.cpu_count() or 1) // max(num_cpus, 1e-3))))
    fdir = Path(cfg.out) / f"fold_{plan.fold}"
    fdir.mkdir(parents=True, exist_ok=True)
    node = where_am_i()
    attempt = record_attempt(cfg, fdir, node)
    with open(fdir / "train.log", "a", buffering=1) as f:
        def log(msg: str) -> None:
            f.write(msg.rstrip("\n") + "\n")
        log(f"attempt {attempt} on {node['hostname']} ({node['node_ip']}), pid {node['pid']}, "
            f"{torch.get_num_threads()} torch thread(s)")
        t0 = time.time()
        try:
            result = run_fold(cfg, plan, data, log=log)
        except BaseException:
            log(traceback.format_exc())
            raise
    return {"result": result, "node": node, "attempt": attempt, "seconds": time.time() - t0}


# ------------------------------------------------------------------ the driver
@dataclass
class GridRun:
    """What the fold phase of a grid did: each condition's fold results, failures and one record per fold."""

    results: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    data: dict[str, DatasetSplit] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # condition -> its set-up error or its failed folds
    folds: list[dict] = field(default_factory=list)  # condition, fold, status, seconds, node, attempts, error
    seconds: float = 0.0

    def fold_errors(self, condition: str) -> dict[int, str]:
        return {f["fold"]: f["error"] for f in self.folds if f["condition"] == condition and f["status"] == "failed"}


def for_tasks(cfg: Config, data: DatasetSplit) -> tuple[Config, DatasetSplit]:
    """Copies with absolute output and data paths (a worker's working directory may differ) and no progress bars."""
    cfg = cfg.merged({"out": str(Path(cfg.out).resolve()), "data": {"root": str(Path(cfg.data.root).resolve())},
                      "train": {"progress": False}})
    return cfg, dataclasses.replace(data, root=Path(data.root).resolve())


def error_text(e: BaseException) -> str:
    """One line for a failed task: the original exception of a RayTaskError, else Ray's own error."""
    cause = getattr(e, "cause", None) or e
    lines = [ln for ln in str(cause).strip().splitlines() if ln.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}".strip()


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def run_folds(jobs: list[tuple[Config, DatasetSplit, list[FoldPlan]]], engine: EngineConfig, ray,
              log: Log = print) -> GridRun:
    """Submit every unfinished fold of every job as a Ray task and wait for all; finished folds are read back."""
    run, t0 = GridRun(), time.time()
    remote = ray.remote(fold_task)
    pending: dict[Any, tuple[str, int]] = {}
    for cfg, data, plans in jobs:
        run.data[cfg.name] = data
        task_cfg, task_data = for_tasks(cfg.merged({"train": {"threads": task_threads(engine, cfg.train.threads)}}), data)
        res = task_resources(engine, ray, cfg.train.device, task_cfg.train.threads)
        for plan in plans:
            done = Path(cfg.out) / f"fold_{plan.fold}" / "done.json"
            if done.exists():
                run.results[cfg.name].append(json.loads(done.read_text()))
                run.folds.append({"condition": cfg.name, "fold": plan.fold, "status": "finished earlier",
                                  **_last_attempt(done.parent)})
                continue
            ref = remote.options(name=f"{cfg.name}/fold_{plan.fold}", max_retries=engine.max_retries,
                                 retry_exceptions=False, **res).remote(task_cfg, plan, task_data, res["num_cpus"])
            pending[ref] = (cfg.name, plan.fold)
    earlier = len(run.folds)
    log(f"[ray] {len(pending)} fold(s) to run" + (f", {earlier} finished earlier" if earlier else ""))
    n, finished = len(pending), 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)  # a timeout: signals reach the driver
        for ref in ready:
            cond, k = pending.pop(ref)
            finished += 1
            run.folds.append(_finished(ray, ref, cond, k))
            rec = run.folds[-1]
            if rec["status"] == "ran":
                run.results[cond].append(rec.pop("result"))
            elapsed = time.time() - t0
            what = (f"done in {rec['seconds']:.1f} s on {rec['hostname']} ({rec['node_ip']})"
                    + (f", attempt {rec['attempts']}" if rec["attempts"] > 1 else "")
                    if rec["status"] == "ran" else f"FAILED: {rec['error']}")
            log(f"[ray {finished}/{n}] {cond} fold {k} {what}; elapsed {_clock(elapsed)}, "
                f"about {_clock(elapsed / finished * (n - finished))} left")
    for cond in run.data:
        errors = run.fold_errors(cond)
        if errors:
            run.failed[cond] = "; ".join(f"fold {k}: {e}" for k, e in sorted(errors.items()))
    run.seconds = time.time() - t0
    return run


def _last_attempt(fdir: Path) -> dict[str, Any]:
    """Where a fold that finished earlier last ran (from its engine.json; empty when it ran under the local engine)."""
    path = fdir / "engine.json"
    if not path.exists():
        return {}
    attempts = json.loads(path.read_text())["attempts"]
    keep = ("node_ip", "node_id", "hostname", "pid")
    return {**{k: attempts[-1].get(k) for k in keep}, "attempts": len(attempts)}


def _finished(ray, ref, cond: str, k: int) -> dict[str, Any]:
    """The record of one finished task: its result, node and attempts, or its error."""
    try:
        out = ray.get(ref)
    except Exception as e:  # noqa: BLE001 - a failed fold is reported, the rest of the grid goes on
        return {"condition": cond, "fold": k, "status": "failed", "error": error_text(e)}
    return {"condition": cond, "fold": k, "status": "ran", "seconds": out["seconds"], "attempts": out["attempt"],
            **out["node"], "result": out["result"]}


def run_conditions(cfgs: list[Config], engine: EngineConfig, log: Log = print) -> GridRun:
    """The fold phase of a study: every condition's set-up here, then all their folds at once on Ray."""
    ray, started = connect(engine, log)
    try:
        jobs, setup_failed = [], {}
        for cfg in cfgs:
            try:
                data, plans = prepare(cfg, None, log=lambda msg: None)
                jobs.append((cfg, data, plans))
            except Exception as e:  # noqa: BLE001 - a condition that cannot start does not stop the grid
                setup_failed[cfg.name] = error_text(e)
                log(f"[ray] {cfg.name}: set-up failed: {setup_failed[cfg.name]}")
        run = run_folds(jobs, engine, ray, log)
        run.failed.update(setup_failed)
        return run
    finally:
        if started:
            ray.shutdown()


def run_kfold_ray(cfg: Config, log: Log = print) -> tuple[dict, dict[int, str]]:
    """`workbench kfold --engine ray`: the folds as Ray tasks, then kfold_results.json; (results, failed folds)."""
    ray, started = connect(cfg.engine, log)
    try:
        data, plans = prepare(cfg, None, log)
        run = run_folds([(cfg, data, plans)], cfg.engine, ray, log)
    finally:
        if started:
            ray.shutdown()
    return collect(cfg, run.results[cfg.name], data), run.fold_errors(cfg.name)


__all__ = ["GridRun", "connect", "describe", "fold_task", "run_conditions", "run_folds", "run_kfold_ray"]


def run_kfold(cfg: Config, *, folds_to_run: list[int] | None = None,
              on_epoch_end: Callable[..., None] | None = None, log: Callable[[str], None] = print) -> dict:
    """Cross-validate MMMS-BA; folds already finished under the same config are loaded, not redone."""
    cache: dict = {}  # decoded records, shared by validation and every fold's datasets
    data, plans = prepare(cfg, cache, log)
    with torch_threads(cfg.train.threads):  # resolved by prepare; a Ray fold task sets the same count
        fold_results = [run_fold(cfg, p, data, cache=cache, on_epoch_end=on_epoch_end, log=log)
                        for p in plans if folds_to_run is None or p.fold in folds_to_run]
    return collect(cfg, fold_results, data)
