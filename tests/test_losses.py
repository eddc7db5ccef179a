"""Class-imbalance losses, the weighted sampler and the prior table, checked against direct computation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench.core.config import Config, LossConfig
from workbench.data.sampling import make_weighted_sampler
from workbench.model.losses import (
    FocalLoss,
    build_objective,
    describe_priors,
    effective_number_weights,
    logit_offsets,
    posthoc_adjust,
)

COUNTS = [317, 600]


def _batch(b: int = 6, t: int = 7, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frame = torch.randn(b, t, 2, generator=g)
    video = torch.randn(b, 2, generator=g)
    labels = torch.tensor([0, 1] * (b // 2))
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    mask = torch.arange(t)[None, :] < lengths[:, None]
    return frame, video, labels, mask


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weight", [None, [2.0, 1.0]])
def test_focal_gamma0_equals_cross_entropy(smoothing, weight):
    logits = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 2, (32,), generator=torch.Generator().manual_seed(2))
    w = None if weight is None else torch.tensor(weight)
    focal = FocalLoss(gamma=0.0, alpha=None, weight=w, label_smoothing=smoothing)(logits, y)
    ce = F.cross_entropy(logits, y, weight=w, label_smoothing=smoothing)
    torch.testing.assert_close(focal, ce, rtol=1e-6, atol=1e-6)
    per = FocalLoss(gamma=0.0, weight=w, label_smoothing=smoothing, reduction="none")(logits, y)
    torch.testing.assert_close(per, F.cross_entropy(logits, y, weight=w, label_smoothing=smoothing, reduction="none"))


def test_focal_down_weights_easy_examples():
    logits = torch.tensor([[-4.0, 4.0], [0.2, -0.2]])  # easy FAKE, hard FAKE
    y = torch.tensor([1, 1])
    per = FocalLoss(gamma=2.0, reduction="none")(logits, y)
    ce = F.cross_entropy(logits, y, reduction="none")
    p = torch.softmax(logits, -1)[:, 1]
    torch.testing.assert_close(per, (1 - p) ** 2 * ce)
    assert per[0] / ce[0] < per[1] / ce[1]


def test_effective_number_weights_formula_and_beta_zero():
    beta = 0.999
    n = np.array(COUNTS, dtype=float)
    w = (1 - beta) / (1 - beta**n)
    expected = w / w.sum() * 2
    got = effective_number_weights(COUNTS, beta)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    assert got[0] > got[1]  # the minority class (REAL) weighs more
    np.testing.assert_allclose(effective_number_weights(COUNTS, 1e-9).numpy(), [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(effective_number_weights(COUNTS, 0.0).numpy(), [1.0, 1.0])
    with pytest.raises(ValueError):
        effective_number_weights([0, 5], 0.9)


def test_logit_offsets_and_posthoc():
    prior = np.array(COUNTS) / sum(COUNTS)
    np.testing.assert_allclose(logit_offsets(COUNTS, 0.7).numpy(), 0.7 * np.log(prior), rtol=1e-6)
    logits = torch.randn(4, 2)
    torch.testing.assert_close(posthoc_adjust(logits, COUNTS, 1.0), logits - torch.log(torch.tensor(prior)).float())
    assert posthoc_adjust(logits, COUNTS, 0.0) is logits


def test_video_ce_matches_torch_with_weights():
    frame, video, labels, mask = _batch()
    cfg = LossConfig(kind="ce", weighted=True, class_weights=[2.0, 1.0], label_smoothing=0.1)
    out = build_objective(cfg, COUNTS)(frame, video, labels, mask)
    expected = F.cross_entropy(video, labels, weight=torch.tensor([2.0, 1.0]), label_smoothing=0.1)
    torch.testing.assert_close(out["loss"], expected)
    assert out["temporal"].item() == 0.0


def test_logit_adjusted_is_ce_on_shifted_logits():
    frame, video, labels, mask = _batch()
    cfg = LossConfig(kind="logit_adjusted", la_tau=1.5, label_smoothing=0.0)
    out = build_objective(cfg, COUNTS)(frame, video, labels, mask)
    shifted = video + 1.5 * torch.log(torch.tensor(COUNTS, dtype=torch.float32) / sum(COUNTS))
    torch.testing.assert_close(out["loss"], F.cross_entropy(shifted, labels))


def test_class_balanced_and_weighted_multiply():
    frame, video, labels, mask = _batch()
    cfg = LossConfig(kind="class_balanced", cb_beta=0.99, weighted=True, class_weights=[3.0, 1.0], label_smoothing=0.0)
    out = build_objective(cfg, COUNTS)(frame, video, labels, mask)
    w = effective_number_weights(COUNTS, 0.99) * torch.tensor([3.0, 1.0])
    torch.testing.assert_close(out["loss"], F.cross_entropy(video, labels, weight=w))


def test_focal_objective_alpha_is_class_weight():
    frame, video, labels, mask = _batch()
    cfg = LossConfig(kind="focal", focal_gamma=0.0, focal_alpha=0.8, label_smoothing=0.0)
    out = build_objective(cfg, COUNTS)(frame, video, labels, mask)
    torch.testing.assert_close(out["loss"], F.cross_entropy(video, labels, weight=torch.tensor([0.2, 0.8])))


def test_frame_loss_ignores_padding_and_counts_videos_equally():
    frame, video, labels, mask = _batch()
    obj = build_objective(LossConfig(on="frame", label_smoothing=0.0), COUNTS)
    base = obj(frame, video, labels, mask)["loss"]
    noisy = frame.clone()
    noisy[~mask] = torch.randn(int((~mask).sum()), 2) * 50
    torch.testing.assert_close(obj(noisy, video * 9, labels, mask)["loss"], base)
    per_video = [F.cross_entropy(frame[i][mask[i]], labels[i].expand(int(mask[i].sum()))) for i in range(len(labels))]
    torch.testing.assert_close(base, torch.stack(per_video).mean())


def test_video_loss_ignores_frame_logits_and_both_averages():
    frame, video, labels, mask = _batch()
    obj = build_objective(LossConfig(on="video"), COUNTS)
    torch.testing.assert_close(obj(frame, video, labels, mask)["loss"], obj(frame * 7 + 3, video, labels, mask)["loss"])
    both = build_objective(LossConfig(on="both"), COUNTS)(frame, video, labels, mask)
    v = build_objective(LossConfig(on="video"), COUNTS)(frame, video, labels, mask)["loss"]
    f = build_objective(LossConfig(on="frame"), COUNTS)(frame, video, labels, mask)["loss"]
    torch.testing.assert_close(both["loss"], (v + f) / 2)


def test_temporal_penalty():
    labels = torch.tensor([0, 1])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    constant = torch.zeros(2, 4, 2)
    obj = build_objective(LossConfig(on="frame", temporal_lambda=0.5), COUNTS)
    assert obj(constant, None, labels, mask)["temporal"].item() == pytest.approx(0.0, abs=1e-7)

    frame = torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(3))
    frame[0, 3] = 100.0  # padded frame: must not count
    p = torch.softmax(frame, -1)[..., 1]
    pairs = [(0, 1), (1, 2), (0, 1), (1, 2), (2, 3)]
    rows = [0, 0, 1, 1, 1]
    expected = sum(abs(p[r, b] - p[r, a]) for r, (a, b) in zip(rows, pairs)) / 5
    out = obj(frame, None, labels, mask)
    assert out["temporal"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx(out["cls"].item() + 0.5 * expected.item(), rel=1e-5)


def test_gradients_flow_and_bf16_inputs():
    frame, video, labels, mask = _batch()
    frame = frame.to(torch.bfloat16).requires_grad_()
    video = video.to(torch.bfloat16).requires_grad_()
    cfg = LossConfig(on="both", kind="focal", focal_alpha=0.3, weighted=True, temporal_lambda=0.1)
    out = build_objective(cfg, COUNTS)(frame, video, labels, mask)
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert frame.grad is not None and video.grad is not None
    assert frame.grad.abs().sum() > 0 and video.grad.abs().sum() > 0
    assert torch.all(frame.grad[~mask] == 0)  # padded frames get no gradient


def test_unknown_options_raise():
    with pytest.raises(ValueError, match="logit_adjusted"):  # a choice is checked where the config is made
        build_objective(LossConfig(kind="nope"), COUNTS)
    with pytest.raises(ValueError, match="both"):
        build_objective(LossConfig(on="clip"), COUNTS)
    with pytest.raises(ValueError, match="loss.kind must be one of"):
        Config.load(None, ["loss.kind=nope"])


def test_weighted_sampler_balances_classes_and_is_seeded():
    labels = [0] * 317 + [1] * 600
    sampler = make_weighted_sampler(labels, seed=42, num_samples=20000)
    draws = np.array(labels)[list(sampler)]
    assert abs(draws.mean() - 0.5) < 0.03
    assert len(make_weighted_sampler(labels, seed=0)) == len(labels)
    assert list(make_weighted_sampler(labels, seed=7)) == list(make_weighted_sampler(labels, seed=7))


def test_describe_priors():
    plain = describe_priors(LossConfig(), COUNTS, weighted_sampler=False)
    np.testing.assert_allclose(plain["effective_prior"], np.array(COUNTS) / sum(COUNTS))
    sampled = describe_priors(LossConfig(), COUNTS, weighted_sampler=True)
    np.testing.assert_allclose(sampled["effective_prior"], [0.5, 0.5])
    la = describe_priors(LossConfig(kind="logit_adjusted", la_tau=1.0), COUNTS, weighted_sampler=False)
    np.testing.assert_allclose(la["train_prior"], [0.5, 0.5])
    weighted = describe_priors(LossConfig(weighted=True, class_weights=[2.0, 1.0]), COUNTS, False)
    expected = np.array([317 * 2.0, 600.0]) / (317 * 2.0 + 600.0)
    np.testing.assert_allclose(weighted["effective_prior"], expected)
    posthoc = describe_priors(LossConfig(posthoc_tau=1.0), COUNTS, weighted_sampler=False)
    np.testing.assert_allclose(posthoc["effective_prior"], [0.5, 0.5])


# ---------------------------------------------------------------------------- per-frame labels
@pytest.mark.parametrize("cfg", [LossConfig(on="frame", label_smoothing=0.0),
                                 LossConfig(on="frame", weighted=True, class_weights=[2.0, 1.0], label_smoothing=0.1),
                                 LossConfig(on="both", kind="focal", focal_alpha=0.3, frame_weighted=True,
                                            frame_class_weights=[1.0, 4.0])])
def test_frame_labels_equal_to_the_video_label_change_nothing(cfg):
    frame, video, labels, mask = _batch()
    obj = build_objective(cfg, COUNTS)
    same = labels[:, None].expand_as(mask).clone()
    same[~mask] = 0  # padding carries 0, as in a collated batch
    torch.testing.assert_close(obj(frame, video, labels, mask, frame_labels=same)["loss"],
                               obj(frame, video, labels, mask)["loss"])


def test_frame_loss_uses_per_frame_labels_and_separate_frame_weights():
    g = torch.Generator().manual_seed(5)
    frame = torch.randn(2, 4, 2, generator=g)
    labels = torch.tensor([0, 1])  # a REAL video, a partial fake
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    frame_labels = torch.tensor([[0, 0, 0, 0], [0, 1, 1, 0]])
    cfg = LossConfig(on="frame", label_smoothing=0.0, weighted=True, class_weights=[2.0, 1.0],
                     frame_weighted=True, frame_class_weights=[1.0, 3.0])
    got = build_objective(cfg, COUNTS)(frame, None, labels, mask, frame_labels=frame_labels)["loss"]
    ce = F.cross_entropy(frame.reshape(-1, 2), frame_labels.reshape(-1), reduction="none").reshape(2, 4)
    real = ce[0, :3].mean()  # REAL video: its 3 valid frames, all weight 1
    partial = (ce[1, 0] + 3 * ce[1, 1] + 3 * ce[1, 2] + ce[1, 3]) / (1 + 3 + 3 + 1)  # frame weights by frame label
    expected = (2.0 * real + 1.0 * partial) / (2.0 + 1.0)  # video weights by video label
    torch.testing.assert_close(got, expected)
    # without per-frame labels every frame of the fake is a FAKE target: a different loss
    assert not torch.isclose(build_objective(cfg, COUNTS)(frame, None, labels, mask)["loss"], got)
    # frame weights off: a plain mean inside each video
    plain = build_objective(LossConfig(on="frame", label_smoothing=0.0), COUNTS)
    torch.testing.assert_close(plain(frame, None, labels, mask, frame_labels=frame_labels)["loss"],
                               (real + ce[1].mean()) / 2)


def test_bad_frame_class_weights_raise():
    with pytest.raises(ValueError, match="frame_class_weights"):
        build_objective(LossConfig(frame_weighted=True, frame_class_weights=[1.0]), COUNTS)


@pytest.mark.slow
def test_training_on_frame_labels_localizes_partial_fakes(tmp_path):
    """loss.on=frame with per-frame labels: on unseen partial fakes, frame P(Fake) separates their fake
    segments from their genuine frames (AUC ~0.56 when the same run is given only video labels)."""
    from workbench.core.config import Config
    from workbench.data.dataset import ClipDataset
    from workbench.evaluation.metrics import true_frame_metrics
    from workbench.synthetic.toydata import make_toy_dataset, toy_record
    from workbench.training.kfold import load_dataset
    from workbench.training.predict import predict_record
    from workbench.training.trainer import Trainer

    toy = make_toy_dataset(tmp_path / "toy", n_real=8, n_fake=0, n_partial=16, n_groups=6, fake_types=("face",),
                           seed=3, frames=(40, 60))
    cfg = Config.load(None, ["data.face_size=32", "data.lip_size=16", "model.face_channels=[8,16,32]",
                             "model.lip_channels=[8,16,16]", "model.gru_hidden=16", "model.dense=16",
                             "data.max_frames=24", "train.progress=false", "train.lr=0.003", "train.amp=false",
                             "train.patience=0", "train.epochs=6", "loss.on=frame", f"data.root={toy}", f"out={tmp_path}"])
    rows = load_dataset(cfg).rows
    trainer = Trainer(cfg, ClipDataset(rows, toy, cfg, train=True), None, tmp_path / "fit")
    trainer.fit()
    rng = np.random.default_rng(7)
    y, p = [], []
    for i in range(6):  # unseen partial fakes: a 20-frame face-seam segment at a random place
        k0 = int(rng.integers(5, 25))
        rec = toy_record(f"h{i}", 1, 50, rng=rng, fake_type="face", segments=[(k0, k0 + 20)], group="idZ")
        y.append(rec.frame_labels())
        p.append(predict_record([trainer.model], rec, amp=False)["p_fake"].to_numpy())
    m = true_frame_metrics(np.concatenate(y), np.concatenate(p))
    assert m["true_frame_roc_auc"] >= 0.9, m
    assert m["true_real_frame_pfake_mean"] < m["true_fake_frame_pfake_mean"] - 0.2, m
