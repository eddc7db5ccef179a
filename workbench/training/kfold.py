"""K-fold experiments with nested selection: one Trainer per fold, a held-out test, resumable, one results JSON.

Each outer fold's model fits on its training part, is selected (early stopping, best checkpoint) on
an inner part of its own training clips (`split.selection=inner`, the default; see workbench.data.splits),
and only then scored on the outer fold and on every `split=test` clip, which no fold ever trains on.

Run folder layout (`cfg.out`); the driver alone writes the top-level files, a fold only its `fold_k/`:
    config.yaml                 the exact config of the run
    splits.json                 every fold's train / inner / outer video ids, written before any training
    fold_{k}/                   history.csv (train_*, val_* = selection part, outer_* = scoring fold per epoch),
                                checkpoints, val_* / outer_* predictions of the chosen epoch,
                                outer_frames_full.csv and test_videos.csv / test_frames.csv (every frame), done.json;
                                outer_mc.csv (MC-dropout P(Fake) per outer video, when the model has dropout);
                                with the further methods (workbench.training.methods): pseudo_round_r/ and
                                pseudo_labels.csv (pseudo_label), mmms-ba*_smote.pth (feature_smote, the scored model)
    predictions_videos.csv      out-of-fold video predictions (outer folds, chosen epochs)
    predictions_frames.csv      out-of-fold per-frame P(Fake) of the outer folds' clips
    predictions_frames_full.csv out-of-fold per-frame P(Fake) of every frame of the outer folds' videos
    predictions_test_videos.csv held-out test videos: each fold model and the fold ensemble (fold = "ensemble")
    predictions_test_frames.csv the same, every frame
    kfold_results.json          per-fold metrics, mean and std (ddof=1), selection optimism, the test section,
                                `triage` (workbench.training.uncertainty); a fold's entry also holds `mc_dropout`,
                                and `pseudo_label` / `feature_smote` when those methods are on
    triage_videos.csv, triage_curves.csv, triage_review.csv   uncertainty, risk-coverage curves, the review list
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from workbench.core.config import Config
from workbench.core.metric_names import as_float, metric_mode
from workbench.core.runtime import usable_cores
from workbench.data.dataset import UNLABELED_SPLIT, ClipDataset, DatasetSplit, load_for_model
from workbench.data.records import IndexRow, VideoRecord, resolve, scan_folder, write_json
from workbench.data.splits import (  # noqa: F401  (make_folds: public API)
    FoldPlan,
    make_folds,
    n_folds,
    official_split,
    official_summary,
    plan_folds,
)
from workbench.evaluation.metrics import evaluation_metrics
from workbench.evaluation.parts import part_metrics
from workbench.training.methods import after_fit, pseudo_label_rounds
from workbench.training.predict import predict_record
from workbench.training.trainer import Trainer, epoch_line
from workbench.training.uncertainty import mc_outer, triage_section

OPTIMISM_METRICS = ("acc", "balanced_acc", "roc_auc", "f1")  # video-level metrics whose selection optimism is reported
STD_DDOF = 1  # every standard deviation across folds is the sample std (ddof=1)
SELECTED_ON = {"inner": "chosen on the inner part", "outer": "chosen on the scoring fold (optimistic)",
               "last": "last of a fixed budget (nothing chosen)"}


def resolve_threads(cfg: Config, out: Path) -> None:
    """train.threads 0 -> the count a run started with (its config.yaml), else this machine's usable cores."""
    if cfg.train.threads > 0:
        return
    saved = out / "config.yaml"
    before = Config.load(saved).train.threads if saved.exists() else 0
    cfg.train.threads = before if before > 0 else usable_cores()


