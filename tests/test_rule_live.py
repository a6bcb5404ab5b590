"""The decision rule with the write path (rule step 5): a design that fails under live traffic is never
chosen; a design not measured live, or undecided, is not disqualified; without live data the rule is
exactly as before. Hand-made rows and hand-made live.json entries."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from dimbench.evidence.results import Results, read_results
from dimbench.evidence.rule import decide
from tests.test_evidence_live import GOOD
from tests.test_report_rule import config

BOUND = {"settings": {"p95_bound": 1.5}}


def routed(rows: list[dict]) -> list[dict]:
    """The same cells as the `routed` design (searches the shared index, adds its own structures)."""
    return [{**r, "design": "routed", "design_params": {}} for r in rows]


def results_of(rows: list[dict], live: dict | None = None) -> Results:
    builds = [{"build_key": "vector768/hnsw", "rows": 1000, "index_bytes": 1000, "table_bytes": 0}]
    installed = [{"design": "routed", "build_key": "vector768/hnsw", "index_bytes": 10}]
    return Results(Path("."), {"builds": builds, "designs": installed}, rows, live=live)


def rows() -> list[dict]:
    # routed is clearly faster than shared, both meet the recall target
    return routed(config("vector768", "rls", [0.99, 0.99], [2.0, 2.0])) + config(
        "vector768", "rls", [0.99, 0.99], [8.0, 8.0]
    )


def failing_writes() -> dict:
    entry = copy.deepcopy(GOOD)
    entry["search"]["ingest"]["ingest"]["outcomes"]["statement_timeout"] = 3
    return entry


def straddling() -> dict:
    entry = copy.deepcopy(GOOD)
    entry["search"]["p95_ratio"] = {"ratio": 1.4, "interval": [1.2, 1.8]}
    return entry


def test_without_live_data_the_faster_design_is_chosen():
    decision = decide(results_of(rows()))
    assert decision.chosen is not None and decision.chosen.config.design == "routed"
    assert decision.live is None


def test_a_design_failing_the_write_path_is_never_chosen_and_says_why():
    live = {**BOUND, "designs": {"routed": failing_writes(), "shared": GOOD}}
    decision = decide(results_of(rows(), live))
    assert decision.chosen is not None and decision.chosen.config.design == "shared"
    failed = [c for c in decision.candidates if c.config.design == "routed"]
    assert failed and all(not c.qualifies for c in failed)
    assert "fails under live traffic" in failed[0].why_not and "statement_timeout 3" in failed[0].why_not


def test_live_data_passed_to_decide_overrides_the_directory():
    live = {**BOUND, "designs": {"routed": failing_writes()}}
    assert decide(results_of(rows()), live=live).chosen.config.design == "shared"


def test_a_design_not_measured_live_is_not_disqualified():
    live = {**BOUND, "designs": {"shared": GOOD}}
    decision = decide(results_of(rows(), live))
    assert decision.chosen.config.design == "routed"
    assert "routed" not in decision.live


def test_an_undecided_design_is_not_disqualified():
    live = {**BOUND, "designs": {"routed": straddling(), "shared": GOOD}}
    decision = decide(results_of(rows(), live))
    assert decision.chosen.config.design == "routed"
    assert decision.live["routed"].status == "undecided"


def test_the_rule_text_names_the_live_gate_only_with_live_data():
    live = {**BOUND, "designs": {"shared": GOOD}}
    assert "Under live traffic" in decide(results_of(rows(), live)).rule
    assert "Under live traffic" not in decide(results_of(rows())).rule


def test_read_results_reads_live_json_beside_the_run(tmp_path):
    # the directory's own live.json reaches the rule without anyone passing it
    (tmp_path / "run.json").write_text(json.dumps({"format": 2, "profile": "t", "runs": [{"run_id": "r"}]}))
    lines = [json.dumps({**r, "run_id": "r"}) for r in rows()]
    (tmp_path / "measurements.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "live.json").write_text(json.dumps({**BOUND, "designs": {"routed": failing_writes()}}))
    assert read_results(tmp_path).live["designs"]["routed"]


def test_without_a_live_stage_the_first_screen_says_the_write_path_was_not_measured():
    from dimbench.report.live_text import live_line, section

    results = results_of(rows())
    decision = decide(results)
    assert section(results, decision) == []
    assert "not measured" in live_line(results, decision)


def test_the_record_shows_each_measured_design_with_its_intervals_and_failures():
    from dimbench.report.live_text import section

    live = {**BOUND, "designs": {"routed": failing_writes(), "shared": GOOD}}
    results = results_of(rows(), live)
    text = "\n".join(section(results, decide(results)))
    assert text.startswith("## Under live traffic")
    assert "**routed** — fails" in text and "statement_timeout 3" in text
    assert "1.10× [0.90, 1.30]" in text  # the p95 ratio with its interval
    assert "20 of 20 new chunks" in text


def test_the_first_screen_says_the_rate_the_choice_holds_to():
    from dimbench.report.live_text import live_line

    live = {"settings": {"p95_bound": 1.5, "ingest_rate": 200}, "designs": {"routed": GOOD, "shared": GOOD}}
    results = results_of(rows(), live)
    line = live_line(results, decide(results))
    assert line == (
        "- Under live traffic: holds at the grid's ingest rate of 200 chunks/s per 100k: "
        "p95 ratio 1.10× [0.90, 1.30]."
    )


def test_the_first_screen_says_up_to_which_multiple_of_the_rate_the_choice_holds():
    from dimbench.report.live_text import live_line

    above = copy.deepcopy(GOOD)
    phase = copy.deepcopy(GOOD["search"]["ingest"])
    phase["ingest"].update(rate_multiple=4.0, offered_chunks_per_s=800.0, chunks_per_s=500.0)
    phase.update(p95_ratio={"ratio": 1.2, "interval": [1.0, 1.4]}, freshness=GOOD["freshness"])
    above["search"]["rates"] = [phase]
    live = {"settings": {"p95_bound": 1.5, "ingest_rate": 200}, "designs": {"routed": above, "shared": GOOD}}
    results = results_of(rows(), live)
    line = live_line(results, decide(results))
    assert (
        "it holds up to 1× the platform's rate (200 chunks/s offered); at 4×: fails (ingest reached 500"
        in line
    )


def test_the_record_says_when_the_live_stage_did_not_finish():
    from dimbench.report.live_text import section

    live = {**BOUND, "status": "interrupted", "designs": {"shared": GOOD}}
    results = results_of(rows(), live)
    assert "The live stage is **interrupted**" in "\n".join(section(results, decide(results)))


def test_a_scale_directorys_live_stage_judges_only_the_size_it_measured():
    from dimbench.evidence.rule import live_of

    small = {"run_id": "at-100k", "corpus": {"counts": {"chunks": 100_000}}}
    large = {"run_id": "at-1m", "corpus": {"counts": {"chunks": 1_000_000}}}
    live = {**BOUND, "corpus": {"counts": {"chunks": 1_000_000}}, "designs": {"routed": failing_writes()}}
    results = Results(Path("."), small, [], [small, large], live)
    assert live_of(results, "at-1m") is live
    assert live_of(results, "at-100k") is None  # not measured live there: nothing disqualified
    assert live_of(results, None) is live


def test_the_record_says_whether_routeds_counts_were_right_after_the_writes():
    from dimbench.report.live_text import count_lines

    right = {
        "count_check": {"workspaces": 300, "miscounted": 0, "largest_error_rows": 0, "unfolded_deltas": 2}
    }
    assert "0 of 300 workspaces counted wrong" in count_lines(right)[0]
    assert "no call takes a path its exact count would not" in count_lines(right)[0]
    wrong = {"count_check": {**right["count_check"], "miscounted": 3, "largest_error_rows": 7}}
    assert "can take the other path" in count_lines(wrong)[0]
    assert count_lines(GOOD) == []  # a design that keeps no count
