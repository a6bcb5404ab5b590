"""Faults: the server killed with -9 during an index build, the runner killed mid-study. The next
command restarts what it needs and completes with exactly the rows and cells of a clean run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dimbench.corpus.cache import ensure_corpus
from dimbench.database import db
from dimbench.paths import datasets_dir
from dimbench.study.configs import Cell
from dimbench.study.grid import load_grid
from dimbench.study.inputs import study_queries
from dimbench.vocabulary import BUCKETS, cell_key
from tests.cli_helpers import ctrl_c_default

pytestmark = pytest.mark.slow


def run_command(pgdata: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dimbench.cli",
        "run",
        "--profile",
        "smoke",
        "--pgdata",
        str(pgdata),
        "--out",
        str(out),
        "--no-progress",
    ]


def run_info(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())["runs"][0]


def expected_cells(run_id: str) -> set[str]:
    grid = load_grid("smoke")
    queries = study_queries(ensure_corpus(datasets_dir() / "smoke.toml", progress=False, log=lambda *_: None))
    present = {(q.scope, q.bucket) for q in queries}
    keys = set()
    for build, settings in grid.builds():
        for setting in settings:
            for access in grid.access:
                for scope in grid.scopes_for(access):
                    for bucket in BUCKETS:
                        if (scope, bucket) in present:
                            keys.add(Cell(build, setting, access, scope, bucket).key(run_id, "screening"))
    return keys


def measured_cells(out: Path, stage: str = "screening") -> list[str]:
    rows = [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]
    return [cell_key(r) for r in rows if r["stage"] == stage]


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the run to reach the fault point")
        time.sleep(0.05)


def building_an_index(dsn: str) -> bool:
    try:
        with db.connect(dsn) as conn:
            row = conn.execute(
                "select count(*) from pg_stat_activity where state = 'active'"
                " and query ilike 'create index %\"dimbench\\_%'"  # concurrently, as the study builds
            ).fetchone()
            return bool(row and row[0])
    except Exception:  # the database may not exist yet
        return False


def assert_complete(pgdata: Path, out: Path) -> None:
    info = run_info(out)
    cells = measured_cells(out)
    assert len(cells) == len(set(cells)) and set(cells) == expected_cells(info["run_id"])
    # smoke does not race (rounds = 1): every cell was asked all its queries, as before racing existed
    rows = [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]
    asked = {r["n_queries"] for r in rows if r["stage"] == "screening"}
    assert load_grid("smoke").rounds == 1 and asked == {load_grid("smoke").queries_per_cell}
    confirmed = measured_cells(out, "confirmation")
    assert info["confirmation"]["status"] == "done" and confirmed and len(confirmed) == len(set(confirmed))
    assert info["finished_at"]
    smoke = ensure_corpus(datasets_dir() / "smoke.toml", progress=False, log=lambda *_: None)
    with db.connect(db.with_dbname(db.EmbeddedServer(pgdata).dsn, "dimbench")) as conn:
        total, distinct = conn.execute("select count(*), count(distinct id) from document_chunks").fetchone()
        assert total == distinct == smoke.n_chunks
        variants = conn.execute(
            "select count(*) from pg_policies where policyname like '%seed_variant'"
        ).fetchone()
        assert variants == (0,)


def test_kill_9_of_the_server_during_an_index_build_is_survived(tmp_path):
    pgdata, out = tmp_path / "pgdata", tmp_path / "results"
    server = db.EmbeddedServer(pgdata)
    try:
        runner = subprocess.Popen(
            run_command(pgdata, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        study_dsn = db.with_dbname(server.dsn, "dimbench")
        wait_for(lambda: building_an_index(study_dsn))
        os.kill(server.postmaster_pid(), signal.SIGKILL)
        _, stderr = runner.communicate(timeout=120)
        assert runner.returncode != 0
        assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
        again = subprocess.run(run_command(pgdata, out), capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr
        assert_complete(pgdata, out)
    finally:
        server.stop()


def test_a_runner_killed_mid_study_resumes_without_duplicates(tmp_path):
    pgdata, out = tmp_path / "pgdata", tmp_path / "results"
    server = db.EmbeddedServer(pgdata)
    try:
        runner = subprocess.Popen(
            run_command(pgdata, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: (out / "measurements.jsonl").exists() and len(measured_cells(out)) > 0)
        time.sleep(1.0)  # into the next build's sweep
        runner.kill()
        runner.wait(timeout=30)
        partial = measured_cells(out)  # whole lines only: the file is replaced atomically
        assert 0 < len(partial) < len(expected_cells(run_info(out)["run_id"]))
        again = subprocess.run(run_command(pgdata, out), capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr
        assert_complete(pgdata, out)
    finally:
        server.stop()


def test_ctrl_c_during_confirmation_keeps_what_was_measured_and_the_rerun_continues_the_same_run(tmp_path):
    pgdata, out = tmp_path / "pgdata", tmp_path / "results"
    server = db.EmbeddedServer(pgdata)

    def confirming() -> bool:
        try:
            return run_info(out)["confirmation"]["status"] == "running"
        except (OSError, ValueError, KeyError):
            return False

    try:
        runner = subprocess.Popen(
            run_command(pgdata, out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=ctrl_c_default,
        )
        wait_for(confirming, timeout=300)
        runner.send_signal(signal.SIGINT)
        _, stderr = runner.communicate(timeout=120)
        assert (runner.returncode, stderr.strip()) == (130, "dimbench: interrupted")
        interrupted = run_info(out)
        assert interrupted["finished_at"] is None and interrupted["confirmation"]["status"] == "running"
        kept = set(measured_cells(out, "confirmation"))
        again = subprocess.run(run_command(pgdata, out), capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr
        assert run_info(out)["run_id"] == interrupted["run_id"]
        assert f"resuming run {interrupted['run_id']} in {out}" in again.stdout  # and says so
        assert kept <= set(measured_cells(out, "confirmation"))
        assert_complete(pgdata, out)
    finally:
        server.stop()


def test_an_unwritable_results_directory_leaves_earlier_results_intact(tiny_results, tmp_path):
    from tests.cli_helpers import assert_one_line_error, run_cli

    dsn, out = tiny_results
    before = (out / "measurements.jsonl").read_bytes()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the results directory should be")
    assert_one_line_error(
        run_cli("run", "--profile", "tiny", "--dsn", dsn, "--out", str(blocked)), "is not a directory"
    )
    assert (out / "measurements.jsonl").read_bytes() == before