# ------------------------------------------------------------------ data
def load_dataset(cfg: Config, validate: bool = True, cache: dict[str, VideoRecord] | None = None,
                 log: Callable[[str], None] = print) -> DatasetSplit:
    """The dataset folder's rows split into K-fold pool and held-out test; bad files listed, not skipped silently.

    Unlabelled rows (label -1, e.g. a dataset's test files) are left out of both, with their count in the log:
    nothing trains, selects, scores or tests on them.

    Validation opens each record lazily (metadata and crop structure checked, nothing kept), so it holds one
    record at a time at any dataset size; `cache` is not filled (the ClipDatasets sharing it fill it on demand,
    within data.cache_gb).
    """
    in_pool = lambda r: r.split != "test" or cfg.split.merge_test  # noqa: E731
    scan = scan_folder(cfg.data.root, cfg.data.index, validate=validate, n_mfcc=cfg.audio.n_mfcc)
    if scan.failures and not cfg.data.skip_bad:
        lines = "\n".join(f"  {f}: {r}" for f, r in scan.failures)
        raise ValueError(f"{len(scan.failures)} bad file(s) in {cfg.data.root} (set data.skip_bad=true "
                         f"or --skip-bad to train without them):\n{lines}")
    unlabelled = lambda r: r.label < 0 or r.split == UNLABELED_SPLIT  # noqa: E731  (a withheld label is never read)
    labelled = [r for r in scan.rows if not unlabelled(r)]
    if len(labelled) < len(scan.rows):
        log(f"{cfg.data.root}: {len(scan.rows) - len(labelled)} unlabelled video(s) (label -1 or split=unlabeled) left "
            f"out of the folds and the test" + (" (self-training candidates)" if cfg.methods.pseudo_label_rounds else ""))
    if cfg.split.kind == "official":
        return official_dataset(cfg, labelled, scan.failures, log, unlabeled=[
            replace(r, label=-1, split=UNLABELED_SPLIT) for r in scan.rows if unlabelled(r)])
    pool = [r for r in labelled if in_pool(r)]
    test = [r for r in labelled if not in_pool(r)]
    if not pool:
        raise ValueError(f"{cfg.data.root}: no videos left for the folds (all {len(test)} are marked test)")
    return DatasetSplit(root=Path(cfg.data.root), rows=pool, test_rows=test, failures=scan.failures,
                        unlabeled_rows=[replace(r, label=-1, split=UNLABELED_SPLIT) for r in scan.rows if unlabelled(r)])


def official_dataset(cfg: Config, labelled: list[IndexRow], failures: list, log: Callable[[str], None],
                     unlabeled: list[IndexRow] = ()) -> DatasetSplit:
    """split.kind=official: every labelled row is fold 0's (data.splits.official_plan), and the scored split is the
    held-out test too: no model trains or selects on it, and it is scored as the test is (the `test` section)."""
    if cfg.split.merge_test:
        raise ValueError("split.merge_test has no meaning under split.kind=official: the test split is what it scores")
    o = official_split(labelled)
    log(f"[{cfg.name}] official split: fit on train, select on "
        f"{o.selection_split or 'an inner part of train'}, score on {o.scored_split} ({o.scored.size} videos)")
    return DatasetSplit(root=Path(cfg.data.root), rows=labelled, test_rows=[labelled[i] for i in o.scored],
                        failures=failures, unlabeled_rows=list(unlabeled))


def check_splits(out: Path, cfg: Config, plans: list[FoldPlan]) -> None:
    """Write splits.json, or refuse a folder that holds a run with other splits or settings."""
    path = out / "splits.json"
    folds = [p.to_dict() for p in plans]
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("folds") != folds or saved.get("fingerprint") != cfg.fingerprint():
            raise RuntimeError(f"{out} holds a run with a different configuration or dataset; "
                               f"choose another --out or delete it to start over")
    else:
        write_json(path, {"fingerprint": cfg.fingerprint(), "selection": cfg.split.selection, "folds": folds})


# ------------------------------------------------------------------ one fold
def selection_optimism(history: pd.DataFrame, best_epoch: int, metrics: tuple[str, ...] = OPTIMISM_METRICS) -> dict:
    """Per metric: what the study's protocol would print (the outer metric at the epoch that optimises it) minus
    the honest figure (the outer metric at the epoch chosen on the selection part); >= 0, the amount it flatters."""
    out = {}
    at = history.set_index("epoch")
    for m in metrics:
        col = f"outer_{m}"
        if col not in at or best_epoch not in at.index:
            continue
        values = at[col].astype(float)
        if values.isna().all():
            continue
        mode = metric_mode(col)
        proto_epoch = int(values.idxmax() if mode == "max" else values.idxmin())
        honest, protocol = float(values.loc[best_epoch]), float(values.loc[proto_epoch])
        gap = protocol - honest if mode == "max" else honest - protocol
        out[m] = {"protocol": protocol, "honest": honest, "optimism": gap, "protocol_epoch": proto_epoch}
    return out


