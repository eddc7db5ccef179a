"""The study's further methods wired into honest K-fold runs: SupCon, hard negatives, feature SMOTE, pseudo-labels,
triage of every run, and the REAL class-weight sweep.

Expected values come from independent computations (pytorch-metric-learning's SupConLoss, a forward hook on
the classifier, numpy sorting, hand arithmetic in the comments), never from the code under test.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from pytorch_metric_learning.losses import SupConLoss

from workbench.core.conditions import load_conditions
from workbench.core.config import Config
from workbench.data import loading
from workbench.data.dataset import ClipDataset, collate
from workbench.data.records import load_record, read_index, save_record, write_index
from workbench.data.splits import plan_folds
from workbench.synthetic.toydata import make_toy_dataset
from workbench.training.kfold import collect, load_dataset, prepare, run_fold
from workbench.training.trainer import Trainer, load_model
from workbench.training.uncertainty import triage_section

TINY = ["data.face_size=32", "data.lip_size=16", "model.face_channels=[8,16,32]", "model.lip_channels=[8,16,16]",
        "model.gru_hidden=16", "model.dense=16", "data.max_frames=16", "train.progress=false", "train.lr=0.003",
        "train.amp=false", "split.kfold=2", "train.patience=0", "eval.full_frames=false"]
NEW_CONDITIONS = ("supcon", "supcon_pretrain", "hard_negatives", "feature_smote", "pseudo_label")
PLAIN_SAMPLER = loading.training_sampler  # the sampler itself, before any test wraps it


def tiny_cfg(root: Path, out: Path, *extra: str) -> Config:
    return Config.load(None, TINY + [f"data.root={root}", f"out={out}", *extra])


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), n_real=12, n_fake=16, frames=(10, 14), n_groups=6,
                            n_test_short=(1, 2))


def quiet(msg: str) -> None:
    pass


def _fit_parts(cfg: Config) -> tuple[ClipDataset, ClipDataset]:
    """Fold 0's training and inner parts as datasets."""
    data = load_dataset(cfg, log=quiet)
    plan = plan_folds(data.rows, cfg)[0]
    by_id = {r.video_id: r for r in data.rows}
    fit = ClipDataset([by_id[v] for v in plan.train_ids], data.root, cfg, train=True, seed=cfg.seed)
    sel = ClipDataset([by_id[v] for v in plan.inner_ids], data.root, cfg, train=False)
    return fit, sel


# ------------------------------------------------------------------ SupCon
def test_supcon_term_is_added_to_the_objective_on_a_fixed_batch(toy, tmp_path):
    cfg = tiny_cfg(toy, tmp_path, "methods.supcon_weight=0.7", "methods.supcon_temperature=0.2",
                   "methods.supcon_pretrain_epochs=1", "train.epochs=2")
    fit, sel = _fit_parts(cfg)
    trainer = Trainer(cfg, fit, sel, tmp_path / "t")
    ev = ClipDataset(fit.rows, fit.root, cfg, train=False)
    batch = collate([ev[i] for i in range(8)])
    y = batch["label"]
    assert 0 < int(y.sum()) < 8  # both classes: the contrastive term is not zero
    trainer.model.eval()
    seen = {}
    hook = trainer.model.classifier.register_forward_pre_hook(lambda m, a: seen.__setitem__("h", a[0].detach()))
    with torch.no_grad():
        out = trainer.model(batch)
    hook.remove()
    w = batch["mask"].float()[..., None]
    emb = (seen["h"] * w).sum(1) / w.sum(1)  # masked mean of the fused frame features
    ce = F.cross_entropy(out["video_logits"], y, label_smoothing=cfg.loss.label_smoothing)
    sc = SupConLoss(temperature=0.2)(emb, y)
    with torch.no_grad():
        loss, _, term = trainer.batch_loss(batch, epoch=1)  # fine-tuning: CE + 0.7 x SupCon
        pre, _, _ = trainer.batch_loss(batch, epoch=0)  # pre-training: SupCon alone
    assert float(term) == pytest.approx(float(sc), rel=1e-4)
    assert float(loss) == pytest.approx(float(ce) + 0.7 * float(sc), rel=1e-4)
    assert float(pre) == pytest.approx(float(sc), rel=1e-4)


