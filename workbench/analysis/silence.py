"""The leading-silence check (Smeu et al., CVPR 2025, arXiv 2412.00175).

In FakeAVCeleb and AV-Deepfake1M the fakes start with a short silence that alone nearly separates the classes. Two
checks of whether a detector learned that shortcut:

- `silence_baseline(data_dir)`: the ROC-AUC of the leading-silence length (metadata.csv `lead_silence`, else measured
  on each record's waveform as ingest measures it) used as the score, per split: what the shortcut alone reaches.
- `silence_check(cond_dir, data_dir)`: a run's out-of-fold videos (each scored by its fold's model) and held-out
  videos (the fold ensemble) scored again as counterfactuals, and the change in video ROC-AUC with a paired,
  class-stratified bootstrap interval over videos (95%, fixed seed):
      trim      every video with its leading silence cut: the audio samples and the frames of that span together
      pad_real  REAL videos given the median FAKE leading silence (of the run's training videos) at the start:
                digital silence and the first frame held; FAKE videos unchanged
  MFCCs of every variant, the original included, are computed again from the record's 16 kHz `audio_wave` with
  data.audio.mfcc, so the variants differ only by the edit. Writes silence_check.csv (one row per set and
  counterfactual), silence_check_videos.csv (every video's P(Fake) under each) and silence_check.json.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from workbench.core.config import Config
from workbench.core.runtime import resolve_device
from workbench.data.audio import mfcc, silence
from workbench.data.dataset import ClipDataset, load_for_model
from workbench.data.records import WAVE_SCALE, IndexRow, VideoRecord, load_record, resolve, scan_folder, write_json
from workbench.training.evaluate import clip_predictions, fold_class_counts, load_run_config
from workbench.training.trainer import load_model

COUNTERFACTUALS = ("trim", "pad_real")
CHUNK = 32  # records held in memory at once (three variants each)
Log = Callable[[str], None]


# ------------------------------------------------------------------ leading silence of each video
def lead_table(data_dir: str | Path, cfg: Config | None = None) -> pd.DataFrame:
    """video_id, label, split, lead_silence (s) of every labelled video: metadata.csv, else measured on the waveform."""
    cfg = cfg or Config()
    rows = [r for r in scan_folder(data_dir, cfg.data.index).rows if r.label >= 0]
    df = pd.DataFrame({"video_id": [r.video_id for r in rows], "label": [r.label for r in rows],
                       "split": [r.split for r in rows], "path": [r.path for r in rows]})
    meta = Path(data_dir) / "metadata.csv"
    lead = {}
    if meta.exists():
        m = pd.read_csv(meta, dtype={"video_id": str})
        if "lead_silence" in m.columns:
            lead = dict(zip(m["video_id"], pd.to_numeric(m["lead_silence"], errors="coerce")))
    df["lead_silence"] = [lead.get(v, math.nan) for v in df["video_id"]]
    for i in np.flatnonzero(df["lead_silence"].isna().to_numpy()):
        rec = load_record(resolve(data_dir, df.at[i, "path"]), warn=False, lazy=True)
        df.at[i, "lead_silence"] = measured_lead(rec, cfg)
    return df.drop(columns="path")


def measured_lead(rec: VideoRecord, cfg: Config) -> float:
    """Seconds of leading silence of a record's waveform, as ingest measures it (data.audio.silence)."""
    if rec.audio_wave is None:
        raise ValueError(f"{rec.path or rec.video_id}: no lead_silence in metadata.csv and no audio_wave to measure "
                         f"it on (ingest with this version keeps the waveform)")
    y = rec.audio_wave.astype(np.float32) / np.float32(WAVE_SCALE)
    return float(silence(y, int(rec.wave_rate), cfg.ingest.silence_top_db, hop_length=cfg.audio.hop_length)[0])


def silence_baseline(data_dir: str | Path, cfg: Config | None = None) -> pd.DataFrame:
    """Per split (and `all`): REAL / FAKE counts, median leading silence of each, and the ROC-AUC of the silence alone."""
    df = lead_table(data_dir, cfg)
    out = []
    for split, g in [*df.groupby("split", sort=True), ("all", df)]:
        y, s = g["label"].to_numpy(), g["lead_silence"].to_numpy(dtype=float)
        both = len(set(y)) == 2
        out.append({"split": split, "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()),
                    "lead_real_median": float(np.median(s[y == 0])) if (y == 0).any() else math.nan,
                    "lead_fake_median": float(np.median(s[y == 1])) if (y == 1).any() else math.nan,
                    "roc_auc": float(roc_auc_score(y, s)) if both else math.nan})
    return pd.DataFrame(out)


