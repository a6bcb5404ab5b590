"""Racing drops a configuration only on an interval that excludes it, never on its mean."""

from __future__ import annotations

from dimbench.evidence.race import judge
from tests.test_report_rule import row as cell


def row(*args, **kwargs) -> dict:
    return {**cell(*args, **kwargs), "n_queries": 10}


TARGET = 0.95


def config(
    ct: str, recall: float, recall_ci: list[float], p95: float, p95_ci: list[float], access: str = "rls"
) -> list[dict]:
    """One configuration (under rls unless told) in two buckets: the first as given, the second easy."""
    return [
        row(ct, access, "tiny", recall, p95, ci=recall_ci, p95_ci=p95_ci),
        row(ct, access, "small", 0.99, 1.0, ci=[0.98, 1.0], p95_ci=[0.9, 1.1]),
    ]


BEST = config("vector768", 0.99, [0.98, 1.0], 2.0, [1.8, 2.2])


def dropped(rows: list[dict]) -> dict[str, str]:
    return {d.label.split(" · ")[0]: d.why for d in judge(rows, TARGET, 1)}


def test_a_mean_below_the_target_with_an_upper_bound_above_it_stays_in_the_race():
    assert "vector1536" not in dropped(BEST + config("vector1536", 0.90, [0.80, 0.951], 2.0, [1.8, 2.2]))


def test_an_upper_bound_below_the_target_is_dropped_for_recall():
    assert dropped(BEST + config("vector1536", 0.90, [0.80, 0.949], 2.0, [1.8, 2.2])) == {
        "vector1536": "recall"
    }


def test_a_slower_mean_whose_interval_still_reaches_the_best_stays_in_the_race():
    assert "vector1536" not in dropped(BEST + config("vector1536", 0.99, [0.98, 1.0], 9.0, [2.2, 12.0]))


def test_a_p95_whose_lower_bound_is_above_the_best_upper_bound_is_dropped_for_latency():
    assert dropped(BEST + config("vector1536", 0.99, [0.98, 1.0], 9.0, [2.21, 12.0])) == {
        "vector1536": "latency"
    }


def test_a_p95_past_the_best_upper_bound_but_within_the_latency_margin_stays_in_the_race():
    rows = BEST + config("vector1536", 0.99, [0.98, 1.0], 9.0, [3.0, 12.0])  # 3.0 > 2.2, < 2.2 × 1.5
    assert "vector1536" not in {d.label.split(" · ")[0] for d in judge(rows, TARGET, 1, latency_margin=0.5)}


def test_a_p95_beyond_the_latency_margin_is_dropped_for_latency():
    rows = BEST + config("vector1536", 0.99, [0.98, 1.0], 9.0, [3.31, 12.0])  # > 2.2 × 1.5
    assert {d.label.split(" · ")[0]: d.why for d in judge(rows, TARGET, 1, latency_margin=0.5)} == {
        "vector1536": "latency"
    }


def test_the_reference_is_the_best_that_can_still_meet_the_target():
    """A fast configuration that cannot meet the recall target is no reference: nothing else is dropped
    for being slower than it."""
    fast_but_wrong = config("halfvec1536", 0.5, [0.4, 0.6], 0.1, [0.09, 0.11])
    assert dropped(fast_but_wrong + BEST) == {"halfvec1536": "recall"}


def test_no_one_is_dropped_on_latency_over_fewer_than_five_queries():
    slow = [{**r, "n_queries": 4} for r in config("vector1536", 0.99, [0.98, 1.0], 9.0, [3.0, 12.0])]
    assert dropped(BEST + slow) == {}


def test_a_drop_records_the_interval_that_excluded_it_and_the_reference():
    (drop,) = judge(BEST + config("vector1536", 0.99, [0.98, 1.0], 9.0, [3.0, 12.0]), TARGET, 2)
    assert (drop.cell, drop.interval, drop.reference, drop.round) == ("all/tiny", [3.0, 12.0], [1.8, 2.2], 2)


def test_a_shortfall_wholly_beyond_the_quality_tolerance_is_dropped_for_quality():
    worse = [
        {**r, "ndcg10_gap": -0.3, "ndcg10_gap_ci95": [-0.35, -0.25]}
        for r in config("vector1536", 0.99, [0.98, 1.0], 2.0, [1.8, 2.2])
    ]
    assert dropped(BEST + worse) == {"vector1536": "quality"}


