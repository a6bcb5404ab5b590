"""The report's reading of designs, paths, regret, the scan budget, the side channel and scale: rows made
by hand, no database."""

from __future__ import annotations

import math
from dataclasses import replace

from dimbench.evidence.side_channel import leaks
from dimbench.report import designs, scale
from dimbench.report.scale import project


def row(plan: str, recall: float, p50: float, design: str = "shared", **kw) -> dict:
    base = {
        "run_id": "r",
        "stage": "screening",
        "design": design,
        "design_params": {},
        "column_type": "vector768",
        "index": "hnsw",
        "build_params": {"m": 16},
        "query_params": {"ef_search": 40},
        "access": "rls",
        "iterative_scan": "off",
        "scope": "all",
        "bucket": "large",
        "plan": plan,
        "recall_mean": recall,
        "latency_ms": {"p50": p50, "p95": p50 * 2},
    }
    return {**base, **kw}


def test_a_slower_path_beaten_by_an_as_accurate_one_is_regret():
    rows = [row("btree + sort", 1.0, 100.0), row("vector index", 1.0, 10.0, design="routed")]
    (found,) = designs.regret(rows)
    assert found["path"] == "btree + sort" and found["better_path"] == "vector index"


def test_a_faster_path_that_is_less_accurate_is_not_regret():
    rows = [row("btree + sort", 1.0, 100.0), row("vector index", 0.9, 10.0)]
    assert designs.regret(rows) == []


def test_a_difference_within_noise_is_not_regret():
    rows = [row("btree + sort", 1.0, 10.0), row("vector index", 1.0, 9.0)]
    assert designs.regret(rows) == []


def test_cells_of_different_buckets_are_never_compared():
    rows = [row("btree + sort", 1.0, 100.0), row("vector index", 1.0, 10.0, bucket="tiny")]
    assert designs.regret(rows) == []


def test_the_scan_budget_table_keys_on_max_scan_tuples_with_the_default_filled_in():
    rows = [
        row("vector index", 0.5, 1, iterative_scan="relaxed_order", short_share=0.4, bucket="tiny"),
        row(
            "vector index",
            0.9,
            1,
            iterative_scan="relaxed_order",
            short_share=0.1,
            bucket="tiny",
            query_params={"ef_search": 40, "max_scan_tuples": 100000},
        ),
        row("vector index", 0.5, 1, iterative_scan="off", short_share=0.9, bucket="tiny"),
    ]
    table = {b["max_scan_tuples"]: b["short_share_by_bucket"]["tiny"] for b in designs.scan_budget(rows)}
    assert table == {20000: 0.4, 100000: 0.1}


def test_the_designs_are_read_from_the_results_in_vocabulary_order():
    rows = [row("x", 1, 1, design="partial"), row("x", 1, 1), row("x", 1, 1, design="routed")]
    assert designs.designs_in(rows) == ["shared", "routed", "partial"]
    assert designs.designs_in([{"column_type": "vector768"}]) == ["shared"]  # results older than designs


def passes(without: list[float], with_: list[float], short=(0.0, 0.0)) -> list[dict]:
    """Passes in time order, A/B/A/…: p50s without the cluster and with it, interleaved."""

    def summary(p50: float, short_share: float, cluster: bool) -> dict:
        return {
            "p50_ms": p50,
            "short_share": short_share,
            "recall_mean": 1.0,
            "n_queries": 20,
            "cluster": cluster,
        }

    out = [summary(without[0], short[0], False)]
    for b, a in zip(with_, without[1:], strict=True):
        out += [summary(b, short[1], True), summary(a, short[0], False)]
    return out


def side(
    without: list[float], with_: list[float], short=(0.0, 0.0), design: str = "shared", arm: str = "rls"
):
    from dimbench.study.sidechannel import entry

    return entry(design, "vector768/hnsw()", arm, 50, passes(without, with_, short))


def test_a_design_slower_with_the_cluster_in_every_cycle_leaks():
    assert leaks(side([1.0, 1.1, 0.9, 1.05], [2.0, 1.8, 1.9]))


