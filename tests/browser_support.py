"""Helpers of the browser test: find Chromium, start JupyterLab on a free local port, drive it with Playwright."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """Debian's chromium (scripts/test.sh installs it when missing and run as root), or $CHROMIUM."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def why_no_browser() -> str | None:
    """The reason the browser test cannot run here, or None."""
    if chromium_path() is None:
        how = ("scripts/test.sh installs it with apt-get when run as root" if os.geteuid() != 0
               else "`apt-get install chromium` failed or was not run; see scripts/test.sh")
        return f"no Chromium executable ({', '.join(CHROMIUM_NAMES)}) on PATH: {how}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[dev]')"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyterlab(root: Path, log: Path, timeout: float = 60.0) -> Iterator[str]:
    """JupyterLab serving `root` on a free local port with a token; yields the base URL (token in the query)."""
    port, token = free_port(), secrets.token_hex(16)
    cfg = root.parent / f"{root.name}-jupyter"
    settings = cfg / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    tracker = settings.parent / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"autoStartDefaultKernel": True}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(cfg / "config"), JUPYTERLAB_SETTINGS_DIR=str(cfg / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(cfg / "workspaces"), JUPYTER_RUNTIME_DIR=str(cfg / "runtime"))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"] + (["--allow-root"] if os.geteuid() == 0 else [])
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        url = f"http://127.0.0.1:{port}"
        t0 = time.time()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}; see {log}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if time.time() - t0 > timeout:
                    raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s; see {log}")
                time.sleep(0.3)
        yield f"{url}/lab/tree/{{path}}?token={token}"
    finally:
        _shutdown_kernels(url, token)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _shutdown_kernels(url: str, token: str) -> None:
    """Stop the server's kernels through its API (a terminated server interrupts them, and they say so)."""
    try:
        with urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=5) as r:
            kernels = json.loads(r.read())
        for k in kernels:
            req = urllib.request.Request(f"{url}/api/kernels/{k['id']}?token={token}", method="DELETE")
            urllib.request.urlopen(req, timeout=10).close()
    except OSError:
        pass


# In the page: sample the inspector on every animation frame for `ms` milliseconds.
SAMPLE_JS = """async (ms) => {
  const root = document.querySelector('.wbi');
  const slider = root.querySelector('.wbi-slider'), label = root.querySelector('.wbi-label');
  const out = [];
  const d0 = Number(root.dataset.drawn), t0 = performance.now();
  await new Promise((done) => {
    const step = (now) => {
      out.push({t: now - t0, frame: Number(root.dataset.frame), slider: Number(slider.value), label: label.textContent});
      if (now - t0 < ms) requestAnimationFrame(step); else done();
    };
    requestAnimationFrame(step);
  });
  return {drawn: Number(root.dataset.drawn) - d0, seconds: (performance.now() - t0) / 1000, samples: out};
}"""
