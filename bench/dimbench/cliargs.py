"""The command line's shared pieces: a parser whose usage errors are one line, the database options
every command that touches a database takes, and argument types that refuse nonsense at the door.
Command groups that live beside their code (verify, report, corpus import) use them too."""

from __future__ import annotations

import argparse

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong and where to look), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """An argparse type: a whole number ≥ 1 (sizes, counts, batches)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (ratios, limits)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def add_target_args(parser: argparse.ArgumentParser) -> None:
    """Every command that touches a database takes --dsn and --pgdata."""
    group = parser.add_argument_group("database (default: the embedded server in .dimbench/pgdata)")
    group.add_argument("--dsn", help="an external PostgreSQL/Supabase DSN (or DIMBENCH_DSN)")
    group.add_argument("--pgdata", help="the embedded server's data directory (or DIMBENCH_PGDATA)")