def test_one_cycle_that_does_not_separate_is_not_a_leak():
    assert leaks(side([1.0, 1.1, 0.9, 1.05], [2.0, 1.08, 1.9])) is False


def test_fewer_than_two_passes_with_the_cluster_are_not_judged():
    assert leaks(side([1.0, 1.02], [2.0])) is None


def test_results_measured_before_repeated_cycles_are_not_judged():
    old = {"without": {"p50_ms": 1.0, "short_share": 0.0}, "with": {"p50_ms": 2.0, "short_share": 0.3}}
    assert leaks({**old, "order": "A/B/A", "without_again": {"p50_ms": 1.0, "short_share": 0.0}}) is None


def test_a_design_whose_results_shorten_in_every_cycle_leaks_even_at_the_same_latency():
    assert leaks(side([1.0, 1.0, 1.0], [1.0, 1.0], short=(0.0, 0.3)))


def test_the_chance_of_a_leak_without_any_effect_is_the_rank_test_s():
    from dimbench.evidence.side_channel import chance

    assert math.isclose(chance(side([1.0] * 4, [1.0] * 3)), 2 / 35)


def test_the_ratio_is_the_median_with_over_the_median_without():
    e = side([1.0, 1.2, 5.0], [2.4, 2.2])
    assert math.isclose(e["p50_ratio"], 2.3 / 1.2) and e["order"] == "A/B/A/B/A"


def test_a_design_unmoved_by_the_foreign_cluster_does_not_leak():
    assert leaks(side([1.0, 1.1, 0.9, 1.05], [1.02, 0.95, 1.07])) is False


def at(chunks: int, qualifies: bool | None, p95: float = 1.0) -> scale.AtSize:
    from dimbench.evidence.rule import Candidate, Config

    if qualifies is None:
        return scale.AtSize(chunks, "r", None)
    config = Config("shared", "{}", "vector768", "hnsw", "{}", "{}", "off", "rls")
    return scale.AtSize(chunks, "r", Candidate(config, 1.0, p95, "all/large", 1.0, 4, qualifies))


def recall_at(chunks: int, lower: float, upper: float, failed: int = 0) -> scale.AtSize:
    """A size where the rule did not pass the configuration for its recall interval [lower, upper]."""
    from dataclasses import replace

    point = at(chunks, False)
    assert point.candidate is not None
    why = f"recall 0.980 [{lower:.3f}, {upper:.3f}] in all/large"
    candidate = replace(
        point.candidate, why_not=why, min_recall_lower=lower, min_recall_upper=upper, failed_queries=failed
    )
    return scale.AtSize(chunks, "r", candidate)


def test_a_recall_interval_straddling_the_target_is_undecided_not_a_failure():
    assert scale.verdict(recall_at(100, 0.94, 0.99).candidate, 0.95) == "undecided"


def test_a_recall_interval_below_the_target_is_a_failure():
    assert scale.verdict(recall_at(100, 0.80, 0.90).candidate, 0.95) == "fails"


def test_failed_requests_make_a_straddling_interval_a_failure():
    assert scale.verdict(recall_at(100, 0.94, 0.99, failed=1).candidate, 0.95) == "fails"


def test_an_undecided_size_neither_holds_nor_stops_the_not_failed_reach():
    points = [at(100, True), recall_at(300, 0.94, 0.99), recall_at(1000, 0.8, 0.9)]
    assert scale.holds_up_to(points) == 100
    assert scale.not_failed_up_to(points, 0.95) == 300


def test_a_size_quotes_the_interval_of_its_weakest_cell_over_that_cell_s_own_queries():
    from dataclasses import replace

    from dimbench.report.scale_record import at_size

    point = recall_at(300, 0.9496, 0.987)
    assert point.candidate is not None
    weakest = {"cell": "all/medium", "recall": 0.974, "ci": [0.9496, 0.987], "n": 300}
    point = scale.AtSize(300, "r", replace(point.candidate, n_queries=100, weakest=weakest))
    text = at_size(point, 0.95)
    assert text.startswith("undecided (weakest cell all/medium: recall 0.974 [0.949, 0.987] over 300 queries")
    assert "at least 100 in every cell" in text


