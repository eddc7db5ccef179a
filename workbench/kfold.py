"""K-fold experiments: leakage-aware splits, one Trainer per fold, resumable, one results JSON.

Run folder layout (`cfg.out`):
    config.yaml                 the exact config of the run
    splits.json                 the fold assignment (video ids), written before any training
    fold_{k}/                   history.csv, val_videos.csv, val_frames.csv, checkpoints, done.json
    predictions_videos.csv      out-of-fold video predictions of every fold (best checkpoints)
    predictions_frames.csv      out-of-fold per-frame P(Fake) with timestamps
    kfold_results.json          per-fold metrics and best epoch, mean, std, best fold, config, splits
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from workbench.config import Config, add_config_arguments
from workbench.dataset import ClipDataset, DatasetSplit, fit_to_config
from workbench.records import BadRecordError, IndexRow, VideoRecord, scan_folder, write_json
from workbench.trainer import Trainer, epoch_line


# ------------------------------------------------------------------ data
def load_dataset(cfg: Config, validate: bool = True, cache: dict[str, VideoRecord] | None = None) -> DatasetSplit:
    """The dataset folder's rows split into K-fold pool and held-out test; bad files listed, not skipped silently.

    Validation opens each record lazily (metadata and crop structure checked, nothing kept), so it holds one
    record at a time at any dataset size; `cache` is not filled (the ClipDatasets sharing it fill it on demand,
    within data.cache_gb).
    """
    in_pool = lambda r: r.split != "test" or cfg.split.merge_test  # noqa: E731
    scan = scan_folder(cfg.data.root, cfg.data.index, validate=validate)
    if scan.failures and not cfg.data.skip_bad:
        lines = "\n".join(f"  {f}: {r}" for f, r in scan.failures)
        raise ValueError(f"{len(scan.failures)} bad file(s) in {cfg.data.root} (set data.skip_bad=true "
                         f"or --skip-bad to train without them):\n{lines}")
    pool = [r for r in scan.rows if in_pool(r)]
    test = [r for r in scan.rows if not in_pool(r)]
    if not pool:
        raise ValueError(f"{cfg.data.root}: no videos left for the folds (all {len(test)} are marked test)")
    return DatasetSplit(root=Path(cfg.data.root), rows=pool, test_rows=test, failures=scan.failures)


def make_folds(rows: list[IndexRow], cfg: Config) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, val_idx) per fold: stratified by label, grouped by identity, or by label x length bin."""
    s = cfg.split
    y = np.array([r.label for r in rows])
    counts = np.bincount(y, minlength=2)
    if counts.min() < s.kfold:
        raise ValueError(f"{s.kfold}-fold CV needs at least {s.kfold} videos of each class, have REAL {counts[0]}, FAKE {counts[1]}")
    rs = cfg.seed if s.shuffle else None
    X = np.zeros(len(rows))
    if s.kind == "stratified":
        return list(StratifiedKFold(s.kfold, shuffle=s.shuffle, random_state=rs).split(X, y))
    if s.kind == "grouped":
        groups = np.array([r.group for r in rows])
        if len(set(groups)) < s.kfold:
            raise ValueError(f"grouped {s.kfold}-fold CV needs at least {s.kfold} groups, have {len(set(groups))}")
        return list(StratifiedGroupKFold(s.kfold, shuffle=s.shuffle, random_state=rs).split(X, y, groups))
    if s.kind == "length":
        dur = np.array([r.duration for r in rows])
        edges = np.quantile(dur, np.linspace(0, 1, s.length_bins + 1)[1:-1])
        strata = y * s.length_bins + np.digitize(dur, edges)
        # merge strata too small to spread over the folds into their label's largest stratum
        for st in np.unique(strata):
            if (strata == st).sum() < s.kfold:
                same = [t for t in np.unique(strata) if t // s.length_bins == st // s.length_bins and t != st]
                strata[strata == st] = max(same, key=lambda t: (strata == t).sum()) if same else st
        return list(StratifiedKFold(s.kfold, shuffle=s.shuffle, random_state=rs).split(X, strata))
    raise ValueError(f"split.kind must be stratified, grouped or length, got {s.kind!r}")


# ------------------------------------------------------------------ the experiment
def summarize(folds: list[dict]) -> dict:
    """Mean and std (population, as numpy) of every numeric fold metric; the best fold by val_acc."""
    keys = sorted({k for f in folds for k, v in f["metrics"].items() if isinstance(v, (int, float))})
    mean, std = {}, {}
    for k in keys:
        vals = np.array([f["metrics"].get(k, np.nan) for f in folds], dtype=float)
        ok = vals[~np.isnan(vals)]
        mean[k] = float(ok.mean()) if ok.size else float("nan")
        std[k] = float(ok.std()) if ok.size else float("nan")
    accs = [f["metrics"].get("val_acc", -1.0) for f in folds]
    return {"mean": mean, "std": std, "best_fold": int(folds[int(np.nanargmax(accs))]["fold"]) if folds else -1}


def run_kfold(cfg: Config, *, folds_to_run: list[int] | None = None,
              on_epoch_end: Callable[..., None] | None = None, log: Callable[[str], None] = print) -> dict:
    """Cross-validate MMMS-BA; folds already finished under the same config are loaded, not redone."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cache: dict = {}  # decoded records, shared by validation and every fold's datasets
    data = load_dataset(cfg, cache=cache)
    if data.failures:
        log(f"skipping {len(data.failures)} bad file(s): " + "; ".join(f"{f} ({r})" for f, r in data.failures))
    rows = data.rows
    splits = make_folds(rows, cfg)
    split_ids = [{"fold": k, "train_ids": [rows[i].video_id for i in tr], "val_ids": [rows[i].video_id for i in va]}
                 for k, (tr, va) in enumerate(splits)]
    splits_path = out / "splits.json"
    if splits_path.exists():
        saved = json.loads(splits_path.read_text())
        if saved["folds"] != split_ids or saved.get("fingerprint") != cfg.fingerprint():
            raise RuntimeError(f"{out} holds a run with a different configuration or dataset; "
                               f"choose another --out or delete it to start over")
    else:
        write_json(splits_path, {"fingerprint": cfg.fingerprint(), "folds": split_ids})
    cfg.save(out / "config.yaml")
    n_real, n_fake = sum(r.label == 0 for r in rows), sum(r.label == 1 for r in rows)
    log(f"[{cfg.name}] {len(rows)} videos (REAL {n_real} / FAKE {n_fake}), {len(data.test_rows)} held-out test, "
        f"{cfg.split.kfold}-fold {cfg.split.kind}, sampler={cfg.train.weighted_sampler}, "
        f"loss={cfg.loss.kind}{' weighted' if cfg.loss.weighted else ''} on {cfg.loss.on} -> {out}")
    fold_results = []
    for k, (tr, va) in enumerate(splits):
        if folds_to_run is not None and k not in folds_to_run:
            continue
        fdir = out / f"fold_{k}"
        done = fdir / "done.json"
        if done.exists():
            fold_results.append(json.loads(done.read_text()))
            log(f"[{cfg.name}] fold {k}: finished earlier (best epoch {fold_results[-1]['best_epoch']}), skipped")
            continue
        train_ds = ClipDataset([rows[i] for i in tr], data.root, cfg, train=True, cache=cache, seed=cfg.seed + k)
        val_ds = ClipDataset([rows[i] for i in va], data.root, cfg, train=False,
                             full=cfg.data.eval_clip == "full", cache=cache)
        trainer = Trainer(cfg, train_ds, val_ds, fdir)

        def _log_epoch(tr_, epoch, row, best_epoch, _k=k):
            log(f"[{cfg.name}] fold {_k} " + epoch_line(row) + ("  *" if best_epoch == epoch else ""))
            if on_epoch_end is not None:
                on_epoch_end(fold=_k, epoch=epoch, row=row)
        trainer.add_callback("on_epoch_end", _log_epoch)
        fit = trainer.fit()
        metrics = {k_: v for k_, v in fit.best_metrics.items() if k_.startswith("val_") or k_.startswith("train_")}
        res = {"fold": k, "best_epoch": fit.best_epoch, "epochs_run": len(fit.history),
               "stopped_early": fit.stopped_early, "seconds": fit.seconds, "metrics": metrics,
               "checkpoint": str(fit.best_path.relative_to(out)),
               "train_ids": split_ids[k]["train_ids"], "val_ids": split_ids[k]["val_ids"]}
        write_json(done, res)
        fold_results.append(res)
        log(f"[{cfg.name}] fold {k}: best epoch {fit.best_epoch}  val_acc {metrics.get('val_acc', float('nan')):.4f}")
    results = collect(cfg, fold_results, data)
    return results


def collect(cfg: Config, fold_results: list[dict], data: DatasetSplit) -> dict:
    """Write predictions_*.csv and kfold_results.json from the finished folds."""
    out = Path(cfg.out)
    vids, frames = [], []
    for f in fold_results:
        fdir = out / f"fold_{f['fold']}"
        if (fdir / "val_videos.csv").exists():
            vids.append(pd.read_csv(fdir / "val_videos.csv").assign(fold=f["fold"]))
            frames.append(pd.read_csv(fdir / "val_frames.csv").assign(fold=f["fold"]))
    if vids:
        pd.concat(vids, ignore_index=True).to_csv(out / "predictions_videos.csv", index=False)
        pd.concat(frames, ignore_index=True).to_csv(out / "predictions_frames.csv", index=False)
    results = {"condition": cfg.name, "folds": sorted(fold_results, key=lambda f: f["fold"]),
               **summarize(fold_results), "config": cfg.to_dict(),
               "complete": len(fold_results) == cfg.split.kfold,
               "test_ids": [r.video_id for r in data.test_rows],
               "skipped_files": [{"file": f, "reason": r} for f, r in data.failures]}
    write_json(out / "kfold_results.json", results)
    return results


def format_table(results: dict, metrics: tuple[str, ...] = ("val_acc", "val_f1", "val_roc_auc", "val_balanced_acc",
                                                             "val_real_frame_acc", "val_real_frame_pfake_mean")) -> str:
    """The study's per-fold table with mean ± std, as text."""
    head = "fold  epoch  " + "  ".join(f"{m.removeprefix('val_'):>18s}" for m in metrics)
    lines = [head]
    for f in results["folds"]:
        lines.append(f"{f['fold']:4d}  {f['best_epoch']:5d}  " + "  ".join(
            f"{f['metrics'].get(m, float('nan')):18.4f}" for m in metrics))
    lines.append("mean±std     " + "  ".join(
        f"{results['mean'].get(m, float('nan')):10.4f}±{results['std'].get(m, float('nan')):6.4f}" for m in metrics))
    return "\n".join(lines)


# ------------------------------------------------------------------ command line
def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--data", help="dataset folder of npz files (data.root)")
    p.add_argument("--out", help="run folder (default outputs/<name>)")
    p.add_argument("--name", help="condition name")
    p.add_argument("--kfold", type=int, help="number of folds")
    p.add_argument("--split", choices=["stratified", "grouped", "length"], help="how folds are made")
    p.add_argument("--merge-test", action="store_true", help="put clips marked test into the folds (the original study did)")
    p.add_argument("--workers", type=int, help="data loader workers")
    p.add_argument("--epochs", type=int)
    p.add_argument("--use-weighted-sampler", action="store_true", help="inverse class frequency sampler, with replacement")
    p.add_argument("--use-weighted-loss", action="store_true", help="weighted cross-entropy with --class-weights")
    p.add_argument("--class-weights", type=float, nargs=2, metavar=("REAL", "FAKE"))
    p.add_argument("--loss", choices=["ce", "focal", "class_balanced", "logit_adjusted"])
    p.add_argument("--loss-on", choices=["video", "frame", "both"])
    p.add_argument("--focal-gamma", type=float)
    p.add_argument("--focal-alpha", type=float)
    p.add_argument("--cb-beta", type=float)
    p.add_argument("--la-tau", type=float)
    p.add_argument("--posthoc-tau", type=float)
    p.add_argument("--temporal-lambda", type=float)
    p.add_argument("--skip-bad", action="store_true", help="train without files that fail validation")
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--no-progress", action="store_true")


def config_from_args(args: argparse.Namespace) -> Config:
    """Defaults <- --config YAML <- the study's flags <- --set overrides."""
    cfg = Config.load(args.config)
    flag_map = {"data": "data.root", "name": "name", "kfold": "split.kfold", "split": "split.kind",
                "workers": "data.num_workers", "epochs": "train.epochs", "loss": "loss.kind", "loss_on": "loss.on",
                "focal_gamma": "loss.focal_gamma", "focal_alpha": "loss.focal_alpha", "cb_beta": "loss.cb_beta",
                "la_tau": "loss.la_tau", "posthoc_tau": "loss.posthoc_tau", "temporal_lambda": "loss.temporal_lambda",
                "device": "train.device"}
    nested: dict = {}
    for attr, key in flag_map.items():
        v = getattr(args, attr, None)
        if v is not None:
            sec, _, name = key.rpartition(".")
            (nested.setdefault(sec, {}) if sec else nested)[name] = v
    cfg = cfg.merged(nested)
    if getattr(args, "use_weighted_sampler", False):
        cfg.train.weighted_sampler = True
    if getattr(args, "use_weighted_loss", False):
        cfg.loss.weighted = True
    if getattr(args, "class_weights", None):
        cfg.loss.class_weights = list(args.class_weights)
    if getattr(args, "merge_test", False):
        cfg.split.merge_test = True
    if getattr(args, "skip_bad", False):
        cfg.data.skip_bad = True
    if getattr(args, "no_progress", False):
        cfg.train.progress = False
    for o in args.set:
        cfg.set(o)
    if getattr(args, "out", None):
        cfg.out = args.out
    elif cfg.out == Config().out:
        cfg.out = f"outputs/{cfg.name}"
    return cfg


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    try:
        results = run_kfold(cfg)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_table(results))
    print(f"results: {Path(cfg.out) / 'kfold_results.json'}")
    return 0
