"""The ``fedpoison-report`` command: tables and plots of a study's run directories.

``fedpoison-report DIR [--out OUTDIR] [--metric accuracy|loss] [--reference FILE [--tolerance T]]``
reads every ``results.json`` under ``DIR`` and writes ``report.csv``, ``report.md`` and the PNG
figures of :func:`fedpoison.report.plots.figures` (two or three) into ``OUTDIR`` (default
``DIR``); ``--reference`` adds published numbers to
``report.md`` (:mod:`fedpoison.report.reference`). Exit code 2 with one line on stderr when
``DIR`` is missing or holds no ``results.json``, or the reference file is malformed.
``--worst-case [final|best] [--tune KEY ...]`` adds each defense's worst case over the attacks
after tuning (:mod:`fedpoison.report.worst_case`) to ``report.md`` and ``worst_case.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedpoison.report.collect import load_study
from fedpoison.report.plots import write_plots
from fedpoison.report.reference import load_reference, markdown_section
from fedpoison.report.summary import METRICS, Summary
from fedpoison.report.tables import markdown, write_csv
from fedpoison.report.worst_case import AT, worst_cases
from fedpoison.report.worst_case import markdown as worst_case_markdown
from fedpoison.report.worst_case import write_csv as write_worst_case_csv

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
    parser.add_argument(
        "--reference",
        metavar="FILE",
        type=Path,
        default=None,
        help="CSV of published error rates (defense,attack,error[,asr]) to compare with",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.05,
        help="differences beyond this are listed (default 0.05)",
    )
    parser.add_argument(
        "--worst-case",
        nargs="?",
        const="final",
        choices=AT,
        default=None,
        help="each defense's worst case over attacks after tuning (final round, or the best "
        "round of the seed-mean curve as ByzFL); writes worst_case.csv",
    )
    parser.add_argument(
        "--tune",
        metavar="KEY",
        action="append",
        default=None,
        help="a setting to tune for --worst-case (repeatable; default: every varying setting)",
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
    if args.reference is not None and args.metric != "accuracy":
        return _fail("--reference compares error rates: use it with --metric accuracy")
    try:
        reference = None if args.reference is None else load_reference(args.reference)
    except ValueError as exc:
        return _fail(str(exc))
    out: Path = args.out or root
    out.mkdir(parents=True, exist_ok=True)
    summary = Summary(study.runs, args.metric)
    extra = [] if reference is None else markdown_section(summary, reference, args.tolerance)
    written = ["report.csv", "report.md"]
    if args.worst_case is not None:
        try:
            cases = worst_cases(summary, study.runs, args.tune, args.worst_case)
        except ValueError as exc:
            return _fail(str(exc))
        write_worst_case_csv(cases, out / "worst_case.csv")
        extra += worst_case_markdown(cases, args.metric, args.worst_case)
        written.append("worst_case.csv")
    elif args.tune:
        return _fail("--tune needs --worst-case")
    write_csv(summary, out / "report.csv")
    (out / "report.md").write_text(markdown(study, summary, extra), encoding="utf-8")
    if summary.cells:
        written += [path.name for path in write_plots(summary, out)]
    print(f"{PROG}: {len(study.runs)} runs read; wrote {', '.join(written)} to {out}")
    return 0
