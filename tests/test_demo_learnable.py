"""The demo data is learnable: a small version of it, built by the same path, scores above chance out of fold.

Evaluated honestly (nested selection on ~4 inner clips, scored on the untouched outer fold), 19 training
clips reach an out-of-fold ROC-AUC of about 0.75 (measured with the cpu preset's 6 epochs: 0.752 at 3
folds, p = 0.016; 0.700 at 5 folds of 6 clips, p = 0.056; the full demo's 5-fold baseline in the main job 0.669, p = 0.016;
all with the first generator, whose face swaps a 64 px crop could not show; the main job's demo of the second
generator: 0.948 ± 0.044, README "The demo data");
a fixed AUC bar would measure the demo's size, so the test asks whether the AUC could arise with no link
between the scores and the labels (within-fold label permutation)."""
from __future__ import annotations

import pytest

from workbench.analysis.evidence import learnability
from workbench.core.config import Config
from workbench.synthetic import demo

# The demo's recipe (ratio ~1.89:1, artefact strength 1.5, every fake type) at a third of its size, with
# shorter clips: 10 REAL + 19 FAKE over 6 identities, no long-form clips.
SMALL_DEMO = dict(n_real=10, n_fake=19, n_identities=6, duration_mean=1.6, duration_std=0.2, duration_min=1.3,
                  duration_max=1.9, n_long_real=0, n_long_fake=0, n_partial=0, n_test_real=0, n_test_fake=0,
                  n_test_partial=0, n_unlabeled=0, n_unlabeled_identities=0,
                  studio_light=0.0)  # no planted confound: the artefacts alone


@pytest.mark.slow
def test_small_demo_is_learnable(tmp_path):
    cfg = Config()
    npz = demo.build_demo(tmp_path / "demo", cfg, progress=False, **SMALL_DEMO)
    s = demo.demo_summary(tmp_path / "demo")
    assert (s["real"], s["fake"], s["identities"]) == (10, 19, 6)
    assert s["face_rate"] >= 0.95, s
    ev = learnability(npz, tmp_path / "run", preset="cpu", folds=3)
    assert ev["folds"] == 3
    assert ev["p_chance"] < 0.05 and ev["mean_roc_auc"] > ev["chance_q95"], ev


# Measured on the demo (seed 0, cpu preset, loss.on=frame, out of fold, every pool video's frames pooled): 5 folds
# (the main job) AP@0.5 0.77 and frame ROC-AUC inside partial fakes 0.93; this test's 3 folds 0.69 and 0.85. The first
# generator's detector gave 0.51-0.56 inside them. The floors sit at half the AP and at the frame-AUC target,
# far above an unlearned detector.
LOC_AP50_FLOOR = 0.35
FRAME_AUC_IN_FAKE_FLOOR = 0.75


@pytest.mark.slow
def test_demo_partial_fakes_are_localized_under_frame_loss(tmp_path):
    """The demo, the frame_level condition: out-of-fold, every partial fake's frames scored
    by the fold model that never saw it, its fake segments are found (AP@IoU 0.5) and its fake frames rank above its
    real frames."""
    import pandas as pd

    from workbench.analysis.localization import condition_frames, localization_table
    from workbench.core.conditions import condition_config
    from workbench.training.engine import run_kfold

    # the main job's demo: the same pool (each kind of clip draws from its own stream), its long test clips 2 s
    # instead of 20 s and no unlabelled clips, which this test does not read; 3 folds, no test scoring and no
    # MC-dropout pass (time)
    npz = demo.build_demo(tmp_path / "demo", progress=False, long_duration=2.0, n_unlabeled=0, n_unlabeled_identities=0)
    run = tmp_path / "frame_level"
    cfg = condition_config(str(npz), str(run), "frame_level", {"loss": {"on": "frame"}, "eval": {"test": False},
                                                                   "methods": {"mc_samples": 0}}, "cpu",
                           folds=3, progress=False)
    run_kfold(cfg, log=lambda line: None)
    frames = condition_frames(run, npz, pd.read_csv(npz / "index.csv"), "oof", device="cpu")
    loc = localization_table(frames, "oof").iloc[0]
    assert loc["n_segments"] > 0 and loc["loc_ap_iou50"] >= LOC_AP50_FLOOR, loc.to_dict()
    assert loc["true_frame_roc_auc_in_fake"] >= FRAME_AUC_IN_FAKE_FLOOR, loc.to_dict()
    print({k: round(float(loc[k]), 4) for k in ("loc_ap_iou50", "true_frame_roc_auc_in_fake")})
