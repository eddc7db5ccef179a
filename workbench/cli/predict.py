"""`workbench predict`: per-frame P(Fake) CSVs for full-length videos."""
from __future__ import annotations

import argparse
import sys

from workbench.training.predict import predict_files


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="CHECKPOINT.pth [more .pth for a fold ensemble] VIDEO.npz [...]")
    p.add_argument("--out", default="outputs/predict", help="folder for the per-frame CSVs")
    p.add_argument("--fps", type=float, help="frame density for inference (default: every frame)")
    p.add_argument("--chunk", type=int, default=None, help="frames per CNN chunk (default: the checkpoint's train.chunk_size)")
    p.add_argument("--mc-samples", type=int, default=0,
                   help="MC-dropout samples per model (0 = off; the rate is the checkpoint's model.mc_dropout, "
                        "else its model.dropout)")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")


def main(args: argparse.Namespace) -> int:
    ckpts = [x for x in args.paths if x.endswith((".pth", ".pt"))]
    videos = [x for x in args.paths if x.endswith(".npz")]
    other = [x for x in args.paths if x not in ckpts and x not in videos]
    if other or not ckpts or not videos:
        print(f"error: give checkpoints (.pth) then videos (.npz); unrecognised: {other}" if other else
              "error: need at least one .pth checkpoint and one .npz video", file=sys.stderr)
        return 2
    summary = predict_files(ckpts, videos, args.out, fps=args.fps, chunk=args.chunk, device=args.device,
                            mc_samples=args.mc_samples, progress=not args.no_progress)
    if len(summary):
        print(summary.to_string(index=False))
    print(f"per-frame CSVs in {args.out}")
    return 0
