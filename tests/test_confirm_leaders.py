"""Who goes to confirmation, and in which rounds: hand-made screening candidates, no database."""

from __future__ import annotations

import json

from dimbench.evidence.rule import Candidate, Config
from dimbench.study.confirm import Entrant, leading, rounds
from dimbench.study.grid import Build, Confirm, QuerySetting

CONFIRM = Confirm(max_candidates=4, reach=0.5, recall_target=0.95)


def candidate(
    column_type,
    access,
    p95,
    recall,
    *,
    upper=None,
    ef=40,
    iterative="relaxed_order",
    flagged=False,
    design="shared",
):
    """A screened configuration: worst p95 `p95` ms, worst cell mean recall `recall`."""
    config = Config(
        design,
        "{}",
        column_type,
        "hnsw",
        json.dumps({"m": 16}),
        json.dumps({"ef_search": ef}),
        iterative,
        access,
    )
    return Candidate(
        config,
        min_recall=recall,
        worst_p95_ms=p95,
        worst_cell="all/tiny",
        storage_bytes_per_million=1.0,
        cells=4,
        qualifies=False,
        min_recall_upper=upper if upper is not None else min(1.0, recall + 0.05),
        maintenance=flagged,
    )


def test_the_places_go_to_the_choosable_designs_not_to_the_service_baseline():
    service = [candidate("vector768", "service", 1.0 + i / 10, 1.0, ef=40 + i) for i in range(6)]
    rls = [candidate("vector768", "rls", 3.0 + i / 10, 0.98, ef=40 + i) for i in range(6)]
    chosen = leading(service + rls, CONFIRM)
    assert [c.config.access for c in chosen].count("service") == 1  # the baseline: its best only
    assert sum(c.config.access == "rls" for c in chosen) >= 5


def test_the_service_baselines_place_goes_to_shared_not_to_a_design_that_installs_a_copy():
    inline = candidate("halfvec1536", "service", 1.0, 1.0, design="inline")  # the fastest service config
    shared = candidate("halfvec1536", "service", 2.0, 1.0)
    rls = [candidate("halfvec1536", "rls", 3.0 + i / 10, 0.98, ef=40 + i) for i in range(6)]
    chosen = leading([inline, shared, *rls], CONFIRM)
    assert shared in chosen and inline not in chosen


def test_a_configuration_passing_at_the_mean_outranks_a_faster_one_failing_at_it():
    failing = [candidate("vector768", "rls", 1.0 + i / 10, 0.9, iterative="off", ef=40 + i) for i in range(5)]
    passing = candidate("vector768", "rls", 5.0, 0.99)
    chosen = leading([*failing, passing], Confirm(max_candidates=1, reach=0.1, recall_target=0.95))
    assert passing in chosen


def test_a_configuration_whose_interval_is_wholly_below_the_target_is_not_confirmed():
    hopeless = candidate("vector768", "rls", 1.0, 0.80, upper=0.94)
    assert hopeless not in leading([hopeless, candidate("vector768", "rls", 2.0, 0.99)], CONFIRM)


def test_the_best_of_every_column_type_goes_even_beyond_the_cap():
    many = [candidate("vector768", "rls", 1.0 + i / 100, 0.99, ef=40 + i) for i in range(8)]
    slow = candidate("vector1536", "rls", 50.0, 0.99)
    chosen = leading([*many, slow], Confirm(max_candidates=2, reach=0.5, recall_target=0.95))
    assert slow in chosen


def test_the_best_of_every_design_goes_even_beyond_the_cap():
    many = [candidate("vector768", "rls", 1.0 + i / 100, 0.99, ef=40 + i, design="routed") for i in range(8)]
    slow = candidate("vector768", "rls", 50.0, 0.99, design="partial")
    assert slow in leading([*many, slow], Confirm(max_candidates=2, reach=0.5))


