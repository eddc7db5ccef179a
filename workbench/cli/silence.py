"""`workbench silence RUN [--all-conditions]`: the leading-silence check (workbench.analysis.silence).

A condition's out-of-fold and held-out videos scored again with their leading silence trimmed (and REAL ones
padded with the median FAKE leading silence); the change in ROC-AUC with a paired bootstrap 95% interval is
written to RUN/silence_check.csv (and _videos.csv, .json). With --all-conditions RUN is a study folder and every
finished condition is checked.
"""
from __future__ import annotations

import argparse
import sys

from workbench.analysis.runs import condition_dirs
from workbench.analysis.silence import format_silence_table, silence_check


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("run", help="a condition's run folder, or a study folder with --all-conditions")
    p.add_argument("--all-conditions", action="store_true", help="RUN is a study folder: check every finished condition")
    p.add_argument("--data", help="the dataset folder (default: the run's data.root)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default %(default)s)")
    p.add_argument("--device", help="cpu, cuda, ... (default: the run's train.device)")


def main(args: argparse.Namespace) -> int:
    """Run the check on one condition or all; print each table; 1 with a one-line error on bad input."""
    try:
        dirs = condition_dirs(args.run) if args.all_conditions else {args.run: args.run}
        for name, cond in dirs.items():
            table = silence_check(cond, args.data, n_boot=args.n_boot, seed=args.seed, device=args.device)
            print(f"{name}: leading-silence check (ROC-AUC of video P(Fake)) -> {cond}/silence_check.csv")
            print(format_silence_table(table))
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"workbench silence: error: {e}", file=sys.stderr)
        return 1
    return 0
