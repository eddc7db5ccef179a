"""`workbench demo`: the embedded demo dataset (synth + ingest) when missing, and its evidence."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from workbench.analysis.evidence import learnability
from workbench.core.config import Config
from workbench.core.config_cli import add_config_arguments
from workbench.synthetic.demo import build_demo, demo_summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `workbench demo`."""
    parser.add_argument("root", nargs="?", default="data/demo", help="demo folder (default data/demo)")
    parser.add_argument("--force", action="store_true", help="delete and rebuild videos/ and npz/")
    parser.add_argument("--small", action="store_true", help="the tiny version used by the tests")
    parser.add_argument("--long-duration", type=float, help="seconds of each long-form REAL clip (study: 180)")
    parser.add_argument("--seed", type=int, help="dataset seed")
    parser.add_argument("--studio-light", type=float, help="the planted studio-light confound (demo: 1.0, 0 = off)")
    add_config_arguments(parser, "YAML config (defaults otherwise)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--evidence", action="store_true",
                        help="also run a short 5-fold baseline and check faces >= 95%% and an out-of-fold ROC-AUC above chance "
                             "(within-fold label permutation, p < 0.05)")


def main(args: argparse.Namespace) -> int:
    """`workbench demo [ROOT]`: build when missing and print a summary."""
    cfg = Config.load(args.config, args.set)
    overrides = {k: v for k, v in (("long_duration", args.long_duration), ("seed", args.seed),
                                                   ("studio_light", args.studio_light)) if v is not None}
    t0 = time.perf_counter()
    npz = build_demo(args.root, cfg, force=args.force, small=args.small, progress=not args.quiet, **overrides)
    s = demo_summary(args.root)
    types = ", ".join(f"{k} {v}" for k, v in s["fake_types"].items())
    print(f"demo dataset: {npz} ({time.perf_counter() - t0:.1f} s)\n"
          f"  {s['videos']} videos, {s['seconds']} s: {s['real']} REAL, {s['fake']} FAKE ({types}); held-out test "
          f"(split=test): {s['test']} ({s['test_real']} REAL / {s['test_fake']} FAKE); unlabelled: {s['unlabeled']}\n"
          f"  {s['identities']} identities; {s['records']} records, "
          f"face found on {100 * s['face_rate']:.1f}% of frames")
    if not args.evidence:
        return 0
    ev = learnability(npz, Path("outputs") / "demo_evidence", progress=not args.quiet)
    ok_face, ok_auc = s["face_rate"] >= 0.95, ev["p_chance"] < 0.05
    print(f"  evidence: faces found {100 * s['face_rate']:.1f}% (>= 95%: {'yes' if ok_face else 'NO'}); "
          f"{ev['folds']}-fold baseline out-of-fold ROC-AUC {ev['mean_roc_auc']:.3f} ± {ev['std_roc_auc']:.3f} "
          f"(nested selection; chance's 95th percentile {ev['chance_q95']:.3f}, permutation p = {ev['p_chance']:.4f}, "
          f"< 0.05: {'yes' if ok_auc else 'NO'}), accuracy {ev['mean_acc']:.3f}; run in {ev['out']}")
    return 0 if ok_face and ok_auc else 1
