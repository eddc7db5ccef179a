"""`workbench kfold`: K-fold cross-validation of MMMS-BA on a dataset folder."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.core.config import Config
from workbench.core.config_cli import KFOLD_FLAGS, add_config_arguments, add_flags, config_from_flags
from workbench.training.engine import run_kfold, run_kfold_ray
from workbench.training.kfold import format_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    """--config, --set, --out and the study's flags (workbench.core.config_cli.FLAGS)."""
    add_config_arguments(p)
    p.add_argument("--out", help="run folder (default outputs/<name>)")
    add_flags(p, KFOLD_FLAGS)


def config_from_args(args: argparse.Namespace) -> Config:
    """Defaults <- --config YAML <- the study's flags <- --set overrides; out defaults to outputs/<name>."""
    cfg = config_from_flags(args, KFOLD_FLAGS)
    if getattr(args, "out", None):
        cfg.out = args.out
    elif cfg.out == Config().out:
        cfg.out = f"outputs/{cfg.name}"
    return cfg


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    failed: dict[int, str] = {}
    try:
        if cfg.engine.kind == "ray":
            results, failed = run_kfold_ray(cfg)
        else:
            results = run_kfold(cfg)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_table(results))
    print(f"results: {Path(cfg.out) / 'kfold_results.json'}")
    for k, why in sorted(failed.items()):
        print(f"FAILED fold {k}: {why}", file=sys.stderr)
    return 1 if failed else 0
