"""Calibration of a study's conditions (notebook 04): each fold's calibrators fitted on its own inner part.

The calibrators and their report live in `workbench.evaluation.calibration`; this module runs them over
loaded runs. A run without inner predictions (selection outer or last) has nothing to fit on honestly and
is skipped (listed in `CalibrationStudy.skipped`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from workbench.analysis.tables import Run
from workbench.evaluation.calibration import calibrate_per_fold, calibration_report

RELIABILITY_METHODS = ("temperature", "platt")  # the rescalings drawn beside the uncalibrated P(Fake)


@dataclass
class CalibrationStudy:
    """calibration_report of every condition that has inner predictions, stacked with a `condition` column."""

    report: pd.DataFrame
    calibrated: list[str] = field(default_factory=list)  # the conditions in `report`, in order
    skipped: list[str] = field(default_factory=list)  # no inner part to fit on (selection outer or last)


def calibrate_runs(runs: Mapping[str, Run], n_bins: int = 15) -> CalibrationStudy:
    """Per condition, calibration_report with video calibrators fitted on inner video P(Fake) and frame ones on
    inner frame P(Fake), each applied to the fold's outer predictions."""
    reports, skipped = {}, []
    for name, run in runs.items():
        if run.inner_videos is None:
            skipped.append(name)
            continue
        rep = calibration_report({"video": run.inner_videos, "frame": run.inner_frames},
                                 {"video": run.videos, "frame": run.frames}, n_bins=n_bins).reset_index()
        rep.insert(0, "condition", name)
        reports[name] = rep
    report = pd.concat(reports.values(), ignore_index=True) if reports else pd.DataFrame()
    return CalibrationStudy(report, list(reports), skipped)


def reliability_inputs(run: Run) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Per level (video, frame): the outer labels and P(Fake) uncalibrated and after each RELIABILITY_METHODS
    rescaling fitted per fold on the inner part (what a reliability diagram draws)."""
    out = {}
    for level, fit, scored in (("video", run.inner_videos, run.videos), ("frame", run.inner_frames, run.frames)):
        probs = {"uncalibrated": scored["p_fake"].to_numpy()}
        for method in RELIABILITY_METHODS:
            probs[method] = calibrate_per_fold(fit, scored, method, level).table["p_fake_cal"].to_numpy()
        out[level] = (scored["label"].to_numpy(), probs)
    return out


__all__ = ["CalibrationStudy", "RELIABILITY_METHODS", "calibrate_runs", "reliability_inputs"]
