"""`workbench bench`: the fast path against the naive reference path (workbench.bench.bench), printed and as JSON.

Imports no torch at import time: `workbench.bench.bench.run` sets the fast path's runtime environment
before anything imports torch.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from workbench.bench.bench import run
from workbench.bench.render import render
from workbench.data.records import write_json


def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {value!r}") from None
    return w, h


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of `workbench bench` (defaults: the reference settings)."""
    p.add_argument("--parts", default="train,infer,ingest", help="comma list of: train, infer, ingest, scale")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--batch", type=int, default=8, help="clips per training batch")
    p.add_argument("--frames", type=int, default=50, help="frames per training clip")
    p.add_argument("--face-size", type=int, default=224)
    p.add_argument("--lip-size", type=int, default=112)
    p.add_argument("--video-frames", type=int, default=120, help="frames per training video (4 s at 30 fps)")
    p.add_argument("--repeats", type=int, default=3, help="timed training steps / validation batches per path")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before those")
    p.add_argument("--long-frames", type=int, default=5396, help="frames of the long video (180 s at 30 fps)")
    p.add_argument("--chunk", type=int, default=32, help="frames per CNN chunk in long-video inference (both paths)")
    p.add_argument("--infer-repeats", type=int, default=1, help="long-video runs per path")
    p.add_argument("--ingest-seconds", type=float, default=10.0)
    p.add_argument("--ingest-size", type=_size, default=(1920, 1080), help="WIDTHxHEIGHT of the ingest clip")
    p.add_argument("--ingest-fps", type=float, default=30.0)
    p.add_argument("--ingest-workers", type=int, default=0, help="workers of the all-workers run (0 = all cores)")
    p.add_argument("--ingest-clips", type=int, default=4, help="copies of the clip per worker in the longer ingest run (>= 2)")
    p.add_argument("--ingest-repeats", type=int, default=1)
    p.add_argument("--scale-clips", default="40,400", help="dataset sizes (clips) of the scale part, comma list")
    p.add_argument("--scale-seconds", type=float, default=20.0, help="seconds per clip in the scale part")
    p.add_argument("--scale-repeats", type=int, default=2,
                   help="alternating runs of the small size's two paths in the scale part (their clips/s pooled)")
    p.add_argument("--scale-no-real", action="store_true",
                   help="scale part without the disk figures on real crops (1080p clip, demo clips)")
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader workers of the fast path (default: 0 on CPU, where the data is in memory; 4 on CUDA)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the fast path's model, with static shapes (on a 2-core CPU: about a minute of "
                        "compiling, then slower steps than without it)")
    p.add_argument("--profile-repeats", type=int, default=2,
                   help="timed runs of each piece of the training step in the breakdown (0: no breakdown; CPU only)")
    p.add_argument("--clip-seconds", type=float, default=20.0,
                   help="clip length whose MFCC steps the breakdown's audio GRU runs over (study clips: ~20 s)")
    p.add_argument("--naive-runtime", choices=("default", "fast"), default="default",
                   help="runtime of the naive path: the process defaults (the original) or the fast path's")
    p.add_argument("--zlib-level", type=int, default=1,
                   help="deflate level of the naive float32 npz (1: quick to write; inflating level 6 is ~10%% faster)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="config override, both paths")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    p.add_argument("--tmp", default=None, help="folder for the generated data (default: a temporary one, removed)")
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    p.add_argument("--in-process", action="store_true",
                   help="measure in this process instead of fresh ones (quicker; memory figures less clean)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")



def main(args: argparse.Namespace) -> int:
    """`workbench bench`: print the report (and write --json)."""
    res = run(args)
    print(render(res))
    if args.json:
        write_json(Path(args.json), res)
        print(f"JSON: {args.json}")
    return 0