def test_a_grid_can_leave_a_design_out_that_is_neither_leading_nor_within_reach():
    many = [candidate("vector768", "rls", 1.0 + i / 100, 0.99, ef=40 + i, design="routed") for i in range(8)]
    slow = candidate("vector768", "rls", 50.0, 0.99, design="partial")
    near = candidate("vector768", "rls", 1.2, 0.99, design="partitioned")
    chosen = leading([*many, slow, near], Confirm(max_candidates=12, reach=0.5, every_design=False))
    assert slow not in chosen and near in chosen


def test_within_reach_extras_stop_at_the_cap_and_far_ones_are_left_out():
    near = [candidate("vector768", "rls", 1.0 + i / 100, 0.99, ef=40 + i) for i in range(10)]
    far = candidate("vector768", "rls_filter", 9.0, 0.99)
    chosen = leading([*near, far], Confirm(max_candidates=7, reach=0.5, recall_target=0.95))
    assert len(chosen) == 7
    assert far in chosen  # the best of its arm
    extra = candidate("vector768", "rls", 9.5, 0.99, ef=999)
    assert extra not in leading([*near, far, extra], Confirm(max_candidates=20, reach=0.5))


def test_a_configuration_that_saw_maintenance_is_confirmed():
    flagged = candidate("vector768", "rls", 40.0, 0.99, ef=77, flagged=True)
    others = [candidate("vector768", "rls", 1.0 + i / 100, 0.99, ef=40 + i) for i in range(8)]
    assert flagged in leading([*others, flagged], Confirm(max_candidates=5, reach=0.5))


def entrant(column_type, kind, ef=40, design="shared"):
    build = Build(column_type, kind, {} if kind == "exact" else {"m": 16})
    setting = QuerySetting({} if kind == "exact" else {"ef_search": ef}, "off")
    return Entrant(build, setting, "rls", f"{design} {column_type} {kind}", design)


def round_of(entrant_, plan):
    return next(i for i, members in enumerate(plan) if entrant_ in members)


def test_a_round_holds_at_most_one_build_per_column():
    es = [entrant("vector768", "hnsw"), entrant("vector768", "exact"), entrant("halfvec1536", "hnsw")]
    for members in rounds(es):
        columns = [e.build.column_type for e in members]
        keys = {e.build.key for e in members}
        assert len(keys) == len(set(columns))


def test_an_index_that_exists_already_is_used_in_the_first_round():
    exact, hnsw = entrant("vector768", "exact"), entrant("vector768", "hnsw")
    assert rounds([exact, hnsw])[0] == [exact]
    assert rounds([exact, hnsw], prefer={hnsw.build.key})[0] == [hnsw]


def test_shared_candidates_on_different_columns_share_a_round():
    v768, half = entrant("vector768", "hnsw"), entrant("halfvec1536", "hnsw")
    assert rounds([v768, half]) == [[v768, half]]


def test_an_installed_design_spans_one_column_per_round():
    v768 = entrant("vector768", "hnsw", design="routed")
    half = entrant("halfvec1536", "hnsw", design="routed")
    assert rounds([v768, half]) == [[v768], [half]]


def test_no_other_build_of_a_column_goes_before_the_round_that_uses_its_standing_index():
    half = entrant("halfvec1536", "hnsw", design="routed")
    v768 = entrant("vector768", "hnsw", design="routed")  # a round after `half`: routed has one schema
    exact = entrant("vector768", "exact")  # would drop v768's index if it came first
    plan = rounds([half, v768, exact], prefer={half.build.key, v768.build.key})
    assert round_of(half, plan) == 0 and round_of(v768, plan) == 1
    assert round_of(exact, plan) > round_of(v768, plan)


def test_a_design_with_its_own_indexes_on_that_column_waits_for_the_standing_index_too():
    half = entrant("halfvec1536", "hnsw", design="routed")
    v768 = entrant("vector768", "hnsw", design="routed")  # a round after `half`: routed has one schema
    partial = entrant("vector768", "hnsw", design="partial")  # same build key, but it drops the index
    plan = rounds([half, v768, partial], prefer={half.build.key, v768.build.key})
    assert round_of(v768, plan) == 1
    assert round_of(partial, plan) > round_of(v768, plan)