def test_an_interval_is_rounded_outward_never_to_a_bound_it_did_not_reach():
    from dimbench.evidence.text import interval

    assert interval([0.9496, 0.98701]) == " [0.949, 0.988]"
    assert interval([0.95, 1.0]) == " [0.950, 1.000]"


def test_a_scale_record_follows_the_rule_s_choice_beside_each_design_s_best_each_configuration_once():
    from dimbench.evidence.rule import Candidate, Config, Decision

    def routed(column_type: str, p95: float, ef: int) -> Candidate:
        query = f'{{"ef_search": {ef}}}'
        config = Config("routed", "{}", column_type, "hnsw", "{}", query, "relaxed_order", "rls")
        return Candidate(config, 0.99, p95, "all/large", 1.0, 8, True)

    fastest, chosen = routed("halfvec1536", 4.0, 40), routed("vector768", 4.5, 100)  # tie went to storage
    decision = Decision(0.95, None, ("rls", "rls_filter"), 0.0, [fastest, chosen], chosen, None)
    lines = scale.followed(decision, 100_000)
    assert lines == {"the rule's choice at 100,000": chosen, "best routed": fastest}
    decision = Decision(0.95, None, ("rls", "rls_filter"), 0.0, [chosen], chosen, None)
    assert scale.followed(decision, 100_000) == {"the rule's choice at 100,000": chosen}


def test_pgvector_s_defaults_are_shown_on_the_decision_s_column_type_not_the_best_one():
    from dimbench.evidence.rule import Candidate, Config, Decision
    from dimbench.report.designs import deployable

    def defaults(column_type: str, recall: float) -> Candidate:
        config = Config("shared", "{}", column_type, "hnsw", "{}", '{"ef_search": 40}', "off", "rls")
        return Candidate(config, recall, 2.0, "all/tiny", 1.0, 8, False, why_not="recall")

    chosen = Candidate(
        Config("routed", "{}", "vector768", "hnsw", "{}", '{"ef_search": 100}', "relaxed_order", "rls"),
        0.99, 4.0, "all/large", 1.0, 8, True,
    )  # fmt: skip
    worse, better = defaults("vector768", 0.6), defaults("vector1536", 0.9)
    decision = Decision(0.95, None, ("rls", "rls_filter"), 0.0, [chosen, better, worse], chosen, None)
    assert deployable(decision)["pgvector defaults"] is worse


def test_a_choice_holds_up_to_the_last_size_before_it_first_fails():
    assert scale.holds_up_to([at(100, True), at(300, True), at(1000, False)]) == 300
    assert scale.holds_up_to([at(100, True), at(300, False), at(1000, True)]) == 100


def test_a_choice_failing_or_unmeasured_at_the_smallest_size_holds_nowhere():
    assert scale.holds_up_to([at(100, False), at(300, True)]) is None
    assert scale.holds_up_to([at(100, None), at(300, True)]) is None


def test_the_projection_is_the_power_law_through_the_measurements():
    assert math.isclose(project([(100, 1.0), (1000, 10.0)], 10_000), 100.0, rel_tol=1e-9)
    assert project([(100, 1.0)], 10_000) is None


def test_the_recall_projection_is_a_straight_line_against_log_n():
    assert math.isclose(project([(100, 0.99), (1000, 0.97)], 10_000, log_y=False), 0.95, rel_tol=1e-9)


def test_a_recall_projected_below_the_target_is_said_to_need_a_new_measurement():
    from dataclasses import replace

    from dimbench.report.scale_record import projection_lines

    falling = []
    for chunks, recall in ((100_000, 0.990), (1_000_000, 0.970)):
        point = at(chunks, True)
        assert point.candidate is not None
        falling.append(scale.AtSize(chunks, "r", replace(point.candidate, min_recall=recall)))
    (line,) = projection_lines(falling, 0.95)
    assert line.startswith(
        "Projection (not a measurement): worst p95 ≈ 1.0 ms and worst-bucket recall ≈ 0.950"
    )
    assert "below the 0.95 target" not in line  # 0.950 is not below
    (line,) = projection_lines(falling, 0.96)
    assert "below the 0.96 target: measure again before that size" in line


