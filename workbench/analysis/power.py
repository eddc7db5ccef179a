"""Power before a study: the smallest difference between two conditions a paired K-fold comparison resolves.

The comparison is `metrics.corrected_ttest` (Nadeau & Bengio 2003) over the K per-fold differences d_i:
T = mean(d) / sqrt((1/K + r) s^2), df = K - 1, r = n_test / n_train. Here n_test = pool / K clips are scored
per fold and n_train = pool (K-1)/K (1 - inner_size) are fitted (the inner part is held out for selection).

Derivation (the model the correction is exact under). The folds' training sets overlap, so the d_i are
equicorrelated: Var(d_i) = tau^2, corr(d_i, d_j) = rho0. Then Var(mean d) = tau^2 (rho0 + (1 - rho0)/K) and
E[s^2] = tau^2 (1 - rho0), so (1/K + r) s^2 is unbiased for Var(mean d) exactly when r = rho0 / (1 - rho0),
i.e. rho0 = n_test / (n_test + n_train) = r / (1 + r): the correlation Nadeau and Bengio assume. Writing
d_i = delta + tau (sqrt(rho0) Z_0 + sqrt(1 - rho0) Z_i) with Gaussian Z, mean(d) is independent of s^2 and
(K-1) s^2 / (tau^2 (1 - rho0)) is chi-square with K-1 df, so T is exactly noncentral t with df K-1 and
noncentrality delta / sqrt((1/K + r) sigma^2), where sigma^2 = tau^2 (1 - rho0) = E[s^2]: sigma is the
fold-to-fold SD of the paired differences, what one run (a pilot) measures; the shared part tau^2 rho0 is
invisible in a run but is what the correction adds. Power = P(|T| > t_{K-1, 1-alpha/2}).

More clips shrink sigma (its test-sampling part, ~ 1/sqrt(n_test)) but never the factor 1/K + r: r depends
only on K and the inner share. The part of sigma due to training randomness does not shrink with clips either,
so a target below t-quantiles x that part x sqrt(1/K + r) is unreachable at any pool size.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

from workbench.analysis.runs import RESULTS, has_run, read_run
from workbench.analysis.tables import Run, fold_table, paired_differences
from workbench.data.records import scan_folder
from workbench.evaluation.power import expected_half_width, min_detectable, power_of  # noqa: F401  (re-exported)

METRICS = {"outer_roc_auc": "video ROC-AUC", "outer_acc": "accuracy",
           "outer_real_frame_pfake_mean": "REAL-frame P(Fake)"}
ASSUMED_AUC = 0.85  # the AUC whose Hanley & McNeil SE is the default spread of a fold's ROC-AUC
ASSUMED_ACC = 0.85  # the accuracy whose binomial SD is the default spread of a fold's accuracy
REAL_FRAME_SD = 0.05  # stated fold-to-fold SD of a fold's mean REAL-frame P(Fake) (no sampling model: held fixed)
PAIR_CORR = 0.5  # assumed correlation of two conditions' fold metrics (same clips): SD(diff) = SD sqrt(2 (1 - c))


class MissingMetric(ValueError):
    """A pilot run without a metric on two or more folds."""


@dataclass
class Sigma:
    """The fold-to-fold SD of the paired differences of one metric, where it came from, and how it scales."""

    value: float  # at the data's pool size and K (a pilot's: at its own fold size, n_test)
    source: str
    at_pool: Callable[[float], float] | None = None  # the same SD at another pool size (class ratio, K kept)
    n_test: float | None = None  # a pilot's clips scored per fold, where `value` was measured


# ------------------------------------------------------------------ design
def check_design(counts: Sequence[float], k: int, inner_size: float = 0.15) -> None:
    """ValueError for counts or folds that a K-fold comparison cannot use."""
    n_real, n_fake = counts
    if n_real + n_fake == 0:
        raise ValueError("no clips in the K-fold pool (empty folder, or every clip is marked split=test)")
    if min(n_real, n_fake) < 2:
        raise ValueError(f"need at least 2 clips of each class, have REAL {n_real:g}, FAKE {n_fake:g}")
    if k < 2:
        raise ValueError(f"need at least 2 folds, got K = {k}")
    if k > min(n_real, n_fake):
        raise ValueError(f"K = {k} folds is larger than the smaller class (REAL {n_real:g}, FAKE {n_fake:g}): "
                         f"every fold needs a clip of each class; use K <= {int(min(n_real, n_fake))}")
    if not 0 <= inner_size < 1:
        raise ValueError(f"inner_size must be in [0, 1), got {inner_size}")


def fold_sizes(pool: float, k: int, inner_size: float = 0.15) -> tuple[float, float]:
    """(n_test, n_train): clips scored per fold, clips a fold model fits on (outer training fold minus inner part)."""
    return pool / k, pool * (k - 1) / k * (1 - inner_size)


def fold_ratio(k: int, inner_size: float = 0.15) -> float:
    """Nadeau & Bengio's n_test / n_train = 1 / ((K-1)(1 - inner_size)): no pool size in it."""
    return 1.0 / ((k - 1) * (1 - inner_size))


