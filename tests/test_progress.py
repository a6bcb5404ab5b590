"""Progress of long work: index builds are watched through pg_stat_progress_create_index from a second
connection; bars only on a terminal, one plain line otherwise, nothing with --no-progress."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable

import psycopg
import pytest

from dimbench import progress
from dimbench.database import db

BUILD = (
    "create index scratch_hnsw on scratch using hnsw (v vector_l2_ops) with (m = 16, ef_construction = 64)"
)


@pytest.fixture(scope="module")
def scratch(new_database: Callable[[str], str]) -> str:
    """A table whose hnsw build lasts a few seconds: long enough to be seen in progress."""
    dsn = new_database("progress")
    with db.connect(dsn) as conn:
        conn.execute("create extension if not exists vector")
        conn.execute("create table scratch (id int, v vector(64))")
        conn.execute(
            "insert into scratch select i, (select array_agg(random())::vector(64)"
            " from generate_series(1, 64) where i > 0) from generate_series(1, 10000) i"
        )
    return dsn


def build(conn: psycopg.Connection) -> None:
    conn.execute("drop index if exists scratch_hnsw")
    conn.execute(BUILD)


def test_a_running_build_is_seen_from_a_second_connection(scratch):
    seen: list[tuple] = []
    with db.connect(scratch) as builder, db.connect(scratch) as watcher:
        pid = builder.info.backend_pid
        assert progress.read_progress(watcher, pid) is None  # nothing running yet
        worker = threading.Thread(target=build, args=(builder,))
        worker.start()
        while worker.is_alive():
            state = progress.read_progress(watcher, pid)
            if state is not None:
                seen.append(state)
            worker.join(0.05)
    assert seen, "the build never showed up in pg_stat_progress_create_index"
    phases = {phase for phase, *_ in seen}
    assert any(p.startswith("building index") for p in phases), phases
    assert any(total > 0 and 0 <= done <= total for _, _, done, total, _ in seen)


def test_on_a_terminal_a_bar_follows_the_phases(scratch, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.setattr(progress, "POLL_SECONDS", 0.05)
    with db.connect(scratch) as conn, progress.index_build(conn, "scratch hnsw", progress=True):
        build(conn)
    assert "scratch hnsw: building index" in screen.getvalue()
    assert " blocks" in screen.getvalue() or " tuples" in screen.getvalue()


def test_without_a_terminal_a_build_says_one_line_and_draws_no_bar(scratch, capfd):
    with db.connect(scratch) as conn, progress.index_build(conn, "scratch hnsw", progress=True):
        build(conn)
    err = capfd.readouterr().err
    assert err == "scratch hnsw: building (no terminal: no progress bar)\n"


def test_no_progress_prints_nothing(scratch, capfd):
    with db.connect(scratch) as conn, progress.index_build(conn, "scratch hnsw", progress=False):
        build(conn)
    assert capfd.readouterr() == ("", "")


def test_bars_are_off_without_a_terminal_even_when_asked_for(capfd):
    with progress.bar(total=3, desc="work", progress=True) as shown:
        shown.update(3)
    assert capfd.readouterr().err == ""


def test_the_watchers_connection_has_what_the_builders_had(scratch):
    with db.connect(scratch) as conn:
        second = psycopg.connect(progress.conninfo(conn), autocommit=True)
        with second:
            assert second.info.dbname == conn.info.dbname and second.info.host == conn.info.host