def test_a_configuration_whose_interval_straddles_the_target_reads_undecided_not_no():
    from dimbench.report.common import meets

    straddling = recall_at(100, 0.93, 1.0).candidate
    below = recall_at(100, 0.80, 0.90).candidate
    assert straddling is not None and below is not None
    assert meets(straddling, 0.95).startswith("undecided: recall")
    assert meets(below, 0.95).startswith("no: recall")


def test_the_record_says_not_judged_for_a_run_measured_before_repeated_cycles():
    from dimbench.report.side_channel_text import side_channel_lines

    summary = {"p50_ms": 1.0, "short_share": 0.0, "recall_mean": 1.0, "n_queries": 20}
    old = {"design": "shared", "build_key": "b", "access": "rls", "cluster_rows": 50, "order": "A/B/A"}
    old |= {"without": summary, "with": summary, "without_again": summary, "p50_ratio": 1.0}
    assert "*not judged*" in "\n".join(side_channel_lines({"side_channel": [old]}))
    assert "*not judged*" not in "\n".join(
        side_channel_lines({"side_channel": [side([1.0, 1.0, 1.0], [1.0, 1.0])]})
    )


def test_the_scale_record_gives_each_build_and_install_its_cost_at_each_size(tmp_path):
    from dimbench.evidence.results import Results
    from dimbench.report.scale_record import scale_cost_lines

    key = "vector768/hnsw(ef_construction=64,m=16)"

    def run(run_id: str, seconds: float, partial: bool) -> dict:
        build = {"build_key": key, "seconds": seconds, "index_bytes": 2**20, "maintenance_work_mem": "2GB"}
        routed = {"design": "routed", "build_key": key, "seconds": 0.1, "index_bytes": 0, "table_bytes": 0}
        designs = [{**routed, "detail": {"threshold": 300}}]
        if partial:
            designs.append({"design": "partial", "build_key": key, "seconds": 9.0, "index_bytes": 3 * 2**20})
        return {"run_id": run_id, "builds": [build], "designs": designs}

    runs = [run("a", 20.0, partial=True), run("b", 290.0, partial=False)]
    lines = scale_cost_lines(Results(tmp_path, runs[0], [], runs), [(100_000, "a"), (1_000_000, "b")])
    table = "\n".join(lines)
    assert f"| shared | {key} | 20.0 s / 1 MB (mwm 2GB) | 290.0 s / 1 MB (mwm 2GB) |" in table
    assert f"| routed | {key} | 0.1 s / 0 MB (T = 300) | 0.1 s / 0 MB (T = 300) |" in table
    assert f"| partial | {key} | 9.0 s / 3 MB | not measured |" in table


def test_routed_is_credited_with_the_threshold_of_the_candidates_own_setting(tmp_path):
    from dimbench.evidence.results import Results
    from dimbench.evidence.rule import Candidate, Config
    from dimbench.report.designs import threshold_of

    key = "vector768/hnsw(ef_construction=64,m=16)"
    thresholds = {"(ef_search=40)/relaxed_order": 131_680, "(ef_search=100)/relaxed_order": 960}
    run = {
        "run_id": "a",
        "builds": [],
        "designs": [{"design": "routed", "build_key": key, "detail": {"thresholds": thresholds}}],
    }
    config = Config(
        "routed",
        '{"threshold": "measured"}',
        "vector768",
        "hnsw",
        '{"ef_construction": 64, "m": 16}',
        '{"ef_search": 100}',
        "relaxed_order",
        "rls",
    )
    candidate = Candidate(config, 1.0, 4.0, "all/large", None, 4, True)
    assert threshold_of(Results(tmp_path, run, [], [run]), candidate) == 960


