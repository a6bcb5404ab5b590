"""The write-path verdict (evidence/live.py): a design qualifies for a live platform only if no request
failed, the ingest ran at the offered rate, search p95 under ingest stays within the bound of idle on its
interval, and freshness holds. Hand-made entries, one condition broken at a time."""

from __future__ import annotations

import copy

import pytest

from dimbench.evidence.live import failed_requests, holds_to, judge, judge_all, p95_ratio

GOOD = {
    "search": {
        "idle": {"searches": {"outcomes": {"ok": 100, "statement_timeout": 0}}},
        "ingest": {
            "searches": {"outcomes": {"ok": 100, "skipped": 0}},
            "ingest": {
                "offered_chunks_per_s": 200.0,
                "chunks_per_s": 198.0,
                "outcomes": {"ok": 40, "deadlock": 0},
            },
        },
        "p95_ratio": {"ratio": 1.1, "interval": [0.9, 1.3]},
    },
    "freshness": {"probes": 20, "found": 20, "outcomes": {"ok": 20}},
    "ingest_max": [{"outcomes": {"ok": 12, "statement_timeout": 0}}],
}


def changed(path: list, value) -> dict:
    entry = copy.deepcopy(GOOD)
    target = entry
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return entry


def test_a_design_that_meets_every_condition_qualifies():
    verdict = judge(GOOD, "probed")
    assert verdict.qualifies and verdict.status == "qualifies", verdict.summary()


@pytest.mark.parametrize(
    ("path", "value", "said"),
    [
        (["search", "ingest", "searches", "outcomes", "skipped"], 1, "search.ingest.searches.skipped 1"),
        (["ingest_max", 0, "outcomes", "statement_timeout"], 2, "ingest_max[0].statement_timeout 2"),
        (["search", "ingest", "ingest", "outcomes", "deadlock"], 1, "deadlock 1"),
        (["search", "ingest", "ingest", "chunks_per_s"], 120.0, "ingest reached 120 of 200"),
        (["search", "p95_ratio"], {"ratio": 2.0, "interval": [1.6, 2.4]}, "> 1.5×"),
        (["freshness", "found"], 19, "freshness: 19 of 20"),
    ],
)
def test_one_broken_condition_fails_the_design_and_says_which(path, value, said):
    verdict = judge(changed(path, value), "routed")
    assert verdict.status == "fails"
    assert said in verdict.summary()


def test_a_p95_interval_across_the_bound_is_undecided_not_a_pass():
    verdict = judge(changed(["search", "p95_ratio"], {"ratio": 1.4, "interval": [1.2, 1.7]}), "shared")
    assert verdict.status == "undecided" and "straddles 1.5×" in verdict.summary()


def test_the_bound_is_the_grids():
    entry = changed(["search", "p95_ratio"], {"ratio": 1.4, "interval": [1.2, 1.45]})
    assert judge(entry, "x", bound=1.5).qualifies
    assert judge(entry, "x", bound=1.1).status == "fails"
    assert [v.status for v in judge_all({"settings": {"p95_bound": 1.1}, "designs": {"x": entry}})] == [
        "fails"
    ]


def test_without_a_search_under_ingest_the_design_is_not_measured():
    assert judge({}, "x").status == "not measured"
    assert judge({"search": {"idle": {}}}, "x").status == "not measured"


def test_every_failed_request_is_counted_wherever_it_is():
    assert failed_requests(GOOD) == {}
    assert failed_requests(changed(["freshness", "outcomes"], {"ok": 3, "statement_timeout": 1})) == {
        "freshness.statement_timeout": 1
    }


def test_the_p95_ratio_interval_holds_the_ratio_and_is_deterministic():
    idle = [1.0 + 0.01 * i for i in range(100)]
    busy = [2 * x for x in idle]
    out = p95_ratio(idle, busy)
    assert out["ratio"] == pytest.approx(2.0)
    assert out["interval"][0] <= 2.0 <= out["interval"][1]
    assert p95_ratio(idle, busy) == out
    assert p95_ratio([], busy)["ratio"] is None


def at_rate(multiple: float, ratio: list[float], found: int = 20, failed: int = 0) -> dict:
    """A search-under-ingest phase at `multiple` × the platform's rate, as live_phases records it."""
    return {
        "searches": {"outcomes": {"ok": 100, "failed": failed}},
        "ingest": {
            "offered_chunks_per_s": 200.0 * multiple,
            "chunks_per_s": 199.0 * multiple,
            "outcomes": {"ok": 40},
            "rate_multiple": multiple,
        },
        "p95_ratio": {"ratio": sum(ratio) / 2, "interval": ratio},
        "freshness": {"probes": 20, "found": found},
    }


def test_failures_above_the_platforms_rate_do_not_fail_the_design():
    entry = changed(["search", "rates"], [at_rate(4.0, [0.9, 1.2], failed=3)])
    assert judge(entry, "routed").qualifies
    assert failed_requests(entry, above_rate=True) == {"search.rates[0].searches.failed": 3}


def test_the_decision_holds_up_to_the_highest_rate_below_the_first_that_fails():
    entry = changed(
        ["search", "rates"], [at_rate(2.0, [1.0, 1.4]), at_rate(4.0, [1.7, 2.5]), at_rate(8.0, [0.9, 1.1])]
    )
    held = holds_to(entry, 1.5)
    assert held["multiple"] == 2.0 and held["chunks_per_s"] == 400.0
    assert held["next"]["multiple"] == 4.0 and "> 1.5×" in held["next"]["verdict"]
    assert held["measured"] == [1.0, 2.0, 4.0, 8.0]


def test_a_design_that_fails_at_the_platforms_rate_holds_to_no_rate():
    held = holds_to(changed(["freshness", "found"], 3), 1.5)
    assert held["multiple"] is None and held["next"]["multiple"] == 1.0