# ------------------------------------------------------------------ counterfactual records
def _with_wave(rec: VideoRecord, wave: np.ndarray, cfg: Config, **changes) -> VideoRecord:
    """The record with a new waveform and MFCCs computed from it (plus any other field changes)."""
    if int(rec.wave_rate) != cfg.audio.sample_rate:
        raise ValueError(f"{rec.video_id}: waveform at {rec.wave_rate:g} Hz, the run's MFCCs at {cfg.audio.sample_rate}")
    y = wave.astype(np.float32) / np.float32(WAVE_SCALE)
    return replace(rec, audio_wave=wave, audio=mfcc(y, cfg.audio), audio_rate=cfg.audio.sample_rate / cfg.audio.hop_length,
                   **changes)


def recomputed(rec: VideoRecord, cfg: Config) -> VideoRecord:
    """The record unchanged but for its MFCCs, computed again from its waveform."""
    if rec.audio_wave is None:
        raise ValueError(f"{rec.path or rec.video_id}: the record keeps no audio_wave; re-ingest it to run the check")
    return _with_wave(rec, rec.audio_wave, cfg)


def trim_leading(rec: VideoRecord, seconds: float, cfg: Config) -> VideoRecord | None:
    """The record without its first `seconds` (audio samples and the frames before that time), times shifted to 0;
    None when nothing would be left (a silent video)."""
    rec = recomputed(rec, cfg)
    n0 = int(round(max(seconds, 0.0) * rec.wave_rate))
    if n0 == 0:
        return rec
    cut = n0 / rec.wave_rate
    keep = rec.timestamps >= cut - 1e-9
    if not keep.any() or rec.audio_wave.size - n0 < cfg.audio.hop_length:
        return None
    fl = None if rec.frame_label is None else rec.frame_label[keep]
    return _with_wave(rec, rec.audio_wave[n0:], cfg, frames=rec.frames[keep], lip=rec.lip[keep],
                      timestamps=rec.timestamps[keep] - cut, face_found=rec.face_found[keep], frame_label=fl,
                      duration=max(rec.duration - cut, 0.0))


def pad_leading(rec: VideoRecord, seconds: float, cfg: Config) -> VideoRecord:
    """The record with `seconds` (rounded to whole frames) of digital silence first, the first frame held meanwhile."""
    rec = recomputed(rec, cfg)
    k = int(round(max(seconds, 0.0) * rec.fps))
    if k == 0:
        return rec
    pad = k / rec.fps
    hold = lambda x: np.concatenate([np.repeat(x[:1], k, axis=0), x])  # noqa: E731
    wave = np.concatenate([np.zeros(int(round(pad * rec.wave_rate)), dtype=np.int16), rec.audio_wave])
    return _with_wave(rec, wave, cfg, frames=hold(np.asarray(rec.frames)), lip=hold(np.asarray(rec.lip)),
                      timestamps=np.concatenate([np.arange(k) / rec.fps, rec.timestamps + pad]),
                      face_found=hold(rec.face_found), duration=rec.duration + pad,
                      frame_label=None if rec.frame_label is None else hold(rec.frame_label))


# ------------------------------------------------------------------ scoring the variants
def _variants(rec: VideoRecord, lead: float, pad_s: float, cfg: Config) -> tuple[dict[str, VideoRecord], bool]:
    """{original, trim, pad_real} of one record (pad_real: REAL padded, FAKE as is); and whether it could be trimmed."""
    orig = recomputed(rec, cfg)
    trimmed = trim_leading(rec, lead, cfg)
    padded = pad_leading(rec, pad_s, cfg) if rec.label == 0 else orig
    return {"original": orig, "trim": trimmed if trimmed is not None else orig, "pad_real": padded}, trimmed is not None


def score_variants(model, cfg: Config, rows: list[IndexRow], root: Path, leads: dict[str, float], pad_s: float,
                   device, class_counts: Sequence[int] | None = None) -> pd.DataFrame:
    """video_id, label, p_original, p_trim, p_pad_real (video P(Fake) of the evaluation clip), trimmed (bool)."""
    out = []
    for start in range(0, len(rows), CHUNK):
        part, store, vrows, flags = rows[start:start + CHUNK], {}, [], {}
        for r in part:
            rec = load_for_model(resolve(root, r.path), cfg, lazy=False, wave=True)
            variants, flags[r.video_id] = _variants(rec, leads[r.video_id], pad_s, cfg)
            for name, v in variants.items():
                key = f"{r.path}#{name}"
                store[key] = v
                vrows.append(replace(r, path=key, split=name, n_frames=v.n_frames, duration=v.duration))
        ds = ClipDataset(vrows, root, cfg, train=False, full=cfg.data.eval_clip == "full", cache=store)
        videos, _ = clip_predictions(model, ds, cfg, device, class_counts)
        wide = videos.pivot_table(index=["video_id", "label"], columns="split", values="p_fake").reset_index()
        out.append(wide.assign(trimmed=wide["video_id"].map(flags)))
    df = pd.concat(out, ignore_index=True).rename(columns={c: f"p_{c}" for c in ("original", *COUNTERFACTUALS)})
    return df[["video_id", "label", "p_original", *[f"p_{c}" for c in COUNTERFACTUALS], "trimmed"]]


