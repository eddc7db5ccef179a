"""Readers of public audio-visual deepfake datasets' own metadata -> ingest manifest rows.

Each reader takes the dataset's root folder as published and returns one dict per video with the
manifest's columns (``path`` relative to the root, ``label`` 0/1 or -1 for an unlabelled clip, ``video_id``,
``group``, ``split``, optional ``fake_segments``) and the extra metadata columns ``dataset``,
``source_path``, ``fake_type``, ``audio_fake`` and ``video_fake`` (0/1), then dataset-specific ones.

    fakeavceleb  meta_data.csv (FakeAVCeleb v1.2): category A real, B fake audio, C fake video, D both;
                 fake_type = method; group = source identity; split train (the dataset names none)
    lavdf        metadata.json or metadata.min.json (LAV-DF): fake from modify_video / modify_audio,
                 fake_periods -> segments; split train | dev | test; group = the original video
    av1m         <subset>_metadata.json (AV-Deepfake1M, ++): files under <subset>/; fake_type = modify_type;
                 audio / visual segments kept apart; group = identity folder; folders without metadata
                 (test/) are unlabelled: skipped, or label -1 with ``unlabeled``
    dfdc         metadata.json of each part (DFDC): label REAL | FAKE, split as given, group = the original

Video ids are the path of the file (relative to the root, or to AV-Deepfake1M's subset folder) without its
extension, so a name used in many folders (AV-Deepfake1M's real.mp4) stays unique.
"""
from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Sequence, TypeVar

DATASETS = {"fakeavceleb": "FakeAVCeleb", "lavdf": "LAV-DF", "av1m": "AV-Deepfake1M", "dfdc": "DFDC"}
UNLABELED = "unlabeled"  # split of the clips a dataset gives no label for (label -1)
VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
FAKEAVCELEB_HEADER = ("source", "target1", "target2", "method", "category", "type", "race", "gender", "path")
FAKEAVCELEB_CATEGORIES = {"A": (0, 0, 0), "B": (1, 1, 0), "C": (1, 0, 1), "D": (1, 1, 1)}  # label, audio, video
AV1M_TYPES = {"real": (0, 0, 0), "visual_modified": (1, 0, 1), "audio_modified": (1, 1, 0),
              "both_modified": (1, 1, 1)}
T = TypeVar("T")


# ------------------------------------------------------------------ shared
def _row(dataset: str, rel: str, video_id: str, label: int, split: str, group: str, fake_type: str,
         audio_fake: int | str, video_fake: int | str, **extra: Any) -> dict[str, str]:
    """One manifest row; ``extra`` (e.g. fake_segments) follows the common columns."""
    row = dict(path=rel, label=str(label), video_id=video_id, group=group, split=split, dataset=dataset,
               source_path=rel, fake_type=fake_type, audio_fake=str(audio_fake), video_fake=str(video_fake))
    row.update({k: "" if v is None else str(v) for k, v in extra.items()})
    return row


def _stem(rel: str) -> str:
    """A relative path without its extension, '/'-separated."""
    return str(PurePosixPath(rel).with_suffix(""))


def _segments_json(segments: list[tuple[float, float, str]]) -> str:
    """Segments as the manifest's fake_segments cell ('' for none)."""
    return json.dumps([[float(s), float(e), m] for s, e, m in segments]) if segments else ""


def _json_list(path: Path) -> list[dict]:
    """A metadata file holding a JSON list of objects (ValueError naming the file otherwise)."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of videos, got a {type(data).__name__}")
    for n, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: entry {n} is a {type(entry).__name__}, not an object")
        if not isinstance(entry.get("file"), str) or not entry["file"].strip():
            raise ValueError(f"{path}: entry {n} has no 'file' ({_short(entry)})")
    return data


def _load_json(path: Path) -> Any:
    """Parsed JSON, or ValueError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def _short(obj: Any, n: int = 120) -> str:
    text = json.dumps(obj, default=str)
    return text if len(text) <= n else text[:n] + "..."


def _first_char(path: Path) -> str:
    """The first non-blank character of a text file ('' when empty or unreadable)."""
    try:
        with open(path, "rb") as f:
            head = f.read(256).decode("utf-8", "ignore").lstrip("\ufeff \t\r\n")
    except OSError:
        return ""
    return head[:1]


