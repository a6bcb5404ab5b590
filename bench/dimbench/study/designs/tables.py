"""A design's own copy of the chunks: `dimbench_<name>.document_chunks`, under the harmonized schema's RLS.

The copy keeps public.document_chunks's key (workspace_id, id) and its select policy, read back from
pg_policies fully qualified, so an authenticated caller sees exactly the rows it sees in public. It is
read-only: select for authenticated and service_role, nothing else for anyone. The rows come from
public.document_chunks by insert … select; the copy is analyzed once its index is built, and vacuumed
once the install has committed (`settle`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from dimbench.study.configs import Build
from dimbench.study.designs import base

TABLE = "document_chunks"
SELECT_POLICY = "document_chunks_select"
API_ROLES = sql.SQL("public, anon, authenticated, service_role")

# The columns every copy has besides its vectors, as in public.document_chunks (same sizes per row).
KEY_COLUMNS = (
    sql.SQL("id uuid not null"),
    sql.SQL("workspace_id uuid not null"),
    sql.SQL("document_id uuid not null"),
    sql.SQL("chunk_index integer not null"),
    sql.SQL("content text not null"),
)
KEY_SOURCES = ("id", "workspace_id", "document_id", "chunk_index", "content")

SEARCH = """
begin
{prologue}
  return query
    select s.id, s.workspace_id, s.document_id, s.content, 1 - s.distance
    from (
      select c.id, c.workspace_id, c.document_id, c.content, {distance} as distance
      from {table} c
      where filter_workspace_ids is null or c.workspace_id = any (filter_workspace_ids)
      order by {distance}
      limit match_count
    ) s
    order by s.distance;
end
"""


def table_of(name: str) -> sql.Identifier:
    return sql.Identifier(base.schema_of(name), TABLE)


def create_table(
    conn: psycopg.Connection, name: str, columns: Sequence[sql.Composable], tail: sql.Composable
) -> sql.Identifier:
    """create table dimbench_<name>.document_chunks (key columns, `columns`, primary key) `tail`."""
    table = table_of(name)
    conn.execute(
        sql.SQL("create table {} ({}, constraint {} primary key (workspace_id, id)) {}").format(
            table,
            sql.SQL(", ").join([*KEY_COLUMNS, *columns]),
            sql.Identifier(f"{TABLE}_pk"),
            tail,
        )
    )
    return table


def secure(
    conn: psycopg.Connection, table: sql.Identifier, qual: str, parts: Sequence[sql.Identifier] = ()
) -> None:
    """RLS with public's select policy, select for authenticated and service_role only.

    Partitions (`parts`) get RLS and no privileges: reached through the parent only its policy applies,
    and nobody may read a partition directly.
    """
    conn.execute(sql.SQL("alter table {} enable row level security").format(table))
    # The text comes from pg_policies (the server's rendering of our own migration), not from a user.
    conn.execute(
        sql.SQL("create policy {} on {} for select to authenticated using ({})").format(
            sql.Identifier(SELECT_POLICY), table, sql.SQL(qual)
        )
    )
    for relation in (table, *parts):
        conn.execute(sql.SQL("revoke all on table {} from {}").format(relation, API_ROLES))
    conn.execute(sql.SQL("grant select on table {} to authenticated, service_role").format(table))
    for part in parts:
        conn.execute(sql.SQL("alter table {} enable row level security").format(part))


def copy_rows(
    conn: psycopg.Connection, table: sql.Identifier, columns: Sequence[str], sources: Sequence[sql.Composable]
) -> int:
    """insert … select every chunk of public.document_chunks (key columns, plus `columns` from `sources`
    over alias c). Returns the rows copied."""
    targets = [sql.Identifier(c) for c in (*KEY_SOURCES, *columns)]
    values = [sql.Identifier("c", c) for c in KEY_SOURCES] + list(sources)
    cursor = conn.execute(
        sql.SQL("insert into {} ({}) select {} from public.document_chunks c").format(
            table, sql.SQL(", ").join(targets), sql.SQL(", ").join(values)
        )
    )
    return cursor.rowcount


def mirror(
    conn: psycopg.Connection, name: str, columns: Sequence[str], sources: Sequence[sql.Composable]
) -> None:
    """The copy brought in line with public.document_chunks: rows gone from public deleted, rows new
    there inserted (`columns` from `sources`, as copy_rows), into the copy's index as any insert is; then
    settled. Needs autocommit (the VACUUM)."""
    table = table_of(name)
    targets = [sql.Identifier(c) for c in (*KEY_SOURCES, *columns)]
    values = [sql.Identifier("c", c) for c in KEY_SOURCES] + list(sources)
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "delete from {} x where not exists (select from public.document_chunks c where c.id = x.id)"
            ).format(table)
        )
        conn.execute(
            sql.SQL(
                "insert into {} ({}) select {} from public.document_chunks c"
                " where not exists (select from {} x where x.id = c.id)"
            ).format(table, sql.SQL(", ").join(targets), sql.SQL(", ").join(values), table)
        )
    settle(conn, name)


def finish(conn: psycopg.Connection, name: str, build: Build, distance: sql.Composable) -> None:
    """ANALYZE the copy (after its index: an expression index has statistics too) and create the
    design's match_document_chunks over it: public's query, same filter, same shape."""
    conn.execute(sql.SQL("analyze {}").format(table_of(name)))
    body = sql.SQL(SEARCH).format(prologue=base.prologue(build), distance=distance, table=table_of(name))
    base.define_search(conn, name, body)


def settle(conn: psycopg.Connection, name: str) -> None:
    """VACUUM (ANALYZE) the copy once its install committed (needs autocommit), as the study does after a
    load: freshly written rows have no hint bits or visibility map, and autovacuum's insert threshold
    would otherwise start on them during the measurements. Partitions are vacuumed with their parent."""
    conn.execute(sql.SQL("vacuum (analyze) {}").format(table_of(name)))


def vector_index(
    conn: psycopg.Connection, table: sql.Identifier, name: str, build: Build, column: sql.Composable
) -> None:
    """The build's vector index on a design's table (none for exact): on a partitioned parent,
    PostgreSQL builds one per partition."""
    if build.index == "exact":
        return
    conn.execute(
        sql.SQL("create index {} on {} using {} ({} {}) {}").format(
            sql.Identifier(name),
            table,
            sql.SQL(build.index),
            column,
            build.opclass(),
            with_options(build.params),
        )
    )


def with_options(params: dict[str, Any]) -> sql.Composable:
    """`with (k = v, …)` of an index build's integer arguments (nothing for none)."""
    if not params:
        return sql.SQL("")
    options = [sql.SQL("{} = {}").format(sql.SQL(k), sql.Literal(int(v))) for k, v in sorted(params.items())]
    return sql.SQL("with ({})").format(sql.SQL(", ").join(options))


def sizes(conn: psycopg.Connection, name: str, index_bytes: int) -> int:
    """The copy's total bytes (heap, toast, primary key) less the vector indexes counted in index_bytes."""
    return base.relation_bytes(conn, base.schema_of(name), kind="r") - index_bytes