def _datasets(cfg: Config, plan: FoldPlan, data: DatasetSplit, cache: dict) -> tuple[ClipDataset, ...]:
    """(fit, selection, outer) datasets of one fold; under selection=outer the selection set is the outer fold."""
    by_id = {r.video_id: r for r in data.rows}
    pick = lambda ids: [by_id[v] for v in ids]  # noqa: E731
    full = cfg.data.eval_clip == "full"
    fit = ClipDataset(pick(plan.train_ids), data.root, cfg, train=True, cache=cache, seed=cfg.seed + plan.fold)
    outer = ClipDataset(pick(plan.outer_ids), data.root, cfg, train=False, full=full, cache=cache)
    if plan.inner_ids:
        sel = ClipDataset(pick(plan.inner_ids), data.root, cfg, train=False, full=full, cache=cache)
    else:  # outer: the scoring fold selects (the original study); last: nothing selects
        sel = None if cfg.split.selection == "last" else outer
    return fit, sel, outer


def full_frames(model: torch.nn.Module, cfg: Config, root: Path, rows: list[IndexRow], device: torch.device,
                cache: dict | None = None) -> pd.DataFrame:
    """Per-frame P(Fake) of every frame of each video (records streamed from disk unless cached)."""
    tables = []
    for r in rows:
        rec = (cache or {}).get(r.path) or load_for_model(resolve(root, r.path), cfg, lazy=True)
        df = predict_record([model], rec, chunk=cfg.train.chunk_size, device=device, amp=cfg.train.amp)
        tables.append(df.assign(video_id=r.video_id, label=r.label))
    cols = ["video_id", "label", "frame", "timestamp", "p_fake", "face_found", "frame_label"]
    return pd.concat(tables, ignore_index=True)[cols] if tables else pd.DataFrame(columns=cols)


def score_fold(trainer: Trainer, fit_best: Path, cfg: Config, plan: FoldPlan, data: DatasetSplit, fdir: Path,
               cache: dict) -> dict:
    """With the chosen checkpoint: every frame of the outer fold's videos, and the held-out test clips (the
    video P(Fake) of their evaluation clip, as validation scores it, and every frame). Returns the test metrics."""
    state = torch.load(fit_best, map_location="cpu", weights_only=False)
    trainer.model.load_state_dict(state["model"])
    model = trainer.model.eval()
    if cfg.eval.full_frames:
        by_id = {r.video_id: r for r in data.rows}
        full_frames(model, cfg, data.root, [by_id[v] for v in plan.outer_ids], trainer.device, cache).to_csv(
            fdir / "outer_frames_full.csv", index=False)
    if not (cfg.eval.test and data.test_rows):
        return {}
    # the test clips are decoded once per condition, not once per fold: they join the shared cache (its budget)
    test_ds = ClipDataset(data.test_rows, data.root, cfg, train=False, full=cfg.data.eval_clip == "full", cache=cache)
    ev = trainer.evaluate(test_ds, prefix="test_")
    frames = full_frames(model, cfg, data.root, data.test_rows, trainer.device, cache) if cfg.eval.full_frames else ev.frames
    ev.videos.to_csv(fdir / "test_videos.csv", index=False)
    frames.to_csv(fdir / "test_frames.csv", index=False)
    loc = cfg.localization if cfg.eval.full_frames or cfg.data.eval_clip == "full" else None
    return {f"test_{k}": float(v) for k, v in evaluation_metrics(ev.videos, frames, loc).items()}


