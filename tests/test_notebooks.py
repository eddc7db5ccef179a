"""Every numbered notebook executes under papermill (smoke parameters) inside the study runner."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from workbench.analysis.notebook_metrics import SCHEMAS
from workbench.core import paths
from workbench.study import runner as study
from workbench.study.notebook import setup
from workbench.synthetic.toydata import make_toy_dataset

NOTEBOOKS = sorted(p.stem for p in study.NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    data = make_toy_dataset(root / "data", n_real=8, n_fake=12, n_test_long=1, n_test_long_fake=1, long_frames=90,
                            n_groups=6)
    report = study.run_study(data, root / "run", conditions=["baseline", "balanced"], preset="smoke", stream=False)
    return data, root / "run", report


def metrics(path: Path) -> dict:
    return json.loads((path / "metrics.json").read_text())


def test_notebooks_are_committed_clean_with_a_parameters_cell():
    assert NOTEBOOKS == ["01_class_imbalance", "02_kfold_training", "03_temporal_pfake",
                         "04_calibration_thresholds", "05_compare_conditions", "06_localization_attribution"]
    assert study.AFTER.index("06_localization_attribution") < study.AFTER.index("05_compare_conditions")
    for name in NOTEBOOKS:
        nb = nbformat.read(study.NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name} has outputs"
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        assert "smoke" in study.notebook_parameters(study.NOTEBOOK_DIR / f"{name}.ipynb")


@pytest.mark.slow
def test_study_runs_every_notebook(smoke_study):
    data, run, report = smoke_study
    assert report.failed == {}, report.failed
    assert set(report.ran) == {"baseline", "balanced", *study.AFTER}
    for cond in ("baseline", "balanced"):
        m = metrics(run / cond)
        assert m["condition"] == cond and m["complete"] and m["n_folds"] == 2 and m["selection"] == "inner"
        oof = pd.read_csv(run / cond / "predictions_videos.csv")
        assert sorted(oof["video_id"]) == sorted(f"{'real' if i < 8 else 'fake'}_{i:03d}" for i in range(20))
        acc = oof.assign(ok=(oof["p_fake"] > 0.5).astype(int) == oof["label"]).groupby("fold")["ok"].mean()
        assert m["mean"]["outer_acc"] == pytest.approx(acc.mean())  # what the notebook reports is what it predicted
        assert (m["test"]["n_real"], m["test"]["n_fake"]) == (1, 1) and "acc" in m["selection_optimism"]
        assert (run / cond / "02_kfold_training.ipynb").exists()
        assert (run / cond / "figures" / "training_curves.png").stat().st_size > 1000
        params = (run / cond / "02_kfold_training.params.yaml").read_text()
        assert "overrides:" in params  # dicts travel as YAML, not strings
    assert metrics(run / "balanced")["mean"] != metrics(run / "baseline")["mean"]
    for name, schema in SCHEMAS.items():  # each notebook's metrics.json is its schema's, key for key
        for folder in ([run / "baseline", run / "balanced"] if name == study.PER_CONDITION else [run / name]):
            assert list(metrics(folder)) == schema.keys() and schema.read(folder).to_json() == metrics(folder)


@pytest.mark.slow
def test_class_imbalance_notebook(smoke_study):
    _, run, _ = smoke_study
    m = metrics(run / "01_class_imbalance")
    assert (m["n_real"], m["n_fake"], m["n_test"]) == (8, 12, 2)
    assert m["identity_overlap_share"]["grouped"] == 0.0  # grouped folds never share identities
    assert m["effective_fake_prior"]["weighted_sampler"] == pytest.approx(0.5)
    assert m["effective_fake_prior"]["baseline"] == pytest.approx(12 / 20)


@pytest.mark.slow
def test_temporal_calibration_and_compare_notebooks(smoke_study):
    _, run, _ = smoke_study
    m3 = metrics(run / "03_temporal_pfake")
    assert {"real_020_long", "fake_021_long"} <= set(m3["videos"])
    status = {(s["video_id"], s["status"]) for s in m3["stats"]}
    assert ("real_020_long", "held-out") in status
    assert any(st.startswith("out-of-fold (fold ") for v, st in status if not v.endswith("_long"))
    densities = {(s["condition"], s["density"]) for s in m3["stats"]}
    assert densities == {(c, d) for c in ("baseline", "balanced") for d in ("full", "train_density")}
    full = [s for s in m3["stats"] if s["density"] == "full" and s["video_id"].endswith("_long")]
    assert all(s["n_frames"] == 90 for s in full)  # every frame of the long video
    assert list((run / "03_temporal_pfake" / "figures").glob("temporal_*.png"))
    m4 = metrics(run / "04_calibration_thresholds")
    assert {r["method"] for r in m4["report"]} >= {"uncalibrated", "temperature", "platt", "f1_threshold"}
    m5 = metrics(run / "05_compare_conditions")
    assert {r["condition"] for r in m5["paradox"]} == {"baseline", "balanced"}
    text = Path(m5["summary"]).read_text()
    assert "REAL-frame" in text and "Selection optimism" in text and "Held-out test" in text
    assert "corrected resampled t-test" in text and "half-width" in text


@pytest.mark.slow
def test_runner_skips_finished_and_survives_failures(smoke_study, tmp_path):
    data, run, _ = smoke_study
    grid = tmp_path / "grid.yaml"
    grid.write_text("baseline: {}\nbroken:\n  split: {kind: grouped, kfold: 50}\n")
    report = study.run_study(data, run, conditions_file=grid, preset="smoke", after=(), stream=False)
    assert report.skipped == ["baseline"]
    assert "broken" in report.failed and "50-fold CV needs" in report.failed["broken"]
    assert json.loads((run / "study.json").read_text())["failed"]["broken"]


def test_setup_checks_inputs_before_making_the_output_folder(tmp_path, monkeypatch):
    """The one setup call of every notebook: paths from the project root, inputs checked, writers, display."""
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    with pd.option_context("display.precision", 6, "display.max_columns", 10, "display.width", 80):
        with pytest.raises(FileNotFoundError, match=r"dataset folder .*data/demo/npz does not exist.*main\.sh"):
            setup("outputs/x", data_dir="data/demo/npz", run_dir="outputs/study")
        with pytest.raises(FileNotFoundError, match=r"nothing in study folder .*main\.sh"):
            setup("outputs/x", run_dir="outputs/study")
        assert not (tmp_path / "outputs").exists()
        make_toy_dataset(tmp_path / "data" / "toy", n_real=2, n_fake=2, frames=(4, 6), n_groups=2, n_test_long=1,
                         long_frames=8)
        nb = setup("outputs/x", data_dir="data/toy", precision=3)
        assert nb.out == tmp_path / "outputs" / "x" and nb.out.is_dir() and nb.run_dir is None
        assert pd.get_option("display.precision") == 3 and pd.get_option("display.max_columns") == 30
        assert len(nb.table) == 5 and len(nb.pool) == 4 and nb.test["video_id"].tolist() == ["real_004_long"]
        assert nb.table is nb.table  # read once
        assert nb.figure("a") == nb.out / "figures" / "a.png" and (nb.out / "figures").is_dir()
        assert nb.csv(nb.pool, "pool").equals(nb.pool) and (nb.out / "pool.csv").exists()
    with pytest.raises(ValueError, match="data_dir"):
        setup(tmp_path / "y").table


def test_unknown_parameters_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown parameter"):
        study.execute("02_kfold_training", tmp_path, {"bogus_param": 1})


@pytest.mark.slow
def test_dead_kernel_is_recorded_not_fatal(tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("data_dir = ''\noutput_dir = ''\ncondition = ''\noverrides = {}\npreset = ''\n"
                                  "folds = None\nepochs = None\ndevice = ''\nprogress = False\nsmoke = False")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell("import os\nos._exit(1)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbdir / "02_kfold_training.ipynb")
    report = study.run_study(tmp_path, tmp_path / "run", conditions=["baseline"], preset="smoke", after=(),
                             notebook_dir=nbdir, stream=False)
    reason = report.failed["baseline"].lower()
    assert "dead" in reason or "died" in reason


@pytest.mark.slow
def test_localization_attribution_notebook(smoke_study):
    import pandas as pd

    _, run, _ = smoke_study
    out = run / "06_localization_attribution"
    m = metrics(out)
    assert m["conditions"] == ["balanced", "baseline"] and m["attribution_conditions"] == ["baseline", "balanced"]
    loc = pd.read_csv(out / "localization.csv")
    # test scope: 2 fold models + their ensemble per condition; oof: one row over the 20 pool videos
    assert sorted(loc.groupby(["condition", "scope"]).size().tolist()) == [1, 1, 3, 3]
    oof = loc[loc["scope"] == "oof"]
    assert (oof["n_videos"] == 20).all() and (oof["n_segments"] == 12).all()  # each whole-video FAKE: one segment
    test = loc[loc["scope"] == "test"]
    assert (test["n_videos"] == 2).all() and (test["n_segments"] == 1).all()  # long REAL + long (whole) FAKE
    assert test["loc_ap_iou50"].between(0, 1).all() and (test["n_proposals"] >= test["n_proposals_real"]).all()
    assert not (out / "frames").exists()  # the K-fold run's full-density test tables were used, not recomputed
    frames = pd.read_csv(run / "baseline" / "predictions_test_frames.csv")
    assert len(frames[frames["fold"].astype(str) != "ensemble"]) == 2 * 2 * 90  # every frame, every fold model
    attr = pd.read_csv(out / "attribution.csv")
    assert set(attr["video_id"]) == {"real_020_long", "fake_021_long"} and len(attr) == 4
    assert {f"drive_{mod}_{rep}" for mod in ("face", "lip", "audio") for rep in ("mean", "donor")} <= set(attr.columns)
    assert attr["blames_donor"].isin(["face", "lip", "audio"]).all()
    assert (attr["donor"] != "").all() and attr["p_fake"].between(0, 1).all()
    assert set(m["real_blame"]) == {"mean", "donor"}
    assert list((out / "figures").glob("ablation_*_long_donor.png"))
