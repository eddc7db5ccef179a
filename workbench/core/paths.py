"""Where the project is, so notebooks find `data/` and `outputs/` however they were started.

JupyterLab started as the README says (`jupyter lab notebooks/`) runs kernels inside
`notebooks/`; papermill runs them wherever the runner says. A notebook's parameters cell holds
paths relative to the project root (`data/demo/npz`, `outputs/study`), and its setup cell calls
`in_project` once, so they mean the same folder either way. Paths typed on the command line stay
relative to the user's current folder (argparse hands them over unchanged); the study runner
passes notebooks absolute paths.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "WORKBENCH_ROOT"
MAIN_JOB = "bash scripts/main.sh"


def _is_root(p: Path) -> bool:
    return (p / "pyproject.toml").is_file() and (p / "notebooks").is_dir()


def project_root() -> Path:
    """The folder holding pyproject.toml and notebooks/.

    In order: $WORKBENCH_ROOT; the package's own checkout (an editable install); the nearest folder
    at or above the current one that looks like the project (a kernel started in notebooks/ of a
    non-editable install); else the current folder.
    """
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).expanduser().resolve()
    here = Path(__file__).resolve().parents[2]
    if _is_root(here):
        return here
    cwd = Path.cwd().resolve()
    return next((p for p in (cwd, *cwd.parents) if _is_root(p)), cwd)


def in_project(*paths: str | Path | None) -> Path | None | list[Path | None]:
    """Resolve relative paths against the project root (absolute ones and None pass through).

    One path in, one out; several in, a list out (`data_dir, output_dir = in_project(data_dir, output_dir)`).
    """
    root = project_root()
    out = [None if p is None else (Path(p).expanduser() if Path(p).expanduser().is_absolute()
                                   else root / p) for p in paths]
    return out[0] if len(paths) == 1 else out


def _shown(path: Path) -> str:
    """A path as a person would type it from the project root (relative when inside it)."""
    try:
        return str(path.resolve().relative_to(project_root()))
    except ValueError:
        return str(path)


def missing_dataset(data_dir: str | Path) -> FileNotFoundError:
    """The error for a dataset folder that does not exist, naming the command that makes it."""
    data_dir = Path(data_dir)
    shown = _shown(data_dir)
    if shown.startswith("data/demo"):
        how = f"`{MAIN_JOB}` (or `workbench demo`) builds the demo data"
    else:
        how = f"`workbench ingest VIDEOS {shown}` makes one from labelled videos"
    return FileNotFoundError(f"dataset folder {data_dir} does not exist: {how}")


def missing_study(run_dir: str | Path, what: str = "no finished condition") -> FileNotFoundError:
    """The error for a study folder without the outputs a notebook reads, naming the command that makes them."""
    shown = _shown(Path(run_dir))
    how = (f"run `{MAIN_JOB}` first" if shown == "outputs/study"
           else f"run `workbench study --data DATA --out {shown}` first")
    return FileNotFoundError(f"{what} in study folder {run_dir}: {how}")


__all__ = ["in_project", "missing_dataset", "missing_study", "project_root"]