def _video_files(folder: Path) -> list[str]:
    """Video files under a folder, relative to it, sorted ('/'-separated)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.suffix.lower() in VIDEO_EXTS and not p.name.startswith(".") and p.is_file())


# ------------------------------------------------------------------ layout
def detect_layout(root: str | Path) -> str | None:
    """The public dataset a folder holds (fakeavceleb, lavdf, av1m, dfdc), from its metadata files; else None."""
    root = Path(root)
    if not root.is_dir():
        return None
    if (root / "meta_data.csv").is_file():
        return "fakeavceleb"
    if any(p.is_file() for p in root.glob("*_metadata.json")):
        return "av1m"
    for name in ("metadata.json", "metadata.min.json"):
        first = _first_char(root / name) if (root / name).is_file() else ""
        if first:
            return {"[": "lavdf", "{": "dfdc"}.get(first)
    return "dfdc" if _dfdc_parts(root) else None


# ------------------------------------------------------------------ FakeAVCeleb
def _fakeavceleb_rel(folder: str, name: str) -> str:
    """The file's path relative to the root: the folder column's leading FakeAVCeleb*/ names the root itself."""
    parts = [p for p in folder.replace("\\", "/").split("/") if p and p != "."]
    if parts and parts[0].lower().startswith("fakeavceleb"):
        parts = parts[1:]
    return "/".join(parts + [name])


def read_fakeavceleb(root: Path, *, unlabeled: bool = False, note: Callable[[str], None] = print) -> list[dict]:
    """FakeAVCeleb v1.2's meta_data.csv -> rows (a repeated row read once)."""
    path = Path(root) / "meta_data.csv"
    with open(path, newline="", encoding="utf-8-sig") as f:
        lines = list(csv.reader(f))
    header = tuple(c.strip() for c in (lines[0] if lines else [])[:9])
    if header != FAKEAVCELEB_HEADER:
        raise ValueError(f"{path}: header {list(header)} is not FakeAVCeleb's ({','.join(FAKEAVCELEB_HEADER)},)")
    rows, seen = [], set()
    for n, raw in enumerate(lines[1:], start=2):
        values = tuple(v.strip() for v in raw)
        if not any(values):
            continue
        if len(values) < 10:
            raise ValueError(f"{path} line {n}: {len(values)} values, expected 10 (the 9 columns and the folder)")
        if values[:10] in seen:
            continue
        seen.add(values[:10])
        source, _, _, method, category, _, race, gender, name, folder = values[:10]
        if category not in FAKEAVCELEB_CATEGORIES:
            raise ValueError(f"{path} line {n} ({name}): unknown category {category!r} (expected A, B, C or D)")
        label, audio, video = FAKEAVCELEB_CATEGORIES[category]
        rel = _fakeavceleb_rel(folder, name)
        rows.append(_row("fakeavceleb", rel, _stem(rel), label, "train", source, method, audio, video,
                         category=category, race=race, gender=gender))
    if len(lines) - 1 > len(rows):
        note(f"FakeAVCeleb: {path.name} lists {len(rows)} videos "
             f"({len(lines) - 1 - len(rows)} repeated or blank rows read once)")
    return rows


# ------------------------------------------------------------------ LAV-DF
def _flag(entry: dict, key: str, where: str) -> bool:
    """A boolean field of a metadata entry (ValueError when absent or not a boolean)."""
    v = entry.get(key)
    if not isinstance(v, bool):
        raise ValueError(f"{where}: {key!r} is {v!r}, expected true or false")
    return v


def _periods(entry: dict, key: str, where: str) -> list[list]:
    """A list of [start_s, end_s] periods of a metadata entry ([] when absent or null)."""
    v = entry.get(key)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in p) for p in v):
        raise ValueError(f"{where}: {key!r} must be a list of [start_s, end_s], got {_short(v)}")
    return [list(p) for p in v]


