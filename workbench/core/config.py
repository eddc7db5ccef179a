"""One dataclass tree holds every setting; it loads from and saves to YAML.

Defaults are the reference values of the MMMS-BA study. An experimental condition is a
small YAML override of these defaults; ``--set section.key=value`` overrides any field.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal, get_args, get_origin, get_type_hints

import yaml

from workbench.core.metric_names import valid_monitors


@lru_cache(maxsize=None)
def _choices(cls: type) -> dict[str, tuple]:
    """The choice (Literal) fields of a config section and their allowed values."""
    return {k: get_args(v) for k, v in get_type_hints(cls).items() if get_origin(v) is Literal}


class _Section:
    """A config section: its choice fields are checked when it is made (also when made directly in code)."""

    def __post_init__(self) -> None:
        section = type(self).__name__.removesuffix("Config").lower()
        for name, allowed in _choices(type(self)).items():
            _check_choice(getattr(self, name), allowed, f"{section}.{name}")


def _check_choice(value: Any, allowed: tuple, name: str) -> Any:
    """value when it is one of a choice field's allowed values; the one error message otherwise."""
    if value not in allowed:
        raise ValueError(f"config field {name} must be one of {list(allowed)}, got {value!r}")
    return value


# data settings that change how clips are read, never which clips: outside the fingerprint (resume across them)
RESULT_NEUTRAL_DATA = ("num_workers", "cache_gb", "root", "skip_bad")


@dataclass
class AudioConfig(_Section):
    """Audio front end: MFCC settings shared by ingest and the model."""

    sample_rate: int = 16000
    n_mfcc: int = 40
    n_fft: int = 2048
    hop_length: int = 512


@dataclass
class DataConfig(_Section):
    """Where the clips are and how a training sample is cut from a video."""

    root: str = "data/demo/npz"  # folder of .npz files (with index.csv, or indexed on the fly)
    index: str = "index.csv"  # relative to root
    max_frames: int = 50  # frames per training clip
    sampling: Literal["uniform", "fps"] = "uniform"  # uniform: spread over the whole video | fps: window at sample_fps
    sample_fps: float = 30.0  # frame density of an `fps` window
    eval_clip: Literal["clip", "full"] = "clip"  # clip: validate on the same kind of clip | full: every frame
    face_size: int = 224
    lip_size: int = 112
    skip_bad: bool = False  # skip unreadable/invalid files instead of failing
    cache_gb: float = 2.0  # RAM for decoded crops, per machine, shared by the trainers running at once (0 = off)
    num_workers: int = -1  # DataLoader worker processes reading clips while the model computes (-1 = auto)


@dataclass
class AugmentConfig(_Section):
    """The study's training-time augmentations, each a switch with its probability; never applied at evaluation.

    Each draw of a training clip decides every switch independently; parameters are drawn per clip (one
    JPEG quality, noise level and colour change for all its frames: one camera), noise per pixel and frame.
    """

    compression: bool = False  # re-compress face and lip crops as JPEG at a random quality
    compression_p: float = 0.3
    jpeg_quality: list[int] = field(default_factory=lambda: [30, 90])  # uniform integer range, inclusive
    noise: bool = False  # additive Gaussian pixel noise
    noise_p: float = 0.2
    noise_std: list[float] = field(default_factory=lambda: [2.0, 10.0])  # sigma range, 0-255 pixel units
    color_jitter: bool = False  # brightness, contrast, saturation and hue
    color_jitter_p: float = 0.3
    brightness: float = 0.2  # factor drawn from [1 - b, 1 + b]
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02  # shift drawn from [-h, h] of the hue circle
    audio_noise: bool = False  # white noise on the 16 kHz waveform at a random SNR; MFCCs recomputed from it
    audio_noise_p: float = 0.2
    snr_db: list[float] = field(default_factory=lambda: [10.0, 30.0])  # uniform range
    only_real: bool = False  # augment REAL clips only (the study's REAL-only augmentation idea)


@dataclass
class ModelConfig(_Section):
    """MMMS-BA sizes (defaults: about 3.04 M parameters)."""

    face_channels: list[int] = field(default_factory=lambda: [64, 128, 256])
    lip_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    gru_hidden: int = 300  # per direction
    dense: int = 100
    attention: Literal["bi_modal", "self", "none"] = "bi_modal"
    dropout: float = 0.0
    mc_dropout: float = 0.0  # dropout kept active at inference for MC-dropout uncertainty (0 = off)
    # train: MFCC standardised with training-fold statistics | utterance: per-clip CMVN | none
    audio_norm: Literal["train", "utterance", "none"] = "train"


