"""The report from a results fixture: every plot, DECISION.md, determinism, read-only inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dimbench import files
from dimbench.evidence.results import read_results
from dimbench.evidence.rule import decide
from dimbench.report import decision_record, render
from dimbench.report.decision_record import render as render_record
from tests.cli_helpers import run_cli
from tests.results_fixture import WINNER, write_results

PLOTS = ("pareto", "recall_by_bucket", "rls_overhead", "storage_build", "qps", "ndcg", "deployable")


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """The fixture's files before the report, after `dimbench report`, and after rendering again."""
    directory = write_results(tmp_path_factory.mktemp("report") / "fixture")
    before = snapshot(directory)
    done = run_cli("report", "--results", str(directory))
    assert done.returncode == 0, done.stderr
    first = snapshot(directory)
    render(directory)
    return {"before": before, "first": first, "second": snapshot(directory)}


@pytest.fixture
def results(tmp_path) -> Path:
    return write_results(tmp_path / "fixture")


def test_the_report_command_writes_every_plot_and_the_decision_record(rendered):
    written = set(rendered["first"]) - set(rendered["before"])
    figures = {f"plots/{plot}.{ext}" for plot in PLOTS for ext in ("png", "svg")}
    assert written == figures | {"DECISION.md", f"plots/{files.MARKER}"}  # plots/ is marked as dimbench's
    assert rendered["first"]["DECISION.md"].startswith(b"# Decision record")


def test_the_decision_record_is_byte_identical_when_regenerated(rendered):
    assert rendered["second"]["DECISION.md"] == rendered["first"]["DECISION.md"]


def test_the_plots_are_byte_identical_when_regenerated(rendered):
    plots = [name for name in rendered["first"] if name.startswith("plots/")]
    assert plots and all(rendered["second"][name] == rendered["first"][name] for name in plots)


def test_the_report_never_writes_the_measurements(rendered):
    assert {name: rendered["second"][name] for name in rendered["before"]} == rendered["before"]


def test_the_decision_record_states_the_winning_design(results):
    text = render_record(read_results(results), decide(read_results(results)))
    decision = text.split("## The decision", 1)[1].split("## Consequences", 1)[0]
    applied = text.split("## The SQL to apply", 1)[1].split("## The decision", 1)[0]
    assert "**Standardize on vector768 · hnsw(ef_construction=64,m=16) · ef_search=100" in decision
    assert "text-embedding-3-small at 768 dimensions" in decision
    assert f"iterative_scan = '{WINNER['iterative_scan']}'" in applied
    assert "create index concurrently" in applied
    assert "filter_workspace_ids" in applied  # the winner is rls_filter: the app passes the filter


def test_the_first_screen_answers_what_to_deploy_and_links_every_section(results):
    from dimbench.report.first_screen import FIRST_SCREEN_LINES, slug

    text = render_record(read_results(results), decide(read_results(results)))
    lines = text.splitlines()
    first = lines[4 : 4 + FIRST_SCREEN_LINES]  # after the title and the provenance line
    screen = "\n".join(first)
    assert first[0] == "## The answer"
    assert "**Deploy: vector768 · hnsw(ef_construction=64,m=16) · ef_search=100" in screen
    for words in (
        "Model and dimension",
        "Column type",
        "Index:",
        "RLS design",
        "Size it holds to",
        "Confidence, recall",
        "Confidence, latency",
        "Confidence, ties",
    ):
        assert words in screen
    headings = {slug(line) for line in lines if line.startswith("## ")}
    linked = [part.split("](#", 1)[1].split(")", 1)[0] for part in screen.split("[")[1:] if "](#" in part]
    assert linked and all(anchor in headings for anchor in linked)


def test_the_decision_record_has_every_section(results):
    text = render_record(read_results(results), decide(read_results(results)))
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## The answer",
        "## The SQL to apply",
        "## The decision",
        "## Sensitivity of the quality assumption",
        "## Migration, per option",
        "## The table",
        "## The rule",
        "## Consequences",
        "## Sizing: what to provision",
        "## Measured vs assumed",
        "## Context",
        "## Options",
        "## Defects found in the seed",
    ]
    assert "(workspace_id, embedding_768) using ivfflat` **cannot be built**" in text


def test_the_decision_record_gives_intervals_and_query_counts_for_the_choice(results):
    text = render_record(read_results(results), decide(read_results(results)))
    decision = text.split("## The decision", 1)[1].split("## Consequences", 1)[0]
    assert "confirmation stage, run `20260102T030405Z-f1x7u4e0`" in decision
    assert "over 300 queries (at least 300 queries in every cell)" in decision
    measured = next(line for line in decision.splitlines() if line.startswith("- Measured"))
    assert measured.count(" [") >= 2  # the recall interval and the p95 interval


def test_the_table_is_the_confirmation_stage_with_its_intervals(results):
    text = render_record(read_results(results), decide(read_results(results)))
    table = text.split("## The table", 1)[1].split("## The rule", 1)[0]
    assert "Confirmation stage of run `20260102T030405Z-f1x7u4e0`: the 5 leading configurations" in table
    winner = next(line for line in table.splitlines() if "**chosen**" in line)
    assert "(300)" in winner and "rls_filter" in winner


def test_several_runs_are_each_decided_and_their_agreement_stated(tmp_path):
    directory = write_results(tmp_path / "two")
    data = json.loads((directory / "run.json").read_text())
    second = dict(data["runs"][0], run_id="second-run")
    data["runs"].append(second)
    (directory / "run.json").write_text(json.dumps(data))
    rows = (directory / "measurements.jsonl").read_text().splitlines()
    twins = [json.dumps(dict(json.loads(line), run_id="second-run")) for line in rows]
    (directory / "measurements.jsonl").write_text("\n".join(rows + twins) + "\n")
    text = decision_record.write(read_results(directory), directory / "DECISION.md").read_text()
    assert "## Stability across runs" in text
    assert "**All 2 runs choose vector768 · hnsw(ef_construction=64,m=16) · ef_search=100" in text
    assert "Measured in 2 runs of the same grid and corpus" in text


def test_nothing_meeting_the_target_is_said_plainly_with_the_closest(results):
    data = read_results(results)
    text = render_record(data, decide(data, recall_target=1.01))
    assert "**No configuration is confirmed to reach recall@10 1.01 (at the lower bound" in text
    assert "The closest is " in text
    assert "Recommended index" not in text


def test_a_run_without_corpus_statistics_or_calibration_still_renders(tmp_path):
    directory = write_results(tmp_path / "bare", with_statistics=False)
    data = json.loads((directory / "run.json").read_text())
    data["runs"][0]["corpus"]["calibration"] = None
    (directory / "run.json").write_text(json.dumps(data))
    text = decision_record.write(read_results(directory), directory / "DECISION.md").read_text()
    assert "not recorded in run.json" in text
    assert "not measured in this run" in text
