"""The demo data is learnable: a small version of it, built by the same path, reaches val ROC-AUC >= 0.8."""
from __future__ import annotations

import pytest

from workbench import demo
from workbench.config import Config

# The demo's recipe (ratio ~1.89:1, artefact strength 1.5, every fake type) at a third of its size, with
# shorter clips: 10 REAL + 19 FAKE over 6 identities, no long-form clips.
SMALL_DEMO = dict(n_real=10, n_fake=19, n_identities=6, duration_mean=1.6, duration_std=0.2, duration_min=1.3,
                  duration_max=1.9, n_long_real=0, n_long_fake=0, n_partial=0, n_test_real=0, n_test_fake=0,
                  n_test_partial=0)


@pytest.mark.slow
def test_small_demo_is_learnable(tmp_path):
    cfg = Config()
    npz = demo.build_demo(tmp_path / "demo", cfg, progress=False, **SMALL_DEMO)
    s = demo.demo_summary(tmp_path / "demo")
    assert (s["real"], s["fake"], s["identities"]) == (10, 19, 6)
    assert s["face_rate"] >= 0.95, s
    ev = demo.learnability(npz, tmp_path / "run", preset="cpu", folds=3)
    assert ev["folds"] == 3
    assert ev["mean_roc_auc"] >= 0.8, ev
