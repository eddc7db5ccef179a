"""The study's further methods: SupCon loss, feature SMOTE and head refit, uncertainty triage, hard-negative weights.

Expected values are written by hand (the arithmetic is in the comments) or come from the reference
libraries (pytorch-metric-learning's SupConLoss, scipy's convex-hull tests).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning.losses import SupConLoss
from scipy.optimize import linprog
from scipy.spatial import Delaunay

from workbench.core.config import Config
from workbench.data.hard_negatives import hard_weights
from workbench.evaluation.triage import (
    aurc,
    coverage_at_risk,
    mean_and_spread,
    mean_vote,
    random_aurc,
    review_list,
    risk_coverage,
    triage_summary,
    uncertainty_weighted_vote,
)
from workbench.model.contrastive import EmbeddingTap, supcon_loss
from workbench.model.feature_smote import refit_head, smote_embeddings
from workbench.model.mmmsba import MMMSBA


# ------------------------------------------------------------------ supervised contrastive loss
@pytest.mark.parametrize("temperature", [0.07, 0.1, 0.5])
def test_supcon_matches_pytorch_metric_learning(temperature):
    ref = SupConLoss(temperature=temperature)
    g = torch.Generator().manual_seed(0)
    for b, d in ((8, 16), (8, 900), (16, 5), (3, 4)):
        x = (torch.randn(b, d, generator=g) * 3).requires_grad_(True)
        y = torch.randint(0, 2, (b,), generator=g)
        y[0], y[1] = 0, 1  # both classes present
        ours, theirs = supcon_loss(x, y, temperature), ref(x, y)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
        g_ours, = torch.autograd.grad(ours, x)
        g_theirs, = torch.autograd.grad(theirs, x)
        torch.testing.assert_close(g_ours, g_theirs, rtol=1e-4, atol=1e-6)


def test_supcon_batch_of_eight_with_one_real_matches_pml():
    x = torch.randn(8, 32, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 1, 1, 1, 1, 1, 1, 1])
    torch.testing.assert_close(supcon_loss(x, y, 0.1), SupConLoss(temperature=0.1)(x, y),
                               rtol=1e-5, atol=1e-5)


def test_supcon_hand_computed_four_samples():
    # normalised: z0=(1,0) z1=(0,1) z2=(1,0) z3=(-1,0); labels 0,0,0,1; t=0.5 -> scaled sims:
    # s01=0 s02=2 s03=-2 s12=0 s13=0 s23=-2. Anchor 0: positives 1,2 -> log(1+e^2+e^-2) - (0+2)/2;
    # anchor 2 the same; anchor 1: all sims 0 -> log 3; anchor 3 has no positive and is left out.
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [-1.0, 0.0]])
    y = torch.tensor([0, 0, 0, 1])
    expected = (2 * (math.log(1 + math.e**2 + math.e**-2) - 1) + math.log(3)) / 3  # 1.12816
    assert float(supcon_loss(x, y, 0.5)) == pytest.approx(expected, abs=1e-6)


def test_supcon_where_it_differs_from_pml_reducer():
    # z0=z1=(1,0) REAL; z2=z3=(-1,0), z4=(0,-1) FAKE; t=0.01. Anchors 0 and 1: their positive at 100, the rest
    # at <= 0 -> log-prob rounds to exactly 0 -> loss 0. Anchors 2, 3: positives at 100 and 0 beside negatives
    # at -100 -> (0 + 100) / 2 = 50. Anchor 4: every sim 0 -> log 4.
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0], [0.0, -1.0]])
    y = torch.tensor([0, 0, 1, 1, 1])
    ours = float(supcon_loss(x, y, 0.01))
    theirs = float(SupConLoss(temperature=0.01)(x, y))
    assert ours == pytest.approx((0 + 0 + 50 + 50 + math.log(4)) / 5, rel=1e-5)  # every anchor with a positive
    assert theirs == pytest.approx((50 + 50 + math.log(4)) / 3, rel=1e-5)  # pml: only the anchors with loss > 0


def test_supcon_degenerate_batches_give_zero_with_a_graph():
    x = torch.randn(4, 3, requires_grad=True)
    for y in (torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 2, 3])):  # no negative / no positive
        loss = supcon_loss(x, y, 0.1)
        assert float(loss.detach()) == 0.0 and loss.requires_grad
    with pytest.raises(ValueError):
        supcon_loss(x, torch.tensor([0, 1, 0, 1]), 0.0)


def test_embedding_tap_gives_the_vector_the_video_logit_is_classified_from():
    cfg = Config.load(None, ["model.gru_hidden=8", "model.dense=6", "model.face_channels=[4,4,4]",
                             "model.lip_channels=[4,4,4]"]).model
    model = MMMSBA(cfg).eval()
    g = torch.Generator().manual_seed(0)
    b, t, ta = 3, 5, 9
    face, lip, a_full = (torch.randn(b, n, 6, generator=g) for n in (t, t, ta))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    audio_idx = torch.randint(0, ta, (b, t), generator=g)
    with EmbeddingTap(model) as tap:
        out = model.fuse(face, lip, a_full, audio_idx, mask)
        emb = tap.embedding(mask)
    assert emb.shape == (b, 9 * 6)  # 6 attention outputs + 3 modalities, dense=6 each
    torch.testing.assert_close(model.classifier(emb), out["video_logits"], rtol=1e-5, atol=1e-6)
    assert not model.classifier._forward_pre_hooks  # removed on exit


# ------------------------------------------------------------------ feature SMOTE
def _in_hull_lp(points: np.ndarray, x: np.ndarray) -> bool:
    """x is a convex combination of the rows of points (linear-programming feasibility)."""
    n = len(points)
    a_eq = np.vstack([points.T, np.ones((1, n))])
    res = linprog(np.zeros(n), A_eq=a_eq, b_eq=np.r_[x, 1.0], bounds=[(0, None)] * n, method="highs")
    return res.status == 0


def _toy(n_real: int, n_fake: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.normal(0.0, 1.0, (n_real, d))
    fake = rng.normal(0.0, 1.0, (n_fake, d)) + 6.0  # far away: mixing in a FAKE row would leave the REAL hull
    return np.vstack([real, fake]), np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]


def test_smote_rows_lie_in_the_real_hull_2d():
    X, y = _toy(8, 30, 2, seed=0)
    X_res, y_res, info = smote_embeddings(X, y, k=5, seed=0)
    assert info == {"n_real": 8, "n_fake": 30, "n_synthetic": 22, "k": 5, "reason": None}
    np.testing.assert_array_equal(X_res[:38], X)  # the originals first, untouched
    assert (y_res[38:] == 0).all() and (y_res == 0).sum() == 30
    hull = Delaunay(X[y == 0])
    assert (hull.find_simplex(X_res[38:], tol=1e-9) >= 0).all()
    assert (hull.find_simplex(X[y == 1]) < 0).all()  # the check can fail: FAKE rows lie outside


def test_smote_rows_lie_in_the_real_hull_3d_and_are_seeded():
    X, y = _toy(6, 20, 3, seed=1)
    X_res, y_res, info = smote_embeddings(X, y, k=3, seed=7)
    real = X[y == 0]
    assert info["n_synthetic"] == 14 and info["k"] == 3
    assert all(_in_hull_lp(real, x) for x in X_res[26:])
    assert not _in_hull_lp(real, X[y == 1][0])
    again, _, _ = smote_embeddings(X, y, k=3, seed=7)
    other, _, _ = smote_embeddings(X, y, k=3, seed=8)
    np.testing.assert_array_equal(X_res, again)
    assert not np.array_equal(X_res, other)


@pytest.mark.parametrize("n_real, k_used, n_synth", [(1, None, 0), (2, 1, 8), (3, 2, 7)])
def test_smote_tiny_folds(n_real, k_used, n_synth):
    X, y = _toy(n_real, 10, 3, seed=2)
    X_res, y_res, info = smote_embeddings(X, y, k=5)
    assert (info["n_real"], info["n_fake"], info["k"], info["n_synthetic"]) == (n_real, 10, k_used, n_synth)
    assert len(X_res) == n_real + 10 + n_synth
    if n_real == 1:
        assert "at least 2" in info["reason"]
    else:
        assert info["reason"] is None and (y_res == 0).sum() == 10


def test_smote_does_nothing_when_real_is_not_the_minority():
    X, y = _toy(10, 10, 2, seed=3)
    X_res, y_res, info = smote_embeddings(X, y)
    assert info["n_synthetic"] == 0 and info["k"] is None and "already reaches" in info["reason"]
    np.testing.assert_array_equal(X_res, X)
    X_half, _, info_half = smote_embeddings(*_toy(3, 10, 2, seed=3), ratio=0.5)  # target round(5.0) = 5
    assert info_half["n_synthetic"] == 2 and len(X_half) == 15


def test_refit_head_learns_a_separable_toy_on_held_out_rows():
    rng = np.random.default_rng(0)
    d = 6
    direction = np.ones(d) / math.sqrt(d)

    def rows(n_real, n_fake):
        X = rng.normal(0.0, 1.0, (n_real + n_fake, d))
        y = np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]
        X += np.where(y[:, None] == 1, 2.5, -2.5) * direction  # classes 5 apart along `direction`
        return X, y

    X_train, y_train = rows(6, 30)
    X_res, y_res, _ = smote_embeddings(X_train, y_train, k=5, seed=0)
    head = torch.nn.Linear(d, 2)
    before = [p.detach().clone() for p in head.parameters()]
    fitted, history = refit_head(head, X_res, y_res, epochs=40, lr=0.1, seed=0)
    X_test, y_test = rows(200, 200)
    with torch.no_grad():
        pred = fitted(torch.as_tensor(X_test, dtype=torch.float32)).argmax(1).numpy()
    assert (pred == y_test).mean() > 0.9
    assert history[-1] < 0.5 * history[0] and len(history) == 40
    assert all(torch.equal(a, b) for a, b in zip(before, head.parameters()))  # the caller's head untouched
    again, history2 = refit_head(head, X_res, y_res, epochs=40, lr=0.1, seed=0)
    assert history == history2 and torch.equal(again.weight, fitted.weight)


def test_refit_head_zero_sample_weight_equals_leaving_the_row_out():
    X, y = _toy(5, 9, 4, seed=4)
    w = np.ones(len(y))
    w[[0, 7]] = 0.0
    keep = w > 0
    head = torch.nn.Linear(4, 2)
    a, ha = refit_head(head, X, y, epochs=15, sample_weights=w, class_weights=[2.0, 1.0], seed=3)
    b, hb = refit_head(head, X[keep], y[keep], epochs=15, class_weights=[2.0, 1.0], seed=3)
    np.testing.assert_allclose(ha, hb, rtol=1e-5)
    torch.testing.assert_close(a.weight, b.weight, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ triage
def test_risk_coverage_hand_computed_on_four_videos():
    y = [1, 0, 1, 0]
    p = [0.9, 0.6, 0.3, 0.2]  # calls 1, 1, 0, 0 -> errors on videos 1 and 2
    u = [0.1, 0.4, 0.3, 0.2]  # kept in the order 0, 3, 2, 1
    curve = risk_coverage(y, p, u)
    np.testing.assert_allclose(curve["coverage"], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve["risk"], [0.0, 0.0, 1 / 3, 0.5])
    assert curve["n_kept"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(curve["threshold"], [0.1, 0.2, 0.3, 0.4])
    assert aurc(curve) == pytest.approx(0.25 * (0 + 0 + 1 / 3 + 0.5))  # 0.2083
    assert random_aurc(y, p) == 0.5
    assert coverage_at_risk(curve, 0.0) == 0.5 and coverage_at_risk(curve, 0.4) == 0.75
    tied = risk_coverage(y, p, [0.1, 0.3, 0.3, 0.2])  # videos 1 and 2 tie: no threshold splits them
    np.testing.assert_allclose(tied["coverage"], [0.25, 0.5, 1.0])
    assert aurc(tied) == pytest.approx(0.25 * 0 + 0.25 * 0 + 0.5 * 0.5)
    assert risk_coverage([1], [0.5], [0.0])["risk"].tolist() == [1.0]  # p = 0.5 is called REAL


def _toy_predictions(rng: np.random.Generator, n: int, err_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    wrong = rng.random(n) < err_prob
    conf = rng.uniform(0.55, 0.95, n)  # P(called class)
    called = np.where(wrong, 1 - y, y)
    return y, np.where(called == 1, conf, 1 - conf)


def test_aurc_below_random_when_uncertainty_predicts_errors():
    rng = np.random.default_rng(0)
    u = rng.random(300)
    y, p = _toy_predictions(rng, 300, err_prob=0.6 * u**2)  # errors concentrated on the uncertain videos
    area, rand = aurc(risk_coverage(y, p, u)), random_aurc(y, p)
    assert area < 0.6 * rand


def test_aurc_not_below_random_when_uncertainty_is_independent_of_errors():
    gaps = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        y, p = _toy_predictions(rng, 200, err_prob=np.full(200, 0.3))
        u = rng.random(200)
        gaps.append(aurc(risk_coverage(y, p, u)) - random_aurc(y, p))
    assert abs(np.mean(gaps)) < 0.01  # per seed the gap has sd ~ 0.03; its mean over 40 seeds ~ 0.005


def test_votes_and_spread_hand_computed():
    h = lambda q: -(q * math.log(q) + (1 - q) * math.log(1 - q))  # noqa: E731
    w1, w2 = 1 / (0.05 + h(0.9)), 1 / (0.05 + h(0.6))  # 1/(0.05+0.3251), 1/(0.05+0.6730)
    p = np.array([[0.9, 0.6], [0.1, 0.9]])
    np.testing.assert_allclose(mean_vote(p), [0.75, 0.5])
    np.testing.assert_allclose(uncertainty_weighted_vote(p), [(0.9 * w1 + 0.6 * w2) / (w1 + w2), 0.5])
    np.testing.assert_allclose(uncertainty_weighted_vote(p, weights=[3.0, 1.0]), [0.825, 0.3])
    mean, spread = mean_and_spread(p)
    np.testing.assert_allclose(spread, [0.15 * math.sqrt(2), 0.4 * math.sqrt(2)])  # ddof=1 of two values
    mc = np.array([[[0.2, 0.4], [0.6, 0.8]]])  # 1 video, 2 models x 2 MC draws
    mean, spread = mean_and_spread(mc)
    np.testing.assert_allclose([mean[0], spread[0]], [0.5, math.sqrt((0.09 + 0.01 + 0.01 + 0.09) / 3)])
    assert np.isnan(mean_and_spread([[0.3], [0.8]])[1]).all()


def test_review_list_order_and_columns():
    ids = ["a", "b", "c", "d"]
    p, u = [0.9, 0.8, 0.45, 0.5], [0.2, 0.5, 0.5, 0.1]
    out = review_list(ids, [1, 0, 1, 0], p, u, n=3)  # b, c tie on u; c is closer to 0.5
    assert out["video_id"].tolist() == ["c", "b", "a"] and out["rank"].tolist() == [1, 2, 3]
    assert out["correct"].tolist() == [False, False, True]  # c: 0.45 -> REAL (label 1); b: 0.8 -> FAKE (label 0)
    unlabelled = review_list(ids, None, p, u, n=10)
    assert unlabelled["video_id"].tolist() == ["c", "b", "a", "d"] and "label" not in unlabelled


def test_triage_summary_two_models_and_one_model():
    # rows [p - d, p + d]: mean p as in the four-video example, spread d*sqrt(2) ordered like u there
    p, d = np.array([0.9, 0.6, 0.3, 0.2]), np.array([0.01, 0.04, 0.03, 0.02])
    s = triage_summary([1, 0, 1, 0], np.c_[p - d, p + d], target_risk=0.0)
    assert s["aurc"] == pytest.approx(0.25 * (1 / 3 + 0.5)) and s["random_aurc"] == 0.5
    assert s["coverage_at_target"] == 0.5 and s["n"] == 4 and s["n_models"] == 2 and s["reason"] is None
    one = triage_summary([1, 0, 1, 0], p[:, None])
    assert math.isnan(one["aurc"]) and math.isnan(one["coverage_at_target"]) and "single model" in one["reason"]
    assert one["random_aurc"] == 0.5
    given = triage_summary([1, 0, 1, 0], p[:, None], uncertainty=[0.1, 0.4, 0.3, 0.2])
    assert given["aurc"] == pytest.approx(0.25 * (1 / 3 + 0.5)) and given["reason"] is None


# ------------------------------------------------------------------ hard negatives
def test_hard_weights_hand_written():
    labels = [1, 1, 1, 1, 0, 0]
    p_real = [0.9, 0.1, 0.5, 0.7, 0.2, 0.8]
    # 4 FAKE, fraction 0.5 -> the 2 with highest P(REAL): clips 0 (0.9) and 3 (0.7)
    np.testing.assert_array_equal(hard_weights(p_real, labels, fraction=0.5, boost=3.0), [3, 1, 1, 3, 1, 1])
    # + the REAL clip with the highest P(FAKE) (ceil(0.5 * 2) = 1): clip 4 (P(REAL) 0.2)
    np.testing.assert_array_equal(hard_weights(p_real, labels, 0.5, 3.0, include_real=True), [3, 1, 1, 3, 3, 1])
    base = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0]
    np.testing.assert_array_equal(hard_weights(p_real, labels, 0.5, 3.0, True, base_weights=base), [3, 1, 1, 3, 6, 2])
    # fraction 0.3 of 4 FAKE -> ceil(1.2) = 2
    np.testing.assert_array_equal(hard_weights(p_real, labels, 0.3, 2.0), [2, 1, 1, 2, 1, 1])


def test_hard_weights_before_warmup_without_predictions_ties_and_unseen_clips():
    labels = [1, 1, 1, 0]
    base = [0.5, 0.5, 0.5, 1.5]
    np.testing.assert_array_equal(hard_weights(None, labels, 0.5, 4.0), [1, 1, 1, 1])
    np.testing.assert_array_equal(hard_weights(None, labels, 0.5, 4.0, base_weights=base), base)
    p = [0.6, 0.6, 0.6, 0.1]
    np.testing.assert_array_equal(hard_weights(p, labels, 0.5, 4.0, epoch=0, warmup=1), [1, 1, 1, 1])
    # epoch 1 >= warmup 1: ceil(0.5 * 3) = 2 of three tied FAKE clips -> the first two by position
    np.testing.assert_array_equal(hard_weights(p, labels, 0.5, 4.0, epoch=1, warmup=1), [4, 4, 1, 1])
    # clip 0 not drawn last epoch (NaN): not a candidate; ceil(0.5 * 2) = 1 of clips 1, 2 -> clip 2 (0.7)
    np.testing.assert_array_equal(hard_weights([np.nan, 0.2, 0.7, 0.1], labels, 0.5, 4.0), [1, 1, 4, 1])
    np.testing.assert_array_equal(hard_weights(p, labels, 0.0, 4.0), [1, 1, 1, 1])
    with pytest.raises(ValueError):
        hard_weights(p, labels, fraction=1.5)
    with pytest.raises(ValueError):
        hard_weights(p, [1, 2, 0, 0])


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
