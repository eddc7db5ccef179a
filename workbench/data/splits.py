"""Leakage-aware splits: K outer folds, and inside each outer training fold an inner part for model selection.

    outer fold k      scored only: its metrics are reported, never used for a choice
    inner part        held out of fold k's training clips; early stopping and the best checkpoint read it
    train part        what the fold's model fits on

The outer folds are scikit-learn's StratifiedKFold (by label, or label x length bin) or
StratifiedGroupKFold (identities never on both sides). The inner part is drawn from the outer
training fold alone (StratifiedShuffleSplit, or StratifiedGroupKFold when the split is grouped), so
nothing about an outer fold's clips, their labels included, can reach its model or its selection.
With `split.selection=outer` there is no inner part and selection reads the scoring fold, as the
original study did.

`split.kind=official` is the dataset's own protocol as one fold (fold 0): the model fits on the `train` split,
is selected on `dev` / `val` and scored on `test` (index.csv `split`, kept verbatim by ingest). Where no labelled
test split exists (AV-Deepfake1M withholds its test labels) it is scored on `val` and selected on an inner part of
`train` grouped by identity; never on the scored split.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, StratifiedShuffleSplit

from workbench.core.config import Config
from workbench.data.records import IndexRow

MAX_INNER_SHARE = 0.5  # the inner part grows up to this share of the outer training fold to reach its minimum
OFFICIAL_TRAIN = "train"
OFFICIAL_SELECTION = ("dev", "val", "validation")  # a dataset's selection split, by any of these names
OFFICIAL_TEST = "test"


@dataclass
class FoldPlan:
    """The clips of one fold, by video id: what the model fits on, selects on and is scored on."""

    fold: int
    train_ids: list[str]  # the model fits on these
    inner_ids: list[str] = field(default_factory=list)  # selection part (empty under selection=outer)
    outer_ids: list[str] = field(default_factory=list)  # the scoring fold

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def selection_ids(self) -> list[str]:
        """The clips early stopping and checkpointing read: the inner part, else the scoring fold."""
        return self.inner_ids or self.outer_ids


def make_folds(rows: list[IndexRow], cfg: Config) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, val_idx) per outer fold: stratified by label, grouped by identity, or by label x length bin."""
    s = cfg.split
    y = np.array([r.label for r in rows])
    if (y < 0).any():
        raise ValueError(f"{int((y < 0).sum())} unlabelled video(s) (label -1) cannot be split into folds; leave them out")
    counts = np.bincount(y, minlength=2)
    if counts.min() < s.kfold:
        raise ValueError(f"{s.kfold}-fold CV needs at least {s.kfold} videos of each class, have REAL {counts[0]}, FAKE {counts[1]}")
    if s.kind == "official":
        o = official_split(rows)
        return [(np.sort(np.concatenate([o.train, o.selection])), o.scored)]
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
        return list(StratifiedKFold(s.kfold, shuffle=s.shuffle, random_state=rs).split(X, _length_strata(rows, y, cfg)))
    raise ValueError(f"split.kind must be stratified, grouped, length or official, got {s.kind!r}")


