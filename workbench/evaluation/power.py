"""Power of the corrected resampled t-test (Nadeau & Bengio 2003) over K paired fold differences.

T = mean(d) / sqrt((1/K + r) s^2) with K - 1 degrees of freedom, r = n_test / n_train; under a true difference
delta and fold-to-fold SD sigma of the differences (with the fold correlation r / (1 + r) the correction
assumes) T is noncentral t with noncentrality delta / (sigma sqrt(1/K + r)). workbench.analysis.power builds
the study-design tables on these; tests/test_power.py checks them by simulation.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize, stats

from workbench.evaluation.metrics import corrected_ttest


# ------------------------------------------------------------------ power
def power_of(delta: float, sigma: float, k: int, ratio: float, alpha: float = 0.05) -> float:
    """Power of the two-sided corrected t-test for a true mean difference delta, fold-to-fold SD sigma."""
    if sigma <= 0 or k < 2 or ratio < 0 or not 0 < alpha < 1:
        raise ValueError(f"power_of: need sigma > 0, K >= 2, ratio >= 0, 0 < alpha < 1; "
                         f"got {sigma}, {k}, {ratio}, {alpha}")
    df = k - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = delta / (sigma * math.sqrt(1 / k + ratio))
    power = float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))
    return power if math.isfinite(power) else _power_by_integral(crit, df, nc)


def _power_by_integral(crit: float, df: int, nc: float) -> float:
    """P(|T| > crit) for T = (Z + nc) / sqrt(V / df), V ~ chi2(df), as one integral over V (where scipy's
    noncentral t returns NaN, at few degrees of freedom and a large noncentrality)."""
    def tails(v: float) -> float:
        s = crit * math.sqrt(v / df)
        return (stats.norm.sf(s - nc) + stats.norm.cdf(-s - nc)) * stats.chi2.pdf(v, df)
    return float(integrate.quad(tails, 0.0, np.inf)[0])


def min_detectable(sigma: float, k: int, ratio: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest difference delta > 0 the corrected t-test rejects with the given power."""
    if not alpha < power < 1:
        raise ValueError(f"min_detectable: need alpha < power < 1, got alpha {alpha}, power {power}")
    gap = lambda d: power_of(d, sigma, k, ratio, alpha) - power  # noqa: E731
    hi = sigma
    while gap(hi) < 0:
        hi *= 2
    return float(optimize.brentq(gap, 0.0, hi, xtol=1e-12 * sigma))


def expected_half_width(sigma: float, k: int, ratio: float, alpha: float = 0.05) -> float:
    """`corrected_ttest`'s interval half-width for K differences whose sample SD is exactly sigma."""
    z = np.arange(k, dtype=np.float64)
    z = (z - z.mean()) / z.std(ddof=1)
    return float(corrected_ttest(sigma * z, ratio, alpha)["half_width"])
