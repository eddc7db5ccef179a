"""`workbench <command>`: each command lives in its own module with add_arguments()/main()."""
from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help). Each module defines add_arguments(parser) and main(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "main": ("workbench.cli.main_job", "the main job: the whole study on the embedded demo data"),
    "kfold": ("workbench.cli.kfold", "K-fold cross-validation of MMMS-BA on a dataset folder"),
    "predict": ("workbench.cli.predict", "per-frame P(Fake) CSVs for full-length videos"),
    "scan": ("workbench.cli.scan", "validate a dataset folder and list every bad file"),
    "ingest": ("workbench.cli.ingest", "turn labelled videos into npz records (face, lip, MFCC)"),
    "synth": ("workbench.cli.synth", "generate the synthetic audio-visual deepfake videos"),
    "demo": ("workbench.cli.demo", "build the embedded demo dataset (synth + ingest) when missing"),
    "study": ("workbench.cli.study", "run the notebook grid of experimental conditions with papermill"),
    "bench": ("workbench.cli.bench", "benchmark the fast path against the naive path"),
    "report": ("workbench.cli.report", "one self-contained HTML page of a study folder, notebooks beside it"),
    "bench-engines": ("workbench.cli.bench_engines", "wall time of a grid's folds: the local engine against Ray"),
    "power": ("workbench.cli.power", "before a study: the smallest difference K folds resolve at 80% power"),
    "evaluate-localization": ("workbench.cli.evaluate_localization",
                              "AP@IoU and AR@N of fake-segment proposals (protocol av1m or standard)"),
    "evaluate": ("workbench.cli.evaluate", "a run's fold models on another ingested dataset (cross[<name>])"),
    "export": ("workbench.cli.export", "challenge submission files (av1m) from the records a run scored"),
    "silence": ("workbench.cli.silence", "the leading-silence check: ROC-AUC with the leading silence trimmed"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; a command's module is imported only when that command is chosen."""
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `workbench` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help / the error for unknown commands
        parser.print_help()
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    cmd = argparse.ArgumentParser(prog=f"workbench {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd)
    args = cmd.parse_args(argv[1:])
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