def _length_strata(rows: list[IndexRow], y: np.ndarray, cfg: Config) -> np.ndarray:
    """label x video-length bin; strata too small to spread over the folds join their label's largest stratum."""
    s = cfg.split
    dur = np.array([r.duration for r in rows])
    edges = np.quantile(dur, np.linspace(0, 1, s.length_bins + 1)[1:-1])
    strata = y * s.length_bins + np.digitize(dur, edges)
    for st in np.unique(strata):
        if (strata == st).sum() < s.kfold:
            same = [t for t in np.unique(strata) if t // s.length_bins == st // s.length_bins and t != st]
            strata[strata == st] = max(same, key=lambda t: (strata == t).sum()) if same else st
    return strata


def inner_split(rows: list[IndexRow], train_idx: np.ndarray, cfg: Config, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit_idx, inner_idx): the selection part of one outer training fold, drawn from those clips alone.

    Stratified by label (grouped by identity when the outer split is grouped), `split.inner_size` of the
    clips, grown until it holds `split.inner_min_per_class` of each class; a named error when it cannot.
    """
    s = cfg.split
    train_idx = np.asarray(train_idx)
    y = np.array([rows[i].label for i in train_idx])
    groups = np.array([rows[i].group for i in train_idx])
    counts = np.bincount(y, minlength=2)
    need = s.inner_min_per_class
    if counts.min() < need + 1:
        raise ValueError(_inner_error(fold, counts, need, "the outer training fold is too small"))
    share = max(s.inner_size, need / counts.min())
    while share <= MAX_INNER_SHARE + 1e-9:
        fit, inner = _draw_inner(y, groups, share, grouped=s.kind in ("grouped", "official"), seed=cfg.seed * 1000 + fold)
        have, left = np.bincount(y[inner], minlength=2), np.bincount(y[fit], minlength=2)
        if have.min() >= need and left.min() >= 1:
            return train_idx[fit], train_idx[inner]
        share += 0.05
    raise ValueError(_inner_error(fold, counts, need, f"no inner part of at most {MAX_INNER_SHARE:.0%} of it has enough"))


def _draw_inner(y: np.ndarray, groups: np.ndarray, share: float, grouped: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One stratified (or stratified-grouped) draw of about `share` of the clips: (fit, inner) positions."""
    X = np.zeros(len(y))
    if not grouped:
        return next(StratifiedShuffleSplit(1, test_size=share, random_state=seed).split(X, y))
    n_splits = min(max(2, int(round(1 / share))), len(set(groups)))
    if n_splits < 2:
        return np.arange(len(y)), np.zeros(0, dtype=int)
    return next(StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(X, y, groups))


def _inner_error(fold: int, counts: np.ndarray, need: int, why: str) -> str:
    return (f"fold {fold}: cannot hold out an inner validation part with at least {need} REAL and {need} FAKE clips "
            f"({why}: REAL {counts[0]}, FAKE {counts[1]}); use fewer folds, lower split.inner_min_per_class, "
            f"or split.selection=outer (selection on the scoring fold, as the original study did)")


def plan_folds(rows: list[IndexRow], cfg: Config) -> list[FoldPlan]:
    """Every fold's train, inner and outer video ids under the configured split and selection."""
    if cfg.split.kind == "official":
        return [official_plan(rows, cfg)]
    plans = []
    for k, (tr, va) in enumerate(make_folds(rows, cfg)):
        if cfg.split.selection == "inner":
            fit, inner = inner_split(rows, tr, cfg, k)
        else:  # outer: selection reads the scoring fold; last: nothing is selected
            fit, inner = tr, np.zeros(0, dtype=int)
        ids = lambda idx: [rows[i].video_id for i in idx]  # noqa: E731
        plans.append(FoldPlan(fold=k, train_ids=ids(fit), inner_ids=ids(inner), outer_ids=ids(va)))
    return plans


# ------------------------------------------------------------------ the dataset's own protocol
@dataclass
class OfficialSplit:
    """Positions (into the rows) of the official protocol's parts and the names of the splits they come from."""

    train: np.ndarray  # the train split: fit (and, without a selection split, the inner part drawn from it)
    selection: np.ndarray  # dev / val when the test split is scored; empty otherwise
    scored: np.ndarray  # test, or val where the test labels are withheld
    scored_split: str
    selection_split: str  # "dev", "val", ... or "" (an inner part of train)


def official_split(rows: list[IndexRow]) -> OfficialSplit:
    """The dataset's own train / selection / scored parts from index.csv `split`; a named error when it has none."""
    y = np.array([r.label for r in rows])
    if (y < 0).any():
        raise ValueError(f"{int((y < 0).sum())} unlabelled video(s) (label -1) cannot be part of the official split")
    names = [r.split.strip().lower() for r in rows]
    count = Counter(names)
    known = {OFFICIAL_TRAIN, OFFICIAL_TEST, *OFFICIAL_SELECTION}
    unknown = {n: c for n, c in count.items() if n not in known}
    if unknown:
        raise ValueError(f"split.kind=official knows the splits train, {' / '.join(OFFICIAL_SELECTION)} and test; "
                         f"index.csv also has {unknown}")
    where = lambda keep: np.array([i for i, n in enumerate(names) if n in keep], dtype=int)  # noqa: E731
    sel_names = [n for n in OFFICIAL_SELECTION if n in count]
    if not count.get(OFFICIAL_TRAIN):
        raise ValueError(f"split.kind=official needs a 'train' split; index.csv has {dict(count)}")
    if OFFICIAL_TEST in count:
        o = OfficialSplit(where({OFFICIAL_TRAIN}), where(set(sel_names)), where({OFFICIAL_TEST}), OFFICIAL_TEST,
                          "/".join(sel_names))
    elif sel_names:  # test labels withheld: val is scored, so selection comes from train
        o = OfficialSplit(where({OFFICIAL_TRAIN}), np.zeros(0, dtype=int), where(set(sel_names)), "/".join(sel_names), "")
    else:
        raise ValueError(f"split.kind=official needs a dev/val or test split beside train, and index.csv has only "
                         f"{dict(count)} (FakeAVCeleb names no splits): use K-fold (split.kind=grouped) instead")
    for part, idx in (("train", o.train), (o.scored_split, o.scored)):
        have = np.bincount(y[idx], minlength=2)
        if have.min() == 0:
            raise ValueError(f"split.kind=official: the {part} split needs REAL and FAKE videos, has REAL {have[0]}, "
                             f"FAKE {have[1]}")
    return o


def official_plan(rows: list[IndexRow], cfg: Config) -> FoldPlan:
    """Fold 0 of the official protocol: fit on train, select on dev / val (or an inner part of train), score."""
    o = official_split(rows)
    if cfg.split.selection == "outer":
        raise ValueError(f"split.kind=official never selects on the scored split ({o.scored_split}); "
                         f"use split.selection=inner (dev / val, or an inner part of train when val is scored)")
    if cfg.split.selection == "inner" and o.selection.size:
        fit, inner = o.train, o.selection
    elif cfg.split.selection == "inner":
        fit, inner = inner_split(rows, o.train, cfg, 0)
    else:  # a selection rule that holds nothing out
        fit, inner = o.train, np.zeros(0, dtype=int)
    ids = lambda idx: [rows[i].video_id for i in idx]  # noqa: E731
    return FoldPlan(fold=0, train_ids=ids(fit), inner_ids=ids(inner), outer_ids=ids(o.scored))


def official_summary(rows: list[IndexRow], cfg: Config) -> dict:
    """What kfold_results.json records of an official split: the split each part comes from."""
    o = official_split(rows)
    selection = (o.selection_split if o.selection.size else f"inner part of {OFFICIAL_TRAIN}") \
        if cfg.split.selection == "inner" else cfg.split.selection
    return {"scored_split": o.scored_split,
            "official": {"train": OFFICIAL_TRAIN, "selection": selection, "scored": o.scored_split}}


def n_folds(cfg: Config) -> int:
    """How many folds a run has: split.kfold, or 1 under split.kind=official."""
    return 1 if cfg.split.kind == "official" else cfg.split.kfold


__all__ = ["FoldPlan", "OfficialSplit", "inner_split", "make_folds", "n_folds", "official_plan", "official_split",
           "official_summary", "plan_folds"]