def read_lavdf(root: Path, *, unlabeled: bool = False, note: Callable[[str], None] = print) -> list[dict]:
    """LAV-DF's metadata.json (or metadata.min.json) -> rows; files and originals are relative to the root."""
    root = Path(root)
    path = next((root / n for n in ("metadata.json", "metadata.min.json") if (root / n).is_file()), None)
    if path is None:
        raise ValueError(f"{root}: no metadata.json or metadata.min.json (the LAV-DF layout)")
    rows = []
    for n, e in enumerate(_json_list(path)):
        rel = e["file"].strip().replace("\\", "/")
        where = f"{path} entry {n} ({rel})"
        video, audio = _flag(e, "modify_video", where), _flag(e, "modify_audio", where)
        modality = "both" if video and audio else "video" if video else "audio"
        segments = [(s, t, modality) for s, t in _periods(e, "fake_periods", where)]
        fake_type = {(0, 0): "real", (1, 0): "visual_modified", (0, 1): "audio_modified"}.get((video, audio),
                                                                                              "both_modified")
        original = e.get("original") or None
        group = _stem(original.replace("\\", "/")) if isinstance(original, str) else _stem(rel)
        rows.append(_row("lavdf", rel, _stem(rel), int(video or audio), str(e.get("split") or "train"), group,
                         fake_type, int(audio), int(video), original=original,
                         fake_segments=_segments_json(segments)))
    return rows


# ------------------------------------------------------------------ AV-Deepfake1M
def _av1m_type(e: dict, where: str) -> str:
    """An entry's modify_type, its spelling normalised (both-modified -> both_modified)."""
    raw = e.get("modify_type")
    kind = str(raw).strip().lower().replace("-", "_")
    if kind not in AV1M_TYPES:
        raise ValueError(f"{where}: unknown modify_type {raw!r} (expected {', '.join(AV1M_TYPES)})")
    return kind


def _av1m_segments(e: dict, kind: str, where: str) -> list[tuple[float, float, str]]:
    """Fake segments with their modality: audio and visual lists kept apart (one in both is 'both')."""
    audio = _periods(e, "audio_fake_segments", where)
    visual = _periods(e, "visual_fake_segments", where)
    if not audio and not visual:
        modality = {"visual_modified": "video", "audio_modified": "audio"}.get(kind, "both")
        return [(s, t, modality) for s, t in _periods(e, "fake_segments", where)]
    both = [p for p in audio if p in visual]
    out = [(s, t, "both") for s, t in both]
    out += [(s, t, "audio") for s, t in audio if [s, t] not in both]
    out += [(s, t, "video") for s, t in visual if [s, t] not in both]
    return sorted(out, key=lambda seg: (float(seg[0]), float(seg[1])))


def _av1m_labelled(root: Path, meta: Path) -> list[dict]:
    """Rows of one <subset>_metadata.json; each file lies under <subset>/."""
    subset = meta.name[: -len("_metadata.json")]
    rows = []
    for n, e in enumerate(_json_list(meta)):
        file = e["file"].strip().replace("\\", "/")
        where = f"{meta} entry {n} ({file})"
        kind = _av1m_type(e, where)
        label, audio, video = AV1M_TYPES[kind]
        rows.append(_row("av1m", f"{subset}/{file}", _stem(file), label, str(e.get("split") or subset),
                         file.split("/")[0], kind, audio, video, original=e.get("original"),
                         audio_model=e.get("audio_model"),
                         fake_segments=_segments_json(_av1m_segments(e, kind, where))))
    return rows


def _av1m_unlabeled(root: Path, folder: Path) -> list[dict]:
    """Rows (label -1, split unlabeled) of a subset folder without metadata; <name>_files.txt lists it when present."""
    listing = root / f"{folder.name}_files.txt"
    if listing.is_file():
        files = [ln.strip().replace("\\", "/") for ln in listing.read_text().splitlines() if ln.strip()]
    else:
        files = _video_files(folder)
    return [_row("av1m", f"{folder.name}/{f}", _stem(f), -1, UNLABELED, f.split("/")[0] if "/" in f else _stem(f),
                 "", "", "", original="", audio_model="", fake_segments="") for f in files]


