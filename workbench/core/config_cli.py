"""Command-line flags that build a Config: --config, --set and one table of flags mapped to config fields.

Each flag of FLAGS names the config field it sets; its type, and its choices for a choice field (a Literal in
workbench.core.config), come from that field, so a flag cannot disagree with the config it fills.
Precedence, lowest first: the defaults, the --config YAML file, the flags, then --set overrides.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from workbench.core.config import Config, assignment, deep_merge, field_type, nested


@dataclass(frozen=True)
class Flag:
    """One command-line flag and the config field it sets; ``const`` makes it a switch that sets that value."""

    flag: str
    field: str
    help: str = ""
    const: Any = None
    metavar: Any = None

    @property
    def dest(self) -> str:
        """The argparse attribute of the flag."""
        return self.flag.lstrip("-").replace("-", "_")


FLAGS: tuple[Flag, ...] = (
    Flag("--data", "data.root", "dataset folder of npz files"),
    Flag("--name", "name", "condition name"),
    Flag("--kfold", "split.kfold", "number of folds"),
    Flag("--split", "split.kind", "how folds are made"),
    Flag("--merge-test", "split.merge_test", "put clips marked test into the folds (the original study did)", True),
    Flag("--selection", "split.selection",
         "choose the epoch on an inner part of each training fold (default) or on the scoring fold"),
    Flag("--workers", "data.num_workers", "data loader workers"),
    Flag("--epochs", "train.epochs", "training epochs (the cosine schedule's t_max follows unless it is set)"),
    Flag("--use-weighted-sampler", "train.weighted_sampler", "inverse class frequency sampler, with replacement", True),
    Flag("--use-weighted-loss", "loss.weighted", "weighted cross-entropy with --class-weights", True),
    Flag("--class-weights", "loss.class_weights", "class weights", metavar=("REAL", "FAKE")),
    Flag("--loss", "loss.kind"),
    Flag("--loss-on", "loss.on"),
    Flag("--focal-gamma", "loss.focal_gamma"),
    Flag("--focal-alpha", "loss.focal_alpha"),
    Flag("--cb-beta", "loss.cb_beta"),
    Flag("--la-tau", "loss.la_tau"),
    Flag("--posthoc-tau", "loss.posthoc_tau"),
    Flag("--temporal-lambda", "loss.temporal_lambda"),
    Flag("--skip-bad", "data.skip_bad", "train without files that fail validation", True),
    Flag("--device", "train.device", "auto | cpu | cuda"),
    Flag("--no-progress", "train.progress", "no progress bars", False),
    Flag("--engine", "engine.kind",
         "local: the folds one after another in this process (default) | ray: one Ray task per fold"),
    Flag("--ray-address", "engine.address",
         "with --engine ray: auto or ray://host:port joins a running cluster (default: a local instance)",
         metavar="ADDRESS"),
    Flag("--task-cpus", "engine.num_cpus", "CPUs per fold task, and torch's threads in it (default: train.threads)"),
    Flag("--task-gpus", "engine.num_gpus",
         "GPUs per fold task; fractions share a GPU (default: 1 when the cluster has GPUs, else 0)"),
)
ENGINE_FLAGS = tuple(f for f in FLAGS if f.field.startswith("engine."))
KFOLD_FLAGS = FLAGS


def _scalar(typ: Any) -> Any:
    """The scalar type of a field hint (X for X | None, the element type for a list)."""
    args = [a for a in get_args(typ) if a is not type(None)]
    if get_origin(typ) is list:
        return _scalar(args[0])
    if get_origin(typ) is not Literal and args:
        return _scalar(args[0])
    return typ


def add_flag(p: argparse.ArgumentParser, f: Flag) -> None:
    """Register one flag with the type, choices and arity of its config field."""
    if f.const is not None:
        p.add_argument(f.flag, dest=f.dest, action="store_const", const=f.const, help=f.help)
        return
    typ = field_type(f.field)
    kw: dict[str, Any] = {"help": f.help or None, "metavar": f.metavar}
    if get_origin(typ) is list:
        kw["nargs"] = len(f.metavar) if isinstance(f.metavar, tuple) else "+"
    scalar = _scalar(typ)
    if get_origin(scalar) is Literal:
        kw["choices"] = list(get_args(scalar))
    elif scalar in (int, float):
        kw["type"] = scalar
    p.add_argument(f.flag, dest=f.dest, **kw)


def add_config_arguments(p: argparse.ArgumentParser,
                         config_help: str = "YAML file overriding the defaults (an experimental condition)") -> None:
    """--config and --set, shared by every command that builds a Config."""
    p.add_argument("--config", help=config_help)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config field, e.g. --set train.epochs=3 (repeatable)")


def add_flags(p: argparse.ArgumentParser, flags: tuple[Flag, ...] = FLAGS) -> None:
    """Register the flags of a table."""
    for f in flags:
        add_flag(p, f)


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """--engine, --ray-address, --task-cpus and --task-gpus (the `engine` section), shared by kfold and study."""
    add_flags(p, ENGINE_FLAGS)


def flag_overrides(args: argparse.Namespace, flags: tuple[Flag, ...] = FLAGS) -> dict[str, Any]:
    """The nested config overrides of the flags given on the command line."""
    out: dict[str, Any] = {}
    for f in flags:
        value = getattr(args, f.dest, None)
        if value is not None:
            out = deep_merge(out, nested(f.field, list(value) if isinstance(value, (list, tuple)) else value))
    return out


def engine_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The `engine` fields the engine flags set."""
    return flag_overrides(args, ENGINE_FLAGS).get("engine", {})


def config_overrides(args: argparse.Namespace, flags: tuple[Flag, ...] = FLAGS) -> dict[str, Any]:
    """One nested dict of every override, lowest first: the --config YAML, the flags, then each --set."""
    d = yaml.safe_load(Path(args.config).read_text()) if getattr(args, "config", None) else None
    merged = deep_merge(d or {}, flag_overrides(args, flags))
    for text in getattr(args, "set", None) or []:
        merged = deep_merge(merged, assignment(text))
    return merged


def config_from_flags(args: argparse.Namespace, flags: tuple[Flag, ...] = FLAGS) -> Config:
    """The Config of a command line; --epochs also sets the cosine schedule's t_max unless t_max is given."""
    overrides = config_overrides(args, flags)
    cfg = Config.from_dict(overrides)
    if getattr(args, "epochs", None) is not None and "t_max" not in (overrides.get("train") or {}):
        cfg.train.t_max = cfg.train.epochs
    return cfg
