"""Uncertainty and triage of every K-fold run: which videos a person should check first (report 6.2 / 8.3).

Two sets, each with its own source of spread (workbench.evaluation.triage does the arithmetic):
    test          held-out test videos: every fold model scores each one, and the spread is the standard
                  deviation (ddof=1) of the K fold models' P(Fake) (predictions_test_videos.csv)
    out_of_fold   pool videos, each scored by its own fold's model only: the spread is that model's
                  MC-dropout spread (methods.mc_samples passes at rate model.mc_dropout, else model.dropout;
                  fold_k/outer_mc.csv), available only when the model has dropout
A set whose spread cannot be had says why under `reason`. Per set and vote (`mean`: the members' mean P(Fake);
`weighted`: each member weighted by 1 / (eps + its entropy), evaluation.triage.uncertainty_weighted_vote),
triage_summary gives the error rate, the AURC of abstaining on the most uncertain videos first, the expected
AURC of abstaining at random (the error rate) and the coverage at a 5 % risk.

kfold_results.json `triage`:
    threshold, target_risk
    test, out_of_fold     each: members ("fold models" | "MC-dropout samples"), n_members, n_videos,
                          uncertainty (what the spread is), votes {mean, weighted: triage_summary},
                          curve {coverage, risk} (mean vote), reason (None when available)
    files                 the CSVs beside kfold_results.json:
                          triage_videos.csv  set, video_id, label, p_mean, p_weighted, uncertainty, n_members
                          triage_curves.csv  set, vote, coverage, risk, n_kept, threshold (risk-coverage curves)
                          triage_review.csv  set, rank, video_id, label, p_fake, predicted, uncertainty, margin,
                                             correct: every video, most uncertain first (check from the top)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from workbench.core.config import Config
from workbench.core.runtime import autocast
from workbench.data.dataset import ClipDataset, to_device
from workbench.evaluation.triage import review_list, risk_coverage, triage_summary, uncertainty_weighted_vote
from workbench.model.losses import posthoc_adjust
from workbench.model.mmmsba import enable_mc_dropout
from workbench.training.predict import mc_rate
from workbench.training.trainer import Trainer

TARGET_RISK = 0.05
THRESHOLD = 0.5


# ------------------------------------------------------------------ MC dropout of the out-of-fold videos
@torch.no_grad()
def mc_video_pfake(trainer: Trainer, ds: ClipDataset, samples: int, p: float, seed: int) -> np.ndarray:
    """(n, samples) video P(Fake) of each clip under MC dropout at rate p (CNN features once, the rest per sample).

    The masks come from a generator seeded with `seed`; the caller's RNG and the model's rates are restored.
    """
    model = trainer.model
    rates = {m: m.p for m in model.modules() if isinstance(m, nn.Dropout)}
    out = np.full((len(ds), samples), np.nan)
    devices = [trainer.device.index or 0] if trainer.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for batch in trainer.loaders.loader(ds, False, 0):
                idx = batch["index"].numpy()
                b = to_device(batch, trainer.device)
                model.eval()
                with autocast(trainer.device, trainer.dtype):
                    face, lip = model.encode_frames(b["face"], b["lip"], b["mask"])
                enable_mc_dropout(model, p)  # dropout sits after the CNNs: GRUs and head
                for s in range(samples):
                    with autocast(trainer.device, trainer.dtype):
                        o = model.sequence(face, lip, b["audio"], b["audio_idx"], b["mask"], b["audio_lengths"])
                    vl = posthoc_adjust(o["video_logits"].float(), trainer.class_counts, trainer.cfg.loss.posthoc_tau)
                    out[idx, s] = torch.softmax(vl, -1)[:, 1].cpu().numpy()
    finally:
        for m, rate in rates.items():
            m.p = rate
        model.eval()
    return out


def mc_outer(trainer: Trainer, cfg: Config, outer_ds: ClipDataset, fdir: Path, fold: int) -> dict:
    """fold_k/outer_mc.csv (video_id, label, mc_0..) from the scored model, or the reason there is none."""
    p, s = mc_rate(cfg), cfg.methods.mc_samples
    if p <= 0:
        return {"reason": "the model has no dropout (model.dropout and model.mc_dropout are 0): no MC-dropout spread"}
    if s < 2:
        return {"reason": f"methods.mc_samples={s}: a spread needs at least 2 MC-dropout passes"}
    pf = mc_video_pfake(trainer, outer_ds, s, p, cfg.seed + fold)
    table = pd.DataFrame({"video_id": [r.video_id for r in outer_ds.rows], "label": outer_ds.labels})
    table = pd.concat([table, pd.DataFrame(pf, columns=[f"mc_{i}" for i in range(s)])], axis=1)
    table.to_csv(fdir / "outer_mc.csv", index=False)
    return {"samples": s, "rate": p, "file": "outer_mc.csv"}


# ------------------------------------------------------------------ the triage section
def _set_section(name: str, ids: list[str], y: np.ndarray, members: np.ndarray, what: str, uncertainty: str,
                 tables: dict[str, list[pd.DataFrame]]) -> dict:
    """One set's triage: summaries for both votes, the mean vote's curve; its rows appended to `tables`."""
    p_mean, p_weighted = members.mean(1), uncertainty_weighted_vote(members)
    u = members.std(1, ddof=1)
    votes = {v: triage_summary(y, members, vote=v, target_risk=TARGET_RISK, threshold=THRESHOLD)
             for v in ("mean", "weighted")}
    for vote, p in (("mean", p_mean), ("weighted", p_weighted)):
        tables["curves"].append(risk_coverage(y, p, u, THRESHOLD).assign(set=name, vote=vote))
    tables["videos"].append(pd.DataFrame({"set": name, "video_id": ids, "label": y, "p_mean": p_mean,
                                          "p_weighted": p_weighted, "uncertainty": u, "n_members": members.shape[1]}))
    tables["review"].append(review_list(ids, y, p_mean, u, n=len(ids)).assign(set=name))
    curve = risk_coverage(y, p_mean, u, THRESHOLD)
    return {"members": what, "n_members": int(members.shape[1]), "n_videos": len(ids), "uncertainty": uncertainty,
            "votes": votes, "curve": {"coverage": curve["coverage"].tolist(), "risk": curve["risk"].tolist()},
            "reason": None}


def _test_members(out: Path) -> tuple[list[str], np.ndarray, np.ndarray] | str:
    """(ids, labels, (n, K) fold P(Fake)) of the held-out test, or why there are none."""
    path = out / "predictions_test_videos.csv"
    if not path.exists():
        return "no held-out test predictions (no split=test videos, or eval.test off)"
    v = pd.read_csv(path, dtype={"fold": str, "video_id": str})
    v = v[v["fold"] != "ensemble"]
    wide = v.pivot_table(index="video_id", columns="fold", values="p_fake", sort=False)
    if wide.shape[1] < 2:
        return f"{wide.shape[1]} fold model(s) scored the test: a spread needs at least 2"
    labels = v.groupby("video_id", sort=False)["label"].first().loc[wide.index]
    return list(wide.index), labels.to_numpy(dtype=np.int64), wide.to_numpy(dtype=np.float64)


def _oof_members(out: Path, fold_results: list[dict]) -> tuple[list[str], np.ndarray, np.ndarray] | str:
    """(ids, labels, (n, S) MC-dropout P(Fake)) of the out-of-fold videos, or why there are none."""
    parts, reasons = [], []
    for f in fold_results:
        path = out / f"fold_{f['fold']}" / "outer_mc.csv"
        if path.exists():
            parts.append(pd.read_csv(path, dtype={"video_id": str}))
        else:
            reasons.append((f.get("mc_dropout") or {}).get("reason") or f"fold {f['fold']} has no outer_mc.csv")
    if reasons or not parts:
        return reasons[0] if reasons else "no finished fold"
    t = pd.concat(parts, ignore_index=True)
    cols = [c for c in t.columns if c.startswith("mc_")]
    if t[cols].isna().any().any():
        return "the folds' MC-dropout tables differ in their number of passes"
    return t["video_id"].astype(str).tolist(), t["label"].to_numpy(dtype=np.int64), t[cols].to_numpy(dtype=np.float64)


def triage_section(cfg: Config, fold_results: list[dict]) -> dict:
    """kfold_results.json `triage` and its CSVs beside it (module docstring): test and out-of-fold sets."""
    out = Path(cfg.out)
    tables: dict[str, list[pd.DataFrame]] = {"videos": [], "curves": [], "review": []}
    sets = {}
    test = _test_members(out)
    sets["test"] = {"reason": test} if isinstance(test, str) else _set_section(
        "test", *test, "fold models", "std (ddof=1) of the fold models' P(Fake)", tables)
    oof = _oof_members(out, fold_results)
    sets["out_of_fold"] = {"reason": oof} if isinstance(oof, str) else _set_section(
        "out_of_fold", *oof, "MC-dropout samples", f"std (ddof=1) of {cfg.methods.mc_samples} MC-dropout passes "
        f"of the fold's model at rate {mc_rate(cfg):g}", tables)
    files = {}
    for key, name in (("videos", "triage_videos.csv"), ("curves", "triage_curves.csv"), ("review", "triage_review.csv")):
        if tables[key]:
            table = pd.concat(tables[key], ignore_index=True)
            table[["set", *[c for c in table.columns if c != "set"]]].to_csv(out / name, index=False)
            files[key] = name
    return {"threshold": THRESHOLD, "target_risk": TARGET_RISK, **sets, "files": files}
