"""The asv suites clean up after themselves: a benchmark process stops the embedded server it started, so
no PostgreSQL a suite started outlives `asv run` (asv has no hook after its last benchmark)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dimbench.database import db
from dimbench.paths import repo_root

# One benchmark as asv runs it: setup_cache in one process, then setup / the benchmark / teardown in
# another — each its own interpreter.
CACHE = """
import pickle, sys
from bench.suites import search
pickle.dump(search.Search().setup_cache(), open(sys.argv[1], "wb"))
"""
BENCHMARK = """
import pickle, sys
from bench.suites import search
cache = pickle.load(open(sys.argv[1], "rb"))
s = search.Search()
s.setup(cache, "hnsw", "vector768", "rls")
recall = s.track_recall(cache, "hnsw", "vector768", "rls")
s.teardown(cache, "hnsw", "vector768", "rls")
assert 0 <= recall <= 1
"""


def run(code: str, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=repo_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr


def test_no_server_a_suite_started_outlives_its_benchmark_processes(tmp_path: Path):
    env = {**os.environ, "DIMBENCH_HOME": str(tmp_path / "home"), "DIMBENCH_ASV_CORPUS": "tiny"}
    env.pop("DIMBENCH_ASV_DSN", None)
    server = db.EmbeddedServer(tmp_path / "home" / "asv" / "pgdata")
    run(CACHE, env, str(tmp_path / "cache.pickle"))
    assert not server.running()  # setup_cache stopped what it started
    run(BENCHMARK, env, str(tmp_path / "cache.pickle"))
    assert not server.running()  # and so did the benchmark's own process


def test_a_server_the_user_named_is_used_and_left_running(tmp_path: Path, pg_server: db.EmbeddedServer):
    env = {**os.environ, "DIMBENCH_HOME": str(tmp_path / "home"), "DIMBENCH_ASV_CORPUS": "tiny"}
    env["DIMBENCH_ASV_DSN"] = pg_server.dsn
    run(CACHE, env, str(tmp_path / "cache.pickle"))
    assert pg_server.running()
    assert not (tmp_path / "home" / "asv" / "pgdata").exists()  # no embedded server of its own
