"""The Ray engine: the same results as the local engine, a killed worker rerun to the same weights, failed folds
reported while the rest of the grid finishes, and the engine settings kept out of the run's fingerprint.

The Ray tests share one local instance of 2 CPUs (a module fixture) and each runs under a time cap; they are
skipped, with the reason, only where `ray` cannot be imported (it is the optional `.[ray]` extra).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import TINY

from workbench.cli.kfold import add_arguments, config_from_args
from workbench.core.config import Config, EngineConfig
from workbench.core.runtime import usable_cores
from workbench.study import runner as study
from workbench.synthetic.toydata import make_toy_dataset
from workbench.training.engine import run_kfold

GRID = {"baseline": {}, "balanced": {"train": {"weighted_sampler": True}, "loss": {"weighted": True}},
        "broken": {"loss": {"label_smoothing": 1.5}},  # accepted by the config, raises in every fold task
        "nofolds": {"split": {"kfold": 50}}}  # fails in the driver's set-up
REPO = Path(__file__).resolve().parents[1]


def quiet(msg: str) -> None:
    pass


@contextlib.contextmanager
def time_cap(seconds: int, what: str):
    """Fail (not hang) when the block runs past `seconds`: SIGALRM reaches the driver's ray.wait loop within 1 s."""
    def over(signum, frame):
        raise TimeoutError(f"{what} ran past its {seconds} s cap")
    old = signal.signal(signal.SIGALRM, over)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def on_ray_threads(cond_dir: Path) -> int:
    """The torch threads a condition's Ray fold tasks logged (fold_0/train.log's first line)."""
    first = (cond_dir / "fold_0" / "train.log").read_text().splitlines()[0]
    return int(first.rsplit(",", 1)[1].split()[0])


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="Ray is the optional extra .[ray] (pip install -e '.[ray]'); "
                                            "the engine tests need it")
    with time_cap(180, "ray.init"):
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=128 * 2**20, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), n_real=8, n_fake=12, n_test_long=1, n_test_long_fake=1,
                            long_frames=90, n_groups=6)


# ------------------------------------------------------------------ settings (no Ray needed)
def test_engine_settings_come_from_flags_and_stay_out_of_the_fingerprint():
    p = argparse.ArgumentParser()
    add_arguments(p)
    cfg = config_from_args(p.parse_args(["--data", "d", "--engine", "ray", "--ray-address", "auto",
                                         "--task-cpus", "2", "--task-gpus", "0.25", "--set", "engine.max_retries=1"]))
    assert (cfg.engine.kind, cfg.engine.address, cfg.engine.num_cpus, cfg.engine.num_gpus, cfg.engine.max_retries) == \
        ("ray", "auto", 2.0, 0.25, 1)
    local = config_from_args(p.parse_args(["--data", "d"]))
    assert local.engine == EngineConfig() and local.engine.kind == "local"
    assert cfg.fingerprint() == local.fingerprint()  # a run started locally resumes under Ray
    assert cfg.merged({"seed": 1}).fingerprint() != local.fingerprint()
    for bad in ("engine.kind=slurm", "engine.num_cpus=0", "engine.num_gpus=-1"):
        with pytest.raises(ValueError, match=bad.split("=")[0]):
            Config.load(None, [bad])