def with_gap(rows: list[dict], gap_ci: list[float]) -> list[dict]:
    return [{**r, "ndcg10_gap": sum(gap_ci) / 2, "ndcg10_gap_ci95": gap_ci} for r in rows]


def test_a_reference_the_quality_rule_may_still_reject_drops_no_other_embedding_for_latency():
    """A fast 768 configuration whose nDCG shortfall straddles the tolerance may be rejected by
    confirmation: the slower 1536 configurations must still be there to choose from."""
    fast_768 = with_gap(BEST, [-0.027, -0.005])
    slow_1536 = with_gap(config("vector1536", 0.99, [0.98, 1.0], 9.0, [2.21, 12.0]), [-0.001, 0.0])
    assert dropped(fast_768 + slow_1536) == {}


def test_a_reference_on_the_same_embedding_drops_for_latency_whatever_its_quality():
    fast_768 = with_gap(BEST, [-0.027, -0.005])
    slow_768 = with_gap(config("vector768", 0.99, [0.98, 1.0], 9.0, [2.21, 12.0]), [-0.027, -0.005])
    slow_768 = [{**r, "query_params": {"ef_search": 400}} for r in slow_768]
    assert list(dropped(fast_768 + slow_768).values()) == ["latency"]


def test_a_reference_within_the_quality_tolerance_drops_another_embedding_for_latency():
    fast_768 = with_gap(BEST, [-0.015, -0.005])
    slow_1536 = with_gap(config("vector1536", 0.99, [0.98, 1.0], 9.0, [2.21, 12.0]), [-0.001, 0.0])
    assert dropped(fast_768 + slow_1536) == {"vector1536": "latency"}


def test_a_configuration_dropped_in_an_earlier_round_is_no_reference():
    """BEST drops the slower one while it is in the race; once BEST has left, it drops no one."""
    from dimbench.evidence.race import standings

    slower = config("vector1536", 0.99, [0.98, 1.0], 9.0, [2.21, 12.0])
    (best_label,) = {s.config.label for s in standings(BEST)}
    assert [d.why for d in judge(BEST + slower, TARGET, 2)] == ["latency"]
    assert judge(BEST + slower, TARGET, 2, out_of_race={best_label}) == []


def test_a_configuration_dropped_in_an_earlier_round_is_not_judged_again():
    slow = config("vector1536", 0.99, [0.98, 1.0], 9.0, [2.21, 12.0])
    (slow_label,) = {s.config.label for s in standings_of(slow)}
    assert judge(BEST + slow, TARGET, 2, out_of_race={slow_label}) == []


SLOW_1536 = ("vector1536", 0.99, [0.98, 1.0], 9.0, [2.21, 12.0])  # BEST drops it for latency
TIED_1536 = ("vector1536", 0.99, [0.98, 1.0], 2.0, [1.8, 2.2])  # ties with BEST on its own


def by_access(drops) -> dict[str, str]:
    return {d.access: d.why for d in drops}


def test_a_policy_variant_leaves_with_its_twin_under_rls():
    """The seed's policy at a configuration that ties on its own goes when that configuration under rls
    is dropped: it is measured only to show what the seed's form costs where the rule may choose."""
    rows = BEST + config(*SLOW_1536) + config(*TIED_1536, access="rls_seed")
    drops = judge(rows, TARGET, 1)
    assert by_access(drops) == {"rls": "latency", "rls_seed": "twin"}
    (twin,) = [d for d in drops if d.why == "twin"]
    assert twin.reference_label == next(d.label for d in drops if d.access == "rls")


def test_a_policy_variant_whose_twin_is_in_the_race_stays():
    rows = BEST + config(*TIED_1536) + config(*TIED_1536, access="rls_docs")
    assert judge(rows, TARGET, 1) == []


def test_a_policy_variant_leaves_when_its_twin_left_in_an_earlier_round():
    (twin_label,) = {s.config.label for s in standings_of(config(*SLOW_1536))}
    rows = BEST + config(*TIED_1536, access="rls_docs")
    assert by_access(judge(rows, TARGET, 2, out_of_race={twin_label})) == {"rls_docs": "twin"}


def test_the_service_baseline_does_not_follow_its_rls_twin():
    rows = BEST + config(*SLOW_1536) + config(*TIED_1536, access="service")
    assert by_access(judge(rows, TARGET, 1)) == {"rls": "latency"}


def standings_of(rows: list[dict]):
    from dimbench.evidence.race import standings

    return standings(rows)
