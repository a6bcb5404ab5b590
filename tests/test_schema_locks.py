"""Migrations wait behind traffic instead of stalling it. A migration whose lock another session holds
gives up after its lock_timeout, is retried, and is refused in one line; the requests queued behind it
meanwhile wait no longer than that timeout; once the lock is free the apply goes through."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from dimbench.database import db, schema
from dimbench.errors import DimbenchError

LOCK_TIMEOUT_S = 3.0  # what the transactional files of schema/ set: `set local lock_timeout = '3s'`
# Enables RLS and re-creates the policies of all six tables: ACCESS EXCLUSIVE on each, in turn.
RLS = "0007_row_level_security.sql"
SLACK_S = 1.0  # a loaded 2-core machine: scheduling, connection set-up, the pause's own jitter


def count(table: str) -> sql.Composed:
    return sql.SQL("select count(*) from {}").format(sql.Identifier("public", table))


class Probe:
    """Another session's simple selects, back to back, timed: how long traffic waited behind the migration."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with db.connect(self.dsn) as conn:
            conn.execute("set statement_timeout = '30s'")  # never hang the suite, whatever breaks
            while not self._stop.is_set():
                # workspaces: locked by the migration while it waits for document_chunks;
                # document_chunks: its lock request is queued ahead of ours.
                for table in ("workspaces", "document_chunks"):
                    started = time.perf_counter()
                    conn.execute(count(table))
                    self.latencies.append(time.perf_counter() - started)
                time.sleep(0.02)

    @property
    def longest(self) -> float:
        return max(self.latencies)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@contextmanager
def holder(dsn: str, table: str, release_after_s: float) -> Iterator[psycopg.Connection]:
    """An open transaction that has read `table` (ACCESS SHARE until it ends), ended after a while."""
    with db.connect(dsn) as conn:
        conn.execute("begin")
        conn.execute(count(table))
        timer = threading.Timer(release_after_s, conn.execute, ("rollback",))
        timer.start()
        try:
            yield conn
        finally:
            timer.cancel()
            timer.join()
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("rollback")


def forget(dsn: str, name: str) -> None:
    """Take a migration out of the ledger, so the next apply runs it again (they are idempotent)."""
    with db.connect(dsn) as conn:
        conn.execute("delete from dimbench.migrations where name = %s", (name,))


def timed_apply(dsn: str, **kwargs) -> tuple[Callable[[], schema.ApplyReport], list[float]]:
    elapsed: list[float] = []

    def run() -> schema.ApplyReport:
        with db.connect(dsn) as conn:
            started = time.perf_counter()
            try:
                return schema.apply(conn, **kwargs)
            finally:
                elapsed.append(time.perf_counter() - started)

    return run, elapsed


def test_a_migration_that_cannot_get_its_lock_gives_up_retries_and_stalls_nobody(fresh_schema_dsn: str):
    forget(fresh_schema_dsn, RLS)
    tries, pause = 2, 0.5
    waits = tries * LOCK_TIMEOUT_S + pause  # pauses: pause * 1 between try 1 and try 2
    apply, elapsed = timed_apply(fresh_schema_dsn, tries=tries, pause_s=pause)
    # The holder ends well after the apply should have given up: a migration without a lock_timeout
    # would wait for it (and so would everything queued behind it), then apply.
    with holder(fresh_schema_dsn, "document_chunks", waits + 5), Probe(fresh_schema_dsn) as probe:
        time.sleep(0.2)  # the probe is running before the migration asks for its locks
        with pytest.raises(DimbenchError) as raised:
            apply()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"migration {RLS} could not get its lock") and f"{tries} tries" in message
    # It waited its lock_timeout on each try (so it did retry), never longer.
    assert tries * LOCK_TIMEOUT_S <= elapsed[0] <= waits + SLACK_S
    # Traffic queued behind it (a probe really waited) for at most one lock_timeout.
    assert 1.0 < probe.longest <= LOCK_TIMEOUT_S + SLACK_S
    with db.connect(fresh_schema_dsn) as conn:
        assert RLS not in schema.applied_checksums(conn)  # it changed nothing


def test_the_retry_goes_through_once_the_lock_is_released(fresh_schema_dsn: str):
    forget(fresh_schema_dsn, RLS)
    release = LOCK_TIMEOUT_S + 2.0  # during the second try
    apply, elapsed = timed_apply(fresh_schema_dsn, tries=3, pause_s=0.5)
    with holder(fresh_schema_dsn, "document_chunks", release), Probe(fresh_schema_dsn) as probe:
        time.sleep(0.2)
        report = apply()
    assert report.applied == [RLS]
    assert release - SLACK_S <= elapsed[0] <= release + SLACK_S  # it gave up once, then got the lock
    assert 1.0 < probe.longest <= LOCK_TIMEOUT_S + SLACK_S
    with db.connect(fresh_schema_dsn) as conn:
        policies = conn.execute("select count(*) from pg_policies where schemaname = 'public'").fetchone()
        assert policies == (24,)


def test_a_no_transaction_migration_that_cannot_get_its_lock_is_retried(new_database: Callable[[str], str]):
    # psql runs it: the lock timeout is told apart from other errors by its SQLSTATE in psql's output.
    dsn = new_database("notx_lock")
    with db.connect(dsn) as conn:
        conn.execute("create table public.t (a int)")
    script = (
        "-- no-transaction\n"
        "set lock_timeout = '200ms';\n"
        "alter table public.t add column if not exists b int;\n"
    )
    migration = schema.Migration("0001_t.sql", script)
    apply, elapsed = timed_apply(dsn, migrations=[migration], tries=3, pause_s=0.1)
    with holder(dsn, "t", 30), pytest.raises(DimbenchError) as raised:
        apply()
    assert str(raised.value).startswith("migration 0001_t.sql could not get its lock")
    assert 3 * 0.2 <= elapsed[0] <= 3 * 0.2 + 0.3 + SLACK_S