@dataclass
class LossConfig(_Section):
    """The objective and every class-imbalance switch (they combine)."""

    on: Literal["video", "frame", "both"] = "video"  # video: pooled logit | frame: every valid frame | both
    kind: Literal["ce", "focal", "class_balanced", "logit_adjusted"] = "ce"
    weighted: bool = False  # weighted cross-entropy with class_weights
    class_weights: list[float] = field(default_factory=lambda: [2.0, 1.0])  # [REAL, FAKE]
    label_smoothing: float = 0.1
    focal_alpha: float | None = None  # weight of the FAKE class in focal loss (None: no alpha)
    focal_gamma: float = 2.0
    cb_beta: float = 0.999  # class-balanced loss: effective number (1-beta^n)/(1-beta)
    la_tau: float = 1.0  # logit-adjusted loss temperature
    posthoc_tau: float = 0.0  # post-hoc logit adjustment at evaluation (0 = off)
    temporal_lambda: float = 0.0  # penalty on |p_t - p_{t-1}| of per-frame P(Fake)
    # frame-level imbalance (on=frame|both), separate from the video-level switches above: inside a video,
    # frames are weighted by their own (per-frame) label; FAKE frames are the minority inside partial fakes
    frame_weighted: bool = False
    frame_class_weights: list[float] = field(default_factory=lambda: [1.0, 2.0])  # [REAL, FAKE] frames


@dataclass
class MethodsConfig(_Section):
    """The study's further methods against the FAKE bias (6.2, 8.2-8.3); every one off by default.

    Building blocks: workbench.model.contrastive, workbench.data.hard_negatives, workbench.model.feature_smote,
    workbench.evaluation.triage; wired into a fold by workbench.training (trainer, methods, uncertainty).
    """

    supcon_weight: float = 0.0  # supervised contrastive loss on the pooled fused embedding, added x weight (0 = off)
    supcon_temperature: float = 0.1
    supcon_pretrain_epochs: int = 0  # two-stage variant: this many epochs of the contrastive loss alone first (0 = off)
    hard_negatives_fraction: float = 0.0  # share of FAKE clips (highest P(REAL) last epoch) drawn more often (0 = off)
    hard_negatives_boost: float = 2.0  # their draw weight multiplier (>= 1)
    hard_negatives_warmup: int = 1  # epochs of plain draws before the first re-weighting
    hard_negatives_include_real: bool = False  # also boost the REAL clips with the highest P(FAKE)
    feature_smote: bool = False  # refit the classifier on embeddings with SMOTE-synthesised REAL rows
    feature_smote_k: int = 5  # SMOTE neighbours (at most n_REAL - 1 are used)
    pseudo_label_rounds: int = 0  # self-training rounds on unlabelled clips (0 = off)
    pseudo_label_threshold: float = 0.9  # a clip is pseudo-labelled when max(P(REAL), P(FAKE)) >= this
    pseudo_label_real_only: bool = True  # pseudo-label only clips called REAL
    # triage (every run): MC-dropout passes per out-of-fold video when the model has dropout (0 = no MC spread)
    mc_samples: int = 10


@dataclass
class TrainConfig(_Section):
    """Optimiser, schedule, precision, stopping and checkpointing."""

    epochs: int = 15
    batch_size: int = 8
    lr: float = 5e-4
    weight_decay: float = 1e-4
    t_max: int = 15
    eta_min: float = 1e-5
    amp: bool = True  # bf16 on CPU where supported, bf16/fp16 on CUDA
    grad_clip: float = 1.0
    patience: int = 5  # early stopping (0 = off)
    # val_* monitors read the selection part (split.selection: the inner split by default); continuous by
    # default, since accuracy ties are the rule on a few clips. Checked at config time (metrics.valid_monitors).
    early_stop_monitor: str = "val_loss"
    checkpoint_monitor: str = "val_loss"
    weighted_sampler: bool = False  # inverse class frequency, with replacement
    device: str = "auto"  # auto | cpu | cuda
    progress: bool = True
    tensorboard: bool = False
    chunk_size: int = 256  # frames per CNN chunk at full-length inference
    channels_last: bool = True
    compile: bool = False
    # torch threads of a fold (0: the usable cores, resolved when a run starts and recorded in its config.yaml);
    # both engines honour it, so a fold trains alike locally and in a Ray task
    threads: int = 0


