"""The published results are reproducible: regenerating the report from the committed measurements
gives the committed DECISION.md byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dimbench.paths import published_dir
from dimbench.report import render

PUBLISHED = published_dir("small")
# An installed wheel or a checkout without results/ has nothing to check: skip, do not error.
needs_published = pytest.mark.skipif(
    not all((PUBLISHED / name).exists() for name in ("run.json", "measurements.jsonl", "DECISION.md")),
    reason="no published results in this checkout",
)


@needs_published
def test_regenerating_the_published_report_reproduces_decision_md(tmp_path: Path):
    copy = tmp_path / "small"
    copy.mkdir()
    for name in ("run.json", "measurements.jsonl", "sensitivity.json", "live.json"):  # last two: when there
        if name == "run.json" or (PUBLISHED / name).exists():
            shutil.copy(PUBLISHED / name, copy / name)
    render(copy)
    assert (copy / "DECISION.md").read_bytes() == (PUBLISHED / "DECISION.md").read_bytes()


@needs_published
def test_the_published_run_is_the_default_profile_and_covers_every_bucket():
    import json

    from dimbench.vocabulary import ACCESS_ARMS

    rows = [json.loads(line) for line in (PUBLISHED / "measurements.jsonl").read_text().splitlines()]
    assert json.loads((PUBLISHED / "run.json").read_text())["profile"] == "small"
    assert {r["bucket"] for r in rows} == {"tiny", "small", "medium", "large"}
    assert {r["access"] for r in rows} == set(ACCESS_ARMS)
