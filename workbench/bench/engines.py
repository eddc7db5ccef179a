"""`workbench bench-engines`: the wall time of a grid's folds under the local engine and under Ray, in one run.

Both engines train the same conditions' folds from scratch on the same data, each into its own folder under
`--out` (`local/<condition>`, `ray/<condition>`):

  local  `kfold.run_kfold` per condition in this process, one fold after another, torch on every usable core
         (its default): what `workbench study` does today;
  ray    a local Ray instance with `--workers` CPUs and one CPU per (condition, fold) task, torch with one thread
         in each, so `--workers` folds train at once (`engine.run_folds`, as `workbench study --engine ray`).

The notebooks are left out: they cost the same under both engines. Printed: both wall times (Ray's with and
without its start-up) and their ratio, the mean and longest fold, what the grid would take on N workers at that
fold time (folds x conditions / N, the longest fold as the floor), and the largest metric difference between the
two runs (their torch thread counts differ, so equality to the last bit is not expected there).
"""
from __future__ import annotations

import argparse
import math
import shutil
import time
from pathlib import Path

import torch

from workbench.core.conditions import condition_config, load_conditions
from workbench.core.config import EngineConfig
from workbench.core.runtime import usable_cores
from workbench.training.engine import connect, run_folds
from workbench.training.kfold import collect, prepare, run_fold


def _configs(args: argparse.Namespace, grid: dict[str, dict], names: list[str], engine: str) -> list:
    return [condition_config(args.data, str(Path(args.out) / engine / c), c, grid[c], args.preset, args.folds,
                             args.epochs, args.device, False) for c in names]


def run_local(cfgs: list) -> tuple[float, dict[str, dict], list[float]]:
    """Every condition's folds one after another in this process (what kfold.run_kfold does, each fold timed):
    (seconds, results by condition, wall seconds of each fold: training, selection and scoring)."""
    t0, results, fold_wall = time.perf_counter(), {}, []
    for cfg in cfgs:
        cache: dict = {}
        data, plans = prepare(cfg, cache, log=lambda msg: None)
        folds = []
        for plan in plans:
            t = time.perf_counter()
            folds.append(run_fold(cfg, plan, data, cache=cache, log=lambda msg: None))
            fold_wall.append(time.perf_counter() - t)
        results[cfg.name] = collect(cfg, folds, data)
    return time.perf_counter() - t0, results, fold_wall


def run_ray(cfgs: list, workers: int, log) -> tuple[float, float, dict[str, dict], list[float]]:
    """Every fold at once on a local Ray instance of `workers` CPUs: (seconds with start-up, start-up, results,
    wall seconds of each fold task)."""
    engine = EngineConfig(kind="ray", num_cpus=1, local_cpus=workers)
    t0 = time.perf_counter()
    ray, started = connect(engine, log)
    start_s = time.perf_counter() - t0
    try:
        jobs = [(cfg, *prepare(cfg, None, log=lambda msg: None)) for cfg in cfgs]
        run = run_folds(jobs, engine, ray, log)
    finally:
        if started:
            ray.shutdown()
    if run.failed:
        raise RuntimeError(f"folds failed under Ray: {run.failed}")
    results = {cfg.name: collect(cfg, run.results[cfg.name], data) for cfg, data, _ in jobs}
    return time.perf_counter() - t0, start_s, results, [f["seconds"] for f in run.folds if f["status"] == "ran"]


COUNTS = ("_tp", "_fp", "_tn", "_fn", "n_real_frames", "n_fake_frames")  # confusion counts and sizes, not rates


def max_metric_difference(a: dict[str, dict], b: dict[str, dict]) -> float:
    """The largest |a - b| over conditions, folds and fold metrics (rates, not counts) of two sets of kfold results."""
    worst = 0.0
    for cond, ra in a.items():
        for fa, fb in zip(sorted(ra["folds"], key=lambda f: f["fold"]), sorted(b[cond]["folds"], key=lambda f: f["fold"])):
            for m, v in fa["metrics"].items():
                if m.endswith(COUNTS):
                    continue
                w = fb["metrics"].get(m)
                if isinstance(v, float) and isinstance(w, float) and not (math.isnan(v) or math.isnan(w)):
                    worst = max(worst, abs(v - w))
    return worst


def projection(n_folds: int, mean_s: float, longest_s: float, workers: tuple[int, ...] = (1, 2, 4, 8)) -> list[str]:
    """Wall time of `n_folds` folds on N workers: ceil(n / N) rounds of the mean fold, never under the longest."""
    return [f"{n}: {max(math.ceil(n_folds / n) * mean_s, longest_s) / 60:.1f} min" for n in workers]


def compare(args: argparse.Namespace, log=print) -> dict:
    """Run both engines on the same grid and return their wall times, fold times and metric difference."""
    grid = load_conditions(args.conditions_file)
    names = args.conditions or list(grid)
    for engine in ("local", "ray"):
        shutil.rmtree(Path(args.out) / engine, ignore_errors=True)  # both from scratch
    log(f"local engine: {len(names)} condition(s), one fold after another, torch {_threads()} thread(s) ...")
    local_s, local, local_folds = run_local(_configs(args, grid, names, "local"))
    log(f"local engine: {local_s:.1f} s; now Ray with {args.workers} one-CPU workers ...")
    ray_s, start_s, ray, ray_folds = run_ray(_configs(args, grid, names, "ray"), args.workers, log)
    fold_s = {"local": local_folds, "ray": ray_folds}  # wall per fold: load, train, select, score
    return {"conditions": names, "folds": len(fold_s["local"]), "workers": args.workers, "local_s": local_s,
            "ray_s": ray_s, "ray_start_s": start_s, "ratio": local_s / ray_s, "ratio_folds_only": local_s / (ray_s - start_s),
            "fold_s": fold_s, "max_metric_difference": max_metric_difference(local, ray), "torch_threads_local": _threads()}


def _threads() -> int:
    return torch.get_num_threads()


def render(r: dict) -> str:
    """The comparison's lines."""
    mean = {e: sum(v) / len(v) for e, v in r["fold_s"].items()}
    n = r["folds"]
    return "\n".join([
        f"grid: {len(r['conditions'])} condition(s) x folds = {n} folds ({', '.join(r['conditions'])})",
        f"local engine: {r['local_s']:8.1f} s  (one fold after another, torch {r['torch_threads_local']} threads; "
        f"mean fold {mean['local']:.1f} s, longest {max(r['fold_s']['local']):.1f} s)",
        f"ray engine:   {r['ray_s']:8.1f} s  (Ray start-up {r['ray_start_s']:.1f} s + folds {r['ray_s'] - r['ray_start_s']:.1f} s; "
        f"{r['workers']} workers x 1 CPU, torch 1 thread each; mean fold {mean['ray']:.1f} s, "
        f"longest {max(r['fold_s']['ray']):.1f} s)",
        f"ratio local/ray: {r['ratio']:.2f}x (Ray start-up left out: {r['ratio_folds_only']:.2f}x)",
        f"these {n} folds on N one-fold workers at Ray's fold time: " + ", ".join(
            projection(n, mean["ray"], max(r["fold_s"]["ray"]))),
        f"largest |fold metric difference| (rates) local vs ray: {r['max_metric_difference']:.3g} "
        f"(torch thread counts differ: {r['torch_threads_local']} vs 1)",
        f"note: {usable_cores()} usable cores, shared with whoever else runs on this machine: the times are noisy"])


