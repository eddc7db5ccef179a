"""Command-line flags that build a Config: --config, --set and the engine's flags."""
from __future__ import annotations

import argparse
from typing import Any


def add_config_arguments(p: argparse.ArgumentParser,
                         config_help: str = "YAML file overriding the defaults (an experimental condition)") -> None:
    """--config and --set, shared by every command that builds a Config."""
    p.add_argument("--config", help=config_help)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config field, e.g. --set train.epochs=3 (repeatable)")


# command-line flag (argparse dest) -> EngineConfig field
ENGINE_FLAGS = {"engine": "kind", "ray_address": "address", "task_cpus": "num_cpus", "task_gpus": "num_gpus"}


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """--engine, --ray-address, --task-cpus and --task-gpus (the `engine` section), shared by kfold and study."""
    p.add_argument("--engine", choices=["local", "ray"],
                   help="local: the folds one after another in this process (default) | ray: one Ray task per fold")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="with --engine ray: auto or ray://host:port joins a running cluster (default: a local instance)")
    p.add_argument("--task-cpus", type=float, help="CPUs per fold task, and torch's thread count in it (default 1)")
    p.add_argument("--task-gpus", type=float,
                   help="GPUs per fold task; fractions share a GPU (default: 1 when the cluster has GPUs, else 0)")


def engine_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The `engine` fields the flags of add_engine_arguments set."""
    return {name: getattr(args, flag) for flag, name in ENGINE_FLAGS.items() if getattr(args, flag, None) is not None}
