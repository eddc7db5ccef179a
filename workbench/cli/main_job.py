"""`workbench main`: the README's main job — the whole study on the embedded demo data.

Builds `data/demo/` when missing (synthetic videos -> ingest -> npz), then runs the condition grid
and the analysis notebooks with the `cpu` preset (or `full`, the study's reference settings, for a
GPU), and ends with the path of the summary.
"""
from __future__ import annotations

import argparse
import time

from workbench.reporting.report_html import write_report
from workbench.study.runner import print_report, run_study
from workbench.synthetic.demo import build_demo

# the main job's default grid, within its budget on 2 CPU cores: the baseline, the study's balanced run, a loss
# reweighting, frame-level training and augmentation (every analysis has what it needs); --all-conditions runs every
# condition of conditions.yaml
MAIN_GRID = ("baseline", "balanced", "focal", "frame_level", "balanced_augmented")
SILENCE_CHECKED = ("baseline",)  # the leading-silence check (analysis.silence) of these conditions (budget)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The main job's flags: where, which conditions, and the study's sizes."""
    p.add_argument("--data", default="data/demo", help="demo dataset folder (built when missing)")
    p.add_argument("--out", default="outputs/study", help="study folder")
    p.add_argument("--full", action="store_true", help="the study's full model and training settings (for a GPU)")
    p.add_argument("--conditions", nargs="*", help="these conditions of conditions.yaml (default: MAIN_GRID)")
    p.add_argument("--all-conditions", action="store_true", help="every condition of conditions.yaml")
    p.add_argument("--silence-all", action="store_true",
                   help="the leading-silence check for every condition (default: the baseline)")
    p.add_argument("--folds", type=int, help="override the number of folds")
    p.add_argument("--epochs", type=int, help="override the number of epochs")
    p.add_argument("--device", default="auto")


def main(args: argparse.Namespace) -> int:
    t0 = time.time()
    npz = build_demo(args.data)
    demo_s = time.time() - t0
    print(f"demo data ready in {demo_s:.0f} s: {npz}", flush=True)
    names = None if args.all_conditions else (args.conditions or list(MAIN_GRID))
    silence = ["all"] if args.silence_all else list(SILENCE_CHECKED)
    report = run_study(npz, args.out, conditions=names, preset="full" if args.full else "cpu",
                       folds=args.folds, epochs=args.epochs, device=args.device, silence=silence)
    print_report(report, extra_stages=[{"name": "demo data", "status": "ran", "seconds": demo_s}])
    page = write_report(args.out)
    print(f"report: {page} ({page.stat().st_size / 1e6:.1f} MB; open it in a browser, it needs no network)")
    print(f"total {(time.time() - t0) / 60:.1f} min; open the notebooks with: .venv/bin/jupyter lab notebooks/")
    return 1 if report.failed else 0
