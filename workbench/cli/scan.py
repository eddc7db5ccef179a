"""`workbench scan DIR`: load and check every record of a dataset folder and list all bad files."""
from __future__ import annotations

import argparse
from collections import Counter

from workbench.core.config import Config
from workbench.data.records import scan_folder


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", help="dataset folder (npz files, with or without index.csv)")
    p.add_argument("--index", default="index.csv")
    p.add_argument("--n-mfcc", type=int, default=None,
                   help="MFCC coefficients the model expects (default: the config's audio.n_mfcc, 40)")


def main(args: argparse.Namespace) -> int:
    n_mfcc = args.n_mfcc if args.n_mfcc is not None else Config().audio.n_mfcc
    res = scan_folder(args.root, args.index, validate=True, n_mfcc=n_mfcc)
    labels = Counter(r.label for r in res.rows)
    splits = Counter(r.split for r in res.rows)
    print(f"{args.root}: {len(res.rows)} good videos (REAL {labels[0]} / FAKE {labels[1]}; "
          f"{dict(splits)}), {len(res.failures)} bad")
    for f, reason in res.failures:
        print(f"  BAD {f}: {reason}")
    return 1 if res.failures else 0
