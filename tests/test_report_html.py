"""`workbench report`: one offline HTML page of a study, tables and every figure embedded, notebooks linked."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import cv2
import nbformat
import numpy as np
import pandas as pd
import pytest

from workbench import cli
from workbench.reporting.report_html import TABLES, merge_mean_std, write_report


def _png(path: Path, w: int, h: int, value: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), value, np.uint8)
    img[: h // 2] = 255 - value
    cv2.imwrite(str(path), img)
    return path.read_bytes()


@pytest.fixture
def study_dir(tmp_path) -> Path:
    run = tmp_path / "study"
    (run / "05_compare_conditions").mkdir(parents=True)
    json.dump({"ran": ["baseline", "balanced"], "skipped": [], "failed": {"focal": "ValueError: boom"},
               "seconds": 754.0, "preset": "cpu", "data_dir": "data/demo/npz",
               "stages": [{"name": "baseline", "status": "ran", "seconds": 301.5},
                          {"name": "balanced", "status": "ran", "seconds": 290.0}]},
              (run / "study.json").open("w"))
    pd.DataFrame({"condition": ["baseline", "balanced"], "n_folds": [5, 5], "val_acc_mean": [0.881, 0.976],
                  "val_acc_std": [0.02, 0.011], "val_real_frame_above_05_mean": [0.12, 0.41],
                  "val_real_frame_above_05_std": [0.05, 0.07]}).to_csv(run / "05_compare_conditions" / "paradox_table.csv", index=False)
    pd.DataFrame({"condition": ["balanced"], "metric": ["val_acc"], "diff_mean": [0.095], "ci_lo": [0.07],
                  "ci_hi": [0.12], "paired": [True], "min_detectable": [0.031], "resolvable": [True]}).to_csv(
        run / "05_compare_conditions" / "paired_differences.csv", index=False)
    (run / "05_compare_conditions" / "heldout_test.csv").write_text("\n")  # empty: skipped quietly
    _png(run / "baseline" / "figures" / "training_curves.png", 300, 120, 40)
    _png(run / "03_temporal_pfake" / "figures" / "temporal_baseline_real.png", 1500, 600, 90)
    _png(run / "01_class_imbalance" / "figures" / "class_balance.png", 200, 100, 200)
    # an executed notebook whose last output is a widget with a still (what notebook 03's inspector leaves)
    nb = nbformat.v4.new_notebook()
    still = _png(tmp_path / "still.png", 64, 32, 10)
    cell = nbformat.v4.new_code_cell("inspector", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("execute_result", execution_count=1, data={
        "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0, "model_id": "abc"},
        "image/png": base64.b64encode(still).decode(), "text/plain": "FrameInspector"})]
    nb.cells = [nbformat.v4.new_markdown_cell("# 03 · inspector, $x^2$"), cell]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0, "state": {"abc": {"model_name": "AnyModel", "model_module": "anywidget",
                                                                  "model_module_version": "0.9", "state": {}}}}}
    nbformat.write(nb, run / "03_temporal_pfake" / "03_temporal_pfake.ipynb")
    return run


def test_report_has_the_tables_and_every_figure_embedded(study_dir, capsys):
    assert cli.main(["report", str(study_dir)]) == 0
    page_path = study_dir / "report.html"
    assert f"report: {page_path}" in capsys.readouterr().out
    page = page_path.read_text()
    assert "The paradox table" in page and "0.881 ± 0.020" in page and "0.976 ± 0.011" in page
    assert '<td class="text">baseline</td>' in page and '<td class="">5</td>' in page  # names left, numbers right
    assert "Paired differences against the baseline" in page and "min_<wbr>detectable" in page
    for rel, heading, _ in TABLES:
        if not (study_dir / rel).exists() or (study_dir / rel).stat().st_size < 5:
            assert heading not in page  # missing and empty tables are skipped
    assert "ValueError: boom" in page and "12.6 min" in page and "5.025" in page  # study.json, stage timings
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    pngs = sorted(study_dir.rglob("*.png"))
    assert sorted(base64.b64decode(b) for b in embedded) == sorted(p.read_bytes() for p in pngs)
    order = [page.index(f'id="fig-{g}"') for g in ("01-class-imbalance", "baseline", "03-temporal-pfake")]
    assert order == sorted(order)  # notebook order, condition folders where notebook 02 runs
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)  # nothing from the network


def test_executed_notebooks_render_offline_with_the_still(study_dir):
    page = write_report(study_dir).read_text()
    link = re.search(r'<a href="(report_notebooks/[^"]+\.html)">03_temporal_pfake</a>', page)
    assert link, "the executed notebook is linked"
    html = (study_dir / link.group(1)).read_text()
    assert not re.search(r'<script[^>]*src="https?://', html) and not re.search(r'<link[^>]*href="https?://', html)
    imgs = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', html)
    assert imgs and base64.b64decode(imgs[0])[:8] == b"\x89PNG\r\n\x1a\n"  # the still, not a dead widget
    assert "widget-view+json" not in html


def test_mean_std_columns_merge_and_others_stay():
    df = pd.DataFrame({"condition": ["a"], "acc_mean": [0.5], "acc_std": [0.25], "n": [3], "loss_std": [0.1]})
    out = merge_mean_std(df)
    assert list(out.columns) == ["condition", "acc", "n", "loss_std"] and out["acc"].iloc[0] == "0.500 ± 0.250"


def test_missing_study_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="study folder"):
        write_report(tmp_path / "nope")


def test_engine_counts_carry_no_unit_and_wide_tables_scroll_in_the_page(study_dir):
    study = json.loads((study_dir / "study.json").read_text())
    study["engine"] = {"kind": "ray", "address": None, "num_cpus": 1.0, "num_gpus": 0.25, "max_retries": 3}
    study["timings"] = {"folds_seconds": 12.25, "notebook_s": 3}
    (study_dir / "study.json").write_text(json.dumps(study))
    wide = pd.DataFrame({f"metric_with_a_long_name_{i}": [0.5] for i in range(30)}).assign(condition="baseline")
    wide.to_csv(study_dir / "05_compare_conditions" / "selection_optimism.csv", index=False)
    page = write_report(study_dir, notebooks=False).read_text()
    assert "kind: ray; address: none; num_cpus: 1; num_gpus: 0.25; max_retries: 3" in page and "1.0 s" not in page
    assert "folds_seconds: 12.2 s; notebook_s: 3.0 s" in page  # seconds keep their unit
    css = re.search(r"\.scroll \{([^}]*)\}", page).group(1)
    assert "overflow: auto" in css and "max-width: calc(100vw" in css and "width: max-content" in css
    assert page.count('<div class="scroll"><table>') == page.count("<table>")  # every table in its scrolling box
