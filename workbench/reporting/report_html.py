"""`workbench report OUT`: one self-contained HTML page of a study folder, to send to a colleague.

Every figure is embedded (base64 PNG) and the page needs nothing from the network: no scripts,
fonts or style sheets from elsewhere. It shows what exists and skips the rest quietly: what ran
(study.json), the tables of `TABLES` (edit that list to change what the page shows), then every
PNG under the study grouped by notebook or condition. The executed notebooks are rendered to HTML
with nbconvert into `report_notebooks/` beside the page and linked from it.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import os
import re
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
from nbconvert import HTMLExporter

from workbench.analysis.reports import NOTEBOOK_TABLES
from workbench.core.paths import missing_study

# (file under the study, heading, caption): the tables of the page, in order. Missing files are skipped.
TABLES: list[tuple[str, str, str]] = [
    ("05_compare_conditions/paradox_table.csv", "The paradox table",
     "Per condition: outer-fold video metrics beside what the same models do to the frames of REAL videos (mean ± "
     "std over folds, ddof=1), each at the epoch chosen on the fold's inner part; the selection optimism of "
     "accuracy and the held-out test (fold ensemble). Higher video accuracy with more REAL frames above 0.5 is the "
     "paradox."),
    ("05_compare_conditions/selection_optimism.csv", "Selection optimism",
     "protocol: the scoring fold's metric at the epoch that maximises it (what choosing the best epoch on the reported "
     "fold prints); honest: the same fold's metric at the epoch chosen on the inner part; from the same run."),
    ("05_compare_conditions/heldout_test.csv", "Held-out test",
     "Each condition's fold models and their ensemble on the held-out test split, which no fold trained or selected "
     "on; frame-level scores use every frame."),
    ("05_compare_conditions/heldout_parts.csv", "Held-out test in parts",
     "The fold ensemble on each part of the held-out test (evaluation.parts): short whole clips drawn like the pool "
     "(the video-level score), partial fakes (frame ROC-AUC inside them against their true frame labels) and clips "
     "longer than any pool clip (REAL frames' P(Fake): where the study's paradox shows)."),
    ("05_compare_conditions/fake_types.csv", "Which fakes the detector finds",
     "Out of fold, per fake type: that type's pool clips against every REAL pool clip (ROC-AUC = Mann-Whitney U / "
     "n1 n2; one-sided p-value; above_chance at p < 0.05). Each clip scored by the fold model that never saw it."),
    ("05_compare_conditions/silence_check.csv", "The leading-silence check",
     "Per checked condition and set: the ROC-AUC of video P(Fake) before and after trimming every video's leading "
     "silence (and padding REAL ones with the median FAKE silence), the change with a paired 95% bootstrap "
     "interval over videos, and the silence-only AUC of the same videos. A drop says the detector leans on it."),
    ("01_class_imbalance/silence_baseline.csv", "The leading-silence baseline",
     "Per split: the ROC-AUC of the leading-silence length alone as a FAKE score (notebook 01)."),
    ("05_compare_conditions/triage.csv", "Uncertainty triage",
     "Per condition: the held-out test ranked by the fold models' spread and the out-of-fold videos by their "
     "MC-dropout spread; abstaining on the most uncertain first. AURC below random_aurc means the spread finds the "
     "errors; coverage_at_target is the share decided automatically at the target error rate."),
    ("05_compare_conditions/paired_differences.csv", "Paired differences against the baseline",
     "Condition minus baseline on the same folds: corrected resampled t-test (Nadeau & Bengio 2003) with its 95% "
     "interval; half_width is the smallest observed difference it calls significant, power80 the true difference it "
     "would detect 4 times in 5 (80% power at these folds' spread; `workbench power` gives it before a study), "
     "step the accuracy change of one clip in a fold."),
    ("03_temporal_pfake/temporal_stats.csv", "Per-frame P(Fake) of the inspected videos",
     "Notebook 03: P(Fake) on every frame of the held-out videos (fold ensemble) and of pool FAKE videos (only the "
     "fold model that did not train on them; `status` says which)."),
    ("06_localization_attribution/localization.csv", "Localization of manipulated frames",
     "Notebook 06, every frame: segment proposals from per-frame P(Fake) scored against the true fake segments "
     "(AP at IoU 0.5-0.95, AR at 50-5 proposals, by the protocol its `protocol` column names: av1m counts as the "
     "official AV-Deepfake1M evaluator does, so the numbers compare with published tables; standard is VOC / "
     "ActivityNet AP; proposals on REAL videos are false positives), beside frame-level ROC-AUC/AP against the true frame labels. test: fold ensemble on the "
     "held-out test; oof: each pool video by its own fold model."),
    ("06_localization_attribution/attribution.csv", "Which modality drives the REAL test videos' P(Fake)",
     "Notebook 06: drive = P(Fake) minus P(Fake) with that modality replaced (by its training mean, or a REAL donor's "
     "of another identity); blames = the modality with the largest drive."),
]
NOTEBOOK_DIR = "report_notebooks"
MAX_ROWS = 200  # longer tables are cut (the CSV has every row)

CSS = """
:root { --ink: #1d3557; --muted: #5c677d; --line: #dde3ea; --bg: #f6f8fa; --accent: #e63946; --ok: #2a9d8f; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #fff; }
header { background: var(--ink); color: #fff; padding: 28px 40px 22px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; }
header p { margin: 2px 0; color: #cfd8e3; }
nav { position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 1px solid var(--line); padding: 8px 40px;
      font-size: 13.5px; }
nav a { color: var(--ink); margin-right: 16px; text-decoration: none; white-space: nowrap; }
nav a:hover { color: var(--accent); }
main { max-width: 1180px; margin: 0 auto; padding: 8px 40px 60px; }
section { margin-top: 34px; }
h2 { font-size: 20px; border-bottom: 2px solid var(--line); padding-bottom: 4px; margin: 0 0 8px; }
h3 { font-size: 16px; margin: 26px 0 8px; color: var(--ink); }
p.caption { color: var(--muted); margin: 0 0 10px; max-width: 860px; }
.source { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--muted); }
/* A table wider than the text column grows up to the window's width, centred on the column; wider still, it
   scrolls inside its box (both ways, so its header row stays in view and its scroll bar is never off-screen),
   with a shadow at the edge that has more columns behind it. */
.scroll { position: relative; left: 50%; transform: translateX(-50%); width: max-content; min-width: 100%;
          max-width: calc(100vw - 48px); max-height: 78vh; overflow: auto; border: 1px solid var(--line);
          border-radius: 6px;
          background: linear-gradient(to right, #fff 40%, #fff0) left / 28px 100% no-repeat local,
                      linear-gradient(to left, #fff 40%, #fff0) right / 28px 100% no-repeat local,
                      radial-gradient(farthest-side at 0 50%, #1d355738, #0000) left / 12px 100% no-repeat scroll,
                      radial-gradient(farthest-side at 100% 50%, #1d355738, #0000) right / 12px 100% no-repeat scroll; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; width: 100%; }
td { white-space: nowrap; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; vertical-align: top; }
th { background: var(--bg); font-weight: 600; color: var(--ink); position: sticky; top: 0; }
td.text, th.text { text-align: left; }
tr:last-child td { border-bottom: none; }
tbody tr:hover td { background: #fbfcfd; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.bad { color: var(--accent); font-weight: 600; }
.good { color: var(--ok); font-weight: 600; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 18px; }
figure { min-width: 0; margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 10px; background: #fff; }
figure.wide { grid-column: 1 / -1; }
figure img { display: block; width: 100%; height: auto; }
figcaption { font-size: 12.5px; color: var(--muted); margin-top: 6px; }
ul.notebooks { columns: 2; padding-left: 18px; }
footer { color: var(--muted); font-size: 12.5px; border-top: 1px solid var(--line); margin-top: 40px; padding-top: 10px; }
"""


# ------------------------------------------------------------------ pieces
def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _cell(v: Any) -> str:
    """A table cell's text: numbers rounded, NaN as a dash."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}" if abs(v) >= 1000 or (abs(v) < 0.001 and v != 0) else f"{v:.3f}"
    return str(v)


def merge_mean_std(df: pd.DataFrame) -> pd.DataFrame:
    """Columns X_mean and X_std become one column X holding 'mean ± std' (other columns unchanged)."""
    out = {}
    for col in df.columns:
        if col.endswith("_std") and f"{col[:-4]}_mean" in df.columns:
            continue
        if col.endswith("_mean") and f"{col[:-5]}_std" in df.columns:
            m, s = df[col], df[f"{col[:-5]}_std"]
            out[col[:-5]] = [("—" if pd.isna(a) else f"{a:.3f} ± {0.0 if pd.isna(b) else b:.3f}") for a, b in zip(m, s)]
        else:
            out[col] = df[col]
    return pd.DataFrame(out, index=df.index)


def table_html(df: pd.DataFrame, max_rows: int = MAX_ROWS) -> str:
    """An HTML table of df (mean/std pairs merged, numbers rounded, long names breakable)."""
    df = merge_mean_std(df.reset_index(drop=True))
    cut = len(df) - max_rows
    df = df.head(max_rows)
    textual = [not pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
               and not df[c].astype(str).str.contains(" ± ").any() for c in df.columns]
    head = "".join(f'<th class="{"text" if t else ""}">{_esc(c).replace("_", "_<wbr>")}</th>'
                   for c, t in zip(df.columns, textual))
    rows = ["<tr>" + "".join(f'<td class="{"text" if t else ""}">{_esc(_cell(v))}</td>' for v, t in zip(r, textual))
            + "</tr>" for r in df.itertuples(index=False)]
    more = f'<p class="caption">… {cut} more rows in the CSV.</p>' if cut > 0 else ""
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>{more}'


def _read_table(path: Path) -> pd.DataFrame | None:
    """A CSV as a table, or None when it is missing, empty or unreadable."""
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
        return None
    return df if len(df) and len(df.columns) else None


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return 0, 0
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _group_order(name: str) -> tuple[int, str]:
    """Notebook folders in notebook order, condition folders (02) after 01, alphabetically."""
    m = re.match(r"(\d\d)_", name)
    return (int(m.group(1)) * 10, name) if m else (25, name)


# ------------------------------------------------------------------ sections
def _fact_value(key: str, v: Any) -> str:
    """One value of a study.json mapping: seconds (keys `seconds`, `*_seconds`, `*_s`) as '12.3 s', other numbers
    plain (`num_cpus: 1`, a count, gets no unit), None as 'none'."""
    if v is None:
        return "none"
    if isinstance(v, (int, float)) and not isinstance(v, bool) and (key == "seconds" or key.endswith(("_seconds", "_s"))):
        return f"{v:.1f} s"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _facts_html(study: dict) -> str:
    """What ran, from study.json: scalars, lists, failures and stage timings when present."""
    items = []
    for k, v in study.items():
        if isinstance(v, dict) and v and all(not isinstance(x, (dict, list)) for x in v.values()):
            cls = ' class="bad"' if k == "failed" else ""
            v = "; ".join(f"{a}: {_fact_value(a, b)}" for a, b in v.items())
            items.append(f"<dt>{_esc(k)}</dt><dd{cls}>{_esc(v)}</dd>")
        elif isinstance(v, dict) and v:
            continue  # nested tables below
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            continue  # a table below (e.g. the stages: name, status, seconds)
        elif isinstance(v, list):
            items.append(f"<dt>{_esc(k)}</dt><dd>{_esc(', '.join(map(str, v)) or '—')}</dd>")
        elif k == "seconds" and isinstance(v, (int, float)):
            items.append(f"<dt>time</dt><dd>{v / 60:.1f} min</dd>")
        elif isinstance(v, dict):
            items.append(f"<dt>{_esc(k)}</dt><dd>none</dd>")
        else:
            items.append(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>")
    out = f'<dl class="facts">{"".join(items)}</dl>'
    for k, v in study.items():  # stage timings: a list of {name, status, seconds} or name -> {seconds, ...}
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            df = pd.DataFrame(v)
            if "seconds" in df:
                df = df.assign(minutes=df.pop("seconds") / 60)
            out += f"<h3>{_esc(k)}</h3>" + table_html(df)
        elif isinstance(v, dict) and v and any(isinstance(x, (dict, list)) for x in v.values()):
            rows = [{"stage": a, **(b if isinstance(b, dict) else {"value": b})} for a, b in v.items()]
            out += f"<h3>{_esc(k)}</h3>" + table_html(pd.DataFrame(rows))
    return out


def _figures_html(study_dir: Path) -> tuple[str, int]:
    """Every PNG under the study, grouped by its top-level folder; returns the HTML and the count."""
    groups: dict[str, list[Path]] = {}
    for p in sorted(study_dir.rglob("*.png")):
        rel = p.relative_to(study_dir)
        if rel.parts[0] == NOTEBOOK_DIR:
            continue
        groups.setdefault(rel.parts[0] if len(rel.parts) > 1 else ".", []).append(p)
    parts, n = [], 0
    for name in sorted(groups, key=_group_order):
        figs = []
        for p in groups[name]:
            data = p.read_bytes()
            w, h = _png_size(data)
            wide = " wide" if w > 1200 or (h and w / h > 2.2) else ""
            rel = p.relative_to(study_dir)
            figs.append(f'<figure class="fig{wide}"><img alt="{_esc(rel)}" width="{w}" height="{h}" '
                        f'src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'
                        f'<figcaption>{_esc(p.stem.replace("_", " "))} <span class="source">{_esc(rel)}</span>'
                        f'</figcaption></figure>')
            n += 1
        parts.append(f'<h3 id="fig-{_anchor(name)}">{_esc(name)}</h3><div class="figures">{"".join(figs)}</div>')
    return "".join(parts), n


def render_notebooks(study_dir: Path) -> list[tuple[str, Path]]:
    """Each executed notebook of the study (one folder deep) as HTML in report_notebooks/; (label, html path).

    The widget state is left out so that the inspector's still (its image/png output) is what shows,
    and script tags that would load from the network (MathJax, require.js) are removed: the pages open offline.
    """
    out_dir = study_dir / NOTEBOOK_DIR
    done = []
    for nb_path in sorted(study_dir.glob("*/[0-9][0-9]_*.ipynb"), key=lambda p: _group_order(p.parent.name)):
        label = f"{nb_path.parent.name} · {nb_path.stem}" if nb_path.parent.name != nb_path.stem else nb_path.stem
        dst = out_dir / f"{nb_path.parent.name}--{nb_path.stem}.html"
        if not dst.exists() or dst.stat().st_mtime < nb_path.stat().st_mtime:
            nb = nbformat.read(nb_path, as_version=4)
            nb.metadata.pop("widgets", None)
            body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
            body = re.sub(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>', "", body)
            body = re.sub(r'<link[^>]*\shref="https?://[^"]*"[^>]*>', "", body)
            out_dir.mkdir(parents=True, exist_ok=True)
            dst.write_text(body, encoding="utf-8")
        done.append((label, dst))
    return done


# ------------------------------------------------------------------ the page
def write_report(study_dir: str | Path, out: str | Path | None = None, notebooks: bool = True) -> Path:
    """Write the study's report (default `<study>/report.html`); returns its path."""
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise missing_study(study_dir, "nothing")
    out = Path(out) if out else study_dir / "report.html"
    study_json = study_dir / "study.json"
    study = json.loads(study_json.read_text()) if study_json.is_file() else {}
    sections, nav = [], []

    def add(title: str, body: str, caption: str = "", source: str = "") -> None:
        aid = _anchor(title)
        nav.append(f'<a href="#{aid}">{_esc(title)}</a>')
        src = f' <span class="source">{_esc(source)}</span>' if source else ""
        cap = f'<p class="caption">{_esc(caption)}{src}</p>' if caption or src else ""
        sections.append(f'<section id="{aid}"><h2>{_esc(title)}</h2>{cap}{body}</section>')

    if study:
        add("What ran", _facts_html(study), source="study.json")
    headlines = {f: (cols, rows) for f, _, cols, rows in NOTEBOOK_TABLES}  # notebook 06's headline rows and columns
    for rel, heading, caption in TABLES:
        df = _read_table(study_dir / rel)
        if df is not None and rel in headlines:
            cols, rows = headlines[rel]
            df = df.astype({"fold": str}) if "fold" in df else df
            df = df.query(rows)[[c for c in cols if c in df.columns]]
        if df is not None and len(df):
            add(heading, table_html(df), caption, rel)
    figs, n_figs = _figures_html(study_dir)
    if n_figs:
        add("Figures", figs, f"Every figure the study wrote ({n_figs}), by notebook and condition.")
    if notebooks:
        rendered = render_notebooks(study_dir)
        if rendered:
            links = "".join(f'<li><a href="{_esc(Path(os.path.relpath(p, out.parent)).as_posix())}">{_esc(label)}</a></li>'
                            for label, p in rendered)
            add("Executed notebooks", f'<ul class="notebooks">{links}</ul>',
                "Each notebook as it ran, with its code, tables and figures (rendered with nbconvert).")
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    facts = " · ".join(_esc(x) for x in (f"preset {study['preset']}" if "preset" in study else "",
                                          f"data {study['data_dir']}" if "data_dir" in study else "") if x)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Study report · {_esc(study_dir.name)}</title><style>{CSS}</style></head>
<body><header><h1>Study report · {_esc(study_dir.name)}</h1>
<p>Audio-visual deepfake detection under class imbalance (MMMS-BA){" · " + facts if facts else ""}</p>
<p>{_esc(study_dir.resolve())} · written {when}</p></header>
<nav>{"".join(nav)}</nav>
<main>{"".join(sections) or "<p>Nothing in this study folder yet.</p>"}
<footer>Written by <code>workbench report</code>. Every figure is embedded in this file; it needs no network.</footer>
</main></body></html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


__all__ = ["TABLES", "merge_mean_std", "render_notebooks", "table_html", "write_report"]