def screened_as(design: str, p95: float, stage: str = "screening"):
    import json

    from dimbench.evidence.rule import Candidate, Config

    config = Config(
        design, "{}", "vector768", "hnsw", json.dumps({"m": 16}), json.dumps({"ef_search": 100}), "off", "rls"
    )
    return Candidate(config, 0.99, p95, "workspace/large", 1.0, 4, True, stage=stage)


def decided(confirmed: list, screened: list):
    from dimbench.evidence.rule import Decision

    return Decision(
        0.95, None, ("rls",), 0.0, confirmed, confirmed[0], None, [], "confirmation", "r", screened
    )


def test_a_design_confirmation_left_out_keeps_its_line_from_screening():
    routed = screened_as("routed", 5.0, "confirmation")
    partial = screened_as("partial", 40.0)
    lines = designs.deployable(decided([routed], [screened_as("routed", 5.5), partial]))
    assert lines["best routed"] is routed and lines["best partial"] is partial


def test_a_followed_configuration_left_out_of_confirmation_is_followed_through_its_screening(monkeypatch):
    partial = screened_as("partial", 40.0)
    routed = screened_as("routed", 5.0, "confirmation")
    monkeypatch.setattr(scale, "sizes", lambda results: [(100_000, "a")])
    monkeypatch.setattr(scale, "decision_at", lambda results, run_id: decided([routed], [partial]))
    assert [p.candidate for p in scale.follow(None, partial.config)] == [partial]
    assert [p.candidate for p in scale.follow(None, routed.config)] == [routed]


def test_the_designs_side_by_side_keep_a_design_confirmation_left_out_through_its_screening(tmp_path):
    from dimbench.evidence.results import Results

    routed = screened_as("routed", 5.0, "confirmation")
    partial = screened_as("partial", 40.0)
    rows = [row("x", 1, 1, design="routed"), row("x", 1, 1, design="partial")]
    run = {"run_id": "r", "builds": [], "designs": []}
    bests = designs.best_per_design(Results(tmp_path, run, rows, [run]), decided([routed], [partial]))
    assert [(b.design, b.best) for b in bests] == [("routed", routed), ("partial", partial)]


def test_a_confirmed_design_is_never_beaten_by_its_own_faster_screening():
    routed = screened_as("routed", 5.0, "confirmation")
    faster_at_screening = screened_as("routed", 3.0)
    faster_at_screening.config = replace(faster_at_screening.config, query_params='{"ef_search": 40}')
    lines = designs.deployable(decided([routed], [faster_at_screening]))
    assert lines["best routed"] is routed


def test_routed_gives_one_threshold_per_query_setting_it_calibrated():
    from dimbench.study.designs import routed

    detail = {"thresholds": {"(ef_search=40)/off": 110, "(ef_search=100)/off": 840}}
    assert routed.thresholds(detail) == {"(ef_search=40)/off": 110, "(ef_search=100)/off": 840}
    assert routed.DESIGN.measured_at(detail, "(ef_search=100)/off") == 840


def test_routed_results_written_before_per_setting_t_give_their_one_t_for_every_setting():
    from dimbench.study.designs import routed

    assert routed.DESIGN.measured_at({"threshold": 300}, "(ef_search=100)/off") == 300


def test_the_record_points_at_each_designs_module_where_it_is_in_the_checkout():
    from pathlib import Path

    from dimbench.report.apply_sql import design_source
    from dimbench.vocabulary import DESIGNS

    root = Path(__file__).resolve().parent.parent
    assert all((root / design_source(name)).is_file() for name in DESIGNS if name != "shared")


def test_the_spread_of_the_passes_without_bounds_what_a_no_can_claim():
    from dimbench.evidence.side_channel import p50_floor

    assert math.isclose(p50_floor(side([1.0, 1.5, 0.8], [1.0, 1.0])), 0.5)


def verdict_of(*entries: dict) -> str:
    from dimbench.report.side_channel_text import side_channel_verdict

    return "\n".join(side_channel_verdict(list(entries)))


