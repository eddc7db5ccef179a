"""Finding a study's conditions and a condition's fold checkpoints."""
from __future__ import annotations

from pathlib import Path

from workbench.core import paths


def condition_dirs(run_dir: str | Path) -> dict[str, Path]:
    """Every finished condition folder of a study (those with kfold_results.json), by name.

    A missing study folder, or one without a finished condition, is an error naming the command that makes it.
    """
    run_dir = Path(run_dir)
    found = {p.parent.name: p.parent for p in sorted(run_dir.glob("*/kfold_results.json"))}
    if not found:
        raise paths.missing_study(run_dir, "no finished condition" if run_dir.is_dir() else "nothing")
    return found


# ------------------------------------------------------------------ temporal analysis
def fold_checkpoints(cond_dir: str | Path) -> list[Path]:
    """The best checkpoint of every fold of a condition, in fold order."""
    return [Path(cond_dir) / f["checkpoint"] for f in _folds(cond_dir)]


def _folds(cond_dir: str | Path) -> list[dict]:
    import json
    path = Path(cond_dir) / "kfold_results.json"
    if not path.exists():
        raise paths.missing_study(Path(cond_dir).parent, f"no finished condition {Path(cond_dir).name!r}")
    res = json.loads(path.read_text())
    return sorted(res["folds"], key=lambda f: f["fold"])


def models_for(cond_dir: str | Path, video_id: str) -> tuple[list[Path], str]:
    """The checkpoints that may score a video without having trained on it, and what that makes the score.

    A video no fold trained on (the held-out test) gets the fold ensemble: "held-out". A pool video gets only the
    model of the fold that scored it: "out-of-fold (fold k)"; the other fold models trained on it.
    """
    folds = _folds(cond_dir)
    trained = [f for f in folds if video_id in set(f.get("train_ids", [])) | set(f.get("inner_ids", []))]
    if not trained:
        return [Path(cond_dir) / f["checkpoint"] for f in folds], "held-out"
    scoring = [f for f in folds if video_id in set(f.get("outer_ids") or f.get("val_ids") or [])]
    if not scoring:
        raise KeyError(f"video {video_id!r} was trained on by every fold of {cond_dir}; nothing can score it fairly")
    f = scoring[0]
    return [Path(cond_dir) / f["checkpoint"]], f"out-of-fold (fold {f['fold']})"
