"""The live stage of `dimbench run`: a grid with a [live] section gets live.json in its run directory
(the decided designs and shared), the record gains "Under live traffic", and a rerun keeps the finished
live.json. Seconds-long phases on the tiny corpus (a test of the mechanism, not a measurement)."""

from __future__ import annotations

import json

import pytest

from dimbench.paths import repo_root
from tests.cli_helpers import assert_one_line_error, run_cli


def live_grid(where, old: str = "", new: str = ""):
    """live-tiny's grid (its designs and its [live] section) as profile live-run, one text changed."""
    text = (repo_root() / "bench" / "grids" / "live-tiny.toml").read_text()
    grid = where / "live-run.toml"
    grid.write_text(text.replace('profile = "live-tiny"', 'profile = "live-run"').replace(old, new))
    return grid


@pytest.fixture(scope="module")
def live_run(new_database, tmp_path_factory):
    """`dimbench run` of a grid copied from live-tiny (its designs and its [live] section)."""
    where = tmp_path_factory.mktemp("live-run")
    grid = live_grid(where)
    dsn, out = new_database("liverun"), where / "out"
    args = ("run", "--profile", str(grid), "--dsn", dsn, "--out", str(out), "--no-progress")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    live = json.loads((out / "live.json").read_text())
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    published = where / "published"
    done = run_cli("publish", str(out), "--to", str(published))
    assert done.returncode == 0, done.stderr
    return {
        "out": out,
        "live": live,
        "again": json.loads((out / "live.json").read_text()),
        "published": published,
    }


def test_run_writes_live_json_for_the_decided_designs_and_shared(live_run):
    live = live_run["live"]
    assert live["status"] == "done" and live["corpus_check"]["unchanged"]
    assert "shared" in live["designs"]
    assert all(e["status"] == "done" and "verdict" in e for e in live["designs"].values())


def test_the_record_has_the_section_under_live_traffic(live_run):
    record = (live_run["out"] / "DECISION.md").read_text()
    assert "## Under live traffic" in record
    assert "**shared** —" in record


def test_a_rerun_keeps_the_finished_live_stage(live_run):
    assert live_run["again"]["started_at"] == live_run["live"]["started_at"]


def test_publish_carries_live_json_and_its_section(live_run):
    published = live_run["published"]
    assert json.loads((published / "live.json").read_text()) == live_run["again"]
    assert "## Under live traffic" in (published / "DECISION.md").read_text()


def test_an_impossible_live_section_is_one_line_before_anything_runs(tmp_path):
    # the [live] stage asks for an ivfflat build the grid does not make
    grid = live_grid(tmp_path, 'index = "hnsw"\naccess', 'index = "ivfflat"\naccess')
    out = tmp_path / "out"
    result = run_cli("run", "--profile", str(grid), "--dsn", "postgresql:///nowhere", "--out", str(out))
    assert_one_line_error(result, "[live]", "ivfflat")
    assert not out.exists()


def test_live_off_skips_the_stage_and_the_record_says_nothing_of_it(new_database, tmp_path):
    grid, out = live_grid(tmp_path), tmp_path / "out"
    args = ("run", "--profile", str(grid), "--dsn", new_database("liveoff"), "--out", str(out))
    result = run_cli(*args, "--live", "off", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert not (out / "live.json").exists()
    assert "Under live traffic" not in (out / "DECISION.md").read_text()