def run_fold(cfg: Config, plan: FoldPlan, data: DatasetSplit, *, cache: dict | None = None,
             on_epoch_end: Callable[..., None] | None = None, log: Callable[[str], None] = print) -> dict:
    """Train, select and score one fold; writes only `fold_k/` (done.json last). A finished fold is read back."""
    k = plan.fold
    fdir = Path(cfg.out) / f"fold_{k}"
    done = fdir / "done.json"
    if done.exists():
        res = json.loads(done.read_text())
        log(f"[{cfg.name}] fold {k}: finished earlier (best epoch {res['best_epoch']}), skipped")
        return res
    cache = {} if cache is None else cache
    fit_ds, sel_ds, outer_ds = _datasets(cfg, plan, data, cache)
    extra: dict = {}  # what the study's further methods record (workbench.training.methods, .uncertainty)
    if cfg.methods.pseudo_label_rounds > 0:
        fit_ds, extra["pseudo_label"] = pseudo_label_rounds(cfg, plan, data, fit_ds, sel_ds, fdir, log)
    trainer = Trainer(cfg, fit_ds, sel_ds, fdir, outer_ds=outer_ds)

    def _log_epoch(tr_, epoch, row, best_epoch):
        log(f"[{cfg.name}] fold {k} " + epoch_line(row) + ("  *" if best_epoch == epoch else ""))
        if on_epoch_end is not None:
            on_epoch_end(fold=k, epoch=epoch, row=row)
    trainer.add_callback("on_epoch_end", _log_epoch)
    fit = trainer.fit()
    scored, rescored = after_fit(trainer, fit, cfg, plan, fit_ds, sel_ds, outer_ds, fdir, extra)  # feature SMOTE
    test = score_fold(trainer, scored, cfg, plan, data, fdir, cache)
    extra["mc_dropout"] = mc_outer(trainer, cfg, outer_ds, fdir, k)
    metrics = {m: v for m, v in {**fit.best_metrics, **rescored}.items() if m.startswith(("train_", "val_", "outer_"))}
    res = {"fold": k, "best_epoch": fit.best_epoch, "epochs_run": len(fit.history),
           "stopped_early": fit.stopped_early, "seconds": fit.seconds, "selection": cfg.split.selection,
           "metrics": metrics, "selection_optimism": selection_optimism(fit.history, fit.best_epoch),
           "test_metrics": test, "checkpoint": str(scored.relative_to(cfg.out)), **extra, **plan.to_dict()}
    write_json(done, res)
    log(f"[{cfg.name}] fold {k}: epoch {fit.best_epoch} {SELECTED_ON[cfg.split.selection]}"
        f"  outer_acc {metrics.get('outer_acc', math.nan):.4f}" + (f"  test_acc {test['test_acc']:.4f}" if test else ""))
    return res


# ------------------------------------------------------------------ the experiment
def summarize(folds: list[dict], key: str = "metrics") -> dict:
    """Mean and sample std (ddof=1) over folds of every numeric metric in `fold[key]`."""
    # None is a NaN read back from JSON (done.json): a fold finished earlier counts like one just trained
    names = sorted({m for f in folds for m, v in (f.get(key) or {}).items() if v is None or isinstance(v, (int, float))})
    mean, std = {}, {}
    for m in names:
        vals = np.array([as_float((f.get(key) or {}).get(m)) for f in folds], dtype=float)
        ok = vals[~np.isnan(vals)]
        mean[m] = float(ok.mean()) if ok.size else math.nan
        std[m] = float(ok.std(ddof=STD_DDOF)) if ok.size > STD_DDOF else math.nan
    return {"mean": mean, "std": std}


