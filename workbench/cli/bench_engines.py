"""`workbench bench-engines`: wall time of a grid's folds, the local engine against Ray."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.bench.engines import compare, render
from workbench.data.records import write_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset folder of npz records")
    p.add_argument("--out", default="outputs/bench_engines", help="its local/ and ray/ subfolders are replaced")
    p.add_argument("--conditions", nargs="*", default=["baseline", "balanced"], help="conditions of the grid")
    p.add_argument("--conditions-file", help="a YAML grid instead of the packaged conditions.yaml")
    p.add_argument("--preset", default="cpu", help="model/training size preset")
    p.add_argument("--folds", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray instance, one per fold task")
    p.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")


def main(args: argparse.Namespace) -> int:
    try:
        res = compare(args, log=lambda msg: print(msg, flush=True))
    except (RuntimeError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(render(res))
    if args.json:
        write_json(Path(args.json), res)
    return 0