@dataclass
class SplitConfig(_Section):
    """Cross-validation splits."""

    kfold: int = 5
    # official: one fold, the dataset's own splits (index.csv `split`): fit on train, select on dev / val, score on
    # test; without a labelled test split, score on val and select on an inner part of train grouped by identity
    kind: Literal["stratified", "grouped", "length", "official"] = "stratified"
    shuffle: bool = True
    length_bins: int = 3  # video-length bins for kind=length
    merge_test: bool = False  # put clips marked `test` into the folds (the original study did)
    # inner: early stopping and the best checkpoint are chosen on an inner validation part of each outer
    # training fold, and the outer fold only scores | outer: chosen on the scoring fold (the original study)
    # last: no selection, the last epoch of a fixed budget (nothing is chosen, so nothing is optimistic)
    selection: Literal["inner", "outer", "last"] = "inner"
    inner_size: float = 0.15  # share of the outer training fold held out for selection (stratified / grouped)
    inner_min_per_class: int = 2  # the inner part holds at least this many clips of each class (else an error)


@dataclass
class EvalConfig(_Section):
    """What is scored after a fold is trained, with the checkpoint chosen on the selection part."""

    test: bool = True  # score every split=test clip with each fold model and the fold ensemble
    full_frames: bool = True  # per-frame P(Fake) on every frame of the outer-fold and test videos


@dataclass
class IngestConfig(_Section):
    """Turning videos into npz records."""

    fps: float | None = 30.0  # None keeps the file's native rate
    detect_every: int = 3  # run the face detector every N kept frames, track between
    detect_width: int = 480  # detector input width (frames are downscaled to this)
    face_margin: float = 0.25
    lip_scale: float = 1.6  # lip box width = lip_scale * mouth-corner distance
    max_gap: int = 15  # carry a face box over at most this many missed frames
    min_face_score: float = 0.5
    workers: int = 0  # 0 = all cores
    box_smoothing: float = 0.5  # EMA weight of the previous face/lip box at each detection (0 = none)
    silence_top_db: float = 40.0  # audio this many dB below its peak counts as silence
    track_size: int = 160  # while tracking, detect in a region around the last face resized to this (0 = whole frame)
    track_context: float = 2.0  # that region's side / the face box's side
    # lossless: per-frame WebP (webp the same, png per-frame PNG) | jpeg: per-frame JPEG at jpeg_quality (lossy) | raw
    storage: Literal["lossless", "webp", "png", "jpeg", "raw"] = "lossless"
    jpeg_quality: int = 95  # storage=jpeg only


@dataclass
class SynthConfig(_Section):
    """The synthetic audio-visual deepfake generator."""

    n_real: int = 317
    n_fake: int = 600
    n_identities: int = 12
    duration_mean: float = 4.0
    duration_std: float = 1.0
    n_long_real: int = 2
    long_duration: float = 180.0
    size: int = 256
    fps: float = 30.0
    artifact_strength: float = 1.0
    shortcut: Literal["none", "real_longer", "fake_leading_silence"] = "none"
    seed: int = 0  # dataset seed, independent of the training seed
    duration_min: float = 1.5  # short-form durations ~ Normal(mean, std) clipped to [min, max] seconds
    duration_max: float = 60.0
    fake_types: list[str] = field(default_factory=lambda: ["lip_sync", "face_swap", "audio_swap", "both"])
    workers: int = 0  # clip-rendering processes (0 = all cores)
    # partially faked clips (label 1; fake_segments in labels.csv): real clips with manipulated segments
    n_partial: int = 0  # in the K-fold pool (split=train)
    partial_segments: list[int] = field(default_factory=lambda: [1, 3])  # [min, max] segments per clip
    partial_seconds: list[float] = field(default_factory=lambda: [0.5, 1.5])  # [min, max] seconds per segment
    partial_modalities: list[str] = field(default_factory=lambda: ["audio", "video", "both"])  # shared out evenly
    partial_video: list[str] = field(default_factory=lambda: ["lip_sync", "face_swap"])  # video manipulation
    # more held-out test clips (split=test)
    n_long_fake: int = 0  # long-form FAKE clips of long_duration (fake types in turn)
    n_test_real: int = 0  # short REAL clips
    n_test_fake: int = 0  # short whole-video FAKE clips
    n_test_partial: int = 0  # short partial fakes
    # unlabelled short clips (split=unlabeled, label -1 in labels.csv; their truth in unlabeled_truth.csv, never
    # ingested): drawn like the pool, REAL and FAKE in its ratio, for the pseudo_label condition
    n_unlabeled: int = 0
    n_unlabeled_identities: int = 0  # > 0: the unlabelled clips show these new people (no labelled clip does) in turn
    # a planted confound (0 = off): dim, warm studio light on every long-form clip, on a share of the other FAKE
    # clips (STUDIO_FAKE_SHARE) and of the short REAL ones (STUDIO_REAL_SHARE); the value scales how dim
    studio_light: float = 0.0


