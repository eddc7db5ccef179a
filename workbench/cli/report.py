"""`workbench report`: one self-contained HTML page of a study folder, notebooks beside it."""
from __future__ import annotations

import argparse

from workbench.reporting.report_html import write_report


# ------------------------------------------------------------------ command line
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", metavar="OUT", help="study folder (what `workbench study --out` / the main job wrote)")
    p.add_argument("--html", help="where to write the page (default: OUT/report.html)")
    p.add_argument("--no-notebooks", action="store_true", help="do not render the executed notebooks")


def main(args: argparse.Namespace) -> int:
    path = write_report(args.study, args.html, notebooks=not args.no_notebooks)
    print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
