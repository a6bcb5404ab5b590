"""`dimbench report [--results DIR]`: registered by the CLI through `_extra_commands()`."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_RESULTS = Path("results") / "small"


def cmd_report(args: argparse.Namespace) -> int:
    from dimbench.paths import repo_root
    from dimbench.report import render

    results = Path(args.results) if args.results else repo_root() / DEFAULT_RESULTS
    written = render(results)
    print(f"report: {len(written)} files in {results} (DECISION.md, plots/)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="plots and DECISION.md from a results directory")
    report.add_argument("--results", help=f"results directory (default: {DEFAULT_RESULTS})")
    report.set_defaults(handler=cmd_report)
