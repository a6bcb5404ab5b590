"""`dimbench overhead` prints the harness's and pgbench's p50 for the same request, and their ratio."""

from __future__ import annotations

import re

from tests.cli_helpers import run_cli


def test_overhead_prints_both_medians_and_their_ratio(tiny_results):
    dsn, _ = tiny_results
    result = run_cli("overhead", "--dsn", dsn, "--queries", "60")
    assert result.returncode in (0, 1), result.stderr  # 1 = over the limit; timing is the command's verdict
    assert re.search(
        r"harness p50 [\d.]+ ms, pgbench p50 [\d.]+ ms, ratio [\d.]+ \(limit 1.10\)", result.stdout
    )


def test_overhead_on_an_empty_database_is_one_line(new_database):
    from tests.cli_helpers import assert_one_line_error

    assert_one_line_error(run_cli("overhead", "--dsn", new_database("empty")), "no chunks")
