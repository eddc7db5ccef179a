"""`workbench export RUN --format av1m`: a challenge's submission files from the records a run scored.

av1m: classification.txt (`file;score` lines, score = P(Fake)) and localization.json ({file: [[score, start_s,
end_s], ...]}) of the fold ensemble on the run's held-out section (`test`: the test split, or the split an
official run scored) or on a cross-dataset section (`--cross NAME`, from `workbench evaluate`); see
workbench.analysis.export.
"""
from __future__ import annotations

import argparse
import sys

from workbench.analysis.export import FORMATS, export_av1m


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("run", help="a finished run folder")
    p.add_argument("--format", choices=FORMATS, required=True, help="the submission format")
    p.add_argument("--cross", metavar="NAME", help="export cross[NAME] (workbench evaluate) instead of the held-out test")
    p.add_argument("--out", help="folder for the files (default RUN/export_av1m, or RUN/export_av1m_NAME)")


def main(args: argparse.Namespace) -> int:
    """Write the files and print their paths; 1 with a one-line error on bad input."""
    try:
        paths = export_av1m(args.run, args.out, f"cross:{args.cross}" if args.cross else "test")
    except (ValueError, FileNotFoundError) as e:
        print(f"workbench export: error: {e}", file=sys.stderr)
        return 1
    for what, path in paths.items():
        print(f"{what}: {path}")
    return 0
