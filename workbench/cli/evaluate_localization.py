"""`workbench evaluate-localization`: AP@IoU and AR@N of fake-segment proposals under a named protocol.

PROPOSALS.json is {file: [[score, start_s, end_s], ...]}, METADATA.json the AV-Deepfake1M style list
[{"file": .., "fake_segments": [[start_s, end_s], ...]}, ...] (other keys ignored). The protocols are
those of workbench.evaluation.protocols: `av1m` (the official AV-Deepfake1M evaluator) and `standard`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from workbench.evaluation.protocols import PROTOCOLS, evaluate


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("proposals", help="JSON: {file: [[score, start_s, end_s], ...]}")
    p.add_argument("metadata", help='JSON: [{"file": .., "fake_segments": [[start_s, end_s], ...]}, ...]')
    p.add_argument("--protocol", choices=PROTOCOLS, default="av1m",
                   help="av1m: the official AV-Deepfake1M evaluator's rules; standard: VOC/ActivityNet (default av1m)")
    p.add_argument("--json", dest="out", metavar="OUT", help='write {"ap": {...}, "ar": {...}} here (NaN as null)')


def _load(path: str, what: str) -> Any:
    """The parsed JSON of a file; ValueError with a one-line reason."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read {what} {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} {path} is not JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def format_table(result: dict, protocol: str) -> str:
    """The AP and AR of an evaluate() result as a small text table."""
    ap = "  ".join(f"AP@{k}: {v:.4f}" for k, v in result["ap"].items())
    ar = "  ".join(f"AR@{k}: {v:.4f}" for k, v in result["ar"].items())
    return f"protocol {protocol}\n{ap}\n{ar}"


def _null_nan(result: dict) -> dict:
    """The result with NaN written as None (JSON null)."""
    return {part: {k: None if math.isnan(v) else v for k, v in vals.items()} for part, vals in result.items()}


def main(args: argparse.Namespace) -> int:
    """Evaluate, print the table, write the JSON when asked; 2 with a one-line error on bad input."""
    try:
        result = evaluate(_load(args.proposals, "proposals"), _load(args.metadata, "metadata"), args.protocol)
        print(format_table(result, args.protocol))
        if args.out:
            try:
                Path(args.out).write_text(json.dumps(_null_nan(result), indent=2) + "\n")
            except OSError as e:
                raise ValueError(f"cannot write {args.out}: {e.strerror or e}") from None
    except ValueError as e:
        print(f"workbench evaluate-localization: error: {e}", file=sys.stderr)
        return 2
    return 0
