"""The report: plots and DECISION.md from results only; the decision rule on hand-made cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dimbench.report import render
from dimbench.report.decide import decide
from dimbench.report.load import Results
from tests.cli_helpers import assert_one_line_error, run_cli


@pytest.fixture
def results(tiny_results, tmp_path) -> Path:
    _, out = tiny_results
    copy = tmp_path / "tiny"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("raw", "plots", "DECISION.md"))
    return copy


def test_the_report_writes_every_plot_and_the_decision_record(results):
    result = run_cli("report", "--results", str(results))
    assert result.returncode == 0, result.stderr
    names = {p.name for p in (results / "plots").iterdir()}
    for plot in ("pareto", "recall_by_bucket", "rls_overhead", "storage_build", "qps", "ndcg"):
        assert {f"{plot}.png", f"{plot}.svg"} <= names
    assert (results / "DECISION.md").read_text().startswith("# Decision record")


def test_the_decision_record_is_byte_identical_when_regenerated(results):
    render(results)
    first = (results / "DECISION.md").read_bytes()
    render(results)
    assert (results / "DECISION.md").read_bytes() == first


def test_the_report_never_writes_the_measurements(results):
    before = (results / "measurements.jsonl").read_bytes(), (results / "run.json").read_bytes()
    render(results)
    assert ((results / "measurements.jsonl").read_bytes(), (results / "run.json").read_bytes()) == before


def test_a_missing_results_directory_is_one_line(tmp_path):
    assert_one_line_error(run_cli("report", "--results", str(tmp_path / "nope")), "no results directory")


def test_a_malformed_measurement_line_is_one_line_naming_it(results):
    with (results / "measurements.jsonl").open("a") as handle:
        handle.write("{not json\n")
    line = assert_one_line_error(run_cli("report", "--results", str(results)), "measurements.jsonl:")
    assert "not valid JSON" in line


# --- the rule on hand-made cases ------------------------------------------------------------------


def row(column_type, access, bucket, recall, p95, scope="all", ef=40):
    return {
        "dim": 768 if column_type == "vector768" else 1536,
        "column_type": column_type,
        "index": "hnsw",
        "build_params": {"m": 16},
        "query_params": {"ef_search": ef},
        "access": access,
        "iterative_scan": "off",
        "scope": scope,
        "bucket": bucket,
        "k": 10,
        "n_queries": 5,
        "recall_mean": recall,
        "latency_ms": {"p50": p95 / 2, "p95": p95, "p99": p95},
        "qps": {"1": 1.0},
        "build_key": f"{column_type}/hnsw",
    }


def results_of(rows, index_bytes=None) -> Results:
    index_bytes = index_bytes or {}
    builds = [
        {"build_key": f"{ct}/hnsw", "rows": 1000, "index_bytes": index_bytes.get(ct, 1000), "table_bytes": 0}
        for ct in ("vector768", "vector1536", "halfvec1536")
    ]
    return Results(Path("."), {"builds": builds}, rows)


def both_buckets(column_type, access, recalls, p95s, ef=40):
    return [
        row(column_type, access, b, r, p, ef=ef)
        for b, r, p in zip(("small", "large"), recalls, p95s, strict=True)
    ]


def test_a_configuration_failing_one_bucket_is_excluded():
    rows = both_buckets("vector768", "rls", (0.99, 0.90), (1, 1)) + both_buckets(
        "vector1536", "rls", (0.99, 0.97), (5, 5)
    )
    assert decide(results_of(rows)).chosen.config.column_type == "vector1536"


def test_the_lowest_worst_bucket_p95_wins():
    rows = both_buckets("vector768", "rls", (0.99, 0.99), (1, 9)) + both_buckets(
        "vector1536", "rls", (0.99, 0.99), (5, 5)
    )
    assert decide(results_of(rows)).chosen.config.column_type == "vector1536"


def test_ties_are_broken_by_storage():
    rows = both_buckets("vector1536", "rls", (0.99, 0.99), (2, 2)) + both_buckets(
        "halfvec1536", "rls", (0.99, 0.99), (2, 2)
    )
    assert decide(results_of(rows)).chosen.config.column_type == "halfvec1536"


def test_nothing_is_chosen_when_nothing_meets_the_target():
    rows = both_buckets("vector768", "rls", (0.99, 0.50), (1, 1))
    decision = decide(results_of(rows))
    assert decision.chosen is None


def test_the_seed_policy_is_never_chosen():
    rows = both_buckets("vector768", "rls_seed", (1.0, 1.0), (1, 1)) + both_buckets(
        "vector768", "rls", (0.99, 0.99), (3, 3)
    )
    assert decide(results_of(rows)).chosen.config.access == "rls"


def test_a_configuration_missing_a_bucket_does_not_qualify():
    rows = both_buckets("vector768", "rls", (0.99, 0.99), (1, 1), ef=40)[:1] + both_buckets(
        "vector768", "rls", (0.99, 0.99), (3, 3), ef=100
    )
    assert decide(results_of(rows)).chosen.config.query_params == '{"ef_search": 100}'


def test_a_lower_recall_target_moves_the_choice():
    rows = both_buckets("vector768", "rls", (0.99, 0.93), (1, 1)) + both_buckets(
        "vector1536", "rls", (0.99, 0.97), (5, 5)
    )
    assert decide(results_of(rows), recall_target=0.95).chosen.config.column_type == "vector1536"
    assert decide(results_of(rows), recall_target=0.90).chosen.config.column_type == "vector768"
