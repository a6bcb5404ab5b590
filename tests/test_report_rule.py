"""The decision rule on hand-made cases: every bucket, every scope, nulls, ties, budget, arms."""

from __future__ import annotations

import json
from pathlib import Path

from dimbench.report.decide import RLS_ARMS, closest, decide
from dimbench.report.load import Results

BUCKETS = ("small", "large")


def row(column_type, access, bucket, recall, p95, *, scope="all", ef=40, index="hnsw"):
    return {
        "dim": 768 if column_type == "vector768" else 1536,
        "column_type": column_type,
        "index": index,
        "build_params": {"m": 16} if index == "hnsw" else {},
        "query_params": {"ef_search": ef} if index == "hnsw" else {},
        "access": access,
        "iterative_scan": "off",
        "scope": scope,
        "bucket": bucket,
        "k": 10,
        "n_queries": 5,
        "recall_mean": recall,
        "latency_ms": {"p50": None if p95 is None else p95 / 2, "p95": p95, "p99": p95},
        "qps": {"1": 1.0},
        "build_key": f"{column_type}/{index}",
    }


def config(column_type, access, recalls, p95s, **kwargs):
    """One configuration measured in both buckets (scope "all")."""
    return [
        row(column_type, access, b, r, p, **kwargs) for b, r, p in zip(BUCKETS, recalls, p95s, strict=True)
    ]


def results_of(rows, index_bytes=None) -> Results:
    index_bytes = index_bytes or {}
    builds = [
        {
            "build_key": f"{ct}/{index}",
            "rows": 1000,
            "index_bytes": index_bytes.get(ct, 1000),
            "table_bytes": 0,
        }
        for ct in ("vector768", "vector1536", "halfvec1536")
        for index in ("hnsw", "exact")
    ]
    return Results(Path("."), {"builds": builds}, rows)


def chosen(rows, **rule):
    decision = decide(results_of(rows), **rule)
    return decision.chosen.config if decision.chosen else None


def test_a_configuration_failing_one_bucket_is_excluded():
    rows = config("vector768", "rls", (0.99, 0.90), (1, 1)) + config(
        "vector1536", "rls", (0.99, 0.97), (5, 5)
    )
    assert chosen(rows).column_type == "vector1536"


def test_a_configuration_failing_in_one_scope_is_excluded():
    rows = (
        config("vector768", "rls", (0.99, 0.99), (1, 1))
        + [row("vector768", "rls", b, 0.5, 1, scope="workspace") for b in BUCKETS]
        + config("vector1536", "rls", (0.99, 0.99), (5, 5))
        + [row("vector1536", "rls", b, 0.99, 5, scope="workspace") for b in BUCKETS]
    )
    assert chosen(rows).column_type == "vector1536"


def test_the_lowest_worst_bucket_p95_wins():
    rows = config("vector768", "rls", (0.99, 0.99), (1, 9)) + config(
        "vector1536", "rls", (0.99, 0.99), (5, 5)
    )
    assert chosen(rows).column_type == "vector1536"


def test_ties_are_broken_by_storage():
    rows = config("vector1536", "rls", (0.99, 0.99), (2, 2)) + config(
        "halfvec1536", "rls", (0.99, 0.99), (2, 2)
    )
    assert chosen(rows).column_type == "halfvec1536"


def test_a_near_tie_within_the_tolerance_goes_to_the_smaller_storage():
    rows = config("vector1536", "rls", (0.99, 0.99), (2.0, 2.0)) + config(
        "vector768", "rls", (0.99, 0.99), (2.1, 2.1)
    )
    assert chosen(rows).column_type == "vector768"
    assert chosen(rows, tie_tolerance=0.0).column_type == "vector1536"


def test_a_clearly_faster_configuration_beats_a_smaller_one():
    rows = config("vector1536", "rls", (0.99, 0.99), (1, 1)) + config(
        "vector768", "rls", (0.99, 0.99), (3, 3)
    )
    assert chosen(rows).column_type == "vector1536"


def test_nothing_is_chosen_when_nothing_meets_the_target_and_the_closest_is_named():
    rows = config("vector768", "rls", (0.99, 0.50), (1, 1)) + config(
        "vector1536", "rls", (0.99, 0.80), (9, 9)
    )
    decision = decide(results_of(rows))
    assert decision.chosen is None
    assert closest(decision).config.column_type == "vector1536"
    assert "recall 0.800 in all/large" in closest(decision).why_not


def test_a_null_recall_is_not_measured_so_it_does_not_qualify():
    rows = config("vector768", "rls", (0.99, None), (1, 1)) + config(
        "vector1536", "rls", (0.99, 0.99), (5, 5)
    )
    assert chosen(rows).column_type == "vector1536"


def test_a_null_p95_is_not_measured_so_it_does_not_qualify():
    rows = config("vector768", "rls", (0.99, 0.99), (1, None)) + config(
        "vector1536", "rls", (0.99, 0.99), (5, 5)
    )
    assert chosen(rows).column_type == "vector1536"


def test_a_configuration_missing_a_bucket_does_not_qualify():
    rows = config("vector768", "rls", (0.99, 0.99), (1, 1), ef=40)[:1] + config(
        "vector768", "rls", (0.99, 0.99), (3, 3), ef=100
    )
    assert json.loads(chosen(rows).query_params) == {"ef_search": 100}


def test_the_seed_policy_is_never_chosen_by_default():
    rows = config("vector768", "rls_seed", (1.0, 1.0), (1, 1)) + config(
        "vector768", "rls", (0.99, 0.99), (3, 3)
    )
    assert chosen(rows).access == "rls"
    assert chosen(rows, arms=RLS_ARMS).access == "rls_seed"


def test_service_role_is_the_baseline_never_the_choice():
    rows = config("vector768", "service", (1.0, 1.0), (1, 1)) + config(
        "vector768", "rls", (0.99, 0.99), (3, 3)
    )
    decision = decide(results_of(rows))
    assert decision.chosen.config.access == "rls"
    assert decision.baseline.config.access == "service"


def test_a_latency_budget_excludes_slower_configurations():
    rows = config("vector768", "rls", (0.99, 0.99), (20, 20), index="exact")
    assert chosen(rows) is not None
    assert chosen(rows, latency_budget_ms=10.0) is None


def test_a_lower_recall_target_moves_the_choice():
    rows = config("vector768", "rls", (0.99, 0.93), (1, 1)) + config(
        "vector1536", "rls", (0.99, 0.97), (5, 5)
    )
    assert chosen(rows, recall_target=0.95).column_type == "vector1536"
    assert chosen(rows, recall_target=0.90).column_type == "vector768"
