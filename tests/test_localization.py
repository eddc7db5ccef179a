"""Frame-level truth and temporal localization, against small cases computed by hand (in the comments)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.analysis import localization as aloc
from workbench.core.config import LocalizationConfig
from workbench.core.metric_names import METRIC_MODES
from workbench.data import segments
from workbench.evaluation import localization as loc
from workbench.evaluation.metrics import true_frame_metrics


def _props(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["start", "end", "score"]).sort_values("score", ascending=False)


def test_temporal_iou():
    iou = loc.temporal_iou([[0, 2], [5, 6]], [[1, 3], [0, 2], [2, 4]])
    np.testing.assert_allclose(iou, [[1 / 3, 1.0, 0.0], [0.0, 0.0, 0.0]])


def test_segments_and_frame_labels_round_trip():
    t = np.arange(10) / 10
    y = segments.frame_label_from_segments(t, [(0.2, 0.5, "audio"), (0.8, 5.0)])
    assert y.tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 1, 1]  # 0.5 is the end: excluded
    segs = segments.segments_from_frame_label(t, y)
    assert segs == [pytest.approx((0.2, 0.5)), pytest.approx((0.8, 1.0))]


def test_parse_segments_names_the_problem():
    assert segments.parse_segments("") is None and segments.parse_segments(float("nan")) is None
    assert segments.parse_segments('[[0.5, 1.25, "audio"], [2, 3]]') == [(0.5, 1.25, "audio"), (2.0, 3.0, "")]
    for raw, reason in (("[[1, 2", "not valid JSON"), ("[[2, 1]]", "not before end"), ("[[-1, 1]]", "before the video"),
                        ('[[0, 1, "smell"]]', "modality"), ('{"a": 1}', "JSON list"), ("[[0, 1, 2, 3]]", "item 0"),
                        ('[["a", 1]]', "numbers")):
        with pytest.raises(ValueError, match=reason):
            segments.parse_segments(raw)


def test_proposals_threshold_merge_min_length_and_score():
    t = np.arange(10) / 10  # 10 fps
    p = np.array([0.1, 0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.9, 0.1, 0.1])
    # runs above 0.5: frames 1-2 [0.1, 0.3), frame 4 [0.4, 0.5), frame 7 [0.7, 0.8)
    cfg = LocalizationConfig(thresholds=[0.5], merge_gap=0.1, min_length=0.1)
    got = loc.proposals(t, p, cfg)  # gap 0.3 -> 0.4 is 0.1: the first two merge into [0.1, 0.5), frames 1-4
    np.testing.assert_allclose(got.to_numpy(), [[0.7, 0.8, 0.9], [0.1, 0.5, (0.9 + 0.8 + 0.2 + 0.7) / 4]])
    got = loc.proposals(t, p, LocalizationConfig(thresholds=[0.5], merge_gap=0.05, min_length=0.15))
    np.testing.assert_allclose(got.to_numpy(), [[0.1, 0.3, 0.85]])  # single frames are shorter than 0.15 s
    got = loc.proposals(t, p, LocalizationConfig(thresholds=[0.5, 0.75], merge_gap=0.05, min_length=0.1, score="max"))
    # 0.5: [0.1,0.3) [0.4,0.5) [0.7,0.8); 0.75: [0.1,0.3) again (kept once) and [0.7,0.8) again
    np.testing.assert_allclose(got.to_numpy(), [[0.1, 0.3, 0.9], [0.7, 0.8, 0.9], [0.4, 0.5, 0.7]])
    assert len(loc.proposals(t, p, LocalizationConfig(max_proposals=1))) == 1


def test_average_precision_counts_real_proposals_as_false_positives():
    truth = {"A": [(0.0, 2.0), (4.0, 6.0)], "B": []}  # B is REAL
    props = {"A": _props((0.0, 2.0, 0.9), (0.5, 2.0, 0.8), (4.0, 5.0, 0.6)), "B": _props((0.0, 1.0, 0.7))}
    # ranked: A[0,2) IoU 1 with g1 -> TP; A[0.5,2) IoU 0.75 with g1 (taken) and 0 with g2 -> FP;
    # B -> FP (REAL); A[4,5) IoU 0.5 with g2 -> TP at 0.5 only.
    # IoU 0.5: precision 1, 1/2, 1/3, 1/2 at recall 1/2, 1/2, 1/2, 1 -> AP = 1/2 * 1 + 1/2 * 1/2 = 0.75
    assert loc.average_precision(props, truth, 0.5) == pytest.approx(0.75)
    # IoU 0.75 (and above): only the first is a TP -> AP = 1/2 * 1
    for iou in (0.75, 0.9, 0.95):
        assert loc.average_precision(props, truth, iou) == pytest.approx(0.5)
    # without the REAL video's proposal: precision 1, 1/2, 2/3 -> AP = 1/2 + 1/2 * 2/3
    assert loc.average_precision({"A": props["A"]}, truth, 0.5) == pytest.approx(0.5 + 1 / 3)
    assert np.isnan(loc.average_precision(props, {"B": []}, 0.5))  # no ground truth at all


def test_average_recall_over_iou_thresholds():
    truth = {"A": [(0.0, 2.0), (4.0, 6.0)], "B": []}
    props = {"A": _props((0.0, 2.0, 0.9), (0.5, 2.0, 0.8), (4.0, 5.0, 0.6)), "B": _props((0.0, 1.0, 0.7))}
    # top 3+ of A: g1 best IoU 1 (recalled at all 10 thresholds), g2 best IoU 0.5 (at 0.5 only)
    # -> recall 1 at 0.5 and 1/2 at the 9 others: AR = (1 + 9 / 2) / 10
    assert loc.average_recall(props, truth, 5) == pytest.approx(0.55)
    assert loc.average_recall(props, truth, 2) == pytest.approx(0.5)  # top 2 miss g2 entirely
    assert loc.average_recall({}, truth, 5) == 0.0


def _table() -> pd.DataFrame:
    t = np.arange(10) / 10
    fake_p = np.array([0.1, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.1])  # proposal [0.2, 0.8), score 0.9
    fake_y = np.array([0, 0, 1, 1, 1, 1, 0, 0, 0, 0])  # truth [0.2, 0.6): IoU 0.4 / 0.6 = 2/3
    real_p = np.array([0.95, 0.95] + [0.1] * 8)  # a false positive [0, 0.2), score 0.95, ranked first
    rows = [pd.DataFrame(dict(video_id=v, label=lab, frame=np.arange(10), timestamp=t, p_fake=p, frame_label=y))
            for v, lab, p, y in (("fake", 1, fake_p, fake_y), ("real", 0, real_p, np.zeros(10, int)),
                                 ("quiet", 0, np.full(10, 0.2), np.zeros(10, int)))]
    return pd.concat(rows, ignore_index=True)


def test_localization_metrics_on_a_frame_table():
    m = loc.localization_metrics(_table(), LocalizationConfig(thresholds=[0.5]), counts=True)
    # AP@0.5: FP (real, 0.95) then TP -> precision 1/2 at recall 1 -> 0.5; at 0.75 and above the TP is a FP -> 0
    assert m["loc_ap_iou50"] == pytest.approx(0.5)
    assert m["loc_ap_iou75"] == m["loc_ap_iou90"] == m["loc_ap_iou95"] == 0.0
    # IoU 2/3 is >= 0.5, 0.55, 0.6, 0.65: recalled at 4 of 10 thresholds, whatever N
    assert all(m[f"loc_ar_at{n}"] == pytest.approx(0.4) for n in (50, 30, 20, 10, 5))
    assert m["loc_score"] == pytest.approx(((0.5 + 0 + 0 + 0) / 4 + 0.4) / 2)
    assert (m["n_videos"], m["n_segments"], m["n_proposals"], m["n_proposals_real"]) == (3, 1, 2, 1)
    assert set(loc.LOCALIZATION_MODES) <= set(m)


def test_localization_refuses_sampled_frames_and_bad_tables():
    df = _table()
    with pytest.raises(ValueError, match="full density"):
        loc.localization_metrics(df[df["frame"] % 2 == 0])
    with pytest.raises(ValueError, match="attach_frame_labels"):
        loc.localization_metrics(df.drop(columns="frame_label"))
    with pytest.raises(ValueError, match="more than once"):
        loc.localization_metrics(pd.concat([df, df]))
    bad = df.copy()
    bad.loc[bad["video_id"] == "real", "frame_label"] = 1
    with pytest.raises(ValueError, match="REAL"):
        loc.localization_metrics(bad)


def test_fold_tables_and_the_ensemble():
    df = _table()
    folds = pd.concat([df.assign(fold=0), df.assign(fold=1, p_fake=np.where(df["video_id"] == "real", 0.1, df["p_fake"]))])
    table = aloc.localization_table(folds, "test")
    assert table["fold"].tolist() == ["0", "1", "ensemble"]
    assert table.loc[0, "true_frame_roc_auc"] == pytest.approx(true_frame_metrics(
        df["frame_label"], df["p_fake"])["true_frame_roc_auc"])
    assert table.loc[0, "loc_ap_iou50"] == pytest.approx(0.5)
    # fold 1 has no false positive on the REAL video: its one proposal is a TP at IoU 2/3. The av1m protocol
    # (the default) leaves out the first recall step: AP 0; the standard one: AP 1
    assert table.loc[1, "loc_ap_iou50"] == 0.0
    standard = aloc.localization_table(folds, "test", LocalizationConfig(protocol="standard"))
    assert standard.loc[0, "loc_ap_iou50"] == pytest.approx(0.5)
    assert standard.loc[1, "loc_ap_iou50"] == pytest.approx(1.0)
    assert set(table["protocol"]) == {"av1m"} and set(standard["protocol"]) == {"standard"}  # tables name their rules
    ens = loc.ensemble_frames(folds)
    assert len(ens) == len(df)
    assert ens.loc[ens["video_id"] == "real", "p_fake"].iloc[0] == pytest.approx((0.95 + 0.1) / 2)


def test_condition_localization_stacks_scopes_and_the_study_adds_the_condition(tmp_path, monkeypatch):
    df = _table()
    frames = {"test": pd.concat([df.assign(fold=0), df.assign(fold=1)]), "oof": df.assign(fold=0)}
    calls = []

    def fake_frames(cond_dir, data_dir, table, scope, *, device="auto", cache=None):
        calls.append((cond_dir.name, scope, cache))
        return frames[scope]

    monkeypatch.setattr(aloc, "condition_frames", fake_frames)
    split = pd.DataFrame({"split": ["train", "test"]})
    assert aloc.default_scopes(split) == ("test", "oof") and aloc.default_scopes(split.iloc[:1]) == ("oof",)
    one = aloc.condition_localization(tmp_path / "base", tmp_path, split)
    assert one["scope"].tolist() == ["test"] * 3 + ["oof"] and one["fold"].tolist() == ["0", "1", "ensemble", "oof"]
    assert calls == [("base", "test", None), ("base", "oof", None)]
    study = aloc.study_localization(tmp_path, tmp_path, split, ["base", "other"], cache_dir=tmp_path / "frames")
    assert study.columns[0] == "condition" and study["condition"].tolist() == ["base"] * 4 + ["other"] * 4
    pd.testing.assert_frame_equal(study[study["condition"] == "base"].drop(columns="condition"), one)
    assert calls[-1] == ("other", "oof", tmp_path / "frames" / "other_oof_frames.csv")
    head = aloc.headline(study)
    assert head["fold"].tolist() == ["ensemble", "oof"] * 2 and "true_frame_roc_auc_in_fake" in head
    assert aloc.condition_localization(tmp_path / "base", tmp_path, split, scopes=()).empty


def test_true_frame_metrics_by_hand():
    y = [0, 0, 1, 1]
    p = [0.1, 0.6, 0.4, 0.9]
    m = true_frame_metrics(y, p, video_labels=[0, 1, 1, 1])
    assert m["true_frame_roc_auc"] == pytest.approx(0.75)  # 3 of the 4 (fake, real) pairs ordered right
    assert m["true_frame_ap"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)  # ranked 0.9 (F), 0.6 (R), 0.4 (F)
    assert m["true_frame_acc"] == 0.5 and m["true_frame_balanced_acc"] == 0.5
    assert m["true_real_frame_pfake_mean"] == pytest.approx(0.35) and m["true_real_frame_above_05"] == 0.5
    assert m["true_fake_frame_acc"] == 0.5 and m["true_fake_frame_pfake_mean"] == pytest.approx(0.65)
    # inside FAKE videos (frames 1-3): real 0.6 vs fake 0.4, 0.9 -> AUC 1/2; the genuine frame's mean 0.6
    assert m["true_frame_roc_auc_in_fake"] == pytest.approx(0.5)
    assert m["true_real_frame_pfake_mean_in_fake"] == pytest.approx(0.6)
    assert set(m) == set(loc.TRUE_FRAME_MODES)
    assert np.isnan(true_frame_metrics(y, p)["true_frame_roc_auc_in_fake"])
    with pytest.raises(ValueError, match="REAL videos"):
        true_frame_metrics(y, p, video_labels=[0, 0, 0, 1])


def test_metric_modes_are_new_names_and_valid_monitors():
    from workbench.core.metric_names import LOCALIZATION_MODES, TRUE_FRAME_MODES, valid_monitors
    new = {**TRUE_FRAME_MODES, **LOCALIZATION_MODES}
    assert all(k.startswith(("true_", "loc_")) for k in new)  # apart from the older metric names
    assert set(new.values()) == {"max", "min"}
    assert all(METRIC_MODES[k] == v for k, v in new.items())  # merged into the one table of modes
    assert {f"val_{k}" for k in new} <= valid_monitors()


def test_condition_frames_reads_kfold_tables_and_recomputes_sampled_ones(tmp_path, monkeypatch):
    import json

    from workbench.data.records import save_record
    from workbench.synthetic.toydata import toy_record

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    recs = {"a": toy_record("a", 1, 12, rng=rng, segments=[(3, 6)]), "b": toy_record("b", 0, 10, rng=rng)}
    for vid, rec in recs.items():
        save_record(data / f"{vid}.npz", rec)
    table = pd.DataFrame({"video_id": ["a", "b"], "path": ["a.npz", "b.npz"], "label": [1, 0], "group": ["g", "h"],
                          "split": ["train", "test"]})
    cond = tmp_path / "cond"
    for k, vid in enumerate("ab"):
        n = recs[vid].n_frames
        (cond / f"fold_{k}").mkdir(parents=True)
        pd.DataFrame({"video_id": vid, "label": recs[vid].label, "frame": np.arange(n), "timestamp": np.arange(n) / 30,
                      "p_fake": 0.5}).to_csv(cond / f"fold_{k}" / "outer_frames_full.csv", index=False)
    (cond / "kfold_results.json").write_text(json.dumps({"folds": [{"fold": 0, "val_ids": ["a"]},
                                                                   {"fold": 1, "val_ids": ["b"]}]}))
    oof = aloc.condition_frames(cond, data, table, "oof")
    assert oof.groupby("video_id")["fold"].first().to_dict() == {"a": 0, "b": 1}
    assert oof.loc[oof["video_id"] == "a", "frame_label"].tolist() == [0, 0, 0, 1, 1, 1] + [0] * 6  # from the record
    # a K-fold test table at training density cannot be localized: computed again instead (here: a stand-in)
    pd.DataFrame({"video_id": "b", "label": 0, "frame": [0, 5], "timestamp": [0, 5 / 30], "p_fake": 0.5,
                  "fold": 0}).to_csv(cond / "predictions_test_frames.csv", index=False)
    computed = pd.DataFrame({"video_id": "b", "label": 0, "frame": np.arange(10), "timestamp": np.arange(10) / 30,
                             "p_fake": 0.1, "frame_label": 0, "fold": 0})
    monkeypatch.setattr(aloc, "_predict", lambda *a, **k: computed)
    with pytest.warns(UserWarning, match="full density"):
        test = aloc.condition_frames(cond, data, table, "test", cache=tmp_path / "cache.csv")
    assert test.equals(computed) and (tmp_path / "cache.csv").exists()
