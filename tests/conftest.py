"""Shared test settings: the tiny model every training test uses, and small toy datasets."""
from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.config import Config
from workbench.synthetic.toydata import make_toy_dataset

# the tiny model and clip of the training tests; fp32 (bf16 autocast on a CPU is ~10x slower at these sizes)
TINY = ["data.face_size=32", "data.lip_size=16", "model.face_channels=[8,16,32]", "model.lip_channels=[8,16,16]",
        "model.gru_hidden=16", "model.dense=16", "data.max_frames=16", "train.progress=false", "train.lr=0.003",
        "train.amp=false"]


def tiny_cfg(root: Path, out: Path, *extra: str) -> Config:
    """The tiny config on a data folder, writing to `out`, with `section.key=value` overrides."""
    return Config.load(None, TINY + [f"data.root={root}", f"out={out}", *extra])


@pytest.fixture(scope="session")
def toy_small(tmp_path_factory) -> Path:
    """A toy dataset of 6 REAL and 8 FAKE short clips (two of them partial fakes), with audio waveforms."""
    return make_toy_dataset(tmp_path_factory.mktemp("toy_small"), n_real=6, n_fake=6, n_partial=2, frames=(12, 18),
                            n_groups=4, wave=True)
