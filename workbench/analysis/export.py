"""Challenge submission files from the records a run scored (`workbench export RUN --format av1m`).

AV-Deepfake1M's two tasks, from the fold ensemble of a run's held-out section (`test`: the test split, or under
split.kind=official the scored split, e.g. val) or of a cross-dataset section (`cross:<name>`, workbench evaluate):
    classification.txt   one `file;score` line per video (score = P(Fake)), as the official evaluator reads it
    localization.json    {file: [[score, start_s, end_s], ...]}: fake-segment proposals from the per-frame P(Fake)
                         (workbench.evaluation.localization.proposals under the run's `localization` settings)
Files are named as the dataset names them: metadata.csv `source_path` of an ingested public dataset (for
AV-Deepfake1M relative to its subset folder, as its metadata's `file`), else `<video_id>.mp4`.
"""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pandas as pd

from workbench.core.config import Config
from workbench.data.records import atomic_write
from workbench.evaluation.localization import check_full_density, proposals

FORMATS = ("av1m",)
SUBSET_RELATIVE = ("av1m",)  # datasets whose metadata names files relative to the subset folder (source_path's first part)


def section_tables(run_dir: str | Path, section: str = "test") -> tuple[pd.DataFrame, pd.DataFrame, Path, Config]:
    """(ensemble videos, ensemble frames, the records' folder, the run's config) of a scored section."""
    run_dir = Path(run_dir)
    res_path = run_dir / "kfold_results.json"
    if not res_path.exists():
        raise FileNotFoundError(f"{run_dir} is not a finished run: no kfold_results.json")
    results, cfg = json.loads(res_path.read_text()), Config.load(run_dir / "config.yaml")
    if section == "test":
        if not results.get("test"):
            raise ValueError(f"{run_dir} scored no held-out records (no `test` section): nothing to export")
        files, data_dir = ("predictions_test_videos.csv", "predictions_test_frames.csv"), Path(cfg.data.root)
    elif section.startswith("cross:"):
        name = section.removeprefix("cross:")
        sec = (results.get("cross") or {}).get(name)
        if sec is None:
            raise ValueError(f"{run_dir} has no cross[{name!r}] section; have {sorted(results.get('cross') or {})} "
                             f"(workbench evaluate RUN DATA adds one)")
        files, data_dir = (sec["files"]["videos"], sec["files"]["frames"]), Path(sec["data"])
    else:
        raise ValueError(f"section must be 'test' or 'cross:<name>', got {section!r}")
    videos, frames = (pd.read_csv(run_dir / f, dtype={"video_id": str, "fold": str}) for f in files)
    return (videos[videos["fold"] == "ensemble"].reset_index(drop=True),
            frames[frames["fold"] == "ensemble"].reset_index(drop=True), data_dir, cfg)


def file_names(data_dir: str | Path, video_ids: list[str]) -> dict[str, str]:
    """video id -> the file name the dataset gives it (metadata.csv source_path), else `<video_id>.mp4`."""
    meta = Path(data_dir) / "metadata.csv"
    names: dict[str, str] = {}
    if meta.exists():
        m = pd.read_csv(meta, dtype=str, keep_default_na=False)
        if "source_path" in m.columns:
            for r in m.itertuples():
                if not r.source_path:
                    continue
                p = PurePosixPath(r.source_path.replace("\\", "/"))
                sub = getattr(r, "dataset", "") in SUBSET_RELATIVE and len(p.parts) > 1
                names[r.video_id] = str(PurePosixPath(*p.parts[1:])) if sub else str(p)
    out = {v: names.get(v, f"{v}.mp4") for v in video_ids}
    dup = pd.Series(list(out.values())).duplicated()
    if dup.any():
        raise ValueError(f"two videos would share the file name {list(pd.Series(list(out.values()))[dup])[:3]}")
    return out


def classification_lines(videos: pd.DataFrame, names: dict[str, str]) -> list[str]:
    """`file;score` per video (score = P(Fake), full precision), sorted by file."""
    return sorted(f"{names[v]};{float(p)!r}" for v, p in zip(videos["video_id"], videos["p_fake"]))


def localization_proposals(frames: pd.DataFrame, names: dict[str, str], cfg: Config) -> dict[str, list[list[float]]]:
    """{file: [[score, start_s, end_s], ...]} of every video, most confident first ([] when none is proposed)."""
    try:
        check_full_density(frames)
    except ValueError as e:
        raise ValueError(f"localization proposals need every frame of each video (eval.full_frames=true): {e}") from None
    out = {}
    for vid, g in frames.sort_values(["video_id", "frame"]).groupby("video_id", sort=True):
        props = proposals(g["timestamp"].to_numpy(), g["p_fake"].to_numpy(), cfg.localization)
        out[names[str(vid)]] = [[float(s), float(a), float(b)] for s, a, b in props[["score", "start", "end"]].to_numpy()]
    return dict(sorted(out.items()))


def export_av1m(run_dir: str | Path, out_dir: str | Path | None = None, section: str = "test") -> dict[str, Path]:
    """Write classification.txt and localization.json (default folder RUN/export_av1m[_<cross name>]); their paths."""
    videos, frames, data_dir, cfg = section_tables(run_dir, section)
    names = file_names(data_dir, [str(v) for v in videos["video_id"]])
    lines = classification_lines(videos, names)
    props = localization_proposals(frames, names, cfg)
    suffix = "" if section == "test" else "_" + section.removeprefix("cross:")
    out = Path(out_dir) if out_dir else Path(run_dir) / f"export_av1m{suffix}"
    paths = {"classification": out / "classification.txt", "localization": out / "localization.json"}
    atomic_write(paths["classification"], lambda tmp: tmp.write_text("".join(f"{ln}\n" for ln in lines)))
    atomic_write(paths["localization"], lambda tmp: tmp.write_text(json.dumps(props)))
    return paths


__all__ = ["FORMATS", "classification_lines", "export_av1m", "file_names", "localization_proposals", "section_tables"]