# ------------------------------------------------------------------ the paired comparison
def _auc_rows(scores: np.ndarray, n0: int) -> np.ndarray:
    """ROC-AUC of each row of (B, n) scores whose first n0 columns are REAL and the rest FAKE (Mann-Whitney U)."""
    n1 = scores.shape[1] - n0
    ranks = rankdata(scores, axis=1)
    return (ranks[:, n0:].sum(1) - n1 * (n1 + 1) / 2) / (n0 * n1)


def auc_delta(y: Sequence[int], p_before: Sequence[float], p_after: Sequence[float], n_boot: int = 2000,
              seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """ROC-AUC before and after, their difference and its paired percentile-bootstrap interval (videos resampled
    with replacement within each class, the same draw for both)."""
    y = np.asarray(y)
    a, b = np.asarray(p_before, dtype=float), np.asarray(p_after, dtype=float)
    if not (y.size == a.size == b.size) or not np.isin(y, (0, 1)).all():
        raise ValueError("auc_delta: labels 0/1 and two score arrays of the same length are needed")
    real, fake = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    nan = {"auc_before": math.nan, "auc_after": math.nan, "delta": math.nan, "lo": math.nan, "hi": math.nan}
    if not real.size or not fake.size:
        return nan
    order = np.concatenate([real, fake])
    before, after = _auc_rows(a[order][None], real.size)[0], _auc_rows(b[order][None], real.size)[0]
    rng = np.random.default_rng(seed)
    deltas = []
    step = max(1, 2_000_000 // y.size)
    for s in range(0, n_boot, step):
        m = min(step, n_boot - s)
        idx = np.concatenate([rng.choice(real, (m, real.size)), rng.choice(fake, (m, fake.size))], axis=1)
        deltas.append(_auc_rows(b[idx], real.size) - _auc_rows(a[idx], real.size))
    lo, hi = np.quantile(np.concatenate(deltas), [alpha / 2, 1 - alpha / 2])
    return {"auc_before": float(before), "auc_after": float(after), "delta": float(after - before),
            "lo": float(lo), "hi": float(hi)}


# ------------------------------------------------------------------ the check of one condition
def _run_sets(results: dict, rows: dict[str, IndexRow]) -> dict[str, list[tuple[dict, list[IndexRow]]]]:
    """{set: [(fold, rows it scores)]}: out-of-fold (each fold its outer videos), held-out (every fold, the test)."""
    folds = sorted(results["folds"], key=lambda f: f["fold"])
    missing = [v for f in folds for v in f["outer_ids"] if v not in rows]
    test_ids = (results.get("test") or {}).get("video_ids") or []
    missing += [v for v in test_ids if v not in rows]
    if missing:
        raise ValueError(f"{len(missing)} scored video(s) of the run are not in the dataset folder (e.g. {missing[:3]}); "
                         f"pass the run's data folder")
    sets = {"oof": [(f, [rows[v] for v in f["outer_ids"]]) for f in folds]}
    if test_ids:
        sets["test"] = [(f, [rows[v] for v in test_ids]) for f in folds]
    return sets


def _fake_median(results: dict, leads: pd.DataFrame) -> float:
    """Median leading silence of the FAKE videos the run's models trained on (any fold's fit part)."""
    trained = {v for f in results["folds"] for v in f.get("train_ids", [])}
    fake = leads[(leads["label"] == 1) & leads["video_id"].isin(trained)]["lead_silence"]
    if fake.empty:
        raise ValueError("the run trained on no FAKE video with a known leading silence")
    return float(fake.median())


def _table(videos: pd.DataFrame, pad_s: float, n_boot: int, seed: int) -> pd.DataFrame:
    """One row per set and counterfactual: AUC before and after, the change and its paired bootstrap interval."""
    rows = []
    for set_name, g in videos.groupby("set", sort=False):
        y = g["label"].to_numpy()
        only = float(roc_auc_score(y, g["lead_silence"])) if len(set(y)) == 2 else math.nan
        for cf in COUNTERFACTUALS:
            d = auc_delta(y, g["p_original"], g[f"p_{cf}"], n_boot=n_boot, seed=seed)
            rows.append({"set": set_name, "counterfactual": cf, "n_real": int((y == 0).sum()),
                         "n_fake": int((y == 1).sum()), "auc_original": d["auc_before"],
                         "auc_counterfactual": d["auc_after"], "delta_auc": d["delta"], "ci_low": d["lo"],
                         "ci_high": d["hi"], "auc_silence_only": only, "pad_s": pad_s if cf == "pad_real" else 0.0,
                         "n_untrimmed": int((~g["trimmed"]).sum()) if cf == "trim" else 0})
    return pd.DataFrame(rows)


def silence_check(cond_dir: str | Path, data_dir: str | Path | None = None, *, n_boot: int = 2000, seed: int = 0,
                  device: str | None = None, log: Log = print) -> pd.DataFrame:
    """Score a condition's out-of-fold and held-out videos with their leading silence trimmed, and REAL ones padded;
    write silence_check.csv, silence_check_videos.csv and silence_check.json into the condition folder."""
    cond_dir = Path(cond_dir)
    cfg, results = load_run_config(cond_dir)
    data_dir = Path(data_dir or cfg.data.root)
    leads = lead_table(data_dir, cfg)
    lead_of = dict(zip(leads["video_id"], leads["lead_silence"]))
    rows = {r.video_id: r for r in scan_folder(data_dir, cfg.data.index).rows}
    pad_s = _fake_median(results, leads)
    dev = resolve_device(device or cfg.train.device)
    parts = []
    for set_name, jobs in _run_sets(results, rows).items():
        per_fold = []
        for fold, fold_rows in jobs:
            model, _ = load_model(cond_dir / fold["checkpoint"], cfg, dev)
            s = score_variants(model, cfg, fold_rows, data_dir, lead_of, pad_s, dev, fold_class_counts(cfg, fold))
            per_fold.append(s.assign(fold=str(fold["fold"])))
            log(f"[{cond_dir.name}] silence check, {set_name}, fold {fold['fold']}: {len(s)} videos")
        df = pd.concat(per_fold, ignore_index=True)
        if set_name == "test":  # held-out: the fold ensemble, the mean of the fold models' P(Fake)
            p = [c for c in df.columns if c.startswith("p_")]
            df = df.groupby(["video_id", "label"], sort=False).agg(
                {**{c: "mean" for c in p}, "trimmed": "first"}).reset_index().assign(fold="ensemble")
        parts.append(df.assign(set=set_name))
    videos = pd.concat(parts, ignore_index=True)
    videos["lead_silence"] = videos["video_id"].map(lead_of)
    table = _table(videos, pad_s, n_boot, seed)
    table.to_csv(cond_dir / "silence_check.csv", index=False)
    videos.to_csv(cond_dir / "silence_check_videos.csv", index=False)
    write_json(cond_dir / "silence_check.json", {"condition": results.get("condition", cond_dir.name),
                                                 "data": str(data_dir), "pad_s": pad_s, "n_boot": n_boot, "seed": seed,
                                                 "alpha": 0.05, "rows": table.to_dict("records")})
    return table


def format_silence_table(table: pd.DataFrame) -> str:
    """The check's table as text: per set and counterfactual, ROC-AUC before -> after and the change with its 95% CI."""
    lines = ["set    counterfactual  REAL/FAKE  AUC before -> after   change [95% CI]            silence-only AUC"]
    for r in table.itertuples():
        lines.append(f"{r.set:6s} {r.counterfactual:14s} {r.n_real:4d}/{r.n_fake:<4d}  {r.auc_original:.4f} -> "
                     f"{r.auc_counterfactual:.4f}    {r.delta_auc:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}]"
                     f"   {r.auc_silence_only:.4f}")
    return "\n".join(lines)


__all__ = ["COUNTERFACTUALS", "auc_delta", "format_silence_table", "lead_table", "measured_lead", "pad_leading",
           "score_variants", "silence_baseline", "silence_check", "trim_leading"]


def study_silence_table(run_dir: str | Path) -> pd.DataFrame:
    """Every condition's silence_check.csv of a study folder, one block per condition (empty when none ran)."""
    parts = [pd.read_csv(p).assign(condition=p.parent.name) for p in sorted(Path(run_dir).glob("*/silence_check.csv"))]
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    return table[["condition", *[c for c in table.columns if c != "condition"]]]