def test_the_local_engine_imports_no_ray():
    code = ("import argparse, sys\n"
            "from workbench.cli import kfold, study\n"
            "p = argparse.ArgumentParser(); kfold.add_arguments(p)\n"
            "cfg = kfold.config_from_args(p.parse_args(['--data', 'd']))\n"
            "sp = argparse.ArgumentParser(); study.add_arguments(sp); sp.parse_args(['--data', 'd'])\n"
            "assert cfg.engine.kind == 'local'\n"
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    assert out.strip() == "[]"


def test_engine_ray_without_ray_says_how_to_install_it(monkeypatch):
    from workbench.training import engine
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[ray\]'"):
        engine.require_ray()


# ------------------------------------------------------------------ on Ray
def _fold_metrics(res: dict) -> dict[int, dict]:
    return {f["fold"]: {**f["metrics"], "best_epoch": f["best_epoch"]} for f in res["folds"]}


def _max_diff(a: dict, b: dict) -> float:
    """The largest |a - b| over the metrics of two runs (NaN on both sides, JSON's null, counts as equal)."""
    assert a.keys() == b.keys()
    worst = 0.0
    for k in a:
        x, y = (math.nan if v is None else float(v) for v in (a[k], b[k]))
        if math.isnan(x) != math.isnan(y):
            return math.inf
        worst = worst if math.isnan(x) else max(worst, abs(x - y))
    return worst


@pytest.mark.slow
def test_study_on_ray_matches_the_local_engine_and_reports_failed_folds(ray_session, toy, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump(GRID))
    run = tmp_path / "run"
    with time_cap(400, "the study on Ray"):
        report = study.run_study(toy, run, conditions_file=grid, preset="smoke", after=(), stream=False,
                                 engine=EngineConfig(kind="ray"))
    assert sorted(report.ran) == ["balanced", "baseline"], report.failed
    assert "fold 0: ValueError" in report.failed["broken"] and "fold 1: ValueError" in report.failed["broken"]
    assert "label_smoothing" in report.failed["broken"]
    assert "50-fold CV needs" in report.failed["nofolds"]
    record = json.loads((run / "study.json").read_text())
    assert record["engine"]["kind"] == "ray" and record["failed"].keys() == {"broken", "nofolds"}
    ran = {(f["condition"], f["fold"]): f for f in record["folds"] if f["status"] == "ran"}
    assert sorted(ran) == [("balanced", 0), ("balanced", 1), ("baseline", 0), ("baseline", 1)]
    for (cond, k), f in ran.items():  # trained once, in a Ray worker; notebook 02 only collected it
        attempts = json.loads((run / cond / f"fold_{k}" / "engine.json").read_text())["attempts"]
        assert len(attempts) == 1 and attempts[0]["pid"] == f["pid"] != os.getpid()
        assert f["hostname"] and f["node_ip"] and f["node_id"] == attempts[0]["node_id"]
    for cond in ("baseline", "balanced"):  # the local engine, same seeds, nothing else set: train.threads alike
        cfg = study.condition_config(str(toy), str(tmp_path / "local" / cond), cond, GRID[cond], "smoke",
                                     None, None, "auto", False)
        with time_cap(200, f"local {cond}"):
            local = run_kfold(cfg, log=quiet)
        assert local["config"]["train"]["threads"] == usable_cores() == on_ray_threads(run / cond)
        on_ray = json.loads((run / cond / "kfold_results.json").read_text())
        assert on_ray["complete"] and len(on_ray["folds"]) == 2
        fl, fr = _fold_metrics(local), _fold_metrics(on_ray)
        assert fl.keys() == fr.keys() == {0, 1}
        for k in fl:
            assert _max_diff(fl[k], fr[k]) <= 1e-6, f"{cond} fold {k}"
        assert _max_diff(local["mean"], on_ray["mean"]) <= 1e-6
        assert _max_diff(local["test"]["ensemble"], on_ray["test"]["ensemble"]) <= 1e-6


@pytest.mark.slow
def test_a_killed_worker_is_rerun_and_resumes_to_the_same_weights(ray_session, tmp_path):
    from workbench.training.engine import run_kfold_ray
    root = make_toy_dataset(tmp_path / "d", n_real=12, n_fake=20, frames=(40, 60), face=48, lip=24)
    sets = TINY + ["model.dropout=0.3", "train.epochs=5", "split.kfold=2", "eval.full_frames=false",
                   "eval.test=false", f"data.root={root}"]
    cut = Config.load(None, sets + [f"out={tmp_path / 'cut'}", "engine.kind=ray"])
    box: dict = {}

    def drive():
        try:
            box["out"] = run_kfold_ray(cut, log=quiet)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread below
            box["error"] = e

    fdir = tmp_path / "cut" / "fold_0"
    with time_cap(400, "the killed-worker run"):
        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        while not ((fdir / "mmms-ba_last.pth").exists() and (fdir / "engine.json").exists()) and driver.is_alive():
            time.sleep(0.01)
        pid = json.loads((fdir / "engine.json").read_text())["attempts"][0]["pid"]
        os.kill(pid, signal.SIGKILL)  # the Ray worker running fold 0, after its first epoch was checkpointed
        assert not (fdir / "done.json").exists(), "killed too late: fold 0 had finished"
        killed_after = len(pd.read_csv(fdir / "history.csv"))
        while driver.is_alive():
            driver.join(timeout=0.5)
    assert "error" not in box, box.get("error")
    results, failed = box["out"]
    assert not failed and results["complete"]
    attempts = json.loads((fdir / "engine.json").read_text())["attempts"]
    assert len(attempts) == 2 and attempts[1]["pid"] != pid
    assert 1 <= attempts[1]["start_epoch"] < 5, attempts  # the rerun resumed from the last checkpoint
    whole = Config.load(None, sets + [f"out={tmp_path / 'whole'}"])  # uninterrupted, local engine, same threads
    with time_cap(200, "the uninterrupted run"):
        run_kfold(whole, folds_to_run=[0], log=quiet)
    for name in ("mmms-ba_last.pth", "mmms-ba_best.pth"):
        a = torch.load(tmp_path / "whole" / "fold_0" / name, weights_only=False)
        b = torch.load(fdir / name, weights_only=False)
        assert a["epoch"] == b["epoch"]
        diff = max(float((a["model"][p].double() - b["model"][p].double()).abs().max()) for p in a["model"])
        assert diff == 0.0, f"{name}: max |dw| {diff:.3g} after a kill at epoch {killed_after}"


@pytest.mark.slow
def test_bench_engines_times_both_engines_on_the_same_grid(ray_session, toy, tmp_path, capsys):
    from workbench.bench import engines as engine_bench
    from workbench.cli import bench_engines
    p = argparse.ArgumentParser()
    bench_engines.add_arguments(p)
    args = p.parse_args(["--data", str(toy), "--out", str(tmp_path / "b"), "--conditions", "baseline",
                         "--preset", "smoke", "--epochs", "1"])
    with time_cap(300, "bench-engines"):
        res = engine_bench.compare(args, log=quiet)
    text = engine_bench.render(res)
    assert res["folds"] == 2 and len(res["fold_s"]["local"]) == len(res["fold_s"]["ray"]) == 2
    assert res["ray_s"] > res["ray_start_s"] >= 0 and res["ratio"] == pytest.approx(res["local_s"] / res["ray_s"])
    for engine in ("local", "ray"):
        assert json.loads((tmp_path / "b" / engine / "baseline" / "kfold_results.json").read_text())["complete"]
    assert "local engine:" in text and "ray engine:" in text and "ratio local/ray" in text
