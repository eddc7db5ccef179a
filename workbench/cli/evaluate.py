"""`workbench evaluate RUN DATA`: a finished run's fold models (and their ensemble) on another ingested dataset.

Adds cross[<name>] to RUN/kfold_results.json (shaped like the held-out `test` section) and writes
RUN/predictions_cross_<name>_videos.csv and _frames.csv (workbench.training.evaluate).
"""
from __future__ import annotations

import argparse
import sys

from workbench.training.evaluate import evaluate_run


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("run", help="a finished run folder (kfold_results.json, config.yaml, fold_k/ checkpoints)")
    p.add_argument("data", help="an ingested dataset folder (index.csv and npz records)")
    p.add_argument("--name", help="the section's name (default: metadata.csv `dataset`, else the folder's name)")
    p.add_argument("--split", nargs="+", metavar="SPLIT", help="score only these index.csv splits (default: all)")
    p.add_argument("--unlabeled", action="store_true",
                   help="also score unlabelled videos (label -1): predictions only, never in a metric")
    p.add_argument("--skip-bad", action="store_true", help="score the valid records when some are bad")
    p.add_argument("--device", help="cpu, cuda, ... (default: the run's train.device)")


def main(args: argparse.Namespace) -> int:
    """Evaluate and print the ensemble's headline metrics; 1 with a one-line error on bad input."""
    try:
        sec = evaluate_run(args.run, args.data, name=args.name, splits=args.split, unlabeled=args.unlabeled,
                           skip_bad=args.skip_bad, device=args.device)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"workbench evaluate: error: {e}", file=sys.stderr)
        return 1
    e = sec["ensemble"]
    print(f"cross[{sec['dataset']}] ({sec['n_real']} REAL / {sec['n_fake']} FAKE"
          + (f", {sec['n_unlabeled']} unlabelled" if sec["n_unlabeled"] else "") + "), fold ensemble: "
          + "  ".join(f"{k.removeprefix('test_')} {e[k]:.4f}" for k in ("test_acc", "test_roc_auc", "test_balanced_acc")
                      if k in e))
    print(f"written: {args.run}/kfold_results.json cross[{sec['dataset']}], {args.run}/{sec['files']['videos']}")
    return 0
