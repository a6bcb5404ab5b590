"""partitioned: the chunks hash-partitioned by workspace_id, one vector index per partition.

The copy dimbench_partitioned.document_chunks is the transition layout (both vectors, public's storage:
embedding_768 in the row, embedding_1536 out of line), `partition by hash (workspace_id)` into
`partitions` partitions. The build's index is created on the parent, so PostgreSQL builds one per
partition. The search is public's query over the parent: a constant workspace filter (service,
rls_filter; constant because the function plans every call with its arguments) prunes to the
partitions holding those workspaces at plan time. RLS alone cannot prune: the policy compares
workspace_id with an InitPlan's array, and PostgreSQL prunes hash partitions on `= any (…)` only when
the array is a constant or an ARRAY[…] list, so the `rls` arm searches every partition.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from dimbench.errors import DimbenchError
from dimbench.study.configs import Build
from dimbench.study.designs import base, tables

NAME = "partitioned"

INDEX = "document_chunks_embedding_idx"
# Besides the key columns: public's vectors with public's storage (6152 + 3080 bytes do not fit a row).
COLUMNS = (
    sql.SQL("embedding_1536 extensions.vector(1536) storage external"),
    sql.SQL("embedding_768 extensions.vector(768) storage plain"),
    sql.SQL("embedding_1536_model text"),
    sql.SQL("embedding_768_model text"),
    sql.SQL("created_at timestamptz not null"),
)
COPIED = ("embedding_1536", "embedding_768", "embedding_1536_model", "embedding_768_model", "created_at")


def partition_count(params: dict[str, Any]) -> int:
    n = {**DESIGN.PARAMS, **params}["partitions"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DimbenchError(f"partitioned: partitions must be a positive integer, got {n!r}")
    return n


def partition_names(n: int) -> list[sql.Identifier]:
    return [sql.Identifier(base.schema_of(NAME), f"{tables.TABLE}_p{i:02d}") for i in range(n)]


def partition_index_bytes(conn: psycopg.Connection) -> int:
    """The partitions' vector indexes (the parent's index itself has no storage)."""
    row = conn.execute(
        "select coalesce(sum(pg_relation_size(i.inhrelid)), 0)::bigint from pg_inherits i"
        " where i.inhparent = (select oid from pg_class"
        "                      where relname = %s and relnamespace = %s::regnamespace)",
        (INDEX, base.schema_of(NAME)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def rows_per_partition(conn: psycopg.Connection) -> list[int]:
    """[fewest, most] rows in a partition: tenants differ in size, and a few hashed may leave one empty."""
    row = conn.execute(
        sql.SQL(
            "select min(n), max(n) from (select i.inhrelid, count(c.tableoid) as n from pg_inherits i"
            " left join {} c on c.tableoid = i.inhrelid where i.inhparent = {}::regclass group by 1) p"
        ).format(tables.table_of(NAME), sql.Literal(f"{base.schema_of(NAME)}.{tables.TABLE}"))
    ).fetchone()
    assert row is not None
    return [int(row[0]), int(row[1])]


class Partitioned(base.Design):
    NAME = NAME
    INDEX_KINDS = ("hnsw", "ivfflat")
    PARAMS: dict[str, Any] = {"partitions": 16}

    def install(self, conn: psycopg.Connection, build: Build, params: dict[str, Any]) -> base.Installed:
        """Copy the chunks into `partitions` hash partitions, index each, define the search (from scratch:
        installing twice gives the same state). An exact build gets no vector index."""
        n = partition_count(params)
        if build.index not in (*self.INDEX_KINDS, "exact"):
            kinds = ", ".join(self.INDEX_KINDS)
            raise DimbenchError(f"partitioned works with index {kinds}, got {build.index!r}")
        with base.timed() as took, conn.transaction():
            base.drop_design(conn, NAME)
            base.create_schema(conn, NAME)
            qual = base.select_policy_qual(conn)
            table = tables.create_table(conn, NAME, COLUMNS, sql.SQL("partition by hash (workspace_id)"))
            parts = partition_names(n)
            for remainder, part in enumerate(parts):
                partition = "create table {} partition of {} for values with (modulus {}, remainder {})"
                conn.execute(sql.SQL(partition).format(part, table, sql.Literal(n), sql.Literal(remainder)))
            tables.secure(conn, table, qual, parts)
            tables.copy_rows(conn, table, COPIED, [sql.Identifier("c", c) for c in COPIED])
            tables.vector_index(conn, table, INDEX, build, build.expression())
            tables.finish(conn, NAME, build, base.distance(build))
        tables.settle(conn, NAME)  # after the commit, outside the timed install
        index_bytes = partition_index_bytes(conn)
        return base.Installed(
            NAME,
            build.column_type,
            {"partitions": n},
            took[0],
            index_bytes,
            tables.sizes(conn, NAME, index_bytes),
            {"partitions": n, "rows_per_partition": rows_per_partition(conn)},
        )

    def follow(self, conn: psycopg.Connection, build: Build) -> None:
        tables.mirror(conn, NAME, COPIED, [sql.Identifier("c", c) for c in COPIED])


DESIGN = Partitioned()
