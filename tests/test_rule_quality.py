"""Quality in the rule: a configuration must not retrieve worse than the best option beyond a tolerance
(judged on the lower bound of its paired nDCG@10 shortfall in every cell), and ties go to quality first."""

from __future__ import annotations

from dimbench.evidence.rule import decide
from tests.test_report_rule import chosen, config, results_of


def with_quality(rows: list[dict], gap: float, ci: tuple[float, float]) -> list[dict]:
    return [{**r, "ndcg10_gap": gap, "ndcg10_gap_ci95": list(ci), "quality_reference": "1536"} for r in rows]


def test_a_cheap_fast_configuration_that_retrieves_worse_than_the_tolerance_is_never_chosen():
    cheap_and_fast = with_quality(config("vector768", "rls", (0.99, 0.99), (1, 1)), -0.25, (-0.30, -0.21))
    good = with_quality(config("vector1536", "rls", (0.99, 0.99), (9, 9)), 0.0, (-0.01, 0.01))
    decision = decide(results_of(cheap_and_fast + good, {"vector768": 10, "vector1536": 10**9}))
    assert decision.chosen.config.column_type == "vector1536"
    loser = next(c for c in decision.candidates if c.config.column_type == "vector768")
    assert not loser.qualifies and "nDCG@10" in loser.why_not


def test_a_shortfall_whose_lower_bound_reaches_past_the_tolerance_disqualifies_even_with_a_small_mean():
    rows = with_quality(config("vector768", "rls", (0.99, 0.99), (1, 1)), -0.01, (-0.021, 0.0))
    rows += with_quality(config("vector1536", "rls", (0.99, 0.99), (5, 5)), 0.0, (-0.005, 0.005))
    assert chosen(rows).column_type == "vector1536"


def test_a_shortfall_within_the_tolerance_qualifies():
    rows = with_quality(config("vector768", "rls", (0.99, 0.99), (1, 1)), -0.01, (-0.019, 0.0))
    rows += with_quality(config("vector1536", "rls", (0.99, 0.99), (5, 5)), 0.0, (-0.005, 0.005))
    assert chosen(rows).column_type == "vector768"


def test_the_tolerance_is_the_rules_to_move():
    rows = with_quality(config("vector768", "rls", (0.99, 0.99), (1, 1)), -0.04, (-0.05, -0.03))
    rows += with_quality(config("vector1536", "rls", (0.99, 0.99), (5, 5)), 0.0, (-0.005, 0.005))
    assert chosen(rows).column_type == "vector1536"
    assert chosen(rows, quality_tolerance=0.06).column_type == "vector768"


def test_ties_go_to_the_higher_quality_before_the_smaller_storage():
    smaller = with_quality(config("vector768", "rls", (0.99, 0.99), (2, 2)), -0.015, (-0.019, -0.011))
    better = with_quality(config("vector1536", "rls", (0.99, 0.99), (2, 2)), 0.0, (-0.004, 0.004))
    decision = decide(results_of(smaller + better, {"vector768": 10, "vector1536": 10**6}))
    assert len(decision.tied) == 2 and decision.chosen.config.column_type == "vector1536"


def test_rows_without_quality_are_decided_as_before_and_the_rule_says_quality_was_not_judged():
    rows = config("vector768", "rls", (0.99, 0.99), (1, 1)) + config(
        "vector1536", "rls", (0.99, 0.99), (5, 5)
    )
    decision = decide(results_of(rows))
    assert decision.chosen.config.column_type == "vector768" and decision.quality_tolerance is None
    assert "nDCG@10" not in decision.rule


def test_the_runs_grid_rule_table_sets_the_tolerance():
    rows = with_quality(config("vector768", "rls", (0.99, 0.99), (1, 1)), -0.04, (-0.05, -0.03))
    rows += with_quality(config("vector1536", "rls", (0.99, 0.99), (5, 5)), 0.0, (-0.005, 0.005))
    results = results_of(rows)
    assert decide(results).chosen.config.column_type == "vector1536"  # no [rule]: 2 %
    results.run["identity"] = {"grid": {"rule": {"quality_tolerance": 0.06}}}
    assert decide(results).chosen.config.column_type == "vector768"


def test_without_labels_the_rule_falls_back_to_index_recall_and_the_first_screen_says_so():
    from dimbench.report.first_screen import quality_line

    rows = config("vector768", "rls", (0.99, 0.99), (1, 1)) + config(
        "vector1536", "rls", (0.99, 0.99), (5, 5)
    )
    results = results_of(rows)
    decision = decide(results)
    assert decision.chosen.config.column_type == "vector768" and decision.quality_tolerance is None
    assert "fell back to index recall alone" in quality_line(results, decision)
