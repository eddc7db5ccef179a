"""The metrics.json of each numbered notebook: one typed schema per notebook, its keys documented here.

Each schema is a dataclass whose fields are the file's keys, in order, holding JSON values (records of
tables as lists of dicts; NaN is written as null). `from_*` builds it from the notebook's tables,
`to_json()` gives the dict, `write(output_dir)` writes `<output_dir>/metrics.json` and `read(output_dir)`
reads one back (an unknown or missing key is an error, so a notebook and its schema cannot drift apart).
Later notebooks, the study report and the tests read these files.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, Mapping, TypedDict, TypeVar

import pandas as pd

from workbench.data.records import write_json

METRICS_FILE = "metrics.json"
Records = list[dict[str, Any]]  # a table as one dict per row
T = TypeVar("T", bound="NotebookMetrics")


class NotebookMetrics:
    """The behaviour every schema shares (the schemas are dataclasses)."""

    notebook: ClassVar[str]  # the notebook that writes it

    def to_json(self) -> dict[str, Any]:
        """The file's content: the fields in order (values already JSON-shaped)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def write(self, output_dir: str | Path) -> Path:
        """Write <output_dir>/metrics.json atomically (NaN -> null); returns its path."""
        return write_json(Path(output_dir) / METRICS_FILE, self.to_json())

    @classmethod
    def read(cls: type[T], output_dir: str | Path) -> T:
        """Read <output_dir>/metrics.json back (a missing or unknown key is a TypeError naming it)."""
        return cls(**json.loads((Path(output_dir) / METRICS_FILE).read_text()))

    @classmethod
    def keys(cls) -> list[str]:
        """The file's keys, in order."""
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]


def records(df: pd.DataFrame) -> Records:
    """A table as one dict per row (its index dropped)."""
    return df.to_dict(orient="records")


# ------------------------------------------------------------------ 01 class imbalance
class ShortcutAuditSummary(TypedDict):
    mean_roc_auc: float  # metadata-only classifier, mean over folds
    mean_balanced_acc: float
    warning: str  # empty when metadata does not separate the classes


@dataclasses.dataclass
class ClassImbalanceMetrics(NotebookMetrics):
    """01_class_imbalance: the K-fold pool's classes, identity leakage of each split kind, the shortcut audit."""

    notebook: ClassVar[str] = "01_class_imbalance"
    n_real: int  # REAL videos in the K-fold pool (split != test)
    n_fake: int
    ratio: float  # n_fake / n_real (n_real at least 1)
    n_test: int  # held-out test videos
    identities: int  # distinct groups in the pool
    identity_overlap_share: dict[str, float]  # split kind -> mean share of val videos whose identity is in train
    shortcut_audit: ShortcutAuditSummary
    effective_fake_prior: dict[str, float]  # condition -> the FAKE prior its imbalance method trains towards

    @classmethod
    def from_tables(cls, table: pd.DataFrame, overlap: Mapping[str, pd.DataFrame], audit: Mapping[str, Any],
                    priors: pd.DataFrame) -> ClassImbalanceMetrics:
        """From the dataset table, identity_overlap per split kind, metadata_shortcut_audit and condition_priors."""
        pool = table[table["split"] != "test"]
        n_real, n_fake = int((pool.label == 0).sum()), int((pool.label == 1).sum())
        return cls(n_real=n_real, n_fake=n_fake, ratio=n_fake / max(n_real, 1), n_test=int(len(table) - len(pool)),
                   identities=int(pool["group"].nunique()),
                   identity_overlap_share={k: float(v["val_share_affected"].mean()) for k, v in overlap.items()},
                   shortcut_audit=ShortcutAuditSummary(mean_roc_auc=audit["mean_roc_auc"],
                                                       mean_balanced_acc=audit["mean_balanced_acc"],
                                                       warning=audit["warning"]),
                   effective_fake_prior=dict(zip(priors["method"], priors["effective_prior"])))


# ------------------------------------------------------------------ 02 K-fold training
@dataclasses.dataclass
class KFoldTrainingMetrics(NotebookMetrics):
    """02_kfold_training: one condition's K-fold run (kfold_results.json's summary) and its frame-level tables."""

    notebook: ClassVar[str] = "02_kfold_training"
    condition: str
    complete: bool  # every fold finished
    n_folds: int
    selection: str  # inner (nested selection), last (a fixed epoch budget) or outer (the original protocol)
    mean: dict[str, float]  # metric -> mean over folds at the chosen epochs
    std: dict[str, float]  # metric -> std over folds (ddof = std_ddof)
    std_ddof: int
    best_fold: int
    selection_optimism: dict[str, Any]  # metric -> mean, std, per_fold
    test: dict[str, Any] | None  # the held-out test section of kfold_results.json
    aggregation: dict[str, dict[str, float]]  # frame-to-video rule -> video metrics (aggregation_table)
    localization: Records  # condition_localization: one row per scope and fold

    @classmethod
    def from_run(cls, run: Any, aggregation: pd.DataFrame, localization: pd.DataFrame) -> KFoldTrainingMetrics:
        """From a KFoldRun (analysis.runs.read_run), the aggregation table and the localization table."""
        res = run.raw
        return cls(condition=run.condition, complete=res["complete"], n_folds=len(res["folds"]),
                   selection=res["selection"], mean=res["mean"], std=res["std"], std_ddof=res["std_ddof"],
                   best_fold=res["best_fold"], selection_optimism=res["selection_optimism"], test=res["test"],
                   aggregation=aggregation.to_dict(orient="index"), localization=records(localization))


