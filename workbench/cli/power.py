"""`workbench power`: before a study, the smallest difference between two conditions a K-fold comparison resolves."""
from __future__ import annotations

import argparse
import math
import sys

import pandas as pd

from workbench.analysis.power import PAIR_CORR, data_counts, design, power_table
from workbench.core.config import SplitConfig
from workbench.data.records import write_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's flags."""
    p.add_argument("--data", required=True, help="dataset folder (index.csv or npz files); split=test rows not counted")
    p.add_argument("--index", default="index.csv")
    p.add_argument("--pilot", default=None, help="a pilot run: a condition folder, or a study folder of conditions")
    p.add_argument("--baseline", default=None, help="the pilot condition the others are compared with (default: first)")
    p.add_argument("--kfold", type=int, default=SplitConfig().kfold, help="folds K (default %(default)s)")
    p.add_argument("--inner-size", type=float, default=SplitConfig().inner_size,
                   help="share of each outer training fold held out for selection (default %(default)s; "
                        "0 for split.selection=outer)")
    p.add_argument("--alpha", type=float, default=0.05, help="two-sided level (default %(default)s)")
    p.add_argument("--power", type=float, default=0.8, help="power asked for (default %(default)s)")
    p.add_argument("--target", type=float, default=None, help="a difference: the pool size at which it has the power")
    p.add_argument("--pair-corr", type=float, default=PAIR_CORR,
                   help="assumed correlation of two conditions' fold metrics when the differences are not measured "
                        "(default %(default)s: SD of a difference = SD of one condition)")
    p.add_argument("--fixed-share", type=float, default=0.0,
                   help="share of sigma^2 that more clips do not shrink (training randomness), for --target "
                        "(default %(default)s: all of it is test-clip sampling; optimistic)")
    p.add_argument("--json", default=None, help="write the design and the table to this JSON file")


def _header(d: dict, n_test_split: int, power: float) -> list[str]:
    """The design the table rests on, in words."""
    return [
        f"K-fold pool: REAL {d['n_real']} / FAKE {d['n_fake']} ({n_test_split} split=test clips not counted)",
        (f"{d['k']} folds: n_test = {d['n_test']:.1f} clips scored per fold, n_train = {d['n_train']:.1f} fitted "
         f"(pool x {d['k'] - 1}/{d['k']} x (1 - {d['inner_size']:g} inner)); n_test/n_train = {d['ratio']:.4f}"),
        (f"corrected resampled t-test (Nadeau & Bengio 2003): T = mean(d) / sqrt((1/K + r) s^2) = "
         f"mean(d) / sqrt({d['variance_factor']:.4f} s^2), df = {d['df']}, t crit = {d['t_crit']:.4f}"),
        (f"assumed fold correlation rho0 = n_test/(n_test + n_train) = {d['rho0']:.4f}; then T is noncentral t "
         f"(df {d['df']}, nc = delta / sqrt((1/K + r) sigma^2)), sigma = fold-to-fold SD of the paired differences"),
        f"power {power:g} at two-sided alpha {d['alpha']:g}:"]


def _table(df: pd.DataFrame) -> list[str]:
    """The per-metric lines and their numbered sources."""
    lines = [f"  {'metric':20s} {'sigma':>8s} {'diff (power)':>13s} {'half-width':>11s}  source"]
    for i, r in enumerate(df.itertuples(), 1):
        lines.append(f"  {r.name:20s} {r.sigma:8.4f} {r.min_detectable:13.4f} {r.half_width:11.4f}  [{i}]")
    lines.append("  diff (power): the true difference detected with that power; half-width: corrected_ttest's "
                 "interval half-width when s = sigma (a difference of that size is detected only about half the time)")
    lines += [f"  [{i}] {r.source}" for i, r in enumerate(df.itertuples(), 1)]
    return lines


def _target_lines(df: pd.DataFrame, d: dict, power: float) -> list[str]:
    """Per metric: the power at the target now and the pool it needs; why the correction sets a floor."""
    lines = [f"target difference {df['target'].iloc[0]:g}:"]
    for r in df.itertuples():
        if math.isnan(r.pool_needed):
            lines.append(f"  {r.name:20s} power now {r.power_at_target:.3f}; {r.target_note}")
        else:
            note = f" ({r.target_note})" if r.target_note else ""
            lines.append(f"  {r.name:20s} power now {r.power_at_target:.3f}; {power:g} with a pool of "
                         f"{int(r.pool_needed)} clips (REAL {int(r.n_real_needed)} / FAKE {int(r.n_fake_needed)})"
                         f"{note}")
    lines.append(f"  More clips shrink sigma (its test-sampling part, ~1/sqrt(n_test)), never the factor "
                 f"1/K + n_test/n_train = {d['variance_factor']:.4f}: n_test/n_train depends on K and the inner share "
                 f"only. Training randomness does not shrink with clips (--fixed-share), so a target below its floor "
                 f"is unreachable.")
    return lines


def main(args: argparse.Namespace) -> int:
    """Print the power table (and the target's pool size); write --json."""
    try:
        n_real, n_fake, n_test_split = data_counts(args.data, args.index)
        df = power_table((n_real, n_fake), args.kfold, args.inner_size, args.alpha, args.power, args.pilot,
                         args.target, args.pair_corr, args.fixed_share, args.baseline)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 1
    d = design((n_real, n_fake), args.kfold, args.inner_size, args.alpha)
    lines = _header(d, n_test_split, args.power) + _table(df)
    if args.target is not None:
        lines += _target_lines(df, d, args.power)
    print("\n".join(lines))
    if args.json:
        write_json(args.json, {"data": str(args.data), "pilot": args.pilot, "power": args.power, "design": d,
                               "metrics": df.to_dict(orient="records")})
        print(f"json: {args.json}")
    return 0
