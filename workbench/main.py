"""`workbench main`: the README's main job (a short K-fold run on generated data on the CPU)."""
from __future__ import annotations

import argparse
from pathlib import Path

from workbench.config import Config
from workbench.kfold import format_table, run_kfold
from workbench.toydata import make_toy_dataset

SMALL = ["data.face_size=32", "data.lip_size=16", "model.face_channels=[16,32,64]", "model.lip_channels=[8,16,32]",
         "model.gru_hidden=32", "model.dense=32", "data.max_frames=24", "train.epochs=6", "train.lr=0.002",
         "split.kfold=5"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="data/toy", help="dataset folder (generated when missing)")
    p.add_argument("--out", default="outputs/main", help="run folder")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")


def main(args: argparse.Namespace) -> int:
    root = Path(args.data)
    if not (root / "index.csv").exists():
        print(f"generating a small dataset in {root} ...")
        make_toy_dataset(root, n_real=16, n_fake=30, n_test_long=1)
    cfg = Config.load(None, SMALL + [f"data.root={root}", f"out={Path(args.out) / 'baseline'}", *args.set])
    results = run_kfold(cfg)
    print(format_table(results))
    print(f"results: {Path(cfg.out) / 'kfold_results.json'}")
    return 0