# ------------------------------------------------------------------ 03 temporal P(Fake)
@dataclasses.dataclass
class TemporalMetrics(NotebookMetrics):
    """03_temporal_pfake: the videos scored over time and their statistics."""

    notebook: ClassVar[str] = "03_temporal_pfake"
    videos: list[str]
    conditions: list[str]
    stats: Records  # temporal_tables' summary: one row per condition, video and density

    @classmethod
    def from_tables(cls, videos: list[str], conditions: list[str], stats: pd.DataFrame) -> TemporalMetrics:
        return cls(videos=list(videos), conditions=list(conditions), stats=records(stats))


# ------------------------------------------------------------------ 04 calibration
@dataclasses.dataclass
class CalibrationMetrics(NotebookMetrics):
    """04_calibration_thresholds: calibration_report of every condition (rows: condition x method)."""

    notebook: ClassVar[str] = "04_calibration_thresholds"
    conditions: list[str]  # every condition read (those selected on the scoring fold have no rows)
    report: Records

    @classmethod
    def from_tables(cls, conditions: list[str], report: pd.DataFrame) -> CalibrationMetrics:
        return cls(conditions=list(conditions), report=records(report))


# ------------------------------------------------------------------ 05 comparing conditions
@dataclasses.dataclass
class CompareMetrics(NotebookMetrics):
    """05_compare_conditions: the study's tables and where its summary.md is."""

    notebook: ClassVar[str] = "05_compare_conditions"
    conditions: list[str]
    paradox: Records  # paradox_table, one row per condition (with its `condition` column)
    selection_optimism: Records
    heldout_test: Records
    paired: Records  # paired_differences against the baseline (empty with one condition)
    curves: Records  # notebook 03's P(Fake) statistics at full density (empty when it has not run)
    summary: str  # path of summary.md
    triage: Records = dataclasses.field(default_factory=list)  # triage_table: one row per condition and set
    heldout_parts: Records = dataclasses.field(default_factory=list)  # heldout_parts_table: condition x part
    fake_types: Records = dataclasses.field(default_factory=list)  # fake_type_table: condition x fake type

    @classmethod
    def from_tables(cls, conditions: list[str], paradox: pd.DataFrame, optimism: pd.DataFrame,
                    heldout: pd.DataFrame, diffs: pd.DataFrame, curves: pd.DataFrame,
                    summary: str | Path, triage: pd.DataFrame | None = None, parts: pd.DataFrame | None = None,
                    fake_types: pd.DataFrame | None = None) -> CompareMetrics:
        def rec(t: pd.DataFrame | None) -> Records:
            return records(t) if t is not None else []
        return cls(conditions=list(conditions), paradox=records(paradox.reset_index()),
                   selection_optimism=records(optimism), heldout_test=records(heldout), paired=records(diffs),
                   curves=records(curves), summary=str(summary), triage=rec(triage), heldout_parts=rec(parts),
                   fake_types=rec(fake_types))


# ------------------------------------------------------------------ 06 localization and attribution
@dataclasses.dataclass
class LocalizationAttributionMetrics(NotebookMetrics):
    """06_localization_attribution: localization per condition and which modality drives P(Fake)."""

    notebook: ClassVar[str] = "06_localization_attribution"
    conditions: list[str]  # the localized conditions
    attribution_conditions: list[str]
    localization: Records  # the headline rows (fold ensemble on the test, out of fold in the pool)
    attribution: Records  # one row per condition and video
    real_blame: dict[str, dict[str, dict[str, int]]]  # replacement -> condition -> modality -> REAL videos
    localization_settings: dict[str, Any]  # the LocalizationConfig used

    @classmethod
    def from_tables(cls, conditions: list[str], headline: pd.DataFrame, attribution: Any,
                    settings: Any) -> LocalizationAttributionMetrics:
        """From the localization headline, a StudyAttribution (analysis.attribution) and the LocalizationConfig."""
        blame = attribution.blame()
        return cls(conditions=list(conditions), attribution_conditions=list(attribution.conditions),
                   localization=records(headline), attribution=records(attribution.table),
                   real_blame={rep: {c: r.to_dict() for c, r in counts.iterrows()} for rep, counts in blame.items()},
                   localization_settings=dict(vars(settings)))


SCHEMAS: dict[str, type[NotebookMetrics]] = {s.notebook: s for s in (
    ClassImbalanceMetrics, KFoldTrainingMetrics, TemporalMetrics, CalibrationMetrics, CompareMetrics,
    LocalizationAttributionMetrics)}

__all__ = ["METRICS_FILE", "SCHEMAS", "CalibrationMetrics", "ClassImbalanceMetrics", "CompareMetrics",
           "KFoldTrainingMetrics", "LocalizationAttributionMetrics", "NotebookMetrics", "ShortcutAuditSummary",
           "TemporalMetrics", "records"]
