"""Every condition of the packaged conditions.yaml builds its config and takes one training step."""
from __future__ import annotations

import argparse
import math

import pytest
import torch
import yaml

from workbench.cli.kfold import add_arguments, config_from_args
from workbench.core.conditions import condition_config, load_conditions
from workbench.data.dataset import ClipDataset
from workbench.training.kfold import load_dataset
from workbench.training.trainer import Trainer

CONDITIONS = load_conditions()


def test_the_grid_holds_the_study_conditions():
    assert {"baseline", "balanced", "frame_level", "focal", "balanced_augmented"} <= set(CONDITIONS)


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_condition_builds_and_trains_one_step(name, toy_small, tmp_path):
    overrides = CONDITIONS[name]
    cfg = condition_config(str(toy_small), str(tmp_path / name), name, overrides, "smoke", progress=False)
    path = tmp_path / f"{name}.yaml"  # `workbench kfold --config` accepts the override on its own
    path.write_text(yaml.safe_dump(overrides))
    p = argparse.ArgumentParser()
    add_arguments(p)
    from_cli = config_from_args(p.parse_args(["--config", str(path), "--data", str(toy_small)]))
    for section, values in overrides.items():  # the condition's overrides are what both configs hold
        for key, value in values.items():
            key = "on" if key is True else key
            assert getattr(getattr(cfg, section), key) == getattr(getattr(from_cli, section), key) == value
    data = load_dataset(cfg, log=lambda s: None)
    rows = data.rows[:cfg.train.batch_size]
    torch.manual_seed(0)
    trainer = Trainer(cfg, ClipDataset(rows, data.root, cfg, train=True, seed=cfg.seed), None, tmp_path / "fit")
    before = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    out = trainer.train_epoch(0)
    trainer.close()
    assert math.isfinite(out["train_loss"]) and out["train_loss"] > 0
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
