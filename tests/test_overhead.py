"""`dimbench overhead`: the harness's and pgbench's p50 for the same request, and a verdict on their ratio.

The verdict's arithmetic is checked on hand-made numbers; the command is checked with limits no real
machine can miss either way (the real +10 % target is the `dimbench overhead` benchmark's, not a timed
test's).
"""

from __future__ import annotations

import re

import pytest

from dimbench.study.overhead import TOLERANCE, Overhead, latencies_from_log
from tests.cli_helpers import run_cli

SUMMARY = r"harness p50 [\d.]+ ms, pgbench p50 [\d.]+ ms, ratio [\d.]+ \(limit {limit}\): {verdict}"


@pytest.mark.parametrize(
    ("harness", "pgbench", "ok"),
    [(1.0, 1.0, True), (1.10, 1.0, True), (1.1001, 1.0, False), (2.0, 1.0, False), (0.5, 1.0, True)],
)
def test_the_verdict_is_the_ratio_against_the_ten_percent_limit(harness, pgbench, ok):
    result = Overhead(harness, pgbench)
    assert result.limit == TOLERANCE == 1.10
    assert result.ratio == pytest.approx(harness / pgbench)
    assert result.ok is ok
    assert result.summary().endswith("ok" if ok else "TOO SLOW")


def test_pgbench_latencies_come_from_the_gaps_between_completions_not_its_cached_latency_field():
    # client, transaction, latency µs (0: pgbench's cached clock), script, epoch s, µs: 1.5 ms, then 2.0 ms
    log = ["0 0 0 0 1700000000 999000", "0 1 0 0 1700000001 500", "0 2 0 0 1700000001 2500"]
    assert latencies_from_log(log) == [1.5, 2.0]


def test_a_run_over_the_limit_exits_1_and_says_too_slow(tiny_results):
    dsn, _ = tiny_results
    # The harness cannot be 100 times faster than pgbench: this limit must fail.
    result = run_cli("overhead", "--dsn", dsn, "--queries", "40", "--limit", "0.01")
    assert result.returncode == 1, result.stderr
    assert re.search(SUMMARY.format(limit="0.01", verdict="TOO SLOW"), result.stdout)


def test_a_run_within_the_limit_exits_0_and_says_ok(tiny_results):
    dsn, _ = tiny_results
    result = run_cli("overhead", "--dsn", dsn, "--queries", "40", "--limit", "100")
    assert result.returncode == 0, result.stderr
    assert re.search(SUMMARY.format(limit="100.00", verdict="ok"), result.stdout)


def test_overhead_on_an_empty_database_is_one_line(new_database):
    from tests.cli_helpers import assert_one_line_error

    assert_one_line_error(run_cli("overhead", "--dsn", new_database("empty")), "no chunks")