def data_counts(root: str | Path, index: str = "index.csv") -> tuple[int, int, int]:
    """(n_real, n_fake) of a data folder's K-fold pool (split != test), and the held-out test size."""
    rows = scan_folder(root, index).rows
    if not rows:
        raise ValueError(f"dataset folder {root}: {index} lists no clips")
    pool = [r for r in rows if r.split != "test"]
    return sum(r.label == 0 for r in pool), sum(r.label == 1 for r in pool), len(rows) - len(pool)


def clips_for(target: float, sigma_at: Callable[[float], float], k: int, ratio: float, alpha: float = 0.05,
              power: float = 0.8, n_min: float = 2.0, n_max: float = 1e9) -> float | None:
    """The smallest pool size at which `target` has the power (sigma from sigma_at(pool)); None when none has."""
    need = target / min_detectable(1.0, k, ratio, alpha, power)  # the power depends on delta / sigma only
    if sigma_at(n_max) > need:
        return None
    if sigma_at(n_min) <= need:
        return n_min
    return float(optimize.brentq(lambda n: sigma_at(n) - need, n_min, n_max, xtol=1e-6))


# ------------------------------------------------------------------ sigma: a stated assumption
def hanley_mcneil_se(auc: float, n_real: float, n_fake: float) -> float:
    """Hanley & McNeil (1982) standard error of an AUC with n_fake positives and n_real negatives."""
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    var = (auc * (1 - auc) + (n_fake - 1) * (q1 - auc ** 2) + (n_real - 1) * (q2 - auc ** 2)) / (n_real * n_fake)
    return math.sqrt(var)


def _metric_sd(metric: str, counts: Sequence[float], k: int) -> tuple[float, str]:
    """One condition's fold-to-fold SD of a metric under the default assumption, and the assumption in words."""
    n_real, n_fake = counts[0] / k, counts[1] / k
    if metric == "outer_roc_auc":
        return hanley_mcneil_se(ASSUMED_AUC, n_real, n_fake), (
            f"Hanley & McNeil SE of an AUC of {ASSUMED_AUC} on a fold of {n_real:.1f} REAL / {n_fake:.1f} FAKE")
    if metric == "outer_acc":
        n = n_real + n_fake
        return math.sqrt(ASSUMED_ACC * (1 - ASSUMED_ACC) / n), (
            f"binomial SD of an accuracy of {ASSUMED_ACC} on a fold of {n:.1f} clips")
    if metric == "outer_real_frame_pfake_mean":
        return REAL_FRAME_SD, f"stated SD {REAL_FRAME_SD} of a fold's mean REAL-frame P(Fake) (held fixed: no model)"
    raise KeyError(f"no default assumption for metric {metric!r}; choose one of {list(METRICS)}")


def default_sigma(metric: str, counts: Sequence[float], k: int, pair_corr: float = PAIR_CORR) -> Sigma:
    """The assumed SD of per-fold differences: one condition's SD from the class counts x sqrt(2 (1 - pair_corr))."""
    factor = math.sqrt(2 * (1 - pair_corr))
    sd, why = _metric_sd(metric, counts, k)
    pool = counts[0] + counts[1]

    def at_pool(n: float) -> float:
        return _metric_sd(metric, (counts[0] * n / pool, counts[1] * n / pool), k)[0] * factor

    return Sigma(sd * factor, f"assumed: {why}; x sqrt(2(1 - {pair_corr:g})) for the difference of two conditions "
                              f"scored on the same clips (correlation {pair_corr:g})", at_pool)


