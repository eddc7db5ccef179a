"""The condition grid: notebook 02 once per condition with papermill, then notebooks 01, 03, 04, 06, 05.

Layout of a study (`run_dir`):
    <condition>/                    02_kfold_training.ipynb (executed), its params YAML, metrics.json,
                                    kfold_results.json, fold_k/, figures/
    01_class_imbalance/ 03_temporal_pfake/ 04_calibration_thresholds/ 06_localization_attribution/
    05_compare_conditions/
                                    each: the executed notebook, params YAML, metrics.json, figures
    study.json                      what ran, what was skipped, what failed and why
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import papermill as pm
import traitlets.config
import yaml

from workbench.analysis.notebook_metrics import METRICS_FILE
from workbench.analysis.runs import has_run, read_run
from workbench.analysis.silence import silence_check
from workbench.core import paths
from workbench.core.conditions import condition_config, load_conditions, load_presets
from workbench.core.config import Config, EngineConfig
from workbench.study.notebook import figure_path, write_metrics  # noqa: F401  (figure_path: public API)
from workbench.training.engine import run_conditions  # imports Ray: only under engine ray

NOTEBOOK_DIR = paths.project_root() / "notebooks"
PER_CONDITION = "02_kfold_training"
_KERNEL_CONFIG = traitlets.config.Config({"KernelManager": {"transport": "ipc"}} if os.name == "posix" else {})
AFTER = ("01_class_imbalance", "03_temporal_pfake", "04_calibration_thresholds", "06_localization_attribution",
         "05_compare_conditions")  # 06 before 05: 05's summary carries 06's tables


# ------------------------------------------------------------------ papermill
def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """The parameters declared in a notebook's cell tagged `parameters`."""
    params = pm.inspect_notebook(str(notebook))
    if not params:
        raise ValueError(f"{notebook} has no cell tagged 'parameters'")
    return params


def execute(name: str, output_dir: str | Path, params: dict[str, Any], *, notebook_dir: Path = NOTEBOOK_DIR,
            kernel: str = "python3", stream: bool = True) -> Path:
    """Execute notebooks/<name>.ipynb into output_dir with checked parameters; return the executed notebook."""
    src = Path(notebook_dir) / f"{name}.ipynb"
    if not src.exists():
        raise FileNotFoundError(f"notebook {src} does not exist")
    known = notebook_parameters(src)
    unknown = sorted(set(params) - set(known))
    if unknown:  # papermill itself only warns
        raise ValueError(f"{name}: unknown parameter(s) {unknown}; the notebook declares {sorted(known)}")
    out = Path(output_dir).resolve()  # papermill changes the process's folder while it runs
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))  # papermill -f reproduces the run
    dst = out / f"{name}.ipynb"
    # The kernel starts in notebooks/, as under `jupyter lab notebooks/`, so both exercise paths.in_project.
    # IPC transport (Unix sockets in Jupyter's runtime folder) instead of TCP on localhost: nothing listens
    # on a port, and ipykernel's "running over TCP without encryption" warning is not printed once per notebook.
    pm.execute_notebook(str(src.resolve()), str(dst), parameters=params, kernel_name=kernel, progress_bar=False,
                        log_output=stream, cwd=str(src.resolve().parent), config=_KERNEL_CONFIG)
    return dst


