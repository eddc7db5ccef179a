"""The packaged condition grid (conditions.yaml) and size presets (presets.yaml) as Configs."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from workbench.core import paths
from workbench.core.config import Config


# ------------------------------------------------------------------ conditions and presets
def _package_yaml(name: str) -> dict:
    return yaml.safe_load(resources.files("workbench.core").joinpath(name).read_text()) or {}


def load_conditions(path: str | Path | None = None) -> dict[str, dict]:
    """Condition name -> config overrides (the packaged conditions.yaml by default)."""
    d = yaml.safe_load(Path(path).read_text()) if path else _package_yaml("conditions.yaml")
    for name, ov in d.items():
        Config.from_dict(ov or {})  # fail early on a misspelt field
    return {k: (v or {}) for k, v in d.items()}


def load_presets() -> dict[str, dict]:
    """Size presets: full (the study's reference), cpu (the demo), smoke (tests)."""
    return _package_yaml("presets.yaml")


def condition_config(data_dir: str, output_dir: str, condition: str, overrides: dict | None = None,
                     preset: str = "full", folds: int | None = None, epochs: int | None = None,
                     device: str = "auto", progress: bool = True, seed: int = 42) -> Config:
    """Defaults <- preset <- condition overrides <- explicit folds/epochs/device; out = output_dir."""
    presets = load_presets()
    if preset not in presets:
        raise KeyError(f"unknown preset {preset!r}; known: {sorted(presets)}")
    if not Path(data_dir).is_dir():  # before run_kfold makes the output folder
        raise paths.missing_dataset(data_dir)
    cfg = Config.from_dict(presets[preset]).merged(overrides or {})
    cfg.name, cfg.seed, cfg.out = condition, seed, str(output_dir)
    cfg.data.root = str(data_dir)
    cfg.train.device, cfg.train.progress = device, progress
    if folds is not None:
        cfg.split.kfold = int(folds)
    if epochs is not None:
        cfg.train.epochs = cfg.train.t_max = int(epochs)
    return cfg
