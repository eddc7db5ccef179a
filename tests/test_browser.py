"""In a real browser (headless Chromium driven by Playwright): JupyterLab runs notebook 03 on a tiny study,
the inspector is moved and played (frames drawn per second measured), the executed notebook still shows its
figures without a kernel, and the HTML report loads every figure offline.

Screenshots go to outputs/browser/ for a person to look at.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import papermill as pm
import pytest
from browser_support import SAMPLE_JS, chromium_path, jupyterlab, why_no_browser

from workbench.core import paths
from workbench.reporting.report_html import write_report
from workbench.study import runner as study
from workbench.synthetic.toydata import make_toy_dataset

pytestmark = [pytest.mark.slow, pytest.mark.skipif(why_no_browser() is not None, reason=str(why_no_browser()))]
SHOTS = paths.project_root() / "outputs" / "browser"


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory) -> Path:
    """A tiny study (one condition, notebook 03 executed) and a parametrised copy of notebook 03 beside it."""
    root = tmp_path_factory.mktemp("lab")
    data = make_toy_dataset(root / "data", n_real=8, n_fake=12, n_test_long=1, long_frames=450, n_groups=6,
                            face=160, lip=80)  # the long REAL video: 15 s at 30 fps
    rep = study.run_study(data, root / "study", conditions=["baseline"], preset="smoke", after=("03_temporal_pfake",),
                          stream=False)
    assert rep.failed == {}, rep.failed
    pm.execute_notebook(str(study.NOTEBOOK_DIR / "03_temporal_pfake.ipynb"), str(root / "03_inspect.ipynb"),
                        parameters={"data_dir": str(data), "run_dir": str(root / "study"), "conditions": ["baseline"],
                                    "output_dir": str(root / "out03"), "mc_samples": 0, "smoke": True},
                        prepare_only=True, progress_bar=False)
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def page(lab_root):
    from playwright.sync_api import sync_playwright
    with jupyterlab(lab_root, SHOTS / "jupyterlab.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.lab_url = url
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.errors = errors
        yield pg
        browser.close()


def open_notebook(page, path: str) -> None:
    page.goto(page.lab_url.format(path=path))
    page.wait_for_function("""(path) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        if (!w || !w.context || w.context.path !== path || !w.context.isReady) return false;
        const k = w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
        return k && k.connectionStatus === 'connected' && k.status === 'idle'; }""", arg=path, timeout=90_000)


def scroll_to_cell(page, text: str) -> None:
    page.evaluate("""async (text) => { const nb = window.jupyterapp.shell.currentWidget.content;
        const i = nb.widgets.findIndex(c => c.model.sharedModel.getSource().includes(text));
        nb.activeCellIndex = i; await nb.scrollToItem(i, 'start'); }""", text)
    page.wait_for_timeout(500)


def image_outputs(notebook: Path) -> int:
    """How many image/png outputs an executed notebook holds."""
    import nbformat
    nb = nbformat.read(notebook, as_version=4)
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def state(page) -> dict:
    return page.evaluate("""() => { const r = document.querySelector('.wbi');
        return {frame: Number(r.dataset.frame), drawn: Number(r.dataset.drawn), slider: Number(r.querySelector('.wbi-slider').value),
                label: r.querySelector('.wbi-label').textContent, cursor: r.querySelector('.wbi-cursor').style.left,
                face: r.querySelector('canvas.wbi-face').toDataURL(), lips: r.querySelector('canvas.wbi-lips').toDataURL(),
                mfcc: r.querySelector('canvas.wbi-mfcc').toDataURL()}; }""")


def test_inspector_in_jupyterlab_keeps_up(page):
    t0 = time.time()
    open_notebook(page, "03_inspect.ipynb")
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()  # Run > Run All Cells, as a person would
    page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
    page.wait_for_selector(".wbi[data-ready='1']", state="attached", timeout=150_000)
    scroll_to_cell(page, "FrameInspector.from_predictions")
    ran = time.time() - t0
    page.screenshot(path=SHOTS / "inspector.png")
    before = state(page)
    assert before["frame"] == 0 and "frame 0/449" in before["label"]

    box = page.locator(".wbi-slider").bounding_box()  # click at 70% of the slider
    page.mouse.click(box["x"] + 0.7 * box["width"], box["y"] + box["height"] / 2)
    page.wait_for_function("() => Number(document.querySelector('.wbi').dataset.frame) > 200", timeout=10_000)
    after = state(page)
    page.screenshot(path=SHOTS / "inspector_after_slider.png")
    assert after["frame"] == after["slider"] and f"frame {after['frame']}/449" in after["label"]
    assert after["face"] != before["face"] and after["lips"] != before["lips"] and after["mfcc"] != before["mfcc"]
    assert after["cursor"] != before["cursor"] and float(after["cursor"][:-1]) > float(before["cursor"][:-1])

    page.locator(".wbi-play").click()  # 1x: the video's 30 fps
    run = page.evaluate(SAMPLE_JS, 3000)
    page.screenshot(path=SHOTS / "inspector_playing.png")
    page.locator(".wbi-play").click()
    samples = run["samples"]
    frames = [s["frame"] for s in samples]
    changes = sum(a != b for a, b in zip(frames, frames[1:]))
    fps = run["drawn"] / run["seconds"]
    mismatched = [s for s in samples if s["slider"] != s["frame"] or f"frame {s['frame']}/" not in s["label"]]
    (SHOTS / "inspector_fps.json").write_text(json.dumps({
        "frames_drawn_per_second": fps, "distinct_frames_seen_per_second": changes / run["seconds"],
        "animation_frames_sampled": len(samples), "seconds": run["seconds"], "notebook_run_seconds": ran}, indent=1))
    print(f"\ninspector: {fps:.1f} frames drawn per second of playback "
          f"({changes / run['seconds']:.1f} distinct frames seen per second, {len(samples)} animation frames sampled)")
    assert mismatched == []  # slider, label and images always show the same frame
    assert fps >= 15 and changes / run["seconds"] >= 15
    assert page.errors == []


def test_executed_notebook_shows_figures_and_the_still_without_a_kernel(page, lab_root):
    open_notebook(page, "study/03_temporal_pfake/03_temporal_pfake.ipynb")  # as the study left it, not trusted
    scroll_to_cell(page, "FrameInspector.from_predictions")
    page.screenshot(path=SHOTS / "executed_notebook.png")
    imgs = page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea-output img')].map(i => i.naturalWidth)")
    # every figure the notebook holds (temporal and density figures, the inspector's still) is shown and decoded
    assert len(imgs) == image_outputs(lab_root / "study" / "03_temporal_pfake" / "03_temporal_pfake.ipynb") >= 3
    assert all(w > 0 for w in imgs)
    still = page.evaluate("""(text) => { const nb = window.jupyterapp.shell.currentWidget.content;
        const c = nb.widgets.find(c => c.model.sharedModel.getSource().includes(text));
        return [...c.node.querySelectorAll('.jp-OutputArea-output img')].map(i => i.naturalWidth); }""",
                          "FrameInspector.from_predictions")
    assert len(still) == 1 and still[0] > 600


def test_report_loads_every_figure_offline(page, lab_root):
    report = write_report(lab_root / "study")
    external = []
    page.route("**/*", lambda r: (external.append(r.request.url), r.abort())
               if not r.request.url.startswith(("file:", "data:", "blob:")) else r.continue_())
    try:
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        widths = page.evaluate("() => [...document.images].map(i => i.complete ? i.naturalWidth : 0)")
        page.screenshot(path=SHOTS / "report.png", full_page=False)
        page.locator("#figures").scroll_into_view_if_needed()
        page.screenshot(path=SHOTS / "report_figures.png")
        assert len(widths) == len(list((lab_root / "study").rglob("*.png"))) and all(w > 0 for w in widths)
        page.locator("a", has_text="03_temporal_pfake").first.click()
        page.wait_for_load_state("load")
        nb_widths = page.evaluate("() => [...document.images].map(i => i.complete ? i.naturalWidth : 0)")
        executed = lab_root / "study" / "03_temporal_pfake" / "03_temporal_pfake.ipynb"
        assert len(nb_widths) == image_outputs(executed) and all(w > 0 for w in nb_widths)  # the still included
        assert external == []
        print(f"\nreport: {report} ({report.stat().st_size:,} bytes, {len(widths)} figures)")
    finally:
        page.unroute("**/*")