@dataclass
class LocalizationConfig(_Section):
    """Fake-segment proposals from per-frame P(Fake) (workbench.evaluation.localization); scoring only, never training."""

    thresholds: list[float] = field(default_factory=lambda: [0.5])  # frames with P(Fake) > t; thresholds pooled
    merge_gap: float = 0.2  # seconds: runs of frames above a threshold this close merge into one proposal
    min_length: float = 0.1  # seconds: shorter proposals are dropped
    score: Literal["mean", "max"] = "mean"  # of the frames' P(Fake) inside a proposal: its confidence
    max_proposals: int = 100  # per video, most confident first
    # av1m: the official AV-Deepfake1M evaluator's rules | standard: VOC/ActivityNet AP and AR
    protocol: Literal["av1m", "standard"] = "av1m"


@dataclass
class EngineConfig(_Section):
    """Where the units of work, one (condition, fold) each, run; it cannot change results (not in the fingerprint)."""

    kind: Literal["local", "ray"] = "local"  # local: folds one after another in this process | ray: a task per fold
    address: str | None = None  # ray: None starts a local instance; "auto" or "ray://host:port" joins a running cluster
    num_cpus: float | None = None  # CPUs per fold task and its torch threads (None: the run's train.threads)
    num_gpus: float | None = None  # GPUs per fold task (fractions share a GPU); None: 1 when the cluster has GPUs
    max_retries: int = 3  # reruns of a fold whose worker died; the rerun resumes from fold_k's last checkpoint
    local_cpus: int | None = None  # CPUs of a locally started Ray instance (None: every usable core)


@dataclass
class Config:
    """The whole tree; saved beside every run."""

    name: str = "baseline"
    seed: int = 42
    out: str = "outputs/run"
    audio: AudioConfig = field(default_factory=AudioConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    methods: MethodsConfig = field(default_factory=MethodsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    localization: LocalizationConfig = field(default_factory=LocalizationConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON safe)."""
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> Path:
        """Write the config as YAML."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Config":
        """Defaults updated by a (partial, nested) dict; unknown keys fail loudly."""
        cfg = cls()
        if d:
            _update(cfg, d, prefix="")
        return cfg

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | None = None) -> "Config":
        """Defaults, then the YAML file (if any), then ``section.key=value`` overrides."""
        d = yaml.safe_load(Path(path).read_text()) if path else {}
        cfg = cls.from_dict(d or {})
        for o in overrides or []:
            cfg.set(o)
        return cfg

    def set(self, text: str) -> None:
        """Apply one ``section.key=value`` override (value parsed as YAML)."""
        _update(self, assignment(text), prefix="")

    def merged(self, d: dict[str, Any] | None) -> "Config":
        """A copy with a nested dict of overrides applied."""
        new = Config.from_dict(self.to_dict())
        if d:
            _update(new, d, prefix="")
        return new

    def fingerprint(self) -> str:
        """Stable JSON of the settings that define a training run (for resume checks)."""
        d = self.to_dict()
        for k in ("out", "ingest", "synth", "eval", "localization", "engine"):
            d.pop(k, None)
        d["train"] = {k: v for k, v in d["train"].items() if k not in ("progress", "device", "tensorboard", "threads")}
        d["data"] = {k: v for k, v in d["data"].items() if k not in RESULT_NEUTRAL_DATA}
        d["methods"].pop("mc_samples", None)  # triage only: read after training, it cannot change a fold's model
        if d["methods"] == {k: v for k, v in dataclasses.asdict(MethodsConfig()).items() if k != "mc_samples"}:
            d.pop("methods")  # all off: runs from before the section still resume
        return json.dumps(d, sort_keys=True)


def _coerce(value: Any, typ: Any, name: str) -> Any:
    origin = get_origin(typ)
    args = [a for a in get_args(typ) if a is not type(None)]
    if value is None:
        if type(None) in get_args(typ):
            return None
        raise TypeError(f"config field {name} may not be null")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"config field {name} expects a list, got {value!r}")
        inner = args[0] if args else Any
        return [_coerce(v, inner, name) for v in value]
    if origin is Literal:
        return _check_choice(value, tuple(args), name)
    if args and origin is not None:  # Optional[X] / X | None
        return _coerce(value, args[0], name)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise TypeError(f"config field {name} expects true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError(f"config field {name} expects an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise TypeError(f"config field {name} expects an integer, got {value!r}") from None
    if typ is float:
        try:
            return float(value)
        except ValueError:
            raise TypeError(f"config field {name} expects a number, got {value!r}") from None
    if typ is str:
        return str(value)
    return value


def _check_monitor(name: str, value: str) -> None:
    valid = valid_monitors()
    if value not in valid:
        raise ValueError(f"config field {name}={value!r} is not a metric the trainer computes; "
                         f"valid monitors: {sorted(valid)}")


def _check_positive(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"config field {name} must be positive (or null), got {value!r}")


def _check_non_negative(name: str, value: float | None) -> None:
    if value is not None and not value >= 0:
        raise ValueError(f"config field {name} must be >= 0 (or null), got {value!r}")


def _check_share(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"config field {name} must lie strictly between 0 and 1, got {value!r}")


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"config field {name} must lie in [0, 1], got {value!r}")


