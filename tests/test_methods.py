"""The study's further methods: SupCon loss, feature SMOTE and head refit, uncertainty triage, hard-negative weights.

Expected values are written by hand (the arithmetic is in the comments) or come from the reference
libraries (pytorch-metric-learning's SupConLoss, scipy's convex-hull tests).
"""
from __future__ import annotations

import json

import pytest

from workbench.config import Config


# ------------------------------------------------------------------ config
def test_methods_config_defaults_off_validated_and_fingerprinted():
    m = Config().methods
    assert (m.supcon_weight, m.supcon_temperature, m.supcon_pretrain_epochs, m.hard_negatives_fraction,
            m.feature_smote, m.feature_smote_k, m.pseudo_label_rounds, m.pseudo_label_threshold,
            m.pseudo_label_real_only) == (0.0, 0.1, 0, 0.0, False, 5, 0, 0.9, True)
    assert "methods" not in json.loads(Config().fingerprint())  # all off: fingerprints of earlier runs still match
    on = Config.load(None, ["methods.supcon_weight=0.2"])
    assert json.loads(on.fingerprint())["methods"]["supcon_weight"] == 0.2
    assert on.fingerprint() != Config().fingerprint()
    assert Config.load(None, ["methods.supcon_weight=0"]).fingerprint() == Config().fingerprint()
    for bad in ("methods.supcon_temperature=0", "methods.hard_negatives_fraction=1.2", "methods.supcon_weight=-1",
                "methods.hard_negatives_boost=0.5", "methods.feature_smote_k=0", "methods.pseudo_label_threshold=0.4",
                "methods.pseudo_label_rounds=-1", "methods.supcon_pretrain_epochs=-2"):
        with pytest.raises(ValueError):
            Config.load(None, [bad])
