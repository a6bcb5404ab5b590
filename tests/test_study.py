"""`dimbench run` end to end on the tiny profile, against the session's real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dimbench import db
from dimbench.measure import MEASUREMENT_FIELDS
from tests.cli_helpers import assert_one_line_error, run_cli

CONTRACT = MEASUREMENT_FIELDS


def run_tiny(dsn: str, out: Path, *extra: str):
    return run_cli("run", "--profile", "tiny", "--dsn", dsn, "--out", str(out), "--no-progress", *extra)


@pytest.fixture(scope="module")
def tiny_run(tiny_results: tuple[str, Path]) -> tuple[str, Path]:
    return tiny_results


def lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]


def test_a_run_writes_run_json_and_measurements(tiny_run):
    _, out = tiny_run
    info = json.loads((out / "run.json").read_text())
    assert info["profile"] == "tiny" and info["finished_at"]
    assert info["server"]["postgresql"].startswith("18") and info["server"]["pgvector"] == "0.8.6"
    assert set(info["phases"]) >= {"provision", "load", "study"}
    assert {b["index"] for b in info["builds"]} == {"exact", "ivfflat", "hnsw"}
    assert all(b["index_bytes"] > 0 for b in info["builds"] if b["index"] != "exact")


def test_every_line_carries_the_contract_fields(tiny_run):
    _, out = tiny_run
    rows = lines(out)
    assert rows and all(CONTRACT <= set(row) for row in rows)


def test_every_arm_column_type_and_bucket_is_measured(tiny_run):
    _, out = tiny_run
    rows = lines(out)
    assert {r["access"] for r in rows} == {"service", "rls_seed", "rls", "rls_filter"}
    assert {r["column_type"] for r in rows} == {"vector768", "vector1536", "halfvec1536"}
    assert {r["iterative_scan"] for r in rows} == {"off", "relaxed_order", "strict_order"}
    assert {(r["scope"], r["bucket"]) for r in rows} >= {("all", "large"), ("workspace", "small")}


def test_exact_search_has_recall_one_everywhere(tiny_run):
    _, out = tiny_run
    exact = [r for r in lines(out) if r["index"] == "exact"]
    assert exact and all(r["recall_mean"] == 1.0 and r["short_share"] == 0.0 for r in exact)


def test_unmeasured_concurrency_is_null_not_zero(tiny_run):
    _, out = tiny_run
    qps = [r["qps"] for r in lines(out)]
    assert all(q["1"] > 0 for q in qps)
    assert any(q["2"] is None for q in qps) and any(q["2"] and q["2"] > 0 for q in qps)


def test_raw_per_query_results_are_kept(tiny_run):
    _, out = tiny_run
    assert len(list((out / "raw").glob("*.npz"))) == 9


def test_a_rerun_resumes_and_measures_nothing_again(tiny_run):
    dsn, out = tiny_run
    before = (out / "measurements.jsonl").read_bytes()
    result = run_tiny(dsn, out)
    assert result.returncode == 0, result.stderr
    assert (out / "measurements.jsonl").read_bytes() == before


def test_a_run_with_rls_switched_off_fails_loudly(tiny_run, tmp_path):
    dsn, _ = tiny_run
    with db.connect(dsn) as conn:
        conn.execute("alter table document_chunks disable row level security")
    try:
        result = run_tiny(dsn, tmp_path / "broken")
    finally:
        with db.connect(dsn) as conn:
            conn.execute("alter table document_chunks enable row level security")
    assert_one_line_error(result, "isolation breach", "canary")


def test_an_unknown_profile_is_one_line():
    assert_one_line_error(run_cli("run", "--profile", "huge"), "unknown profile 'huge'")


def test_an_unwritable_results_directory_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert_one_line_error(
        run_cli("run", "--profile", "tiny", "--out", str(blocker / "results")), "cannot write results"
    )


def test_python_dash_m_dimbench_is_the_quick_start_command():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "dimbench", "run", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "--profile" in done.stdout
