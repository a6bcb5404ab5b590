"""One small interface per index kind: build (timed, sized), drop, and the session's query settings.

All study indexes are named dimbench_<column type>_*; during a sweep exactly one exists over the swept
column type's expression, so the planner cannot pick another (indexes over other column types'
expressions cannot serve its queries). halfvec1536 indexes the expression match_document_chunks orders
by when half_precision is on.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from dimbench.errors import DimbenchError
from dimbench.progress import index_build as watch_build
from dimbench.study.configs import Build
from dimbench.vocabulary import COLUMN_TYPES, PGVECTOR_DEFAULTS, QUERY_GUC


@dataclass
class BuildResult:
    build_key: str
    column_type: str
    dim: int
    index: str
    build_params: dict[str, Any]
    seconds: float
    index_bytes: int
    table_bytes: int
    rows: int
    maintenance_work_mem: str
    max_parallel_maintenance_workers: int
    # built as a team applies it to a live table (create index concurrently: no write lock, two table
    # scans and a validation pass), so `seconds` is the migration's build time; None: not an index
    concurrently: bool | None = None


def index_name(build: Build) -> str:
    suffix = "_".join(f"{k}{v}" for k, v in sorted(build.params.items()))
    return f"dimbench_{build.column_type}_{build.index}" + (f"_{suffix}" if suffix else "")


def _study_index_rows(conn: psycopg.Connection) -> list[tuple[str, bool]]:
    """(name, valid) of every study index on document_chunks: dimbench_<column type>_* (a design's
    indexes are dimbench_<design>_* and belong to the design, which removes them)."""
    prefixes = [f"dimbench_{column_type}_" for column_type in COLUMN_TYPES]
    return conn.execute(
        "select c.relname, i.indisvalid from pg_index i join pg_class c on c.oid = i.indexrelid"
        " where i.indrelid = 'public.document_chunks'::regclass"
        " and exists (select from unnest(%s::text[]) p where starts_with(c.relname, p))",
        (prefixes,),
    ).fetchall()


def study_indexes(conn: psycopg.Connection) -> set[str]:
    """The valid dimbench_* indexes on document_chunks (an interrupted build may leave an invalid one)."""
    return {name for name, valid in _study_index_rows(conn) if valid}


def drop_study_indexes(
    conn: psycopg.Connection, *, column_type: str | None = None, keep: Collection[str] = ()
) -> None:
    """Drop the study's indexes (valid or not): all of them, or those over one column type's expression,
    except `keep`.

    Indexes over another column type's expression cannot serve a query, so they may stay: that is what
    lets confirmation reuse screening's last build of each column instead of building it again.
    """
    prefix = f"dimbench_{column_type}_" if column_type else "dimbench_"
    for name, _ in _study_index_rows(conn):
        if name.startswith(prefix) and name not in keep:
            conn.execute(sql.SQL("drop index if exists {}").format(sql.Identifier("public", name)))


def build(conn: psycopg.Connection, build: Build, *, progress: bool = False) -> BuildResult:
    """Build the study index of `build` (none for exact), ANALYZE, and measure time and sizes.

    progress: a bar from pg_stat_progress_create_index on a terminal, else one line on stderr.
    """
    if build.index == "hnsw":
        size_maintenance_memory(conn, build)
    settings = conn.execute(
        "select current_setting('maintenance_work_mem'),"
        " current_setting('max_parallel_maintenance_workers')::int,"
        " (select count(*) from public.document_chunks)"
    ).fetchone()
    assert settings is not None
    seconds, index_bytes = 0.0, 0
    if build.index != "exact":
        name = index_name(build)
        # concurrently, as the migration would (the connection is autocommit): its seconds are what a
        # team's `create index concurrently` costs on this corpus
        statement = create_statement(build, name, concurrently=True)
        start = time.perf_counter_ns()
        try:
            with watch_build(conn, f"index {build.key}", progress=progress):
                conn.execute(statement)
        except psycopg.Error as exc:
            raise DimbenchError(f"building {build.key} failed: {exc.diag.message_primary or exc}") from exc
        seconds = (time.perf_counter_ns() - start) / 1e9
        index_bytes = conn.execute("select pg_relation_size(%s::regclass)", (f"public.{name}",)).fetchone()[0]
    conn.execute("analyze public.document_chunks")
    table_bytes = conn.execute("select pg_table_size('public.document_chunks')").fetchone()[0]
    return BuildResult(
        build.key,
        build.column_type,
        build.dim,
        build.index,
        dict(sorted(build.params.items())),
        round(seconds, 3),
        int(index_bytes),
        int(table_bytes),
        int(settings[2]),
        settings[0],
        int(settings[1]),
        True if build.index != "exact" else None,
    )


def create_statement(build: Build, name: str, *, concurrently: bool = False) -> sql.Composed:
    """The build's index under `name` (concurrently: as a team applies it to a live table)."""
    return sql.SQL("create index {}{} on public.document_chunks using {} ({} {}) with ({})").format(
        sql.SQL("concurrently ") if concurrently else sql.SQL(""),
        sql.Identifier(name),
        sql.SQL(build.index),
        build.expression(),
        build.opclass(),
        sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.SQL(k), sql.Literal(int(v)))
            for k, v in sorted(build.params.items())
        ),
    )


def graph_bytes(build: Build, rows: int) -> int:
    """About what pgvector's hnsw build holds in memory: each element's vector and its neighbour lists
    (2·m at layer 0, a little above), plus per-tuple overhead; 20 % margin."""
    vector_bytes = build.dim * (2 if build.vector_type == "halfvec" else 4) + 8
    m = int(build.params.get("m", 16))
    return int(rows * (vector_bytes + 16 * m + 200) * 1.2)


def size_maintenance_memory(conn: psycopg.Connection, build: Build) -> None:
    """maintenance_work_mem large enough for the graph (pgvector builds far faster when it fits), never
    below the server's setting, never above 40 % of this machine's memory (the server needs the rest)."""
    import os

    row = conn.execute(
        "select pg_size_bytes(current_setting('maintenance_work_mem')), count(*) from public.document_chunks"
    ).fetchone()
    assert row is not None
    current, rows = int(row[0]), int(row[1])
    try:
        ceiling = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.4)
    except (ValueError, OSError):
        ceiling = current
    wanted = min(max(graph_bytes(build, rows), current), max(ceiling, current))
    mb = -(-wanted // (1024 * 1024))
    conn.execute("select set_config('maintenance_work_mem', %s, false)", (f"{mb}MB",))


def query_settings(
    conn: psycopg.Connection, build: Build, params: dict[str, Any], iterative_scan: str
) -> dict[str, str]:
    """Session settings for one point of the sweep; everything else back at pgvector's defaults."""
    applied = dict(PGVECTOR_DEFAULTS)
    for key, value in params.items():
        applied[QUERY_GUC[key]] = str(value)
    if build.index in ("hnsw", "ivfflat"):
        applied[f"{build.index}.iterative_scan"] = iterative_scan
    for name, value in applied.items():
        conn.execute("select set_config(%s, %s, false)", (name, value))
    return {k: v for k, v in applied.items() if k.startswith(build.index)} if build.index != "exact" else {}
