"""The record's race section: every dropped configuration counted under why it went."""

from __future__ import annotations

from types import SimpleNamespace

from dimbench.report.race_text import race_lines


def drop(label: str, access: str, why: str, interval: list[float], reference=None) -> dict:
    return {
        "label": label,
        "design": "shared",
        "access": access,
        "why": why,
        "cell": "all/tiny",
        "interval": interval,
        "reference": reference,
        "reference_label": "twin" if why == "twin" else None,
        "round": 1,
        "queries": 5,
    }


def table_row(drops: list[dict]) -> str:
    results = SimpleNamespace(run={"race": {"rounds": 4, "dropped": {d["label"]: d for d in drops}}})
    (line,) = [line for line in race_lines(results) if line.startswith("| shared |")]
    return line


def test_a_drop_with_its_twin_is_counted_in_its_own_column():
    line = table_row(
        [
            drop("a · rls", "rls", "latency", [9.0, 12.0], [1.8, 2.2]),
            drop("a · rls_seed", "rls_seed", "twin", [1.9, 2.1]),
        ]
    )
    assert line.split(" | ")[1:5] == ["0", "0", "1", "1"]


def test_the_closest_call_is_a_drop_on_its_own_interval_never_a_twin():
    """The twin's own p95 ties with the best (it would be the 'closest'), but it was not excluded by it."""
    line = table_row(
        [
            drop("a · rls", "rls", "latency", [9.0, 12.0], [1.8, 2.2]),
            drop("a · rls_seed", "rls_seed", "twin", [1.9, 2.1]),
        ]
    )
    assert "a · rls: all/tiny 9.000" in line


def test_a_design_whose_drops_all_followed_twins_has_no_closest_call():
    line = table_row([drop("a · rls_docs", "rls_docs", "twin", [1.9, 2.1])])
    assert line == "| shared | 0 | 0 | 0 | 1 | — |"