def prepare(cfg: Config, cache: dict | None = None, log: Callable[[str], None] = print) -> tuple[DatasetSplit, list[FoldPlan]]:
    """The driver's set-up: dataset, fold plans, splits.json and config.yaml (written once, checked on resume)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    resolve_threads(cfg, out)
    data = load_dataset(cfg, cache=cache, log=log)
    if data.failures:
        log(f"skipping {len(data.failures)} bad file(s): " + "; ".join(f"{f} ({r})" for f, r in data.failures))
    plans = plan_folds(data.rows, cfg)
    check_splits(out, cfg, plans)
    cfg.save(out / "config.yaml")
    rows = data.rows
    n_real, n_fake = sum(r.label == 0 for r in rows), sum(r.label == 1 for r in rows)
    t_real, t_fake = sum(r.label == 0 for r in data.test_rows), sum(r.label == 1 for r in data.test_rows)
    log(f"[{cfg.name}] {len(rows)} videos (REAL {n_real} / FAKE {n_fake}), held-out test {len(data.test_rows)} "
        f"(REAL {t_real} / FAKE {t_fake}), {n_folds(cfg)}-fold {cfg.split.kind}, epoch "
        f"{SELECTED_ON[cfg.split.selection]}, {cfg.train.threads} torch thread(s), sampler={cfg.train.weighted_sampler}, "
        f"loss={cfg.loss.kind}{' weighted' if cfg.loss.weighted else ''} on {cfg.loss.on} -> {out}")
    return data, plans


def _fold_tables(out: Path, fold_results: list[dict], name: str) -> pd.DataFrame | None:
    """fold_k/<name> of every finished fold with a `fold` column (None when no fold wrote it)."""
    parts = [pd.read_csv(out / f"fold_{f['fold']}" / name).assign(fold=f["fold"])
             for f in fold_results if (out / f"fold_{f['fold']}" / name).exists()]
    return pd.concat(parts, ignore_index=True) if parts else None


def heldout_section(cfg: Config, fold_results: list[dict], data: DatasetSplit) -> dict | None:
    """The held-out test: per-fold metrics, their mean and std, and the fold ensemble (mean of fold P(Fake))."""
    out = Path(cfg.out)
    videos, frames = _fold_tables(out, fold_results, "test_videos.csv"), _fold_tables(out, fold_results, "test_frames.csv")
    if videos is None or frames is None:
        return None
    ens_v = videos.groupby("video_id", sort=False).agg(label=("label", "first"), p_fake=("p_fake", "mean")).reset_index()
    keys = ["video_id", "frame"]
    ens_f = frames.groupby(keys, sort=False).agg(label=("label", "first"), timestamp=("timestamp", "first"),
                                                 p_fake=("p_fake", "mean"), frame_label=("frame_label", "first"),
                                                 p_fake_std=("p_fake", "std")).reset_index()
    pd.concat([videos, ens_v.assign(fold="ensemble")], ignore_index=True).to_csv(out / "predictions_test_videos.csv", index=False)
    pd.concat([frames, ens_f.assign(fold="ensemble")], ignore_index=True).to_csv(out / "predictions_test_frames.csv", index=False)
    per_fold = [{"fold": f["fold"], "metrics": f.get("test_metrics") or {}} for f in fold_results]
    return {"video_ids": [r.video_id for r in data.test_rows],
            "n_real": int(sum(r.label == 0 for r in data.test_rows)), "n_fake": int(sum(r.label == 1 for r in data.test_rows)),
            "folds": per_fold, **summarize(per_fold),
            "ensemble": {f"test_{k}": v for k, v in evaluation_metrics(ens_v, ens_f, cfg.localization if cfg.eval.full_frames else None).items()},
            "parts": part_metrics(ens_v, ens_f, {r.video_id: r.n_frames for r in data.test_rows},
                                  max((r.n_frames for r in data.rows), default=0)),
            "frames": "every frame of each test video; video P(Fake) from its evaluation clip"}


def collect(cfg: Config, fold_results: list[dict], data: DatasetSplit) -> dict:
    """Write the predictions_*.csv tables and kfold_results.json from the finished folds (the driver's job)."""
    out = Path(cfg.out)
    fold_results = sorted(fold_results, key=lambda f: f["fold"])
    for src, dst in (("outer_videos.csv", "predictions_videos.csv"), ("outer_frames.csv", "predictions_frames.csv"),
                     ("outer_frames_full.csv", "predictions_frames_full.csv")):
        table = _fold_tables(out, fold_results, src)
        if table is not None:
            table.to_csv(out / dst, index=False)
    optimism = {m: [f["selection_optimism"][m]["optimism"] for f in fold_results if m in f.get("selection_optimism", {})]
                for m in OPTIMISM_METRICS}
    outer_acc = [f["metrics"].get("outer_acc", -1.0) for f in fold_results]
    results = {"condition": cfg.name, "selection": cfg.split.selection, "std_ddof": STD_DDOF, "folds": fold_results,
               **summarize(fold_results),
               "best_fold": int(fold_results[int(np.nanargmax(outer_acc))]["fold"]) if fold_results else -1,
               "selection_optimism": {m: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=STD_DDOF)) if len(v) > 1
                                          else math.nan, "per_fold": v} for m, v in optimism.items() if v},
               "test": heldout_section(cfg, fold_results, data), "config": cfg.to_dict(),
               "complete": len(fold_results) == n_folds(cfg),
               "test_ids": [r.video_id for r in data.test_rows],
               "skipped_files": [{"file": f, "reason": r} for f, r in data.failures]}
    results["triage"] = triage_section(cfg, fold_results)  # after heldout_section: it reads predictions_test_videos.csv
    results.update(_official_keys(cfg, data, results["test"]))
    results.update(_kept_sections(out))
    write_json(out / "kfold_results.json", results)
    return results