def test_supcon_pretraining_epochs_are_never_selected(toy, tmp_path):
    with pytest.raises(ValueError, match="supcon_pretrain_epochs=2 leaves no epoch of fine-tuning"):
        Trainer(tiny_cfg(toy, tmp_path, "methods.supcon_pretrain_epochs=2", "train.epochs=2"), *_fit_parts(
            tiny_cfg(toy, tmp_path)), tmp_path / "x")
    cfg = tiny_cfg(toy, tmp_path, "methods.supcon_pretrain_epochs=2", "train.epochs=3")
    res = Trainer(cfg, *_fit_parts(cfg), tmp_path / "p").fit()
    h = res.history
    assert list(h["phase"]) == ["pretrain", "pretrain", "train"]
    assert res.best_epoch == 2  # the one fine-tuning epoch, whatever the pre-training epochs' val_loss
    assert np.isfinite(h["train_supcon"][:2]).all() and h["train_supcon"][:2].tolist() == h["train_loss"][:2].tolist()


# ------------------------------------------------------------------ hard negatives
class Stop(Exception):
    pass


def _hard_run(cfg: Config, out: Path, stop_after: int | None, monkeypatch) -> tuple[dict, dict, dict]:
    """Fit with hard negatives; (draws per epoch, P(REAL) recorded after each epoch, final weights)."""
    draws, p_real = {}, {}
    def recording(cfg_, ds, epoch, weights=None):
        s = PLAIN_SAMPLER(cfg_, ds, epoch, weights)
        draws[epoch] = [d[0] for d in s.draws]
        return s
    monkeypatch.setattr(loading, "training_sampler", recording)
    trainer = Trainer(cfg, *_fit_parts(cfg), out)

    def after(tr, epoch, row, best_epoch):
        p_real[epoch] = tr.p_real_prev.copy()
        if stop_after is not None and epoch == stop_after:
            raise Stop
    trainer.add_callback("on_epoch_end", after)
    try:
        trainer.fit()
    except Stop:
        return draws, p_real, {}
    return draws, p_real, {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_hard_negatives_change_draws_after_warmup_reproducibly_and_resume_exactly(toy, tmp_path, monkeypatch):
    cfg = tiny_cfg(toy, tmp_path, "train.epochs=3", "methods.hard_negatives_fraction=0.3",
                   "methods.hard_negatives_boost=50", "methods.hard_negatives_warmup=1")
    draws, p_real, weights = _hard_run(cfg, tmp_path / "a", None, monkeypatch)
    # interrupted after epoch 1 (its last checkpoint written), then resumed by a fresh trainer
    _hard_run(cfg, tmp_path / "b", 1, monkeypatch)
    d_b, p_b, w_b = _hard_run(cfg, tmp_path / "b", None, monkeypatch)
    assert sorted(d_b) == [2] and d_b[2] == draws[2]  # the resumed epoch drew what the uninterrupted one did
    assert all(torch.equal(weights[k], w_b[k]) for k in weights)
    np.testing.assert_array_equal(p_b[2], p_real[2])

    fit, _ = _fit_parts(cfg)
    plain = [d[0] for d in PLAIN_SAMPLER(Config.load(None, TINY), fit, 0).draws]
    assert draws[0] == plain  # warm-up: the plain draws
    y = np.array(fit.labels)
    for e in (1, 2):
        assert draws[e] != [d[0] for d in PLAIN_SAMPLER(Config.load(None, TINY), fit, e).draws]
        fake = np.flatnonzero(y == 1)
        hard = fake[np.argsort(-p_real[e - 1][fake], kind="stable")[:math.ceil(0.3 * len(fake))]]
        share = np.isin(draws[e], hard).mean()
        # boost 50 on ceil(0.3 x n_fake) clips: their expected share is far above their share of the clips
        assert share > 0.5 > len(hard) / len(y), (share, len(hard), len(y))


# ------------------------------------------------------------------ feature SMOTE
def _fold0(cfg: Config):
    data, plans = prepare(cfg, None, log=quiet)
    return data, plans[0]


def test_feature_smote_refits_the_head_only_and_the_refit_is_what_is_scored(toy, tmp_path):
    cfg = tiny_cfg(toy, tmp_path / "r", "train.epochs=1", "methods.feature_smote=true", "methods.feature_smote_k=2")
    data, plan = _fold0(cfg)
    res = run_fold(cfg, plan, data, log=quiet)
    info, fdir = res["feature_smote"], tmp_path / "r" / "fold_0"
    labels = {r.video_id: r.label for r in data.rows}
    n_real = sum(labels[v] == 0 for v in plan.train_ids)
    n_fake = len(plan.train_ids) - n_real
    assert (info["n_real"], info["n_fake"], info["n_synthetic"], info["reason"]) == (n_real, n_fake, n_fake - n_real, None)
    assert info["k"] == min(2, n_real - 1)
    best = torch.load(fdir / "mmms-ba_best.pth", weights_only=False)["model"]
    smote = torch.load(fdir / "mmms-ba_smote.pth", weights_only=False)["model"]
    assert res["checkpoint"] == "fold_0/mmms-ba_smote.pth"
    for k in best:
        same = torch.equal(best[k], smote[k])
        assert same != k.startswith("classifier."), k  # encoder untouched, head changed
    # the outer predictions are the refitted model's: recomputed here from its checkpoint
    model, _ = load_model(fdir / "mmms-ba_smote.pth")
    by_id = {r.video_id: r for r in data.rows}
    ds = ClipDataset([by_id[v] for v in plan.outer_ids], data.root, cfg, train=False)
    with torch.no_grad():
        out = model(collate([ds[i] for i in range(len(ds))]))
    p = torch.softmax(out["video_logits"], -1)[:, 1].numpy()
    got = pd.read_csv(fdir / "outer_videos.csv").set_index("video_id").loc[plan.outer_ids, "p_fake"].to_numpy()
    np.testing.assert_allclose(got, p, atol=1e-5)
    assert res["metrics"]["outer_acc"] == pytest.approx(float(((p > 0.5) == np.array([by_id[v].label for v in plan.outer_ids])).mean()))


def test_feature_smote_on_a_fold_with_one_real_clip_says_why(tmp_path):
    root = make_toy_dataset(tmp_path / "d", n_real=2, n_fake=6, frames=(12, 14))
    cfg = tiny_cfg(root, tmp_path / "r", "train.epochs=1", "methods.feature_smote=true", "split.selection=outer")
    data, plan = _fold0(cfg)
    res = run_fold(cfg, plan, data, log=quiet)
    info = res["feature_smote"]
    assert info["n_real"] == 1 and info["n_synthetic"] == 0 and info["k"] is None
    assert "1 REAL row(s): SMOTE needs at least 2" in info["reason"] and info["refit"]
    done = json.loads((tmp_path / "r" / "fold_0" / "done.json").read_text())
    assert done["feature_smote"]["reason"] == info["reason"]


# ------------------------------------------------------------------ pseudo-labels
def _unlabeled_toy(path: Path) -> Path:
    """Labelled pool + 6 unlabelled clips whose true labels are kept in the files; 3 get groups of their own."""
    root = make_toy_dataset(path, n_real=8, n_fake=10, frames=(12, 16), n_groups=6, n_test_short=(1, 1),
                            n_unlabeled=(3, 3), withhold_labels=True)
    rows = read_index(root / "index.csv")
    for k, r in enumerate(x for x in rows if x.split == "unlabeled"):
        if k % 2:
            r.group = f"own{k}"  # no labelled clip shares it: free to join any fold
    write_index(root / "index.csv", rows)
    return root


def _permute_withheld(root: Path) -> None:
    rows = read_index(root / "index.csv")
    for r in rows:
        if r.split == "unlabeled":
            r.label = 1 - r.label
            rec = load_record(root / r.path)
            rec.label = r.label
            save_record(root / r.path, rec)
    write_index(root / "index.csv", rows)


@pytest.mark.slow
def test_unlabelled_clips_never_reach_selection_scoring_or_the_test(tmp_path):
    root = _unlabeled_toy(tmp_path / "d")
    extra = ("train.epochs=2", "methods.pseudo_label_rounds=1", "methods.pseudo_label_threshold=0.51",
             "methods.pseudo_label_real_only=false")
    runs = []
    for name in ("a", "b"):
        if name == "b":
            _permute_withheld(root)
        cfg = tiny_cfg(root, tmp_path / name, *extra)
        data, plan = _fold0(cfg)
        res = run_fold(cfg, plan, data, log=quiet)
        collect(cfg, [res], data)
        runs.append((cfg, data, plan, res))
    (cfg, data, plan, res), (_, _, _, res_b) = runs
    index = {r.video_id: r for r in read_index(root / "index.csv")}
    unl = {v for v, r in index.items() if r.split == "unlabeled"}
    assert not unl & {r.video_id for r in data.rows + data.test_rows}
    splits = json.loads((tmp_path / "a" / "splits.json").read_text())["folds"][0]
    assert not unl & set(splits["train_ids"] + splits["inner_ids"] + splits["outer_ids"])
    for f in ("predictions_videos.csv", "predictions_test_videos.csv"):
        assert not unl & set(pd.read_csv(tmp_path / "a" / f)["video_id"])
    table = pd.read_csv(tmp_path / "a" / "fold_0" / "pseudo_labels.csv")
    seen_groups = {index[v].group for v in splits["inner_ids"] + splits["outer_ids"]} | \
        {r.group for r in data.test_rows}
    joined = table[table["joined"]]
    assert len(joined) >= 1 and res["pseudo_label"]["n_joined"] == len(joined)
    assert not set(joined["group"]) & seen_groups
    sharing = {v for v in unl if index[v].group in seen_groups}
    assert sharing and sharing == set(res["pseudo_label"]["blocked_by_group"])
    assert not sharing & set(joined["video_id"])
    # the withheld labels were flipped between the runs: nothing the fold did or scored changed
    assert res_b["metrics"] == res["metrics"] and res_b["test_metrics"] == res["test_metrics"]
    for f in ("outer_videos.csv", "test_videos.csv", "pseudo_labels.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "fold_0" / f), pd.read_csv(tmp_path / "b" / "fold_0" / f))


def test_unlabeled_split_keeps_a_row_out_of_the_pool_even_with_a_label(tmp_path):
    root = make_toy_dataset(tmp_path / "d", n_real=4, n_fake=4, frames=(6, 8), n_unlabeled=(1, 1), withhold_labels=True)
    data = load_dataset(tiny_cfg(root, tmp_path / "o"), log=quiet)
    assert len(data.rows) == 8 and len(data.unlabeled_rows) == 2
    assert {r.label for r in data.unlabeled_rows} == {-1}  # the withheld label is dropped on reading


# ------------------------------------------------------------------ triage
def test_triage_section_on_a_constructed_run(tmp_path):
    # 4 test videos x 3 fold models. Ensemble means 0.9, 0.1, 0.6 (label 0: wrong), 0.45 (label 1: wrong);
    # spreads (ddof=1) 0.02, 0.05, 0.3464, 0.35: the wrong ones most uncertain -> abstaining on them first gives
    # risk 0, 0, 1/3, 2/4 at coverage 1/4 .. 1 -> AURC = (0 + 0 + 1/3 + 1/2) / 4 = 0.2083; random: 2/4 = 0.5.
    folds = {0: [0.9, 0.1, 0.2, 0.1], 1: [0.92, 0.05, 0.8, 0.45], 2: [0.88, 0.15, 0.8, 0.8]}
    ids, labels = ["a", "b", "c", "d"], [1, 0, 0, 1]
    rows = [{"video_id": v, "label": y, "p_fake": folds[k][i], "fold": k} for k in folds for i, (v, y) in
            enumerate(zip(ids, labels))]
    pd.DataFrame(rows).to_csv(tmp_path / "predictions_test_videos.csv", index=False)
    cfg = Config.load(None, [f"out={tmp_path}", "model.dropout=0.3"])
    fold_results = [{"fold": 0, "mc_dropout": {"reason": "x"}}]
    (tmp_path / "fold_0").mkdir()
    mc = pd.DataFrame({"video_id": ["p", "q"], "label": [0, 1], "mc_0": [0.2, 0.6], "mc_1": [0.4, 0.6]})
    mc.to_csv(tmp_path / "fold_0" / "outer_mc.csv", index=False)
    t = triage_section(cfg, fold_results)
    test = t["test"]
    assert test["reason"] is None and test["n_members"] == 3 and test["n_videos"] == 4
    assert test["votes"]["mean"]["aurc"] == pytest.approx((1 / 3 + 1 / 2) / 4)
    assert test["votes"]["mean"]["random_aurc"] == pytest.approx(0.5)
    assert test["votes"]["mean"]["aurc"] < test["votes"]["mean"]["random_aurc"]
    assert test["curve"]["risk"] == pytest.approx([0, 0, 1 / 3, 0.5])
    oof = t["out_of_fold"]  # p: spread 0.1414 (label 0, mean 0.3: right); q: spread 0 (mean 0.6: right)
    assert oof["n_members"] == 2 and oof["votes"]["mean"]["error_rate"] == 0.0
    review = pd.read_csv(tmp_path / "triage_review.csv")
    assert review.loc[review["set"] == "test", "video_id"].tolist() == ["d", "c", "b", "a"]  # most uncertain first
    assert set(t["files"]) == {"videos", "curves", "review"}
    (tmp_path / "fold_0" / "outer_mc.csv").unlink()
    assert triage_section(cfg, fold_results)["out_of_fold"] == {"reason": "x"}


# ------------------------------------------------------------------ the conditions, each from `workbench kfold --config`
def test_new_conditions_are_in_the_grid_and_off_by_default():
    grid = load_conditions()
    assert set(NEW_CONDITIONS) <= set(grid)
    d = Config().methods
    assert (d.supcon_weight, d.supcon_pretrain_epochs, d.hard_negatives_fraction, d.feature_smote,
            d.pseudo_label_rounds) == (0.0, 0, 0.0, False, 0)
    assert Config.from_dict(grid["hard_negatives"]).methods.hard_negatives_fraction == 0.3


@pytest.mark.slow
@pytest.mark.parametrize("condition", NEW_CONDITIONS)
def test_each_new_condition_runs_from_a_kfold_config_file(condition, tmp_path):
    from workbench.cli import kfold
    root = make_toy_dataset(tmp_path / "d", n_real=6, n_fake=8, frames=(10, 12), n_groups=4,
                            n_test_short=(1, 1), n_unlabeled=(1, 1))
    y = tmp_path / f"{condition}.yaml"
    y.write_text(yaml.safe_dump(load_conditions()[condition]))
    p = argparse.ArgumentParser()
    kfold.add_arguments(p)
    sets = [f"--set={s}" for s in TINY + [f"data.root={root}", "train.epochs=3", "model.dropout=0.2",
                                          "methods.mc_samples=3", "split.selection=outer"]]
    cfg = kfold.config_from_args(p.parse_args(["--config", str(y), "--out", str(tmp_path / "o"), *sets]))
    assert cfg.methods == Config.from_dict(load_conditions()[condition]).merged({"methods": {"mc_samples": 3}}).methods
    data, plans = prepare(cfg, None, log=quiet)
    res = collect(cfg, [run_fold(cfg, plans[0], data, log=quiet)], data)
    assert res["triage"]["out_of_fold"]["n_members"] == 3  # MC-dropout passes of the fold's model
    assert res["triage"]["test"]["reason"].startswith("1 fold model")  # one fold ran: no ensemble spread
    f, fdir = res["folds"][0], tmp_path / "o" / "fold_0"
    h = pd.read_csv(fdir / "history.csv")
    last = torch.load(fdir / "mmms-ba_last.pth", weights_only=False)
    seen = {"supcon": lambda: h["train_supcon"].notna().all(),
            "supcon_pretrain": lambda: h["phase"].tolist() == ["pretrain", "train", "train"] and f["best_epoch"] >= 1,
            "hard_negatives": lambda: len(last["p_real_prev"]) == len(plans[0].train_ids),
            "feature_smote": lambda: f["feature_smote"]["refit"] and f["checkpoint"].endswith("_smote.pth"),
            "pseudo_label": lambda: f["pseudo_label"]["n_unlabeled"] == 2 and (fdir / "pseudo_labels.csv").exists()}
    assert seen[condition](), (condition, f)


# ------------------------------------------------------------------ the REAL class-weight sweep
def test_sweep_makes_one_condition_per_weight_on_the_base():
    from workbench.study.sweep import sweep_conditions
    grid = load_conditions()
    sw = sweep_conditions(grid, "balanced", [1.0, 1.3, 2.0])
    assert list(sw) == ["balanced_w1", "balanced_w1.3", "balanced_w2"]
    cfg = Config.from_dict(sw["balanced_w1.3"])
    assert cfg.loss.weighted and cfg.loss.class_weights == [1.3, 1.0] and cfg.train.weighted_sampler
    assert Config.from_dict(sweep_conditions(grid, "baseline", [3.0])["baseline_w3"]).loss.weighted
    with pytest.raises(KeyError, match="unknown base condition 'nope'"):
        sweep_conditions(grid, "nope", [1.0])
    with pytest.raises(ValueError, match="positive"):
        sweep_conditions(grid, "balanced", [0.0])


def _fake_condition(run: Path, name: str, weight: float, val: list[float], outer: list[float]) -> None:
    d = run / name
    d.mkdir(parents=True)
    cfg = Config.from_dict({"train": {"weighted_sampler": True}, "loss": {"weighted": True, "class_weights": [weight, 1.0]}})
    folds = [{"fold": k, "outer_ids": [f"v{k}"], "metrics": {"val_balanced_acc": v, "val_roc_auc": 0.9,
                                                              "outer_balanced_acc": o, "outer_acc": o}}
             for k, (v, o) in enumerate(zip(val, outer))]
    (d / "kfold_results.json").write_text(json.dumps({"folds": folds, "config": cfg.to_dict()}))
    pd.DataFrame({"video_id": list("abc"), "label": [0, 1, 1]}).to_csv(d / "predictions_videos.csv", index=False)


def test_sweep_picks_on_the_inner_parts_and_reports_the_outer_folds(tmp_path):
    from workbench.study.sweep import summarize_sweep
    # inner (val) means: w1 0.70, w2 0.80, w3 0.75 -> w2 picked; the outer folds favour w3 (0.95), never read
    _fake_condition(tmp_path, "balanced_w1", 1.0, [0.7, 0.7, 0.7], [0.6, 0.6, 0.6])
    _fake_condition(tmp_path, "balanced_w2", 2.0, [0.8, 0.8, 0.8], [0.7, 0.8, 0.9])
    _fake_condition(tmp_path, "balanced_w3", 3.0, [0.75, 0.75, 0.9], [0.95, 0.95, 0.95])
    s = summarize_sweep(tmp_path, "balanced", [1.0, 2.0, 3.0])
    assert s["picked"]["weight"] == 2.0
    # outer at w2: mean 0.8, s = 0.1, t(0.975, 2) = 4.302653 -> half = 0.1 * 4.302653 / sqrt(3) = 0.248414
    o = s["picked"]["outer"]["outer_balanced_acc"]
    assert o["mean"] == pytest.approx(0.8) and o["half"] == pytest.approx(0.248414, abs=1e-6)
    # nested: folds 0, 1 pick w2 (0.8 > 0.75 > 0.7), fold 2 picks w3 (0.9) -> outer 0.7, 0.8, 0.95
    assert s["nested"]["per_fold"] == {"0": 2.0, "1": 2.0, "2": 3.0}
    assert s["nested"]["outer"]["outer_balanced_acc"]["mean"] == pytest.approx((0.7 + 0.8 + 0.95) / 3)
    # sampler (0.5 / 0.5) x loss weight [w, 1] -> FAKE prior 1 / (1 + w): 1/2, 1/3, 1/4
    table = pd.read_csv(tmp_path / "sweep_balanced" / "sweep.csv")
    assert table["train_fake_prior"].tolist() == pytest.approx([1 / 2, 1 / 3, 1 / 4])
    assert (tmp_path / "sweep_balanced" / "sweep.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="val_"):
        summarize_sweep(tmp_path, "balanced", [1.0, 2.0, 3.0], pick="outer_balanced_acc")


def test_study_cli_runs_the_sweep_through_the_runner(tmp_path, monkeypatch):
    from workbench.cli import study as cli
    from workbench.study import sweep
    calls = {}

    def fake_run_study(data, out, *, conditions, conditions_file, after, **kw):
        calls.update(conditions=conditions, grid=load_conditions(conditions_file), after=after)
        for n, w, val in zip(conditions, (1.0, 1.5), (0.9, 0.6)):
            _fake_condition(Path(out), n, w, [val, val], [0.5, 0.6])
        from workbench.study.runner import StudyReport
        return StudyReport(Path(out))
    monkeypatch.setattr(sweep, "run_study", fake_run_study)
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    args = p.parse_args(["--data", str(tmp_path), "--out", str(tmp_path / "s"), "--sweep-real-weight", "1", "1.5"])
    assert cli.main(args) == 0
    assert calls["conditions"] == ["balanced_w1", "balanced_w1.5"] and calls["after"] == ()
    assert calls["grid"]["balanced_w1.5"]["loss"]["class_weights"] == [1.5, 1.0]
    assert json.loads((tmp_path / "s" / "sweep_balanced" / "sweep.json").read_text())["picked"]["weight"] == 1.0
    assert cli.main(p.parse_args(["--data", ".", "--base", "focal"])) == 2  # --base alone: a named error