def test_the_record_names_each_design_that_leaks_with_its_arm_and_ratio():
    leaking = side([1.0, 1.0, 1.0], [2.0, 2.0], design="inline")
    assert "inline under `rls` (p50 ×2.00)" in verdict_of(leaking, side([1.0, 1.0, 1.0], [1.0, 1.0]))
    assert "shared under" not in verdict_of(leaking, side([1.0, 1.0, 1.0], [1.0, 1.0]))


def test_the_record_gives_a_design_that_did_not_leak_the_spread_its_no_is_bounded_by():
    text = verdict_of(
        side([1.0, 1.8, 1.0], [1.0, 1.0], design="routed"),
        side([1.0, 1.1, 1.0], [1.0, 1.0], design="routed", arm="rls_filter"),
    )
    assert "pass): none —" in text and "routed (±80%)" in text


def test_a_design_that_leaks_under_one_arm_is_not_listed_among_those_that_did_not():
    text = verdict_of(
        side([1.0, 1.0, 1.0], [2.0, 2.0], design="inline"),
        side([1.0, 1.0, 1.0], [1.0, 1.0], design="inline", arm="rls_filter"),
    )
    assert "Not moved" not in text


def test_a_lone_flag_within_what_chance_explains_is_called_so():
    entries = [side([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0], design=d) for d in ("a", "b", "c", "d", "e", "f")]
    entries.append(side([1.0, 1.0, 1.0, 1.0], [0.7, 0.7, 0.7], design="inline"))
    text = verdict_of(*entries)
    assert "p50 ×0.70, faster with the cluster" in text and "a lone flag is not evidence on its own" in text


def test_a_short_share_that_moved_in_one_pass_only_is_not_reported_as_moved():
    from dimbench.study.sidechannel import entry

    timeline = passes([1.0, 1.0, 1.0], [1.0, 1.0])
    timeline[0]["short_share"] = 0.05  # one pass without came back short once
    assert "No design's short-result share moved" in verdict_of(entry("inline", "b", "rls", 50, timeline))


def test_the_scale_figure_draws_each_size_with_the_recall_band_the_rule_judged(monkeypatch):
    from dataclasses import replace

    from dimbench.report import story

    at_100k = replace(
        screened_as("routed", 5.0, "confirmation"), min_recall_lower=0.96, min_recall_upper=0.99
    )
    at_1m = replace(at_100k, min_recall=0.97, min_recall_lower=0.94, min_recall_upper=0.98)
    by_run = {"a": decided([at_100k], []), "b": decided([at_1m], [])}
    monkeypatch.setattr(scale, "sizes", lambda results: [(100_000, "a"), (1_000_000, "b")])
    monkeypatch.setattr(scale, "decision_at", lambda results, run_id: by_run[run_id])
    (points,) = story.scale_series(None).values()
    assert [(p.chunks, p.recall, p.lower, p.upper) for p in points] == [
        (100_000, 0.99, 0.96, 0.99),
        (1_000_000, 0.97, 0.94, 0.98),
    ]


def test_the_record_shows_the_side_channel_of_the_run_that_measured_the_most_designs(tmp_path):
    from dimbench.evidence.results import Results

    def run(run_id: str, names: list[str]) -> dict:
        return {"run_id": run_id, "side_channel": [{"design": n} for n in names]}

    first, everything = run("a", ["shared", "routed"]), run("b", ["shared", "routed", "inline", "partial"])
    results = Results(tmp_path, first, [], [first, everything])
    assert results.side_channel_run is everything


def test_the_side_channel_section_says_which_run_and_which_designs_it_measured():
    from dimbench.report.side_channel_text import side_channel_lines

    entry = side([1.0, 1.0, 1.0], [1.0, 1.0])
    text = "\n".join(
        side_channel_lines({"run_id": "r1", "side_channel": [entry], "side_channel_designs": ["routed"]})
    )
    assert "Measured in run `r1`: the decision's designs (routed) beside shared" in text
    everything = {"run_id": "r2", "side_channel": [entry], "side_channel_designs": "all"}
    assert "every design of the grid (`--side-channel all`)" in "\n".join(side_channel_lines(everything))