# ------------------------------------------------------------------ sigma: a pilot run
def _pilot_runs(run_dir: str | Path) -> dict[str, Run]:
    """The pilot's conditions (a condition folder, or a study folder of them) read from kfold_results.json alone."""
    p = Path(run_dir)
    dirs = [p] if has_run(p) else sorted(q.parent for q in p.glob(f"*/{RESULTS}"))
    if not dirs:
        raise FileNotFoundError(f"pilot folder {p} {'has' if p.is_dir() else 'does not exist: it has'} no "
                                f"kfold_results.json, and no condition folder holding one; run `workbench kfold` "
                                f"(one condition) or `workbench study` (several) first")
    runs = {}
    for d in dirs:
        try:
            kfold = read_run(d)
        except json.JSONDecodeError as e:
            raise ValueError(f"pilot {d / RESULTS} is not valid JSON: {e}") from None
        empty = pd.DataFrame()
        runs[d.name] = Run(d.name, d, kfold.config, kfold, empty, empty, empty)
    return runs


def _pilot_n_test(runs: dict[str, Run]) -> float | None:
    """The pilot's clips scored per fold (mean over its folds' outer_ids), None when not recorded."""
    n = [len(f.outer_ids) for r in runs.values() for f in r.folds]
    n = [v for v in n if v]
    return float(np.mean(n)) if n else None


def _paired_sd(runs: dict[str, Run], metric: str, baseline: str | None) -> tuple[float, str] | None:
    """Pooled SD of the per-fold paired differences against the baseline, None when no pair of folds matches."""
    base = baseline or next(iter(runs))
    table = paired_differences(runs, base, metrics=[metric])
    diffs = {r.condition: np.asarray(r.fold_diffs, float) for r in table.itertuples() if r.paired}
    var = {c: float(np.nanvar(d, ddof=1)) for c, d in diffs.items() if np.sum(~np.isnan(d)) >= 2}
    if not var:
        return None
    what = ", ".join(f"{c} - {base}" for c in var)
    k = len(next(iter(diffs.values())))
    pooled = " (pooled over conditions)" if len(var) > 1 else ""
    return math.sqrt(float(np.mean(list(var.values())))), f"SD of the {k} per-fold differences {what}{pooled}"


def pilot_sigma(run_dir: str | Path, metric: str, pair_corr: float = PAIR_CORR, baseline: str | None = None) -> Sigma:
    """The pilot's SD of per-fold differences (two or more conditions), else its metric SD x sqrt(2 (1 - c))."""
    runs = _pilot_runs(run_dir)
    if baseline is not None and baseline not in runs:
        raise KeyError(f"baseline {baseline!r} is not a condition of the pilot {run_dir}: {list(runs)}")
    paired = _paired_sd(runs, metric, baseline) if len(runs) >= 2 else None
    if paired is not None:
        sd, why = paired
    else:
        sds = [float(fold_table(r, [metric]).loc["std", metric]) for r in runs.values()]
        sds = [s for s in sds if not math.isnan(s)]
        if not sds:
            raise MissingMetric(f"pilot {run_dir}: no condition has {metric!r} on two or more folds")
        sd = math.sqrt(float(np.mean(np.square(sds)))) * math.sqrt(2 * (1 - pair_corr))
        kind = "unpaired conditions" if len(runs) >= 2 else "one condition"
        why = (f"SD of {metric} across folds ({kind}) x sqrt(2(1 - {pair_corr:g})): the two conditions' fold "
               f"metrics assumed correlated {pair_corr:g}")
    n_test = _pilot_n_test(runs)
    where = f", {n_test:.1f} clips scored per fold" if n_test else ""
    return Sigma(sd, f"pilot {run_dir}: {why} = {sd:.4f}{where}", n_test=n_test)


# ------------------------------------------------------------------ the table
def _scaled(sig: Sigma, fixed_share: float) -> Callable[[float], float]:
    """sigma at another pool: `fixed_share` of sigma^2 held fixed (training randomness), the rest as sig.at_pool."""
    at_pool = sig.at_pool or (lambda n: sig.value)
    return lambda n: math.sqrt(fixed_share * sig.value ** 2 + (1 - fixed_share) * at_pool(n) ** 2)


def _pilot_scaling(sig: Sigma, k: int, pool: float) -> Sigma:
    """A pilot's SD moved to this data's fold size and made to scale, both as 1/sqrt(n_test) (test sampling)."""
    n_ref = sig.n_test or pool / k
    at_pool = lambda n: sig.value * math.sqrt(n_ref / (n / k))  # noqa: E731
    moved = f"; x sqrt({n_ref:.1f}/{pool / k:.1f}) for this data's fold size" if abs(n_ref - pool / k) > 1e-9 else ""
    return Sigma(at_pool(pool), sig.source + moved, at_pool, sig.n_test)


