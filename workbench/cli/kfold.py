"""`workbench kfold`: K-fold cross-validation of MMMS-BA on a dataset folder."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.core.config import Config
from workbench.core.config_cli import add_config_arguments, add_engine_arguments, engine_overrides
from workbench.training.engine import run_kfold, run_kfold_ray
from workbench.training.kfold import format_table


# ------------------------------------------------------------------ command line
def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--data", help="dataset folder of npz files (data.root)")
    p.add_argument("--out", help="run folder (default outputs/<name>)")
    p.add_argument("--name", help="condition name")
    p.add_argument("--kfold", type=int, help="number of folds")
    p.add_argument("--split", choices=["stratified", "grouped", "length"], help="how folds are made")
    p.add_argument("--merge-test", action="store_true", help="put clips marked test into the folds (the original study did)")
    p.add_argument("--selection", choices=["inner", "outer"],
                   help="choose the epoch on an inner part of each training fold (default) or on the scoring fold")
    p.add_argument("--workers", type=int, help="data loader workers")
    p.add_argument("--epochs", type=int)
    p.add_argument("--use-weighted-sampler", action="store_true", help="inverse class frequency sampler, with replacement")
    p.add_argument("--use-weighted-loss", action="store_true", help="weighted cross-entropy with --class-weights")
    p.add_argument("--class-weights", type=float, nargs=2, metavar=("REAL", "FAKE"))
    p.add_argument("--loss", choices=["ce", "focal", "class_balanced", "logit_adjusted"])
    p.add_argument("--loss-on", choices=["video", "frame", "both"])
    p.add_argument("--focal-gamma", type=float)
    p.add_argument("--focal-alpha", type=float)
    p.add_argument("--cb-beta", type=float)
    p.add_argument("--la-tau", type=float)
    p.add_argument("--posthoc-tau", type=float)
    p.add_argument("--temporal-lambda", type=float)
    p.add_argument("--skip-bad", action="store_true", help="train without files that fail validation")
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--no-progress", action="store_true")
    add_engine_arguments(p)


def _t_max_given(args: argparse.Namespace) -> bool:
    """True when --set or the --config file sets train.t_max."""
    import yaml
    if any(o.strip().startswith("train.t_max") for o in args.set):
        return True
    d = yaml.safe_load(Path(args.config).read_text()) if args.config else None
    return "t_max" in ((d or {}).get("train") or {})


def config_from_args(args: argparse.Namespace) -> Config:
    """Defaults <- --config YAML <- the study's flags <- --set overrides."""
    cfg = Config.load(args.config)
    flag_map = {"data": "data.root", "name": "name", "kfold": "split.kfold", "split": "split.kind",
                "selection": "split.selection",
                "workers": "data.num_workers", "epochs": "train.epochs", "loss": "loss.kind", "loss_on": "loss.on",
                "focal_gamma": "loss.focal_gamma", "focal_alpha": "loss.focal_alpha", "cb_beta": "loss.cb_beta",
                "la_tau": "loss.la_tau", "posthoc_tau": "loss.posthoc_tau", "temporal_lambda": "loss.temporal_lambda",
                "device": "train.device"}
    nested: dict = {}
    for attr, key in flag_map.items():
        v = getattr(args, attr, None)
        if v is not None:
            sec, _, name = key.rpartition(".")
            (nested.setdefault(sec, {}) if sec else nested)[name] = v
    cfg = cfg.merged({**nested, "engine": engine_overrides(args)})
    if getattr(args, "use_weighted_sampler", False):
        cfg.train.weighted_sampler = True
    if getattr(args, "use_weighted_loss", False):
        cfg.loss.weighted = True
    if getattr(args, "class_weights", None):
        cfg.loss.class_weights = list(args.class_weights)
    if getattr(args, "merge_test", False):
        cfg.split.merge_test = True
    if getattr(args, "skip_bad", False):
        cfg.data.skip_bad = True
    if getattr(args, "no_progress", False):
        cfg.train.progress = False
    for o in args.set:
        cfg.set(o)
    if getattr(args, "epochs", None) is not None and not _t_max_given(args):
        cfg.train.t_max = cfg.train.epochs  # the cosine schedule spans the epochs asked for, unless t_max is given
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
