"""The decision rule on hand-made cases: lower bounds, every bucket, every scope, nulls, ties, budget, arms,
stages and runs."""

from __future__ import annotations

import json
from pathlib import Path

from dimbench.evidence.results import Results
from dimbench.evidence.rule import RLS_ARMS, closest, decide, decide_runs

BUCKETS = ("small", "large")


def row(
    column_type,
    access,
    bucket,
    recall,
    p95,
    *,
    scope="all",
    ef=40,
    index="hnsw",
    ci=None,
    p95_ci=None,
    stage="screening",
    run_id=None,
):
    """One cell; by default a narrow recall interval (±0.005) and p95 interval (±2 %) around the means."""
    if ci is None and recall is not None:
        ci = [max(0.0, recall - 0.005), min(1.0, recall + 0.005)]
    if p95_ci is None and p95 is not None:
        p95_ci = [p95 * 0.98, p95 * 1.02]
    return {
        "stage": stage,
        **({"run_id": run_id} if run_id else {}),
        "recall_ci95": ci,
        "latency_p95_ci95": p95_ci,
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


def test_overlapping_p95_intervals_are_a_tie_that_goes_to_the_smaller_storage():
    rows = config("vector1536", "rls", (0.99, 0.99), (2.0, 2.0), p95_ci=[1.8, 2.3]) + config(
        "vector768", "rls", (0.99, 0.99), (2.1, 2.1), p95_ci=[1.9, 2.4]
    )
    decision = decide(results_of(rows))
    assert decision.chosen.config.column_type == "vector768"
    assert len(decision.tied) == 2


def test_disjoint_p95_intervals_are_not_a_tie():
    rows = config("vector1536", "rls", (0.99, 0.99), (2.0, 2.0), p95_ci=[1.9, 2.05]) + config(
        "vector768", "rls", (0.99, 0.99), (2.1, 2.1), p95_ci=[2.06, 2.2]
    )
    decision = decide(results_of(rows))
    assert decision.chosen.config.column_type == "vector1536"
    assert [c.config.column_type for c in decision.tied] == ["vector1536"]


def test_a_tie_tolerance_widens_the_tie_in_a_what_if():
    rows = config("vector1536", "rls", (0.99, 0.99), (2.0, 2.0)) + config(
        "vector768", "rls", (0.99, 0.99), (2.1, 2.1)
    )
    assert chosen(rows).column_type == "vector1536"
    assert chosen(rows, tie_tolerance=0.10).column_type == "vector768"


def test_the_rule_passes_on_the_lower_bound_not_on_the_mean():
    rows = config("vector768", "rls", (0.99, 0.97), (1, 1), ci=[0.94, 0.99]) + config(
        "vector1536", "rls", (0.99, 0.99), (5, 5)
    )
    decision = decide(results_of(rows))
    assert decision.chosen.config.column_type == "vector1536"
    fast = next(c for c in decision.candidates if c.config.column_type == "vector768")
    assert not fast.qualifies and "[0.940, 0.990]" in fast.why_not


def test_a_mean_just_above_the_target_passes_when_its_lower_bound_does():
    rows = config("vector768", "rls", (0.955, 0.955), (1, 1), ci=[0.951, 0.959])
    assert chosen(rows).column_type == "vector768"


def test_a_lower_bound_exactly_at_the_target_passes():
    rows = config("vector768", "rls", (0.97, 0.97), (1, 1), ci=[0.95, 0.99])
    assert chosen(rows).column_type == "vector768"


def test_a_lower_bound_a_hair_below_the_target_fails():
    rows = config("vector768", "rls", (0.97, 0.97), (1, 1), ci=[0.9499, 0.99])
    assert chosen(rows) is None


def test_a_null_interval_is_not_measured_so_it_does_not_qualify():
    rows = config("vector768", "rls", (0.99, 0.99), (1, 1))
    rows[1]["recall_ci95"] = None
    assert chosen(rows) is None


def test_the_confirmation_stage_decides_when_the_run_has_one():
    # Screening favours vector768; confirmation (more queries) shows its recall interval below the target.
    rows = (
        config("vector768", "rls", (0.99, 0.99), (1, 1))
        + config("vector1536", "rls", (0.99, 0.99), (5, 5))
        + config("vector768", "rls", (0.96, 0.96), (1, 1), ci=[0.93, 0.98], stage="confirmation")
        + config("vector1536", "rls", (0.99, 0.99), (5, 5), stage="confirmation")
    )
    decision = decide(results_of(rows))
    assert decision.stage == "confirmation"
    assert decision.chosen.config.column_type == "vector1536"
    assert {c.stage for c in decision.candidates} == {"confirmation"}
    assert len(decision.screened) == 2


def two_runs(rows: list[dict]) -> Results:
    """The rows as one results directory holding runs "a" and "b" (each row names its run)."""
    results = results_of(rows)
    results.runs = [
        {"run_id": "a", "builds": results.run["builds"]},
        {"run_id": "b", "builds": results.run["builds"]},
    ]
    results.run = results.runs[0]
    return results


def split_runs():
    """Two runs that choose differently: run a vector768 (1 ms against 5), run b vector1536 (5 against 6)."""
    return two_runs(
        config("vector768", "rls", (0.99, 0.99), (1, 1), run_id="a")
        + config("vector1536", "rls", (0.99, 0.99), (5, 5), run_id="a")
        + config("vector768", "rls", (0.99, 0.99), (6, 6), run_id="b")
        + config("vector1536", "rls", (0.99, 0.99), (5, 5), run_id="b")
    )


def test_each_run_is_decided_on_its_own_and_disagreement_is_a_tie_set():
    results = split_runs()
    agreement = decide_runs(results)
    assert [label.split(" · ")[0] for label in agreement.chosen] == ["vector768", "vector1536"]
    assert agreement.agreed is None
    assert len(agreement.tie_set) == 2
    assert agreement.common() == {
        "access": "rls",
        "build_params": '{"m": 16}',
        "index": "hnsw",
        "iterative_scan": "off",
        "query_params": '{"ef_search": 40}',
    }


def test_runs_that_choose_the_same_configuration_agree():
    rows = config("vector768", "rls", (0.99, 0.99), (1, 1), run_id="a") + config(
        "vector768", "rls", (0.99, 0.99), (2, 2), run_id="b"
    )
    results = two_runs(rows)
    assert decide_runs(results).agreed.startswith("vector768")


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
    assert "recall 0.800 [0.795, 0.805] in all/large" in closest(decision).why_not


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


def test_a_split_decision_says_what_every_runs_choice_shares_and_where_they_part():
    from dimbench.report.first_screen import across_runs_line

    results = split_runs()
    line = across_runs_line(decide_runs(results))
    shares, differ = line.split("; they differ in ")
    assert "index hnsw" in shares and "RLS design rls" in shares and "column type" not in shares
    assert differ.startswith("column type (vector1536 / vector768)")
