"""DECISION.md's "On real data": rendered from a real record beside it, absent without one."""

from __future__ import annotations

from dimbench.evidence.results import read_results
from dimbench.evidence.rule import decide
from dimbench.report.decision_record import render
from tests.results_fixture import write_results


def test_on_real_data_renders_from_a_real_record(tmp_path):
    synthetic = read_results(write_results(tmp_path / "small", "small"))
    real = read_results(write_results(tmp_path / "real", "real", seed=1))
    text = render(synthetic, decide(synthetic), real_results=real)
    section = text.split("## On real data", 1)[1].split("\n## ", 1)[0]
    assert "The rule's choice" in section
    assert "| pgvector defaults |" in section
    assert "one model's geometry padded" in section


def test_on_real_data_is_absent_without_a_real_record(tmp_path):
    synthetic = read_results(write_results(tmp_path / "small", "small"))
    assert "## On real data" not in render(synthetic, decide(synthetic))
