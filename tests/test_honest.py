"""Honest evaluation: monitors checked up front, nested selection that no outer label can reach, a held-out test,
exact resume after SIGKILL, and paired statistics whose false-positive rate holds at five folds."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY, tiny_cfg

from workbench.cli.kfold import config_from_args
from workbench.core.config import Config
from workbench.core.metric_names import COUNT_KEYS, METRIC_MODES, valid_monitors
from workbench.data.records import load_record, read_index, save_record, scan_folder, write_index
from workbench.data.splits import make_folds, plan_folds
from workbench.evaluation import calibration
from workbench.evaluation.metrics import bootstrap_ci, corrected_ttest, evaluation_metrics
from workbench.synthetic.toydata import make_toy_dataset
from workbench.training.engine import run_kfold
from workbench.training.kfold import format_table, load_dataset, run_fold


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), n_real=12, n_fake=20, n_test_long=1, n_test_long_fake=1,
                            n_test_short=(1, 2), long_frames=60)


# ------------------------------------------------------------------ monitors
def test_monitors_are_checked_when_the_config_is_made():
    with pytest.raises(ValueError, match="train_eer.*valid monitors: .*'val_loss'"):
        Config.load(None, ["train.checkpoint_monitor=train_eer"])
    with pytest.raises(ValueError, match="outer_acc"):  # the scoring fold may never choose
        Config.load(None, ["train.early_stop_monitor=outer_acc"])
    assert {"val_ece", "val_brier", "val_roc_auc", "val_loss", "train_loss"} <= valid_monitors()
    assert Config().train.checkpoint_monitor == "val_loss" and Config().split.selection == "inner"


def test_every_evaluated_metric_is_a_monitor_or_a_count():
    probe = {"label": np.array([0, 1, 1]), "p_fake": np.array([0.1, 0.8, 0.4])}
    keys = set(evaluation_metrics(probe, probe))
    assert keys - set(COUNT_KEYS) <= set(METRIC_MODES), keys - set(METRIC_MODES)
    assert {f"val_{k}" for k in keys - set(COUNT_KEYS)} <= valid_monitors()


def test_a_monitor_that_is_computed_is_really_watched(toy, tmp_path):
    cfg = tiny_cfg(toy, tmp_path / "r", "train.epochs=3", "split.kfold=2", "train.checkpoint_monitor=val_ece",
                   "train.early_stop_monitor=val_brier", "train.patience=1")
    res = run_kfold(cfg, folds_to_run=[0], log=lambda s: None)
    h = pd.read_csv(tmp_path / "r" / "fold_0" / "history.csv")
    f = res["folds"][0]
    assert f["best_epoch"] == int(h.loc[h["val_ece"].idxmin(), "epoch"])  # the checkpoint follows val_ece
    assert len(h) <= 3


# ------------------------------------------------------------------ nested selection
def test_inner_part_too_small_is_a_named_error(tmp_path):
    root = make_toy_dataset(tmp_path / "d", n_real=4, n_fake=8, frames=(6, 8))
    cfg = tiny_cfg(root, tmp_path / "o", "split.kfold=2")
    with pytest.raises(ValueError, match=r"fold 0: cannot hold out an inner validation part with at least 2 REAL"):
        plan_folds(load_dataset(cfg).rows, cfg)
    cfg.split.selection = "outer"  # the original protocol needs no inner part
    assert all(not p.inner_ids for p in plan_folds(load_dataset(cfg).rows, cfg))


def _permute_outer_labels(src: Path, dst: Path, outer_ids: list[str], seed: int = 0) -> None:
    """A copy of a dataset whose outer-fold clips carry shuffled labels (same counts; records and index agree)."""
    shutil.copytree(src, dst)
    rows = read_index(dst / "index.csv")
    outer = [r for r in rows if r.video_id in set(outer_ids)]
    labels = np.array([r.label for r in outer])
    rng = np.random.default_rng(seed)
    perm = labels[rng.permutation(len(labels))]
    while np.array_equal(perm, labels):
        perm = labels[rng.permutation(len(labels))]
    for r, y in zip(outer, perm):
        rec = load_record(dst / r.path)
        rec.label, r.label = int(y), int(y)
        save_record(dst / r.path, rec)
    write_index(dst / "index.csv", rows)


def test_outer_labels_cannot_reach_selection_or_calibration(toy, tmp_path):
    """Leakage test: permute the labels of fold 0's outer clips; its chosen epoch, checkpoint, calibrators and
    thresholds stay bit-identical, while its outer scores change."""
    cfg = tiny_cfg(toy, tmp_path / "a", "train.epochs=4", "split.kfold=2", "model.dropout=0.3")
    data = load_dataset(cfg)
    plan = plan_folds(data.rows, cfg)[0]
    _permute_outer_labels(toy, tmp_path / "perm", plan.outer_ids)
    cfg_b = tiny_cfg(tmp_path / "perm", tmp_path / "b", "train.epochs=4", "split.kfold=2", "model.dropout=0.3")
    res = {}
    for name, c in (("a", cfg), ("b", cfg_b)):
        res[name] = run_fold(c, plan, load_dataset(c), log=lambda s: None)
    a, b = tmp_path / "a" / "fold_0", tmp_path / "b" / "fold_0"
    assert res["a"]["best_epoch"] == res["b"]["best_epoch"]
    wa, wb = (torch.load(d / "mmms-ba_best.pth", weights_only=False)["model"] for d in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ha, hb = pd.read_csv(a / "history.csv"), pd.read_csv(b / "history.csv")
    val_cols = [c for c in ha.columns if c.startswith(("train_", "val_"))]
    pd.testing.assert_frame_equal(ha[val_cols], hb[val_cols])
    for level in ("videos", "frames"):
        fa, fb = (pd.read_csv(d / f"val_{level}.csv").assign(fold=0) for d in (a, b))
        for method in calibration.CALIBRATION_METHODS:
            ca = calibration.calibrate_per_fold(fa, fa, method).fitted[0]
            cb = calibration.calibrate_per_fold(fb, fb, method).fitted[0]
            assert vars(ca) == vars(cb), (level, method)
    oa, ob = pd.read_csv(a / "outer_videos.csv"), pd.read_csv(b / "outer_videos.csv")
    assert not oa["label"].equals(ob["label"]) and np.allclose(oa["p_fake"], ob["p_fake"])


def test_outer_selection_is_the_original_protocol(toy, tmp_path):
    cfg = tiny_cfg(toy, tmp_path / "o", "train.epochs=2", "split.kfold=2", "split.selection=outer")
    res = run_kfold(cfg, folds_to_run=[0], log=lambda s: None)
    h = pd.read_csv(tmp_path / "o" / "fold_0" / "history.csv")
    assert not res["folds"][0]["inner_ids"]
    assert np.allclose(h["val_acc"], h["outer_acc"]) and np.allclose(h["val_loss"], h["outer_loss"])
    assert "the scoring fold (optimistic)" in format_table(res)


def test_selection_optimism_is_max_over_epochs_minus_chosen(toy, tmp_path):
    cfg = tiny_cfg(toy, tmp_path / "s", "train.epochs=4", "split.kfold=2")
    res = run_kfold(cfg, folds_to_run=[0], log=lambda s: None)
    h = pd.read_csv(tmp_path / "s" / "fold_0" / "history.csv").set_index("epoch")
    f = res["folds"][0]
    for m in ("acc", "roc_auc"):
        gap = h[f"outer_{m}"].max() - h.loc[f["best_epoch"], f"outer_{m}"]
        assert f["selection_optimism"][m]["optimism"] == pytest.approx(gap) and gap >= 0
    assert res["selection_optimism"]["acc"]["mean"] == pytest.approx(f["selection_optimism"]["acc"]["optimism"])


# ------------------------------------------------------------------ the held-out test
def test_heldout_test_has_both_classes_and_an_ensemble(toy, tmp_path):
    cfg = tiny_cfg(toy, tmp_path / "t", "train.epochs=2", "split.kfold=2")
    res = run_kfold(cfg, log=lambda s: None)
    test = res["test"]
    assert (test["n_real"], test["n_fake"]) == (2, 3) and len(test["folds"]) == 2
    vids = pd.read_csv(tmp_path / "t" / "predictions_test_videos.csv")
    per_fold = vids[vids["fold"].astype(str) != "ensemble"]
    ens = vids[vids["fold"].astype(str) == "ensemble"].set_index("video_id")["p_fake"]
    np.testing.assert_allclose(ens.sort_index(), per_fold.groupby("video_id")["p_fake"].mean().sort_index())
    y = vids[vids["fold"].astype(str) == "ensemble"].set_index("video_id")["label"]
    acc = float(((ens > 0.5).astype(int) == y.loc[ens.index]).mean())
    assert test["ensemble"]["test_acc"] == pytest.approx(acc)
    frames = pd.read_csv(tmp_path / "t" / "predictions_test_frames.csv")
    assert len(frames[(frames["fold"].astype(str) == "0") & (frames["video_id"] == "real_032_long")]) == 60
    for f in res["folds"]:  # no test clip in any fold
        assert not set(test["video_ids"]) & (set(f["train_ids"]) | set(f["inner_ids"]) | set(f["outer_ids"]))


# ------------------------------------------------------------------ exact resume
def _kfold_cmd(root: Path, out: Path) -> list[str]:
    sets = TINY + ["model.dropout=0.3", "train.epochs=5", "split.kfold=2", "eval.full_frames=false", "eval.test=false"]
    return [sys.executable, "-m", "workbench.cli", "kfold", "--data", str(root), "--out", str(out), "--no-progress",
            *[a for s in sets for a in ("--set", s)]]


@pytest.mark.slow
def test_resume_after_sigkill_ends_with_the_same_weights(tmp_path):
    root = make_toy_dataset(tmp_path / "d", n_real=12, n_fake=20, frames=(40, 60), face=48, lip=24)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run(_kfold_cmd(root, tmp_path / "whole"), check=True, env=env, capture_output=True, timeout=600)
    proc = subprocess.Popen(_kfold_cmd(root, tmp_path / "cut"), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    hist = tmp_path / "cut" / "fold_0" / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and not (hist.exists() and len(hist.read_text().splitlines()) >= 2):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "cut" / "fold_0" / "done.json").exists(), "killed too late: fold 0 had finished"
    epochs_before = len(pd.read_csv(hist))
    assert 1 <= epochs_before < 5
    subprocess.run(_kfold_cmd(root, tmp_path / "cut"), check=True, env=env, capture_output=True, timeout=600)
    for k in (0, 1):
        for name in ("mmms-ba_last.pth", "mmms-ba_best.pth"):
            a = torch.load(tmp_path / "whole" / f"fold_{k}" / name, weights_only=False)
            b = torch.load(tmp_path / "cut" / f"fold_{k}" / name, weights_only=False)
            assert a["epoch"] == b["epoch"]
            diff = max(float((a["model"][p].double() - b["model"][p].double()).abs().max()) for p in a["model"])
            assert diff == 0.0, f"fold {k} {name}: max |dw| {diff:.3g} after resuming from epoch {epochs_before}"
    ra, rb = (json.loads((tmp_path / d / "kfold_results.json").read_text()) for d in ("whole", "cut"))
    assert ra["mean"] == rb["mean"]


# ------------------------------------------------------------------ statistics
def test_corrected_ttest_hand_example():
    d = [0.1, 0.2, 0.0, 0.1, 0.1]  # mean 0.1, sample variance 0.005
    t = corrected_ttest(d, test_train_ratio=0.25)
    se = (0.005 * (1 / 5 + 0.25)) ** 0.5  # 0.047434
    assert t["mean"] == pytest.approx(0.1) and t["half_width"] == pytest.approx(2.7764451 * se, rel=1e-6)
    assert t["t"] == pytest.approx(0.1 / se) and t["p"] == pytest.approx(0.10269, abs=2e-4)
    naive = corrected_ttest(d, test_train_ratio=0.0)  # the uncorrected paired t-test is narrower
    assert naive["half_width"] < t["half_width"]
    assert np.isnan(corrected_ttest([0.3], 0.25)["p"])


def test_fold_auc_permutation_against_counted_orderings():
    from workbench.evaluation.metrics import fold_auc_permutation
    # two folds of 2 FAKE + 2 REAL, perfectly separated: of the C(4, 2) = 6 labellings per fold only the
    # observed one gives AUC 1, so the mean AUC reaches 1 under permutation with probability 1/36
    perfect = [([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]), ([0, 1, 0, 1], [0.3, 0.7, 0.4, 0.6])]
    r = fold_auc_permutation(perfect, n_perm=20000)
    assert r["mean_auc"] == 1.0 and r["p"] == pytest.approx(1 / 36, abs=0.004)
    # one inversion in the second fold: AUC 0.75 there (3 of 4 pairs), mean 0.875
    mixed = [([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]), ([0, 1, 0, 1], [0.5, 0.7, 0.4, 0.45])]
    assert fold_auc_permutation(mixed, n_perm=100)["mean_auc"] == pytest.approx(0.875)
    flat = fold_auc_permutation([([0, 1, 0, 1, 1], [0.5] * 5)], n_perm=2000)  # ties: AUC 0.5, never below chance
    assert flat["mean_auc"] == 0.5 and flat["p"] == 1.0
    assert fold_auc_permutation([([1, 1], [0.2, 0.3])])["folds"] == 0  # one class: skipped


def _null_simulation(n_sim: int, seed: int = 0) -> tuple[float, float]:
    """Share of null comparisons flagged at alpha 0.05: two seeds of one condition (a logistic regression on a
    seeded bootstrap of each training fold), per-fold accuracy differences through the real 5-fold splitter."""
    from sklearn.linear_model import LogisticRegression

    from workbench.data.records import IndexRow
    rng = np.random.default_rng(seed)
    flags_t, flags_boot = 0, 0
    for s in range(n_sim):
        n_real, n_fake = 21, 39  # the demo's pool
        y = np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]
        X = rng.normal(size=(y.size, 5)) + 0.6 * y[:, None] * np.array([1, 0.5, 0, 0, 0])
        rows = [IndexRow(path="", video_id=f"v{i}", label=int(v), group=f"g{i}", duration=1.0, n_frames=1)
                for i, v in enumerate(y)]
        cfg = Config.from_dict({"seed": int(s), "split": {"kfold": 5}})
        diffs, ratio = [], []
        for tr, va in make_folds(rows, cfg):
            accs = []
            for model_seed in (1, 2):
                boot = np.random.default_rng([s, model_seed]).choice(tr, size=tr.size, replace=True)
                clf = LogisticRegression(max_iter=200).fit(X[boot], y[boot])
                accs.append(float((clf.predict(X[va]) == y[va]).mean()))
            diffs.append(accs[1] - accs[0])
            ratio.append(va.size / tr.size)
        flags_t += corrected_ttest(diffs, float(np.mean(ratio)))["p"] < 0.05
        _, lo, hi = bootstrap_ci(diffs, n_boot=500, seed=s)
        flags_boot += lo > 0 or hi < 0
    return flags_t / n_sim, flags_boot / n_sim


def test_null_comparisons_keep_their_false_positive_rate():
    rate, boot_rate = _null_simulation(300)
    assert rate <= 0.07, f"corrected t-test flags {rate:.1%} of null comparisons at alpha 0.05"
    assert boot_rate > rate  # the simulation can tell: the percentile bootstrap over 5 folds over-claims
    print(f"null false-positive rate at alpha 0.05: corrected t {rate:.1%}, percentile bootstrap {boot_rate:.1%}")


# ------------------------------------------------------------------ small corrections
def test_epochs_flag_sets_the_schedule_length_unless_t_max_is_given(tmp_path):
    import argparse

    from workbench.cli import (
        build_parser,  # noqa: F401  (the CLI imports cleanly)
        kfold,
    )
    p = argparse.ArgumentParser()
    kfold.add_arguments(p)
    assert config_from_args(p.parse_args(["--epochs", "3"])).train.t_max == 3
    assert config_from_args(p.parse_args(["--epochs", "3", "--set", "train.t_max=7"])).train.t_max == 7
    y = tmp_path / "c.yaml"
    y.write_text("train: {t_max: 9}\n")
    assert config_from_args(p.parse_args(["--epochs", "3", "--config", str(y)])).train.t_max == 9


def test_label_and_mfcc_mismatches_are_named_and_skippable(toy, tmp_path):
    d = tmp_path / "ds"
    shutil.copytree(toy, d)
    rows = read_index(d / "index.csv")
    rows[0].label = 1 - rows[0].label  # the index says otherwise than the npz
    write_index(d / "index.csv", rows)
    rec = load_record(d / rows[1].path)
    rec.audio = rec.audio[:, :13]
    save_record(d / rows[1].path, rec)
    res = scan_folder(d, validate=True, n_mfcc=40)
    reasons = dict(res.failures)
    assert "disagrees with the index" in reasons[rows[0].path]
    assert "13 MFCC coefficients, the config expects 40" in reasons[rows[1].path]
    from workbench.cli import main
    assert main(["scan", str(d)]) == 1
    cfg = tiny_cfg(d, tmp_path / "o", "data.skip_bad=true")
    assert {r.path for r in load_dataset(cfg).rows}.isdisjoint({rows[0].path, rows[1].path})


def test_original_layout_takes_its_split_from_the_subfolder(tmp_path):
    from workbench.synthetic.toydata import toy_record
    rng = np.random.default_rng(0)
    for sub, vid, y in (("train", "a", 0), ("train", "b", 1), ("val", "c", 0), ("test", "d", 1), ("test", "e", 0)):
        save_record(tmp_path / sub / f"{vid}.npz", toy_record(vid, y, 6, face=8, lip=4, rng=rng))
    split = {r.video_id: r.split for r in scan_folder(tmp_path).rows}
    assert split == {"a": "train", "b": "train", "c": "train", "d": "test", "e": "test"}
    data = load_dataset(tiny_cfg(tmp_path, tmp_path / "o"))
    assert sorted(r.video_id for r in data.test_rows) == ["d", "e"]  # test/ clips never join the folds


def test_summary_is_the_same_for_folds_read_back_from_json():
    from workbench.training.kfold import summarize
    fresh = [{"metrics": {"a": float("nan"), "b": 0.5}}, {"metrics": {"a": float("nan"), "b": 0.7}}]
    read_back = json.loads(json.dumps([{"metrics": {"a": None, "b": 0.5}}, {"metrics": {"a": None, "b": 0.7}}]))
    s1, s2 = summarize(fresh), summarize(read_back)
    assert s1["mean"].keys() == s2["mean"].keys() == {"a", "b"} and np.isnan(s2["mean"]["a"])
    assert s2["std"]["b"] == pytest.approx(np.std([0.5, 0.7], ddof=1))


def test_format_table_survives_a_null_metric():
    res = {"folds": [{"fold": 0, "best_epoch": 1, "metrics": {"outer_acc": 0.5, "outer_roc_auc": None}}],
           "mean": {"outer_acc": 0.5, "outer_roc_auc": None}, "std": {"outer_acc": None}}
    assert "nan" in format_table(res)


def test_selection_last_trains_a_fixed_budget_and_chooses_nothing(toy, tmp_path):
    cfg = tiny_cfg(toy, tmp_path / "last", "train.epochs=3", "split.kfold=2", "split.selection=last",
                   "train.patience=1", "eval.full_frames=false", "eval.test=false")
    res = run_kfold(cfg, log=lambda s: None)
    assert res["selection"] == "last"
    for f in res["folds"]:
        assert f["inner_ids"] == [] and f["best_epoch"] == 2 and f["epochs_run"] == 3  # patience has no say
        assert not any(k.startswith("val_") for k in f["metrics"])
        hist = pd.read_csv(tmp_path / "last" / f"fold_{f['fold']}" / "history.csv")
        assert f["metrics"]["outer_acc"] == pytest.approx(hist["outer_acc"].iloc[-1])
        assert set(f["train_ids"]) | set(f["outer_ids"]) == {r.video_id for r in load_dataset(cfg).rows}
