"""The dataset's own protocol (split.kind=official), cross-dataset evaluation (workbench evaluate) and the
AV-Deepfake1M submission files (workbench export --format av1m)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import tiny_cfg
from sklearn.metrics import accuracy_score, roc_auc_score

from workbench.analysis.cross import cross_test_table
from workbench.analysis.export import export_av1m
from workbench.cli import main as cli_main
from workbench.core.config import Config
from workbench.data.records import read_index
from workbench.data.splits import make_folds, n_folds, official_summary, plan_folds
from workbench.synthetic.toydata import make_toy_dataset
from workbench.training.engine import run_kfold
from workbench.training.evaluate import evaluate_run
from workbench.training.kfold import format_table, load_dataset

OFFICIAL = ["train.epochs=1", "split.kind=official"]
QUIET = dict(log=lambda s: None)


def cfg_for(root: Path, out: Path, *extra: str) -> Config:
    return tiny_cfg(root, out, *OFFICIAL, *extra)


def ids_of(root: Path, split: str) -> set[str]:
    return {r.video_id for r in read_index(root / "index.csv") if r.split == split}


@pytest.fixture(scope="module")
def lavdf_like(tmp_path_factory) -> tuple[Path, dict]:
    """A train / dev / test toy dataset and a one-epoch official run on it."""
    root = make_toy_dataset(tmp_path_factory.mktemp("lavdf"), splits={"train": (6, 6), "dev": (3, 3), "test": (3, 3)},
                            frames=(16, 24), n_groups=6)
    out = tmp_path_factory.mktemp("run") / "official"
    return root, run_kfold(cfg_for(root, out), **QUIET)


@pytest.fixture(scope="module")
def av1m_like(tmp_path_factory) -> tuple[Path, dict]:
    """A train / val toy dataset (test labels withheld) and a one-epoch official run on it."""
    root = make_toy_dataset(tmp_path_factory.mktemp("av1m"), splits={"train": (8, 8), "val": (3, 3)},
                            frames=(16, 24), n_groups=8, seed=3, n_unlabeled=(1, 1))  # test/ unlabelled, as AV-Deepfake1M
    out = tmp_path_factory.mktemp("run") / "withheld"
    return root, run_kfold(cfg_for(root, out), **QUIET)


# ------------------------------------------------------------------ the official split
def test_official_trains_on_train_selects_on_dev_scores_on_test(lavdf_like):
    root, res = lavdf_like
    out = Path(res["config"]["out"])
    (f,) = res["folds"]
    assert f["fold"] == 0 and res["complete"] and n_folds(Config.from_dict(res["config"])) == 1
    assert set(f["train_ids"]) == ids_of(root, "train")
    assert set(f["inner_ids"]) == ids_of(root, "dev")
    assert set(f["outer_ids"]) == ids_of(root, "test") == set(res["test"]["video_ids"]) == set(res["test_ids"])
    assert res["scored_split"] == "test" and res["official"] == {"train": "train", "selection": "dev", "scored": "test"}
    # what the fold really read: selection predictions on dev only, scoring predictions on test only
    assert set(pd.read_csv(out / "fold_0" / "val_videos.csv")["video_id"]) == ids_of(root, "dev")
    assert set(pd.read_csv(out / "fold_0" / "outer_videos.csv")["video_id"]) == ids_of(root, "test")
    hist = pd.read_csv(out / "fold_0" / "history.csv")
    assert {"val_loss", "outer_roc_auc"} <= set(hist.columns)
    # the held-out section is the same model on the same clips: its AUC is the scoring fold's
    ens = pd.read_csv(out / "predictions_test_videos.csv").query("fold == 'ensemble'")
    assert res["test"]["ensemble"]["test_roc_auc"] == pytest.approx(roc_auc_score(ens["label"], ens["p_fake"]))
    assert res["test"]["ensemble"]["test_roc_auc"] == pytest.approx(f["metrics"]["outer_roc_auc"], abs=1e-6)
    assert format_table(res).splitlines()[0] == "official split (one fold): fit on train, selected on dev, scored on test"


def test_withheld_test_scores_val_and_selects_inside_train(av1m_like):
    root, res = av1m_like
    (f,) = res["folds"]
    train, val = ids_of(root, "train"), ids_of(root, "val")
    assert set(f["outer_ids"]) == val == set(res["test"]["video_ids"])
    assert f["inner_ids"] and set(f["inner_ids"]) | set(f["train_ids"]) == train
    assert not set(f["inner_ids"]) & set(f["train_ids"])
    groups = {r.video_id: r.group for r in read_index(root / "index.csv")}
    assert not {groups[v] for v in f["inner_ids"]} & {groups[v] for v in f["train_ids"]}  # grouped by identity
    assert res["scored_split"] == "val" and res["official"]["selection"] == "inner part of train"
    assert res["test"]["split"] == "val"
    assert "held-out val (3 REAL / 3 FAKE)" in format_table(res)
    unlabeled = {r.video_id for r in read_index(root / "index.csv") if r.split == "unlabeled"}
    assert len(unlabeled) == 2 and not unlabeled & {v for k in ("train_ids", "inner_ids", "outer_ids") for v in f[k]}
    data = load_dataset(Config.from_dict(res["config"]), **QUIET)
    assert {r.video_id for r in data.unlabeled_rows} == unlabeled  # kept apart, for self-training only


def test_official_needs_a_dev_or_test_split(tmp_path):
    root = make_toy_dataset(tmp_path / "fav", n_real=4, n_fake=4, frames=(6, 8))  # FakeAVCeleb: only `train`
    cfg = cfg_for(root, tmp_path / "o")
    with pytest.raises(ValueError, match="official needs a dev/val or test split beside train"):
        load_dataset(cfg, **QUIET)


def test_official_refuses_selection_on_the_scored_split_and_unknown_splits(tmp_path):
    root = make_toy_dataset(tmp_path / "d", splits={"train": (3, 3), "val": (2, 2)}, frames=(6, 8))
    cfg = cfg_for(root, tmp_path / "o", "split.selection=outer")
    rows = load_dataset(cfg, **QUIET).rows
    with pytest.raises(ValueError, match=r"never selects on the scored split \(val\)"):
        plan_folds(rows, cfg)
    rows[0].split = "holdout"
    with pytest.raises(ValueError, match=re.escape("index.csv also has {'holdout': 1}")):
        make_folds(rows, cfg)
    rows[0].split = "train"
    cfg.split.selection = "last"  # a fixed budget chooses nothing: no inner part, the whole train split fits
    (plan,) = plan_folds(rows, cfg)
    assert not plan.inner_ids and set(plan.train_ids) == ids_of(root, "train") and set(plan.outer_ids) == ids_of(root, "val")
    assert official_summary(rows, cfg) == {"scored_split": "val",
                                           "official": {"train": "train", "selection": "last", "scored": "val"}}


# ------------------------------------------------------------------ workbench evaluate
def test_evaluate_adds_a_cross_section_recomputable_from_its_csv(lavdf_like, tmp_path):
    root, res = lavdf_like
    run = Path(res["config"]["out"])
    other = make_toy_dataset(tmp_path / "other", n_real=4, n_fake=5, frames=(16, 24), seed=11)
    assert cli_main(["evaluate", str(run), str(other), "--name", "toy2"]) == 0
    sec = json.loads((run / "kfold_results.json").read_text())["cross"]["toy2"]
    assert set(sec["video_ids"]) == {r.video_id for r in read_index(other / "index.csv")}
    assert (sec["n_real"], sec["n_fake"]) == (4, 5)
    v = pd.read_csv(run / "predictions_cross_toy2_videos.csv", dtype={"fold": str})
    ens, f0 = v[v["fold"] == "ensemble"], v[v["fold"] == "0"]
    assert sec["ensemble"]["test_roc_auc"] == pytest.approx(roc_auc_score(ens["label"], ens["p_fake"]))
    assert sec["folds"][0]["metrics"]["test_acc"] == pytest.approx(accuracy_score(f0["label"], f0["p_fake"] > 0.5))
    table = cross_test_table({"official": run}).set_index(["dataset", "metric"])
    assert table.loc[("toy2", "roc_auc"), "ensemble"] == pytest.approx(roc_auc_score(ens["label"], ens["p_fake"]))
    # the run's own held-out split scores exactly as the run's test did; its training videos are refused
    again = evaluate_run(run, root, name="own", splits=["test"], **QUIET)
    own = pd.read_csv(run / "predictions_cross_own_videos.csv", dtype={"fold": str}).query("fold == 'ensemble'")
    test = pd.read_csv(run / "predictions_test_videos.csv", dtype={"fold": str}).query("fold == 'ensemble'")
    both = own.merge(test, on="video_id")
    assert len(both) == 6 and np.allclose(both["p_fake_x"], both["p_fake_y"], atol=1e-6)
    assert again["ensemble"]["test_acc"] == pytest.approx(res["test"]["ensemble"]["test_acc"])
    with pytest.raises(ValueError, match="trained or selected on by this run"):
        evaluate_run(run, root, name="leak", **QUIET)
    # a resumed run rewrites kfold_results.json and keeps the cross sections
    run_kfold(cfg_for(root, run), **QUIET)
    assert {"toy2", "own"} <= set(json.loads((run / "kfold_results.json").read_text())["cross"])


# ------------------------------------------------------------------ workbench export --format av1m
def _fake_run(tmp_path: Path) -> Path:
    """A run folder whose held-out section has known P(Fake): two 10-frame videos at 10 fps."""
    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    run.mkdir()
    pd.DataFrame({"video_id": ["id01__a__real", "id02__b__fake"], "dataset": ["av1m", "av1m"],
                  "source_path": ["val/id01/a/real.mp4", "val/id02/b/fake.mp4"]}).to_csv(data / "metadata.csv", index=False)
    Config.from_dict({"data": {"root": str(data)}, "out": str(run)}).save(run / "config.yaml")
    (run / "kfold_results.json").write_text(json.dumps({"folds": [{"fold": 0}], "test": {"video_ids": ["x"]}}))
    p_fake = {"id01__a__real": [0.1] * 10, "id02__b__fake": [0.1, 0.1, 0.1, 0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1]}
    frames = pd.DataFrame([{"video_id": v, "label": int(v.endswith("fake")), "frame": k, "timestamp": k / 10,
                            "p_fake": p, "frame_label": 0, "fold": fold} for v, ps in p_fake.items()
                           for k, p in enumerate(ps) for fold in ("0", "ensemble")])
    frames.to_csv(run / "predictions_test_frames.csv", index=False)
    pd.DataFrame({"video_id": list(p_fake), "label": [0, 1], "p_fake": [0.25, 0.75], "fold": "ensemble"}).to_csv(
        run / "predictions_test_videos.csv", index=False)
    return run


def test_export_av1m_writes_the_challenge_formats(tmp_path):
    run = _fake_run(tmp_path)
    assert cli_main(["export", str(run), "--format", "av1m"]) == 0
    lines = (run / "export_av1m" / "classification.txt").read_text().splitlines()
    assert lines == ["id01/a/real.mp4;0.25", "id02/b/fake.mp4;0.75"]  # file as the metadata's `file`; no header
    assert all(re.fullmatch(r"[^;\s]+;[0-9.eE+-]+", ln) for ln in lines)
    props = json.loads((run / "export_av1m" / "localization.json").read_text())
    assert props["id01/a/real.mp4"] == []
    (seg,) = props["id02/b/fake.mp4"]  # frames 3-5 above 0.5: [0.3 s, 0.6 s), scored by their mean P(Fake)
    assert seg == pytest.approx([0.8, 0.3, 0.6])


def test_export_of_an_official_run_covers_the_scored_val_records(av1m_like):
    root, res = av1m_like
    paths = export_av1m(res["config"]["out"])
    files = [ln.split(";")[0] for ln in paths["classification"].read_text().splitlines()]
    assert sorted(files) == sorted(f"{v}.mp4" for v in ids_of(root, "val"))  # no metadata.csv: <video_id>.mp4
    props = json.loads(paths["localization"].read_text())
    assert set(props) == set(files)
    assert all(len(p) == 3 and p[1] < p[2] for ps in props.values() for p in ps)


def test_export_names_a_missing_cross_section(tmp_path):
    run = _fake_run(tmp_path)
    assert yaml.safe_load((run / "config.yaml").read_text())["out"] == str(run)
    with pytest.raises(ValueError, match=r"no cross\['lavdf'\] section"):
        export_av1m(run, section="cross:lavdf")
