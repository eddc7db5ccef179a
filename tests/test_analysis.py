"""Analysis layer and figures on small synthetic run folders."""
from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from scipy.special import expit
from sklearn.metrics import f1_score, log_loss

from workbench.analysis import tables as A
from workbench.evaluation import calibration as C
from workbench.evaluation.metrics import expected_calibration_error
from workbench.reporting import plots as P

K = 3


# ------------------------------------------------------------------ synthetic runs
def _ids(n: int = 12) -> list[str]:
    return [f"v{i:02d}" for i in range(n)]


def _folds(ids: list[str], shift: int = 0) -> list[tuple[list[str], list[str]]]:
    """K folds (interleaved; contiguous blocks when `shift`, so membership differs)."""
    n = len(ids) // K
    val = [ids[k * n:(k + 1) * n] for k in range(K)] if shift else [ids[k::K] for k in range(K)]
    return [([v for v in ids if v not in va], va) for va in val]


def make_run(root: Path, name: str, acc: list[float], pfake: list[float], shift: int = 0, seed: int = 0) -> Path:
    """A run folder with fold metrics outer_acc=acc[k], outer_real_frame_pfake_mean=pfake[k] and consistent CSVs."""
    rng = np.random.default_rng(seed)
    run = root / name
    run.mkdir(parents=True)
    ids = _ids()
    labels = {v: int(i % 3 != 0) for i, v in enumerate(ids)}  # 4 REAL, 8 FAKE
    folds, vids, frames = [], [], []
    for k, (tr, va) in enumerate(_folds(ids, shift)):
        metrics = {"outer_acc": acc[k], "outer_f1": acc[k] - 0.05, "outer_roc_auc": 0.9,
                   "outer_balanced_acc": acc[k] - 0.1, "outer_real_frame_acc": 1 - pfake[k],
                   "outer_real_frame_pfake_mean": pfake[k], "outer_real_frame_above_05": pfake[k] + 0.1}
        folds.append({"fold": k, "best_epoch": k + 1, "metrics": metrics, "train_ids": tr[1:], "inner_ids": tr[:1],
                      "outer_ids": va,
                      "selection_optimism": {"acc": {"protocol": acc[k] + 0.02 * k, "honest": acc[k],
                                                     "optimism": 0.02 * k, "protocol_epoch": 0}}})
        hist = pd.DataFrame({"epoch": [0, 1, 2], "lr": 1e-3, "train_loss": [0.7, 0.5, 0.4],
                             "train_acc": [0.6, 0.7, 0.8], "val_loss": [0.7, 0.6, 0.55], "val_acc": [0.6, 0.7, 0.75],
                             "outer_acc": [0.6, 0.7, acc[k]], "outer_f1": [0.5, 0.6, 0.7]})
        (run / f"fold_{k}").mkdir()
        hist.to_csv(run / f"fold_{k}" / "history.csv", index=False)
        for v in va:
            y = labels[v]
            p = float(np.clip(0.35 + 0.4 * y + rng.normal(0, 0.15), 0.01, 0.99))
            vids.append({"video_id": v, "label": y, "group": f"id{int(v[1:]) % 4}", "duration": 3.0 + y,
                         "n_frames": 6, "split": "train", "fold": k, "p_fake": p,
                         "logit_real": 0.0, "logit_fake": math.log(p / (1 - p))})
            fp = np.clip(p + rng.normal(0, 0.1, 6), 0.001, 0.999)
            frames.append(pd.DataFrame({"video_id": v, "label": y, "fold": k, "frame": np.arange(6),
                                        "timestamp": np.arange(6) / 2.0, "p_fake": fp,
                                        "face_found": [True] * 5 + [False]}))
    mean = {m: float(np.mean([f["metrics"][m] for f in folds])) for m in folds[0]["metrics"]}
    std = {m: float(np.std([f["metrics"][m] for f in folds], ddof=1)) for m in folds[0]["metrics"]}
    opt = [f["selection_optimism"]["acc"]["optimism"] for f in folds]
    (run / "kfold_results.json").write_text(json.dumps({
        "condition": name, "selection": "inner", "folds": folds, "mean": mean, "std": std, "best_fold": 0,
        "config": {"name": name}, "selection_optimism": {"acc": {"mean": float(np.mean(opt)),
                                                                 "std": float(np.std(opt, ddof=1))}},
        "test": {"n_real": 1, "n_fake": 2, "video_ids": ["t0", "t1", "t2"], "folds": [],
                 "mean": {"test_acc": acc[0]}, "std": {"test_acc": 0.0},
                 "ensemble": {"test_acc": 2 / 3, "test_roc_auc": 0.5, "test_real_frame_pfake_mean": pfake[0]}}}))
    (run / "config.yaml").write_text(yaml.safe_dump({"name": name, "seed": 0}))
    pd.DataFrame(vids).to_csv(run / "predictions_videos.csv", index=False)
    pd.concat(frames).to_csv(run / "predictions_frames.csv", index=False)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, A.Run]:
    tmp_path = tmp_path_factory.mktemp("runs")
    base = make_run(tmp_path, "baseline", acc=[0.80, 0.85, 0.90], pfake=[0.50, 0.55, 0.60], seed=1)
    bal = make_run(tmp_path, "balanced", acc=[0.95, 0.97, 0.99], pfake=[0.70, 0.75, 0.80], seed=2)
    other = make_run(tmp_path, "reshuffled", acc=[0.90, 0.90, 0.90], pfake=[0.60, 0.60, 0.60], shift=1, seed=3)
    return {r.name: r for r in map(A.load_run, (base, bal, other))}


