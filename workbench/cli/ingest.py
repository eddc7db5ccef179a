"""`workbench ingest`: labelled videos (a folder or a manifest) into npz records."""
from __future__ import annotations

import argparse

from workbench.core.config import Config, choices_of
from workbench.core.config_cli import add_config_arguments
from workbench.ingest.datasets import DATASETS
from workbench.ingest.pipeline import ingest


# ------------------------------------------------------------------ CLI
def _fps(value: str) -> float | None:
    if value.lower() == "native":
        return None
    try:
        fps = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fps expects a number or 'native', got {value!r}") from None
    if fps <= 0:
        raise argparse.ArgumentTypeError(f"--fps must be positive, got {value}")
    return fps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `workbench ingest`."""
    parser.add_argument("source", metavar="IN", help="folder with real/ and fake/ subfolders, a CSV manifest, or a "
                                                    "public dataset's root folder")
    parser.add_argument("out", metavar="OUT", help="output folder for the npz records and CSVs")
    parser.add_argument("--fps", type=_fps, default=argparse.SUPPRESS,
                        help="target frame rate, or 'native' to keep the file's (default: config, 30)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (0 = all cores, 1 = in-process)")
    parser.add_argument("--face-size", type=int, default=None, help="face crop side in pixels (default 224)")
    parser.add_argument("--lip-size", type=int, default=None, help="lip crop side in pixels (default 112)")
    parser.add_argument("--detect-every", type=int, default=None, help="run the face detector every N kept frames")
    parser.add_argument("--storage", choices=choices_of("ingest.storage"), default=None,
                        help="how crops are stored: lossless per-frame WebP (default), jpeg (lossy, "
                             "--set ingest.jpeg_quality=Q) or raw (uncompressed)")
    parser.add_argument("--dataset", choices=list(DATASETS), default=None,
                        help="read IN as this public dataset's root, from its own metadata (recognised when left out)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="ingest a stratified sample of N videos (by label; seeded by --set seed=S)")
    parser.add_argument("--unlabeled", action="store_true",
                        help="also ingest a dataset's unlabelled test files (label -1, split unlabeled)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_arguments(parser, "YAML config (defaults otherwise)")


def main(args: argparse.Namespace) -> int:
    """Run `workbench ingest`; exit status 1 when no video could be ingested, 2 on a bad input."""
    cfg = Config.load(args.config, args.set)
    if hasattr(args, "fps"):
        cfg.ingest.fps = args.fps
    if args.face_size is not None:
        cfg.data.face_size = args.face_size
    if args.lip_size is not None:
        cfg.data.lip_size = args.lip_size
    if args.storage is not None:
        cfg.ingest.storage = args.storage
    if args.detect_every is not None:
        if args.detect_every < 1:
            raise SystemExit("--detect-every must be at least 1")
        cfg.ingest.detect_every = args.detect_every
    try:
        summary = ingest(args.source, args.out, cfg, workers=args.workers, progress=not args.no_progress,
                         dataset=args.dataset, limit=args.limit, unlabeled=args.unlabeled)
    except (FileNotFoundError, ValueError) as e:
        print(f"workbench ingest: {e}")
        return 2
    return 0 if summary.done + summary.skipped > 0 else 1