def read_av1m(root: Path, *, unlabeled: bool = False, note: Callable[[str], None] = print) -> list[dict]:
    """AV-Deepfake1M (and ++): every <subset>_metadata.json, and the subset folders without one (unlabelled)."""
    root = Path(root)
    metas = sorted(p for p in root.glob("*_metadata.json") if p.is_file())
    if not metas:
        raise ValueError(f"{root}: no <subset>_metadata.json such as train_metadata.json (the AV-Deepfake1M layout)")
    rows = [r for m in metas for r in _av1m_labelled(root, m)]
    subsets = {m.name[: -len("_metadata.json")] for m in metas}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name in subsets or folder.name.endswith("_metadata") or folder.name.startswith("."):
            continue
        found = _av1m_unlabeled(root, folder)
        if not found:
            continue
        if unlabeled:
            note(f"AV-Deepfake1M: {len(found)} unlabelled video(s) in {folder.name}/ ingested with label -1")
            rows += found
        else:
            note(f"AV-Deepfake1M: skipped {len(found)} unlabelled video(s) in {folder.name}/ (no "
                 f"{folder.name}_metadata.json; --unlabeled ingests them with label -1)")
    return rows


# ------------------------------------------------------------------ DFDC
def _dfdc_parts(root: Path) -> list[Path]:
    """The folders holding a DFDC metadata.json (an object by file name): the root itself, or its parts."""
    if _first_char(root / "metadata.json") == "{":
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and _first_char(p / "metadata.json") == "{")


def _dfdc_part(root: Path, part: Path) -> list[dict]:
    """Rows of one part's metadata.json."""
    path = part / "metadata.json"
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of videos by file name, got a {type(data).__name__}")
    prefix = "" if part == root else part.relative_to(root).as_posix() + "/"
    rows = []
    for name, e in data.items():
        if not isinstance(e, dict):
            raise ValueError(f"{path}: entry {name!r} is a {type(e).__name__}, not an object")
        raw = e.get("label")
        label = {"REAL": 0, "FAKE": 1}.get(str(raw).strip().upper())
        if label is None:
            raise ValueError(f"{path}: {name}: unknown label {raw!r} (expected REAL or FAKE)")
        original = e.get("original") or None
        group = _stem(str(original)) if label == 1 and original else _stem(name)
        rel = prefix + name
        rows.append(_row("dfdc", rel, _stem(rel), label, str(e.get("split") or "train"), group,
                         "FAKE" if label else "real", 0, label, original=original))
    return rows


def read_dfdc(root: Path, *, unlabeled: bool = False, note: Callable[[str], None] = print) -> list[dict]:
    """DFDC: the metadata.json of every dfdc_train_part_N/ folder (or of the root itself) -> rows."""
    root = Path(root)
    parts = _dfdc_parts(root)
    if not parts:
        raise ValueError(f"{root}: no metadata.json object in it or in its part folders (the DFDC layout)")
    return [r for part in parts for r in _dfdc_part(root, part)]


READERS: dict[str, Callable[..., list[dict]]] = {"fakeavceleb": read_fakeavceleb, "lavdf": read_lavdf,
                                                   "av1m": read_av1m, "dfdc": read_dfdc}


def read_dataset(root: str | Path, dataset: str, *, unlabeled: bool = False,
                 note: Callable[[str], None] = print) -> list[dict]:
    """The manifest rows of a public dataset's root folder, read by its reader."""
    root = Path(root)
    if dataset not in READERS:
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(READERS)}")
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    return READERS[dataset](root, unlabeled=unlabeled, note=note)


# ------------------------------------------------------------------ sampling
def _rank(seed: int, key: str) -> str:
    """A seeded pseudo-random rank of one item, independent of the others (so samples nest as N grows)."""
    return hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()


def stratified_sample(items: Sequence[T], n: int, seed: int, label: Callable[[T], Any],
                      key: Callable[[T], str]) -> list[T]:
    """n items, each label's share as in ``items`` (largest remainders), seeded and deterministic; input order kept."""
    if n < 0:
        raise ValueError(f"--limit must be at least 0, got {n}")
    if n >= len(items):
        return list(items)
    counts = Counter(label(x) for x in items)
    quota = {c: n * k // len(items) for c, k in counts.items()}
    left = n - sum(quota.values())
    for c in sorted(counts, key=lambda c: (-(n * counts[c] % len(items)), str(c)))[:left]:
        quota[c] += 1
    chosen = set()
    for c in counts:
        ranked = sorted((x for x in items if label(x) == c), key=lambda x: _rank(seed, key(x)))
        chosen.update(id(x) for x in ranked[: quota[c]])
    return [x for x in items if id(x) in chosen]


__all__ = ["DATASETS", "READERS", "detect_layout", "read_av1m", "read_dataset", "read_dfdc", "read_fakeavceleb",
           "read_lavdf", "stratified_sample"]
