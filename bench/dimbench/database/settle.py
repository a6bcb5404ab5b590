"""Measure a settled database: VACUUM (ANALYZE) after a load, and notice maintenance during a cell.

A freshly loaded table has no hint bits set, no visibility map and stale statistics; the first queries
pay for all three and autovacuum soon starts competing with them. A live system finished that work long
ago, so the study vacuums the loaded tables before any index build or measurement, and flags a cell
during which autovacuum/autoanalyze (or a manual VACUUM/ANALYZE) worked on the study's tables.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql

from dimbench.database.inventory import TABLES

# Maintenance in progress on a study table or its TOAST table, and how many finished so far. The study's
# tables: the harmonized schema's, and every table a design made in its own schema (`dimbench_<name>`:
# copies and partitions are freshly written, so autovacuum's insert threshold soon starts on them).
ACTIVE = r"""
select count(*) from (
  select relid from pg_stat_progress_vacuum union all select relid from pg_stat_progress_analyze
) p
join pg_class c on c.oid = p.relid or c.reltoastrelid = p.relid
join pg_namespace n on n.oid = c.relnamespace
where (n.nspname = 'public' and c.relname = any(%s)) or n.nspname like 'dimbench\_%%'
"""
FINISHED = r"""
select coalesce(sum(vacuum_count + autovacuum_count + analyze_count + autoanalyze_count), 0)::bigint
from pg_stat_all_tables where (schemaname = 'public' and relname = any(%s)) or schemaname like 'dimbench\_%%'
"""


def vacuum_analyze(conn: psycopg.Connection) -> dict[str, Any]:
    """VACUUM (ANALYZE) every study table (needs autocommit); returns what run.json records."""
    start = time.perf_counter()
    for table in TABLES:
        conn.execute(sql.SQL("vacuum (analyze) {}").format(sql.Identifier("public", table)))
    return {"vacuum_analyze": list(TABLES), "seconds": round(time.perf_counter() - start, 2)}


def maintenance_running(conn: psycopg.Connection) -> bool:
    """Is a vacuum or analyze working on a study table (or its TOAST table) right now?"""
    row = conn.execute(ACTIVE, (list(TABLES),)).fetchone()
    return bool(row and row[0])


def wait_quiet(conn: psycopg.Connection, timeout_s: float = 300.0, poll_s: float = 0.5) -> float:
    """Wait until no vacuum or analyze runs on the study's tables (autovacuum may start on rows a step
    just wrote); returns the seconds waited. After `timeout_s` it returns anyway: the measurement's
    MaintenanceWatch then flags what overlapped."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if not maintenance_running(conn):
            break
        time.sleep(poll_s)
    return time.perf_counter() - start


class MaintenanceWatch:
    """Was maintenance running on the study's tables at any point of a cell? (start, end, or in between)"""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.seen_active = False
        self.finished_before = 0

    def _finished(self) -> int:
        row = self.conn.execute(FINISHED, (list(TABLES),)).fetchone()
        return int(row[0]) if row else 0

    def __enter__(self) -> MaintenanceWatch:
        self.seen_active = maintenance_running(self.conn)
        self.finished_before = self._finished()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.seen_active = (
                self.seen_active or maintenance_running(self.conn) or self._finished() != self.finished_before
            )

    @property
    def flagged(self) -> bool:
        return self.seen_active