class _LineHandler(logging.Handler):
    """Echo the progress lines of papermill's streamed cell output (`[condition] fold k epoch ...`, one an
    epoch from notebook 02) and any WARNING line; tables, figure reprs and cell markers stay in the notebook."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            return
        for line in record.getMessage().splitlines():
            if PROGRESS.match(line) or line.startswith("WARNING"):
                print(f"  | {line.rstrip()}", flush=True)


# `[baseline] fold 0 epoch 3 ...`, `[ray 2/10] ...`: not a pandas shape line (`[72 rows x 7 columns]`) nor a
# kernel's own log line (`[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel`, printed at its shutdown)
PROGRESS = re.compile(r"^\[(?!\w*App\])(ray( \d+/\d+)?|[\w.-]+)\] ")


@dataclass
class StudyReport:
    """What a study run did."""

    run_dir: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    stages: list[dict] = field(default_factory=list)  # name, status (ran/skipped/failed), seconds, in order
    folds: list[dict] = field(default_factory=list)  # engine ray: one record per (condition, fold), with its node

    @property
    def summary(self) -> Path:
        return self.run_dir / "05_compare_conditions" / "summary.md"


def _complete(cond_dir: Path) -> bool:
    """Notebook 02 ran on the condition (metrics.json) and every fold of its K-fold run finished."""
    return (cond_dir / METRICS_FILE).exists() and has_run(cond_dir) and read_run(cond_dir).complete


def run_study(data_dir: str | Path, run_dir: str | Path, *, conditions: list[str] | None = None,
              conditions_file: str | Path | None = None, preset: str = "full", folds: int | None = None,
              epochs: int | None = None, device: str = "auto", after: tuple[str, ...] = AFTER,
              temporal_conditions: list[str] | None = None, notebook_dir: Path = NOTEBOOK_DIR,
              stream: bool = True, engine: EngineConfig | None = None,
              silence: Sequence[str] | None = None) -> StudyReport:
    """Run the grid; finished conditions are skipped, a failing one (kernel death included) does not stop the rest.

    With `engine.kind=ray` the folds of every unfinished condition first run at once as Ray tasks; each
    condition's notebook 02 then only collects them (a condition with a failed fold is reported, not run).
    """
    engine = engine or EngineConfig()
    # absolute: the command line's paths are relative to the user's folder, the kernels run in notebooks/
    data_dir, run_dir, t0 = Path(data_dir).resolve(), Path(run_dir).resolve(), time.time()
    grid = load_conditions(conditions_file)
    names = conditions or list(grid)
    missing = [c for c in names if c not in grid]
    if missing:
        raise KeyError(f"unknown condition(s) {missing}; known: {list(grid)}")
    report = StudyReport(run_dir)
    handler = _LineHandler()
    log = logging.getLogger("papermill")
    if stream:
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    common = dict(data_dir=str(data_dir), preset=preset, device=device, smoke=preset == "smoke")
    try:
        folds_failed = _ray_folds(report, names, grid, engine, common, folds, epochs) if engine.kind == "ray" else {}
        run = functools.partial(execute, notebook_dir=notebook_dir, stream=stream)  # run(name, output_dir, params)
        _conditions(report, names, grid, folds_failed, run, common, folds, epochs)
        done = [c for c in names if has_run(run_dir / c)]
        _silence_checks(report, [c for c in done if silence is not None and (c in silence or "all" in silence)],
                        data_dir)
        temporal = [c for c in (temporal_conditions or ["baseline", "balanced"]) if c in done] or done[:2]
        for nb in after:
            params = _after_params(nb, run_dir, data_dir, preset, folds, device, temporal)
            if nb != "01_class_imbalance" and not done:
                report.failed[nb] = "no finished condition to analyse"
                report.stages.append({"name": nb, "status": "failed", "seconds": 0.0})
                continue
            print(f"[after] {nb}", flush=True)
            _attempt(report, nb, lambda: run(nb, run_dir / nb, params))
    finally:
        log.removeHandler(handler)
    report.seconds = time.time() - t0
    write_metrics(run_dir, {"ran": report.ran, "skipped": report.skipped, "failed": report.failed,
                            "seconds": report.seconds, "stages": report.stages, "preset": preset,
                            "data_dir": str(data_dir), "engine": dataclasses.asdict(engine), "folds": report.folds},
                  name="study.json")
    return report


def _conditions(report: StudyReport, names: list[str], grid: dict[str, dict], folds_failed: dict[str, str],
                run, common: dict, folds: int | None, epochs: int | None) -> None:
    """Notebook 02 once per condition: complete ones skipped, those whose Ray folds failed reported."""
    for i, cond in enumerate(names, 1):
        cdir = report.run_dir / cond
        if _complete(cdir):
            print(f"[{i}/{len(names)}] {cond}: complete, skipped", flush=True)
            report.skipped.append(cond)
            report.stages.append({"name": cond, "status": "skipped", "seconds": 0.0})
            continue
        if cond in folds_failed:
            report.failed[cond] = folds_failed[cond]
            report.stages.append({"name": cond, "status": "failed", "seconds": 0.0})
            print(f"  FAILED {cond}: {folds_failed[cond]}", file=sys.stderr, flush=True)
            continue
        print(f"[{i}/{len(names)}] {cond}: running {PER_CONDITION}", flush=True)
        params = dict(common, output_dir=str(cdir), condition=cond, overrides=grid[cond],
                      folds=folds, epochs=epochs, progress=False)
        _attempt(report, cond, lambda: run(PER_CONDITION, cdir, params))


def _silence_checks(report: StudyReport, names: list[str], data_dir: Path) -> None:
    """The leading-silence check (analysis.silence) of each named condition, once: before the notebooks that show it."""
    for cond in names:
        cdir = report.run_dir / cond
        if (cdir / "silence_check.csv").exists():
            continue
        print(f"[silence] {cond}: the leading-silence check", flush=True)
        _attempt(report, f"silence {cond}", lambda: silence_check(cdir, data_dir, log=lambda msg: None))


def _after_params(nb: str, run_dir: Path, data_dir: Path, preset: str, folds: int | None, device: str,
                  temporal: list[str]) -> dict[str, Any]:
    """The parameters of a notebook that runs after the conditions."""
    params: dict[str, Any] = {"output_dir": str(run_dir / nb), "smoke": preset == "smoke"}
    if nb == "01_class_imbalance":
        params.update(data_dir=str(data_dir), folds=folds or Config.from_dict(load_presets()[preset]).split.kfold)
    elif nb in ("03_temporal_pfake", "06_localization_attribution"):
        params.update(data_dir=str(data_dir), run_dir=str(run_dir), conditions=temporal, device=device)
    else:
        params.update(run_dir=str(run_dir))
    return params


def _ray_folds(report: StudyReport, names: list[str], grid: dict[str, dict], engine: EngineConfig, common: dict,
               folds: int | None, epochs: int | None) -> dict[str, str]:
    """Every fold of the unfinished conditions as Ray tasks, at once; returns condition -> why it failed."""
    t0 = time.time()
    todo = [c for c in names if not _complete(report.run_dir / c)]
    cfgs = [condition_config(common["data_dir"], str(report.run_dir / c), c, grid[c], common["preset"], folds, epochs,
                             common["device"], False) for c in todo]  # what notebook 02 builds from its parameters
    run = run_conditions(cfgs, engine) if cfgs else None
    report.folds = run.folds if run else []
    failed = run.failed if run else {}
    report.stages.append({"name": "folds on ray", "status": "failed" if failed else "ran", "seconds": time.time() - t0})
    return failed


def _attempt(report: StudyReport, name: str, fn) -> None:
    t0 = time.time()
    try:
        fn()
        report.ran.append(name)
        status = "ran"
    except Exception as e:  # noqa: BLE001 - a failing condition (or a dead kernel) must not stop the grid
        reason = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        report.failed[name] = reason
        status = "failed"
        print(f"  FAILED {name}: {reason}", file=sys.stderr, flush=True)
    report.stages.append({"name": name, "status": status, "seconds": time.time() - t0})


def stage_table(stages: list[dict]) -> str:
    """The stages of a run, one line each with its status and minutes, and the total."""
    width = max([len(s["name"]) for s in stages] + [5])
    lines = [f"{'stage':<{width}}  {'status':<8} {'minutes':>7}"]
    lines += [f"{s['name']:<{width}}  {s['status']:<8} {s['seconds'] / 60:7.2f}" for s in stages]
    lines.append(f"{'total':<{width}}  {'':<8} {sum(s['seconds'] for s in stages) / 60:7.2f}")
    return "\n".join(lines)


def print_report(report: StudyReport, extra_stages: list[dict] | None = None) -> None:
    """The end-of-study lines: the stage table, failures, then where the summary is."""
    print(f"\nstudy finished in {report.seconds / 60:.1f} min: {len(report.ran)} ran, "
          f"{len(report.skipped)} skipped, {len(report.failed)} failed")
    print(stage_table([*(extra_stages or []), *report.stages]))
    for name, why in report.failed.items():
        print(f"  FAILED {name}: {why}")
    if report.summary.exists():
        print(f"summary: {report.summary}")