def miscalibrated(n: int = 3000, seed: int = 0, sharpen: float = 3.0, shift: float = 1.0) -> pd.DataFrame:
    """Out-of-fold video predictions: true P = sigmoid(z); reported P = sigmoid(sharpen * z + shift)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, n)
    y = (rng.random(n) < expit(z)).astype(int)
    return pd.DataFrame({"video_id": [f"v{i}" for i in range(n)], "label": y, "fold": np.arange(n) % 5,
                         "p_fake": expit(sharpen * z + shift)})


# ------------------------------------------------------------------ runs and tables
def test_load_run_and_fold_table(runs: dict[str, A.Run]) -> None:
    run = runs["baseline"]
    assert set(run.history["fold"]) == {0, 1, 2} and len(run.history) == 9
    assert len(run.videos) == 12 and len(run.frames) == 72
    t = A.fold_table(run)
    assert t.loc["mean", "outer_acc"] == pytest.approx(0.85)
    assert t.loc["std", "outer_acc"] == pytest.approx(np.std([0.80, 0.85, 0.90], ddof=1))
    assert t.loc["std", "outer_acc"] == pytest.approx(run.results["std"]["outer_acc"])  # one convention: ddof=1
    assert t.loc[2, "best_epoch"] == 3 and list(t.columns[1:5]) == list(A.VIDEO_METRICS)


def test_load_run_names_missing_file(tmp_path: Path) -> None:
    path = make_run(tmp_path, "a", acc=[0.8] * K, pfake=[0.5] * K)
    (path / "predictions_frames.csv").unlink()
    with pytest.raises(FileNotFoundError, match="predictions_frames.csv"):
        A.load_run(path)
    other = make_run(tmp_path, "b", acc=[0.8] * K, pfake=[0.5] * K)
    (other / "fold_1" / "history.csv").unlink()
    with pytest.raises(FileNotFoundError, match="history.csv"):
        A.load_run(other)
    assert sorted(A.load_run(other, require_history=False).history["fold"].unique()) == [0, 2]


def test_load_runs_every_finished_condition_or_the_named_ones(runs: dict[str, A.Run]) -> None:
    root = runs["baseline"].path.parent
    every = A.load_runs(root)
    assert list(every) == ["balanced", "baseline", "reshuffled"]  # runs.condition_dirs order
    pd.testing.assert_frame_equal(every["baseline"].videos, runs["baseline"].videos)
    assert list(A.load_runs(root, ["reshuffled", "baseline"])) == ["reshuffled", "baseline"]
    assert list(A.load_runs(root, [])) == list(every)
    with pytest.raises(KeyError, match="nope"):
        A.load_runs(root, ["nope"])


def test_aggregation_table_hand_example() -> None:
    frames = pd.DataFrame({"video_id": ["a"] * 4 + ["b"] * 4, "label": [0] * 4 + [1] * 4,
                           "p_fake": [0.1, 0.2, 0.3, 0.9, 0.6, 0.7, 0.2, 0.8]})
    videos = pd.DataFrame({"video_id": ["a", "b"], "label": [0, 1], "p_fake": [0.7, 0.8]})
    t = A.aggregation_table(frames, videos_df=videos, k=0.25)
    assert t.loc["video_head", "acc"] == 0.5  # head calls both FAKE
    assert t.loc["mean", "acc"] == 1.0  # a: 0.375 REAL, b: 0.575 FAKE
    assert t.loc["max", "acc"] == 0.5  # a: 0.9, b: 0.8 -> both FAKE
    assert t.loc["majority", "acc"] == 1.0  # a: 1/4 frames above 0.5, b: 3/4
    assert t.loc["topk_mean", "tp"] == 1 and t.loc["topk_mean", "fp"] == 1  # top 25% = the max frame
    assert t.loc["mean", "n_videos"] == 2


# ------------------------------------------------------------------ calibration
def test_f1_threshold_maximises_f1_on_fit_data() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1)
    thr = C.fit_f1_threshold(y, p)
    best = f1_score(y, (p > thr).astype(int))
    pred = p[None, :] > np.concatenate([[-1.0], np.unique(p)])[:, None]  # every distinct decision
    tp = (pred & (y == 1)).sum(1)
    brute = np.max(2 * tp / (pred.sum(1) + (y == 1).sum()))
    assert best == pytest.approx(brute)
    assert best > f1_score(y, (p > 0.5).astype(int))


@pytest.mark.parametrize("method", ["platt", "temperature"])
def test_scalers_reduce_ece_and_nll(method: str) -> None:
    fit, scored = miscalibrated(seed=5), miscalibrated(seed=6)  # fitted on one sample, scored on another
    y, p = scored["label"].to_numpy(), scored["p_fake"].to_numpy()
    cal = C.calibrate_per_fold(fit, scored, method).table["p_fake_cal"].to_numpy()
    assert expected_calibration_error(y, cal) < 0.5 * expected_calibration_error(y, p)
    assert log_loss(y, cal) < log_loss(y, p)


def test_temperature_recovers_sharpening() -> None:
    df = miscalibrated(n=20000, shift=0.0)
    ts = C.TemperatureScaler().fit(df["label"], df["p_fake"])
    assert ts.temperature_ == pytest.approx(3.0, rel=0.1)


def test_each_fold_is_calibrated_on_its_own_inner_part_only() -> None:
    inner, scored = miscalibrated(seed=1), miscalibrated(seed=2)
    inner.loc[inner["fold"] == 0, "label"] = 1 - inner.loc[inner["fold"] == 0, "label"]  # fold 0's inner: flipped
    cal = C.calibrate_per_fold(inner, scored, "platt")
    manual = C.PlattScaler().fit(inner.loc[inner["fold"] == 0, "label"], inner.loc[inner["fold"] == 0, "p_fake"])
    assert cal.fitted[0].coef_ == pytest.approx(manual.coef_) and cal.fitted[0].coef_ < 0
    assert all(cal.fitted[k].coef_ > 0 for k in range(1, 5))  # the other folds never see fold 0's inner part
    f0 = cal.table["fold"] == 0
    np.testing.assert_allclose(cal.table.loc[f0, "p_fake_cal"], manual.transform(scored.loc[f0, "p_fake"]))
    flipped = scored.assign(label=1 - scored["label"])  # the scored fold's own labels never reach its calibrator
    again = C.calibrate_per_fold(inner, flipped, "platt")
    assert all(vars(again.fitted[k]) == vars(cal.fitted[k]) for k in cal.fitted)
    with pytest.raises(ValueError, match="fold 4 has no inner predictions"):
        C.calibrate_per_fold(inner[inner["fold"] != 4], scored, "platt")


def test_calibration_report_fits_each_level_on_its_own_predictions() -> None:
    videos, fit_v = miscalibrated(n=1000, seed=2), miscalibrated(n=1000, seed=3)
    rng = np.random.default_rng(0)

    def frames_of(v: pd.DataFrame, sharpen: float) -> pd.DataFrame:  # frames more over-confident than videos
        f = v.loc[v.index.repeat(3), ["video_id", "label", "fold", "p_fake"]].reset_index(drop=True)
        z = np.log(f["p_fake"] / (1 - f["p_fake"])) * sharpen + rng.normal(0, 0.3, len(f))
        return f.assign(p_fake=expit(z))
    frames, fit_f = frames_of(videos, 2.0), frames_of(fit_v, 2.0)
    rep = C.calibration_report({"video": fit_v, "frame": fit_f}, {"video": videos, "frame": frames})
    assert list(rep.index) == ["uncalibrated", "temperature", "platt", "f1_threshold"]
    assert rep.loc["temperature", "video_ece"] < rep.loc["uncalibrated", "video_ece"]
    assert rep.loc["temperature", "frame_ece"] < 0.5 * rep.loc["uncalibrated", "frame_ece"]
    assert rep.loc["f1_threshold", "video_ece"] == pytest.approx(rep.loc["uncalibrated", "video_ece"])
    assert rep.loc["f1_threshold", "video_threshold_mean"] != 0.5
    # a temperature fitted on video P(Fake) and applied to frames (the old way) calibrates frames worse
    t_video = C.TemperatureScaler().fit(fit_v["label"], fit_v["p_fake"])
    wrong = expected_calibration_error(frames["label"], t_video.transform(frames["p_fake"]))
    assert rep.loc["temperature", "frame_ece"] < wrong
    assert {"frame_real_pfake_mean", "frame_real_above_thr"} <= set(rep.columns)


# ------------------------------------------------------------------ conditions
def test_paradox_table(runs: dict[str, A.Run]) -> None:
    t = A.paradox_table(list(runs.values()))
    assert list(t.index) == ["baseline", "balanced", "reshuffled"]
    assert t.loc["balanced", "outer_acc_mean"] == pytest.approx(0.97)
    assert t.loc["balanced", "outer_real_frame_pfake_mean_mean"] == pytest.approx(0.75)
    assert t.loc["baseline", "outer_acc_std"] == pytest.approx(0.05)
    assert t.loc["balanced", "outer_real_frame_above_05_mean"] == pytest.approx(0.85)
    assert t.loc["baseline", "selection"] == "inner"
    assert t.loc["baseline", "selection_optimism_acc"] == pytest.approx(0.02)  # mean of 0, 0.02, 0.04
    assert t.loc["baseline", "test_acc"] == pytest.approx(2 / 3)
    opt = A.selection_optimism_table(runs)
    row = opt[(opt["condition"] == "baseline") & (opt["metric"] == "acc")].iloc[0]
    assert row["protocol_mean"] - row["honest_mean"] == pytest.approx(0.02) and row["per_fold"] == [0, 0.02, 0.04]
    held = A.heldout_test_table(runs).set_index(["condition", "metric"])
    assert held.loc[("balanced", "acc"), "n_fake"] == 2 and held.loc[("balanced", "acc"), "ensemble"] == pytest.approx(2 / 3)


def test_paired_differences(runs: dict[str, A.Run]) -> None:
    from scipy import stats
    d = A.paired_differences(runs, "baseline", metrics=["outer_acc", "outer_real_frame_pfake_mean"])
    bal = d[(d["condition"] == "balanced") & (d["metric"] == "outer_acc")].iloc[0]
    assert bal["paired"] and bal["pairing"].startswith("paired")
    assert bal["diff_mean"] == pytest.approx(0.12)
    np.testing.assert_allclose(bal["fold_diffs"], [0.15, 0.12, 0.09])
    # by hand: 12 videos, 3 folds of 4 scored / 7 fitted; s^2 of (0.15, 0.12, 0.09) = 0.0009
    half = stats.t.ppf(0.975, 2) * np.sqrt((1 / 3 + 4 / 7) * 0.0009)
    assert bal["half_width"] == pytest.approx(half) and bal["ci_lo"] == pytest.approx(0.12 - half)
    assert bal["significant"] == (bal["p_value"] < 0.05) and bal["step"] == pytest.approx(1 / 4)
    # 80% power: the noncentrality at which a two-sided t(2) test rejects 4 times in 5, found by bisection here
    se = np.sqrt((1 / 3 + 4 / 7) * 0.0009)
    crit, lo, hi = stats.t.ppf(0.975, 2), 0.0, 50.0
    for _ in range(200):
        nc = (lo + hi) / 2
        lo, hi = (nc, hi) if stats.nct.sf(crit, 2, nc) + stats.nct.cdf(-crit, 2, nc) < 0.8 else (lo, nc)
    assert bal["power80"] == pytest.approx(nc * se, rel=1e-6) and bal["power80"] > bal["half_width"]
    rp = d[(d["condition"] == "balanced") & (d["metric"] == "outer_real_frame_pfake_mean")].iloc[0]
    assert rp["diff_mean"] == pytest.approx(0.2) and rp["half_width"] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(rp["step"])  # a continuous metric has no step
    resh = d[d["condition"] == "reshuffled"].iloc[0]
    assert not resh["paired"] and "differs" in resh["pairing"]
    assert resh["diff_mean"] == pytest.approx(0.05)


# ------------------------------------------------------------------ audits
def test_identity_overlap_counts() -> None:
    groups = {"a": "p1", "b": "p1", "c": "p2", "d": "p3", "e": "p3", "f": "p4"}
    folds = [(["a", "c", "d"], ["b", "e", "f"]), (["a", "b"], ["c", "d"])]
    t = A.identity_overlap(folds, groups)
    assert t.loc[0, "n_shared_identities"] == 2 and t.loc[0, "shared_identities"] == "p1, p3"
    assert t.loc[0, "val_videos_affected"] == 2 and t.loc[0, "val_share_affected"] == pytest.approx(2 / 3)
    assert t.loc[1, "n_shared_identities"] == 0 and t.loc[1, "val_videos_affected"] == 0


def _meta(n: int, shortcut: bool, seed: int = 0) -> tuple[pd.DataFrame, list]:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3 != 0).astype(int)
    dur = np.where(y == 0, 8.0, 4.0) + rng.normal(0, 1.0, n) if shortcut else rng.normal(5, 1, n)
    df = pd.DataFrame({"video_id": [f"v{i}" for i in range(n)], "label": y, "duration": dur,
                       "mean_brightness": rng.normal(100, 10, n)})
    ids = df["video_id"].tolist()
    folds = [([v for j, v in enumerate(ids) if j % 4 != k], ids[k::4]) for k in range(4)]
    return df, folds


def test_metadata_audit_flags_duration_shortcut() -> None:
    df, folds = _meta(160, shortcut=True)
    with pytest.warns(UserWarning, match="WARNING: shortcut"):
        res = A.metadata_shortcut_audit(df, folds)
    assert res["mean_roc_auc"] > 0.9 and res["warning"].startswith("WARNING: shortcut")
    assert res["missing_features"] == ["n_frames", "lead_silence", "trail_silence"]
    assert res["per_feature_auc"]["duration"] > 0.9 and "duration" in res["warning"]
    assert len(res["per_fold"]) == 4


def test_metadata_audit_quiet_on_random_metadata() -> None:
    df, folds = _meta(160, shortcut=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = A.metadata_shortcut_audit(df, folds, model="logistic")
    assert res["warning"] == "" and res["mean_roc_auc"] < 0.75


def test_temporal_stats_hand_example() -> None:
    df = pd.DataFrame({"frame": range(6), "timestamp": [0, 4, 8, 12, 16, 20],
                       "p_fake": [0.2, 0.6, 0.7, 0.4, 0.9, 0.5], "face_found": [1, 1, 0, 1, 1, 1]})
    s = A.temporal_stats(df, bin_seconds=10)
    assert s["frames_above"] == 3 and s["share_above"] == 0.5 and s["majority_label"] == "REAL"
    assert s["mean"] == pytest.approx(3.3 / 6) and s["min"] == 0.2 and s["max"] == 0.9
    assert s["no_face_share"] == pytest.approx(1 / 6) and s["n_frames"] == 6
    b = s["bins"]
    assert b["n_frames"].tolist() == [3, 2, 1] and b["t_start"].tolist() == [0, 10, 20]
    assert b["p_fake_mean"].tolist() == pytest.approx([0.5, 0.65, 0.5])


def test_class_balance_table() -> None:
    df = pd.DataFrame({"video_id": list("abcdef"), "label": [0, 1, 1, 1, 0, 1], "group": list("xxyyzz"),
                       "duration": [10.0, 2, 2, 2, 20, 4], "fake_type": [None, "fs", "ls", "fs", None, "ls"]})
    t = A.class_balance_table(df, folds=[(list("abc"), list("def")), (list("def"), list("abc"))])
    assert t.loc["all", "ratio"] == "1 : 2.00" and t.loc["all", "n_real"] == 2
    assert t.loc["all", "duration_mean_real"] == 15 and t.loc["all", "identities_fake"] == 3
    assert t.loc["fold 0 val", "n_fake"] == 2 and t.loc["fold 0 val", "fake_type=ls"] == 1
    assert t.loc["fold 0 train", "fake_per_real"] == 2.0


# ------------------------------------------------------------------ figures
def _pred(n: int = 120, std: bool = True) -> pd.DataFrame:
    t = np.arange(n) / 10.0
    df = pd.DataFrame({"frame": np.arange(n), "timestamp": t, "p_fake": 0.5 + 0.4 * np.sin(t),
                       "face_found": (np.arange(n) % 37) > 3})
    if std:
        df["p_fake_std"] = 0.05
        df["p_fake_fold0"], df["p_fake_fold1"] = df["p_fake"] - 0.02, df["p_fake"] + 0.02
    return df


def _figures(runs: dict[str, A.Run]) -> dict[str, Callable[[Path], Figure]]:
    run = runs["baseline"]
    par = A.paradox_table(runs)
    diffs = A.paired_differences(runs, "baseline", metrics=["outer_acc", "outer_real_frame_pfake_mean"])
    frames = np.random.default_rng(0).integers(0, 255, (20, 16, 16, 3), dtype=np.uint8)
    priors = pd.DataFrame({"method": ["none", "weighted", "sampler"], "effective_prior": [0.65, 0.48, 0.5],
                           "data_prior": 0.65})
    return {
        "training": lambda p: P.training_curves_figure(run.history, "outer_f1", path=p, best_epochs={0: 1, 1: 2}),
        "confusion": lambda p: P.confusion_matrices_figure(run.videos, path=p),
        "histogram": lambda p: P.pfake_histogram_figure(run.videos, path=p),
        "video_vs_frame": lambda p: P.video_vs_frame_figure(par, path=p),
        "aggregation": lambda p: P.aggregation_figure(A.aggregation_table(run.frames, videos_df=run.videos), path=p),
        "reliability": lambda p: P.reliability_figure(run.videos["label"], {"raw": run.videos["p_fake"],
                                                                             "squashed": run.videos["p_fake"] ** 2},
                                                      path=p),
        "class_balance": lambda p: P.class_balance_figure(run.videos, path=p),
        "effective_prior": lambda p: P.effective_prior_figure(priors, path=p),
        "paradox": lambda p: P.paradox_scatter_figure(par, path=p),
        "forest": lambda p: P.forest_plot_figure(diffs, path=p),
        "temporal": lambda p: P.temporal_figure(_pred(), frames, title="long REAL", path=p),
        "temporal_noframes": lambda p: P.temporal_figure(_pred(std=False).drop(columns="face_found"), path=p),
        "density": lambda p: P.density_comparison_figure({"50 frames": _pred(50, False), "full": _pred()}, path=p),
    }


FIGURES = ["training", "confusion", "histogram", "video_vs_frame", "aggregation", "reliability", "class_balance",
           "effective_prior", "paradox", "forest", "temporal", "temporal_noframes", "density"]


@pytest.mark.parametrize("name", FIGURES)
def test_figure_returns_figure_and_writes_png(name: str, runs: dict[str, A.Run], tmp_path: Path) -> None:
    path = tmp_path / "figs" / f"{name}.png"
    fig = _figures(runs)[name](path)
    assert isinstance(fig, Figure)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_temporal_figure_rows(tmp_path: Path) -> None:
    frames = np.zeros((30, 8, 8, 3), dtype=np.uint8)
    fig = P.temporal_figure(_pred(), frames, frame_times=np.linspace(0, 11.9, 30))
    strip = [ax for ax in fig.axes if ax.images]
    assert len(strip) == 8 and strip[0].get_title().startswith("0.0 s")
    assert len(P.temporal_figure(_pred()).axes) == 3  # curve, heat strip, colorbar


def test_class_balance_figure_draws_the_table_it_is_given(runs: dict[str, A.Run]) -> None:
    df = runs["baseline"].videos

    def heights(fig: Figure) -> list[float]:
        return [p.get_height() for ax in fig.axes[:2] for p in ax.patches]

    table = A.class_balance_table(df)
    np.testing.assert_array_equal(heights(P.class_balance_figure(df, table=table)), heights(P.class_balance_figure(df)))
    assert 99 in heights(P.class_balance_figure(df, table=table.assign(n_real=99)))


def test_confusion_figure_with_a_one_class_fold_is_quiet() -> None:
    videos = pd.DataFrame({"video_id": list("abcd"), "label": [0, 0, 0, 1], "fold": [0, 0, 1, 1],
                           "p_fake": [0.1, 0.2, 0.3, 0.9]})  # fold 0: REAL only, all predicted REAL
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = P.confusion_matrices_figure(videos)
    assert len(fig.axes) == 3


def test_temporal_tables_summary_and_bins() -> None:
    from workbench.analysis.reports import temporal_tables
    curves = {"a.csv": _pred(120), "b.csv": _pred(50, std=False)}
    preds = pd.DataFrame({"condition": "c", "video_id": "v", "label": 0, "density": ["full", "train_density"],
                          "path": ["a.csv", "b.csv"]})
    stats, bins = temporal_tables(preds, curves, bin_seconds=4.0)
    ref = [A.temporal_stats(curves[p], bin_seconds=4.0) for p in preds["path"]]
    assert list(stats.columns[:5]) == ["condition", "video_id", "label", "status", "density"] and "bins" not in stats
    assert stats["mean"].tolist() == [r["mean"] for r in ref] and stats.loc[0, "std_mean"] == ref[0]["std_mean"]
    assert len(bins) == sum(len(r["bins"]) for r in ref)
    full = bins[bins["density"] == "full"].drop(columns=["condition", "video_id", "label", "status", "density"])
    pd.testing.assert_frame_equal(full.reset_index(drop=True), ref[0]["bins"])


def test_compact_paradox(runs: dict[str, A.Run]) -> None:
    from workbench.analysis.reports import compact_paradox
    c = compact_paradox(A.paradox_table(runs)).set_index("condition")
    assert c.loc["baseline", "acc"] == "0.850 ± 0.050"
    assert list(c.index) == ["baseline", "balanced", "reshuffled"] and "real_frame_pfake_mean" in c


# ------------------------------------------------------------------ the typed reader of a run folder
def test_read_run_is_typed_and_reads_older_runs(runs: dict[str, A.Run], tmp_path: Path) -> None:
    from workbench.analysis.runs import FoldResult, read_run
    run = read_run(runs["baseline"].path)
    assert run.condition == "baseline" and run.selection == "inner" and run.std_ddof == 1 and not run.complete
    assert [f.fold for f in run.folds] == [0, 1, 2] and all(isinstance(f, FoldResult) for f in run.folds)
    f = run.folds[1]
    assert f.outer_ids == ["v01", "v04", "v07", "v10"] and f.inner_ids == ["v00"] and f.best_epoch == 2
    assert f.metric("outer_acc") == 0.85 and math.isnan(f.metric("nope")) and f.checkpoint is None
    np.testing.assert_allclose(run.fold_values("outer_acc"), [0.80, 0.85, 0.90])
    assert run.test["ensemble"]["test_acc"] == pytest.approx(2 / 3) and "acc" in run.selection_optimism
    assert runs["baseline"].folds == run.folds and runs["baseline"].results == run.raw  # tables.Run reads the same
    old = tmp_path / "old"  # an older run: val_ids for the scoring fold, no selection, folds out of order
    old.mkdir()
    (old / "kfold_results.json").write_text(json.dumps({"folds": [
        {"fold": 1, "train_ids": ["a"], "val_ids": ["b"], "checkpoint": "fold_1/m.pth"},
        {"fold": 0, "train_ids": ["b"], "val_ids": ["a"], "checkpoint": "fold_0/m.pth",
         "metrics": {"outer_acc": None}}]}))
    run = read_run(old)
    assert [f.fold for f in run.folds] == [0, 1] and run.folds[0].outer_ids == ["a"] and run.selection == "outer"
    assert run.checkpoints == [old / "fold_0" / "m.pth", old / "fold_1" / "m.pth"] and run.test is None
    assert math.isnan(run.folds[0].metric("outer_acc")) and run.condition == "old"


def test_missing_run_names_the_commands_that_make_it(tmp_path: Path) -> None:
    from workbench.analysis.runs import fold_checkpoints, read_run
    (tmp_path / "study" / "focal").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"no finished condition 'focal'.*workbench study --data DATA") as e:
        read_run(tmp_path / "study" / "focal")
    assert "workbench kfold --data DATA --out" in str(e.value)
    with pytest.raises(FileNotFoundError, match="focal"):
        fold_checkpoints(tmp_path / "study" / "focal")


def test_models_for_and_finished_conditions(tmp_path: Path) -> None:
    from workbench.analysis.runs import finished_conditions, models_for
    cond = tmp_path / "study" / "base"
    cond.mkdir(parents=True)
    (cond / "kfold_results.json").write_text(json.dumps({"folds": [
        {"fold": 0, "train_ids": ["a"], "inner_ids": ["c"], "outer_ids": ["b"], "checkpoint": "fold_0/m.pth"},
        {"fold": 1, "train_ids": ["b"], "inner_ids": ["c"], "outer_ids": ["a"], "checkpoint": "fold_1/m.pth"}]}))
    assert models_for(cond, "t") == ([cond / "fold_0" / "m.pth", cond / "fold_1" / "m.pth"], "held-out")
    assert models_for(cond, "a") == ([cond / "fold_1" / "m.pth"], "out-of-fold (fold 1)")
    with pytest.raises(KeyError, match="every fold"):
        models_for(cond, "c")  # in both folds' inner parts
    (tmp_path / "study" / "zeta").mkdir()
    (tmp_path / "study" / "zeta" / "kfold_results.json").write_text("{}")
    assert finished_conditions(tmp_path / "study") == ["base", "zeta"]
    assert finished_conditions(tmp_path / "study", ["zeta", "nope", "base"]) == ["zeta", "base"]


# ------------------------------------------------------------------ notebook 04's calibration over conditions
def test_calibrate_runs_fits_each_condition_on_its_inner_part(runs: dict[str, A.Run], tmp_path: Path) -> None:
    from workbench.analysis import calibration as AC
    path = make_run(tmp_path, "inner", acc=[0.8] * K, pfake=[0.5] * K, shift=1, seed=5)
    videos, frames = pd.read_csv(path / "predictions_videos.csv"), pd.read_csv(path / "predictions_frames.csv")
    for k in range(K):  # the other folds' clips stand in for fold k's inner part
        videos[videos["fold"] != k].drop(columns="fold").to_csv(path / f"fold_{k}" / "val_videos.csv", index=False)
        frames[frames["fold"] != k].drop(columns="fold").to_csv(path / f"fold_{k}" / "val_frames.csv", index=False)
    inner = A.load_run(path)
    study = AC.calibrate_runs({"baseline": runs["baseline"], "inner": inner}, n_bins=5)
    assert study.skipped == ["baseline"] and study.calibrated == ["inner"]  # baseline has no inner predictions
    ref = C.calibration_report({"video": inner.inner_videos, "frame": inner.inner_frames},
                               {"video": inner.videos, "frame": inner.frames}, n_bins=5).reset_index()
    pd.testing.assert_frame_equal(study.report.drop(columns="condition"), ref)
    assert (study.report["condition"] == "inner").all()
    levels = AC.reliability_inputs(inner)
    y, probs = levels["frame"]
    assert list(levels) == ["video", "frame"] and list(probs) == ["uncalibrated", "temperature", "platt"]
    np.testing.assert_array_equal(y, inner.frames["label"].to_numpy())
    np.testing.assert_allclose(probs["platt"], C.calibrate_per_fold(inner.inner_frames, inner.frames, "platt",
                                                                   "frame").table["p_fake_cal"])
    assert AC.calibrate_runs({"baseline": runs["baseline"]}).report.empty


# ------------------------------------------------------------------ the metrics.json schemas
def test_every_notebook_has_a_schema_and_it_round_trips(runs: dict[str, A.Run], tmp_path: Path) -> None:
    from workbench.analysis import notebook_metrics as NM
    assert sorted(NM.SCHEMAS) == ["01_class_imbalance", "02_kfold_training", "03_temporal_pfake",
                                  "04_calibration_thresholds", "05_compare_conditions", "06_localization_attribution"]
    run = runs["baseline"]
    kfold = dataclasses.replace(run.kfold, raw={**run.kfold.raw, "complete": True, "std_ddof": 1})
    agg = A.aggregation_table(run.frames, videos_df=run.videos)
    m = NM.KFoldTrainingMetrics.from_run(kfold, agg, pd.DataFrame({"scope": ["oof"], "loc_score": [math.nan]}))
    assert list(m.to_json()) == NM.KFoldTrainingMetrics.keys() == [
        "condition", "complete", "n_folds", "selection", "mean", "std", "std_ddof", "best_fold", "selection_optimism",
        "test", "aggregation", "localization"]
    path = m.write(tmp_path / "02")
    assert json.loads(path.read_text())["localization"] == [{"scope": "oof", "loc_score": None}]  # NaN -> null
    back = NM.KFoldTrainingMetrics.read(tmp_path / "02")
    assert back.mean == run.kfold.mean and back.aggregation["video_head"]["n_videos"] == 12 and back.n_folds == K
    (tmp_path / "02" / "metrics.json").write_text(json.dumps({**m.to_json(), "extra": 1}))
    with pytest.raises(TypeError, match="extra"):
        NM.KFoldTrainingMetrics.read(tmp_path / "02")
    table = pd.DataFrame({"video_id": list("abcde"), "label": [0, 1, 1, 0, 1], "group": ["p", "p", "q", "r", "r"],
                          "split": ["train"] * 4 + ["test"]})
    overlap = {"grouped": pd.DataFrame({"val_share_affected": [0.0, 0.0]})}
    audit = {"mean_roc_auc": 0.5, "mean_balanced_acc": 0.5, "warning": "", "per_fold": pd.DataFrame()}
    priors = pd.DataFrame({"method": ["baseline"], "effective_prior": [0.5]})
    m1 = NM.ClassImbalanceMetrics.from_tables(table, overlap, audit, priors).to_json()
    assert m1 == {"n_real": 2, "n_fake": 2, "ratio": 1.0, "n_test": 1, "identities": 3,
                  "identity_overlap_share": {"grouped": 0.0},
                  "shortcut_audit": {"mean_roc_auc": 0.5, "mean_balanced_acc": 0.5, "warning": ""},
                  "effective_fake_prior": {"baseline": 0.5}}
    par = A.paradox_table(runs)
    m5 = NM.CompareMetrics.from_tables(list(runs), par, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(),
                                       pd.DataFrame(), tmp_path / "summary.md")
    assert [r["condition"] for r in m5.paradox] == list(runs) and m5.summary == str(tmp_path / "summary.md")


# ------------------------------------------------------------------ figure helpers
def test_spans_cover_each_run_of_frames_end_inclusive() -> None:
    fig = Figure()
    ax = fig.subplots()
    t = np.arange(8) * 0.5
    coll = P._spans(ax, t, np.array([1, 1, 0, 0, 1, 0, 0, 1], bool))
    xs = [(float(p.vertices[:, 0].min()), float(p.vertices[:, 0].max())) for p in coll.get_paths()]
    assert xs == [(-0.25, 0.75), (1.75, 2.25), (3.25, 3.75)]  # frames 0-1, 2 and 7, each half a step either side
    assert P._spans(ax, t, np.zeros(8, bool)) is None
