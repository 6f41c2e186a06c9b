"""The ``fedpoison-report`` command: tables and plots of a study's run directories.

``fedpoison-report DIR [--out OUTDIR] [--metric accuracy|loss]`` reads every ``results.json``
under ``DIR`` and writes ``report.csv``, ``report.md`` and three PNG figures into ``OUTDIR``
(default ``DIR``). Exit code 2 with one line on stderr when ``DIR`` is missing or holds no
``results.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedpoison.report.collect import load_study
from fedpoison.report.plots import write_plots
from fedpoison.report.summary import METRICS, Summary
from fedpoison.report.tables import markdown, write_csv

PROG = "fedpoison-report"
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Tables and plots of a fedpoison study (a Hydra multirun tree)."
    )
    parser.add_argument(
        "dir",
        metavar="DIR",
        type=Path,
        help="study directory, searched recursively for results.json",
    )
    parser.add_argument(
        "--out", metavar="OUTDIR", type=Path, default=None, help="output directory (default: DIR)"
    )
    parser.add_argument(
        "--metric", choices=METRICS, default="accuracy", help="final metric of the tables and plots"
    )
    return parser


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Run the command on ``argv`` (default ``sys.argv[1:]``); the exit code."""
    args = _parser().parse_args(argv)
    root: Path = args.dir
    if not root.is_dir():
        return _fail(f"{root} does not exist or is not a directory")
    study = load_study(root)
    if not study.runs and not study.unreadable:
        return _fail(f"no results.json under {root}")
    out: Path = args.out or root
    out.mkdir(parents=True, exist_ok=True)
    summary = Summary(study.runs, args.metric)
    write_csv(summary, out / "report.csv")
    (out / "report.md").write_text(markdown(study, summary), encoding="utf-8")
    written = ["report.csv", "report.md"]
    if summary.cells:
        written += [path.name for path in write_plots(summary, out)]
    print(f"{PROG}: {len(study.runs)} runs read; wrote {', '.join(written)} to {out}")
    return 0
