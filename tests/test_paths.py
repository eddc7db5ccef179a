"""Notebook paths resolve against the project root from anywhere; missing inputs name the command that makes them."""
from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm
import pytest

from workbench.analysis import tables as analysis
from workbench.analysis.runs import condition_dirs
from workbench.core import paths
from workbench.core.conditions import condition_config
from workbench.study import runner as study


def test_relative_paths_resolve_against_the_project_root_from_any_folder(tmp_path, monkeypatch):
    root = paths.project_root()
    assert (root / "pyproject.toml").is_file() and (root / "notebooks" / "03_temporal_pfake.ipynb").is_file()
    monkeypatch.chdir(tmp_path)  # e.g. a kernel started in notebooks/, or anywhere else
    data, out, none = paths.in_project("data/demo/npz", "outputs/study", None)
    assert data == root / "data" / "demo" / "npz" and out == root / "outputs" / "study" and none is None
    assert paths.in_project(tmp_path / "x") == tmp_path / "x"  # absolute paths are kept
    assert paths.in_project("outputs") == root / "outputs"  # one in, one out
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    assert paths.in_project("data/demo/npz") == tmp_path / "data" / "demo" / "npz"


def test_missing_inputs_name_the_command_that_makes_them(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    demo = str(paths.missing_dataset(tmp_path / "data" / "demo" / "npz"))
    assert "does not exist" in demo and "`bash scripts/main.sh`" in demo and "workbench demo" in demo
    assert "`workbench ingest VIDEOS data/mine`" in str(paths.missing_dataset(tmp_path / "data" / "mine"))
    with pytest.raises(FileNotFoundError, match=r"nothing in study folder .*run `bash scripts/main.sh` first"):
        analysis.load_runs(tmp_path / "outputs" / "study")
    (tmp_path / "elsewhere" / "baseline").mkdir(parents=True)  # a folder, but no finished condition
    with pytest.raises(FileNotFoundError, match=r"no finished condition .*`workbench study --data DATA --out elsewhere`"):
        condition_dirs(tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match="workbench demo"):
        condition_config(str(tmp_path / "data" / "demo" / "npz"), str(tmp_path / "out"), "baseline")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_notebook_reports_a_missing_input_before_making_a_folder(tmp_path, monkeypatch):
    """Notebook 03 with its default (relative) parameters in an empty project, its kernel in notebooks/."""
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(study.NOTEBOOK_DIR / "03_temporal_pfake.ipynb"), str(tmp_path / "03.ipynb"),
                            progress_bar=False, cwd=str(study.NOTEBOOK_DIR))
    assert f"dataset folder {tmp_path}/data/demo/npz does not exist" in str(err.value)
    assert "bash scripts/main.sh" in str(err.value)
    assert not (tmp_path / "outputs").exists() and not (study.NOTEBOOK_DIR / "outputs").exists()


def test_runner_starts_kernels_in_the_notebook_folder_over_ipc(tmp_path, capfd, monkeypatch):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("x = 0")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell("import os\nprint(os.getcwd(), x)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbdir / "07_probe.ipynb")
    monkeypatch.chdir(tmp_path)  # an output folder given relative to the user's folder stays there
    out = study.execute("07_probe", Path("rel_out"), {"x": 3}, notebook_dir=nbdir, stream=False)
    assert out == tmp_path / "rel_out" / "07_probe.ipynb" and out.exists()
    printed = nbformat.read(out, as_version=4).cells[-1].outputs[0]["text"]
    assert printed.strip() == f"{nbdir} 3"  # the kernel's folder is the notebook's, as under `jupyter lab notebooks/`
    assert "without encryption" not in capfd.readouterr().err


def test_the_study_console_echoes_progress_lines_only(capsys):
    import logging

    from workbench.study.runner import _LineHandler
    lines = ["[baseline] fold 0 epoch   1  train_loss 0.6", "[ray 2/10] balanced fold 1 done", "[72 rows x 7 columns]",
             "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.", "   video_id  label", "WARNING: no test split"]
    _LineHandler().emit(logging.LogRecord("papermill", logging.INFO, "", 0, "\n".join(lines), None, None))
    shown = [ln.removeprefix("  | ") for ln in capsys.readouterr().out.splitlines()]
    assert shown == [lines[0], lines[1], lines[5]]