def _target_row(sig: Sigma, pool: float, share_real: float, target: float, k: int, ratio: float, alpha: float,
                power: float, fixed_share: float) -> dict:
    """Power at the target now, and the pool (class ratio kept) at which it reaches `power`, or why none does."""
    n_min = k / min(share_real, 1 - share_real)
    sigma_at = _scaled(sig, fixed_share)
    n = clips_for(target, sigma_at, k, ratio, alpha, power, n_min=n_min)
    row = {"target": target, "power_at_target": power_of(target, sig.value, k, ratio, alpha),
           "pool_needed": math.nan, "n_real_needed": math.nan, "n_fake_needed": math.nan}
    if n is None:
        floor = sigma_at(1e12)
        row["target_note"] = (f"unreachable at any pool size: sigma does not fall below {floor:.4f} (the part that "
                              f"more clips do not shrink), so the {power:g}-power difference stays above "
                              f"{min_detectable(floor, k, ratio, alpha, power):.4f} with the factor "
                              f"1/K + n_test/n_train = {1 / k + ratio:.4f} fixed by K")
        return row
    n_real, n_fake = math.ceil(n * share_real - 1e-9), math.ceil(n * (1 - share_real) - 1e-9)
    row.update(pool_needed=n_real + n_fake, n_real_needed=n_real, n_fake_needed=n_fake,
               target_note="already reached with the current pool" if n_real + n_fake <= pool else "")
    return row


def _sigma(metric: str, counts: Sequence[float], k: int, pilot: str | Path | None, pair_corr: float,
           baseline: str | None) -> Sigma:
    """The pilot's sigma at this data's fold size; the default assumption without a pilot or where it lacks one."""
    pool = counts[0] + counts[1]
    if pilot is not None:
        try:
            return _pilot_scaling(pilot_sigma(pilot, metric, pair_corr, baseline), k, pool)
        except MissingMetric as e:
            sig = default_sigma(metric, counts, k, pair_corr)
            return Sigma(sig.value, f"{e}; {sig.source}", sig.at_pool)
    return default_sigma(metric, counts, k, pair_corr)


def power_table(counts: Sequence[float], k: int = 5, inner_size: float = 0.15, alpha: float = 0.05,
                power: float = 0.8, pilot: str | Path | None = None, target: float | None = None,
                pair_corr: float = PAIR_CORR, fixed_share: float = 0.0, baseline: str | None = None,
                metrics: Sequence[str] = tuple(METRICS)) -> pd.DataFrame:
    """Per metric: sigma and its source, the difference with `power` at `alpha`, the expected half-width; target."""
    check_design(counts, k, inner_size)
    if not 0 <= fixed_share <= 1:
        raise ValueError(f"fixed_share must be in [0, 1], got {fixed_share}")
    pool = counts[0] + counts[1]
    ratio = fold_ratio(k, inner_size)
    rows = []
    for m in metrics:
        sig = _sigma(m, counts, k, pilot, pair_corr, baseline)
        row = {"metric": m, "name": METRICS.get(m, m), "sigma": sig.value,
               "min_detectable": min_detectable(sig.value, k, ratio, alpha, power),
               "half_width": expected_half_width(sig.value, k, ratio, alpha), "source": sig.source}
        if target is not None:
            row.update(_target_row(sig, pool, counts[0] / pool, target, k, ratio, alpha, power, fixed_share))
        rows.append(row)
    return pd.DataFrame(rows)


def design(counts: Sequence[float], k: int, inner_size: float = 0.15, alpha: float = 0.05) -> dict:
    """The numbers the power rests on: fold sizes, the ratio, the fold correlation it implies, df and t critical."""
    n_test, n_train = fold_sizes(counts[0] + counts[1], k, inner_size)
    ratio = fold_ratio(k, inner_size)
    return {"n_real": counts[0], "n_fake": counts[1], "k": k, "inner_size": inner_size, "n_test": n_test,
            "n_train": n_train, "ratio": ratio, "rho0": ratio / (1 + ratio), "df": k - 1, "alpha": alpha,
            "t_crit": float(stats.t.ppf(1 - alpha / 2, k - 1)), "variance_factor": 1 / k + ratio}


__all__ = ["METRICS", "MissingMetric", "Sigma", "check_design", "clips_for", "data_counts", "default_sigma", "design",
           "expected_half_width", "fold_ratio", "fold_sizes", "hanley_mcneil_se", "min_detectable", "pilot_sigma",
           "power_of", "power_table"]
