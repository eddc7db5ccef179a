"""`workbench study`: the notebook grid of experimental conditions, run with papermill."""
from __future__ import annotations

import argparse
import sys

from workbench.core.conditions import load_presets
from workbench.core.config import Config
from workbench.core.config_cli import add_engine_arguments, engine_overrides
from workbench.study.runner import print_report, run_study
from workbench.study.sweep import DEFAULT_PICK, format_sweep, run_sweep


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
    p.add_argument("--silence-check", nargs="+", metavar="CONDITION",
                   help="run the leading-silence check (workbench silence) of these conditions, or `all`, before the "
                        "analysis notebooks")
    add_engine_arguments(p)
    s = p.add_argument_group("class-weight sweep (workbench.study.sweep)")
    s.add_argument("--sweep-real-weight", type=float, nargs="+", metavar="W",
                   help="one condition per REAL class weight W (loss.class_weights [W, 1.0]) on the --base condition, "
                        "each evaluated honestly; then a table, a figure and the weight the inner parts pick")
    s.add_argument("--base", help="the condition the sweep varies (default: balanced)")
    s.add_argument("--sweep-pick", default=DEFAULT_PICK, metavar="VAL_METRIC",
                   help=f"inner-part metric that picks the weight (default {DEFAULT_PICK})")


def main(args: argparse.Namespace) -> int:
    engine = Config.from_dict({"engine": engine_overrides(args)}).engine
    sweep = getattr(args, "sweep_real_weight", None)
    if not sweep and (getattr(args, "base", None) or getattr(args, "sweep_pick", DEFAULT_PICK) != DEFAULT_PICK):
        print("error: --base and --sweep-pick go with --sweep-real-weight", file=sys.stderr)
        return 2
    if sweep and args.conditions:
        print("error: --conditions and --sweep-real-weight do not combine (the sweep makes its own conditions)",
              file=sys.stderr)
        return 2
    common = dict(preset=args.preset, folds=args.folds, epochs=args.epochs, device=args.device, engine=engine)
    summary = None
    try:
        if sweep:
            report, summary = run_sweep(args.data, args.out, sweep, base=args.base or "balanced",
                                        conditions_file=args.conditions_file, pick=args.sweep_pick, **common)
        else:
            report = run_study(args.data, args.out, conditions=args.conditions, conditions_file=args.conditions_file,
                               silence=args.silence_check, **common)
    except RuntimeError as e:  # engine ray: Ray missing, or no cluster at --ray-address
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (KeyError, ValueError) as e:  # an unknown base condition or pick metric, a bad weight
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    print_report(report)
    if summary is not None:
        print(format_sweep(summary))
    return 1 if report.failed else 0
