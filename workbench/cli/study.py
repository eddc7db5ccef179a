"""`workbench study`: the notebook grid of experimental conditions, run with papermill."""
from __future__ import annotations

import argparse
import sys

from workbench.core.conditions import load_presets
from workbench.core.config import Config
from workbench.core.config_cli import add_engine_arguments, engine_overrides
from workbench.study.runner import print_report, run_study


# ------------------------------------------------------------------ command line
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset folder of npz records")
    p.add_argument("--out", default="outputs/study", help="study folder")
    p.add_argument("--conditions", nargs="*", help="subset of the grid (default: all)")
    p.add_argument("--conditions-file", help="a YAML grid instead of the packaged conditions.yaml")
    p.add_argument("--preset", default="full", choices=sorted(load_presets()), help="model/training size preset")
    p.add_argument("--folds", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--device", default="auto")
    add_engine_arguments(p)


def main(args: argparse.Namespace) -> int:
    engine = Config.from_dict({"engine": engine_overrides(args)}).engine
    try:
        report = run_study(args.data, args.out, conditions=args.conditions, conditions_file=args.conditions_file,
                           preset=args.preset, folds=args.folds, epochs=args.epochs, device=args.device, engine=engine)
    except RuntimeError as e:  # engine ray: Ray missing, or no cluster at --ray-address
        print(f"error: {e}", file=sys.stderr)
        return 1
    print_report(report)
    return 1 if report.failed else 0
