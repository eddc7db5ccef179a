"""`workbench synth`: the synthetic audio-visual deepfake videos."""
from __future__ import annotations

import argparse
import csv
import time
from dataclasses import fields

from workbench.core.config import Config, SynthConfig
from workbench.core.config_cli import add_config_arguments
from workbench.synthetic.synth import PARTIAL_MODALITIES, PARTIAL_VIDEO, SHORTCUTS, generate


# ---------------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `workbench synth`."""
    parser.add_argument("out", help="output folder (real/, fake/, labels.csv)")
    add_config_arguments(parser, "YAML config (its synth section is used)")
    parser.add_argument("--n-real", type=int, help="short REAL clips")
    parser.add_argument("--n-fake", type=int, help="FAKE clips")
    parser.add_argument("--identities", type=int, dest="n_identities", help="number of identities")
    parser.add_argument("--seed", type=int, help="dataset seed")
    parser.add_argument("--size", type=int, help="frame size in pixels (square)")
    parser.add_argument("--fps", type=float, help="frame rate")
    parser.add_argument("--long", type=int, dest="n_long_real", help="long-form REAL test clips")
    parser.add_argument("--long-duration", type=float, help="seconds of each long-form clip")
    parser.add_argument("--duration-mean", type=float, help="mean seconds of a short clip")
    parser.add_argument("--shortcut", choices=SHORTCUTS, help="inject a shortcut")
    parser.add_argument("--partial-fakes", type=int, dest="n_partial",
                        help="partially faked clips in the pool (fake segments in labels.csv)")
    parser.add_argument("--partial-segments", type=int, nargs=2, metavar=("MIN", "MAX"),
                        help="fake segments per partial fake")
    parser.add_argument("--partial-seconds", type=float, nargs=2, metavar=("MIN", "MAX"),
                        help="seconds of each fake segment")
    parser.add_argument("--partial-modalities", nargs="+", choices=PARTIAL_MODALITIES,
                        help="what a partial fake manipulates (shared out evenly)")
    parser.add_argument("--partial-video", nargs="+", choices=PARTIAL_VIDEO, help="video manipulation of a segment")
    parser.add_argument("--long-fake", type=int, dest="n_long_fake", help="long-form FAKE test clips")
    parser.add_argument("--test-real", type=int, dest="n_test_real", help="short REAL test clips")
    parser.add_argument("--test-fake", type=int, dest="n_test_fake", help="short FAKE test clips")
    parser.add_argument("--test-partial", type=int, dest="n_test_partial", help="partial-fake test clips")
    parser.add_argument("--unlabeled", type=int, dest="n_unlabeled",
                        help="unlabelled short clips (split=unlabeled, label -1; truth in unlabeled_truth.csv)")
    parser.add_argument("--unlabeled-identities", type=int, dest="n_unlabeled_identities",
                        help="new people only the unlabelled clips show (0: the labelled identities)")
    parser.add_argument("--strength", type=float, dest="artifact_strength", help="artefact strength scale")
    parser.add_argument("--studio-light", type=float, dest="studio_light",
                        help="plant the studio-light confound (0 = off, 1 = the demo's): dim, warm light on every "
                             "long-form clip, 60%% of FAKE and 10%% of short REAL clips")
    parser.add_argument("--workers", type=int, help="rendering processes (0 = all cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """`workbench synth OUT [...]`: generate and print what was written."""
    cfg = Config.load(args.config, args.set)
    names = {f.name for f in fields(SynthConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in names and v is not None}
    t0 = time.perf_counter()
    try:
        labels = generate(args.out, cfg, progress=not args.quiet, **overrides)
    except (ValueError, FileExistsError, RuntimeError) as e:
        print(f"workbench synth: {e}")
        return 2
    with open(labels, newline="") as f:
        rows = list(csv.DictReader(f))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["fake_type"]] = counts.get(r["fake_type"], 0) + 1
    n_real = sum(r["label"] == "0" for r in rows)
    n_unl = sum(r["label"] == "-1" for r in rows)
    n_test = sum(r["split"] == "test" for r in rows)
    print(f"{len(rows)} videos ({n_real} REAL, {len(rows) - n_real - n_unl} FAKE, {n_unl} unlabelled, {n_test} of them "
          f"split=test; "
          f"{', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}) "
          f"in {time.perf_counter() - t0:.1f} s -> {labels}")
    return 0