def _check_at_least(low: float) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if not value >= low:
            raise ValueError(f"config field {name} must be >= {low}, got {value!r}")
    return check


def _check_confidence(name: str, value: float) -> None:
    if not 0.5 < value <= 1.0:
        raise ValueError(f"config field {name} must lie in (0.5, 1], got {value!r}")


# field -> check(name, value), run whenever the field is set (so a bad value fails at config time)
VALIDATORS: dict[str, Callable[[str, Any], None]] = {
    "train.early_stop_monitor": _check_monitor,
    "train.checkpoint_monitor": _check_monitor,
    "split.inner_size": _check_share,
    "engine.num_cpus": _check_positive,
    "engine.num_gpus": _check_non_negative,
    "engine.max_retries": _check_non_negative,
    "methods.supcon_weight": _check_non_negative,
    "methods.supcon_temperature": _check_positive,
    "methods.supcon_pretrain_epochs": _check_non_negative,
    "methods.hard_negatives_fraction": _check_unit,
    "methods.hard_negatives_boost": _check_at_least(1.0),
    "methods.hard_negatives_warmup": _check_non_negative,
    "methods.feature_smote_k": _check_at_least(1),
    "methods.pseudo_label_rounds": _check_non_negative,
    "methods.pseudo_label_threshold": _check_confidence,
    "methods.mc_samples": _check_non_negative,
}


def _update(obj: Any, d: dict[str, Any], prefix: str) -> None:
    hints = get_type_hints(type(obj))
    names = {f.name for f in fields(obj)}
    for key, value in d.items():
        if key is True and "on" in names:  # YAML 1.1 reads the bare key `on:` (loss.on) as boolean true
            key = "on"
        full = f"{prefix}{key}"
        if key not in names:
            raise KeyError(f"unknown config field {full!r}; known: {sorted(names)}")
        cur = getattr(obj, key)
        if is_dataclass(cur):
            if not isinstance(value, dict):
                raise TypeError(f"config section {full!r} expects a mapping, got {value!r}")
            _update(cur, value, prefix=f"{full}.")
        else:
            value = _coerce(value, hints[key], full)
            if full in VALIDATORS:
                VALIDATORS[full](full, value)
            setattr(obj, key, value)


def field_type(path: str) -> Any:
    """The type hint of a config field given as ``section.key`` (or a top-level ``key``)."""
    obj: Any = Config()
    *sections, key = path.split(".")
    for s in sections:
        obj = getattr(obj, s)
    hints = get_type_hints(type(obj))
    if key not in hints:
        raise KeyError(f"unknown config field {path!r}")
    return hints[key]


def choices_of(path: str) -> tuple[str, ...]:
    """The allowed values of a choice field (its Literal type), e.g. choices_of("loss.kind")."""
    typ = field_type(path)
    if get_origin(typ) is not Literal:
        raise TypeError(f"config field {path} is not a choice field")
    return get_args(typ)


def assignment(text: str) -> dict[str, Any]:
    """``section.key=value`` as a nested dict (the value parsed as YAML)."""
    if "=" not in text:
        raise ValueError(f"override {text!r} is not of the form section.key=value")
    key, raw = text.split("=", 1)
    return nested(key.strip(), yaml.safe_load(raw) if raw.strip() else None)


def nested(path: str, value: Any) -> dict[str, Any]:
    """``section.key`` and a value as a nested dict, {"section": {"key": value}}."""
    *sections, key = path.split(".")
    out: dict[str, Any] = {key: value}
    for s in reversed(sections):
        out = {s: out}
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A new nested dict: ``over`` on top of ``base`` (YAML's bare key ``on:``, read as True, is ``on``)."""
    out = {("on" if k is True else k): v for k, v in base.items()}
    for k, v in over.items():
        k = "on" if k is True else k
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
