"""What every numbered notebook does first, as one call: `nb = setup(output_dir, data_dir=..., run_dir=...)`.

`setup` sets the display (inline matplotlib figures, pandas' table width and precision), resolves the
parameters' paths against the project root (`core.paths.in_project`: a notebook's relative paths mean
the project's folders wherever its kernel runs), checks that the inputs exist (a missing dataset or
study is an error naming the command that makes it, raised before any output folder is made), makes
the output folder and returns a `Notebook` with the resolved paths, the dataset table on first use,
and the writers of figures, tables and metrics.json.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from IPython import get_ipython

from workbench.analysis.notebook_metrics import NotebookMetrics
from workbench.analysis.reports import dataset_table
from workbench.analysis.runs import condition_dirs
from workbench.core import paths
from workbench.data.records import write_json

DISPLAY = {"display.width": 160, "display.max_columns": 30, "display.precision": 4}


def write_metrics(output_dir: str | Path, metrics: NotebookMetrics | Mapping[str, Any],
                  name: str = "metrics.json") -> Path:
    """A notebook's numbers, for later notebooks and tests to read (NaN -> null); a schema writes its to_json()."""
    obj = metrics.to_json() if isinstance(metrics, NotebookMetrics) else metrics
    return write_json(Path(output_dir) / name, obj)


def figure_path(output_dir: str | Path, name: str) -> Path:
    """Where a notebook saves a figure: <output_dir>/figures/<name>.png."""
    p = Path(output_dir) / "figures" / f"{name}.png"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


@dataclass
class Notebook:
    """A notebook's resolved folders and writers (made by `setup`)."""

    out: Path  # the output folder (exists)
    data_dir: Path | None = None  # the dataset folder (exists), when the notebook reads one
    run_dir: Path | None = None  # the study folder (holds a finished condition), when the notebook reads one

    @cached_property
    def table(self) -> pd.DataFrame:
        """The dataset table (analysis.reports.dataset_table), read once."""
        if self.data_dir is None:
            raise ValueError("this notebook was set up without a data_dir")
        return dataset_table(self.data_dir)

    @property
    def pool(self) -> pd.DataFrame:
        """The K-fold pool: the dataset's videos outside the held-out test split."""
        return self.table[self.table["split"] != "test"]

    @property
    def test(self) -> pd.DataFrame:
        """The held-out test videos (split=test)."""
        return self.table[self.table["split"] == "test"]

    def figure(self, name: str) -> Path:
        """Where to save a figure: <out>/figures/<name>.png."""
        return figure_path(self.out, name)

    def csv(self, df: pd.DataFrame, name: str, index: bool = False) -> pd.DataFrame:
        """Write df to <out>/<name>.csv and return it (for display)."""
        df.to_csv(self.out / f"{name}.csv", index=index)
        return df

    def write_metrics(self, metrics: NotebookMetrics) -> Path:
        """Write the notebook's metrics.json from its schema (analysis.notebook_metrics)."""
        return write_metrics(self.out, metrics)


def display_settings(**pandas_options: Any) -> None:
    """Figures inline under a kernel (IPython's `%matplotlib inline`) and pandas' display options (DISPLAY, then
    the given ones, with `display.` left out of their names: setup(precision=3))."""
    shell = get_ipython()
    if shell is not None and hasattr(shell, "kernel"):
        shell.run_line_magic("matplotlib", "inline")
    options = {**DISPLAY, **{f"display.{k}": v for k, v in pandas_options.items()}}
    pd.set_option(*[x for kv in options.items() for x in kv])


def setup(output_dir: str | Path, *, data_dir: str | Path | None = None, run_dir: str | Path | None = None,
          **display: Any) -> Notebook:
    """Display settings, paths resolved against the project root, inputs checked (dataset first, then study),
    then the output folder made. `display` overrides pandas' display options (e.g. precision=3)."""
    display_settings(**display)
    out, data, run = paths.in_project(output_dir, data_dir, run_dir)
    if data is not None and not data.is_dir():
        raise paths.missing_dataset(data)
    if run is not None:
        condition_dirs(run)  # a study without a finished condition: the error names the command
    out.mkdir(parents=True, exist_ok=True)
    return Notebook(out=out, data_dir=data, run_dir=run)


__all__ = ["DISPLAY", "Notebook", "display_settings", "figure_path", "setup", "write_metrics"]