def _official_keys(cfg: Config, data: DatasetSplit, test: dict | None) -> dict:
    """Under split.kind=official: scored_split and the official parts; the test section names its split."""
    if cfg.split.kind != "official":
        return {}
    keys = official_summary(data.rows, cfg)
    if test:
        test["split"] = keys["scored_split"]
    return keys


KEPT_SECTIONS = ("cross",)  # written into kfold_results.json by later commands (workbench evaluate); kept on rewrite


def _kept_sections(out: Path) -> dict:
    """The sections of an existing kfold_results.json that later commands added (a resumed run keeps them)."""
    path = out / "kfold_results.json"
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    return {k: old[k] for k in KEPT_SECTIONS if k in old}


def format_table(results: dict, metrics: tuple[str, ...] = ("outer_acc", "outer_f1", "outer_roc_auc", "outer_balanced_acc",
                                                             "outer_real_frame_acc", "outer_real_frame_pfake_mean")) -> str:
    """The study's per-fold table (outer folds, epoch chosen on the selection part) with mean ± std (ddof=1)."""
    where = SELECTED_ON.get(results.get("selection", "inner"), "")
    head = "fold  epoch  " + "  ".join(f"{m.removeprefix('outer_'):>18s}" for m in metrics)
    lines = [f"outer-fold metrics, epoch {where}; std with ddof={results.get('std_ddof', 1)}", head]
    if results.get("official"):
        o = results["official"]
        lines.insert(0, f"official split (one fold): fit on {o['train']}, selected on {o['selection']}, "
                        f"scored on {o['scored']}")
    for f in results["folds"]:
        lines.append(f"{f['fold']:4d}  {f['best_epoch']:5d}  " + "  ".join(
            f"{as_float(f['metrics'].get(m)):18.4f}" for m in metrics))
    lines.append("mean±std     " + "  ".join(
        f"{as_float(results['mean'].get(m)):10.4f}±{as_float(results['std'].get(m)):6.4f}" for m in metrics))
    opt = results.get("selection_optimism", {}).get("acc")
    if opt:
        lines.append(f"selection optimism of acc (max over epochs of outer acc - honest): {opt['mean']:+.4f}")
    test = results.get("test")
    if test:
        e = test["ensemble"]
        lines.append(f"held-out {test.get('split', 'test')} ({test['n_real']} REAL / {test['n_fake']} FAKE), fold ensemble: "
                     f"acc {as_float(e.get('test_acc')):.4f}  roc_auc {as_float(e.get('test_roc_auc')):.4f}  "
                     f"REAL-frame P(Fake) {as_float(e.get('test_real_frame_pfake_mean')):.4f}")
        lines += part_lines(test.get("parts") or {})
    return "\n".join(lines)


def part_lines(parts: dict) -> list[str]:
    """The held-out parts (evaluation.parts), one line each."""
    lines = []
    if "short" in parts:
        s = parts["short"]
        lines.append(f"  short whole clips ({s['n_real']} REAL / {s['n_fake']} FAKE): roc_auc {as_float(s['roc_auc']):.4f}  "
                     f"acc {as_float(s['acc']):.4f}")
    if "partial" in parts:
        s = parts["partial"]
        lines.append(f"  partial fakes ({s['n_fake']}): video P(Fake) {as_float(s['fake_video_pfake_mean']):.4f}  "
                     f"frame roc_auc inside them {as_float(s['true_frame_roc_auc_in_fake']):.4f}")
    if "long" in parts:
        s = parts["long"]
        lines.append(f"  long clips ({s['n_real']} REAL / {s['n_fake']} FAKE): REAL-frame P(Fake) "
                     f"{as_float(s['real_frame_pfake_mean']):.4f} (above 0.5: {as_float(s['real_frame_above_05']):.4f})  "
                     f"FAKE video P(Fake) {as_float(s['fake_video_pfake_mean']):.4f}")
    return lines


