"""inline: the end-state layout after the migration, one embedding column stored in the row.

dimbench_inline.document_chunks has a single `embedding` of the build's column type (vector(768),
vector(1536), or halfvec(1536) converted from embedding_1536), storage PLAIN: even 6152 bytes fit a
page, so a scan never reads a vector from TOAST. The table's toast_tuple_target is raised to a page
too: at the default (~2 kB) every row with a plain vector is over the target, and PostgreSQL would move
even a 50-byte chunk text out of line (one TOAST lookup per returned row; public.document_chunks pays
it today). The build's index is on the one column; the search is public's query over the copy.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from dimbench.errors import DimbenchError
from dimbench.study.configs import Build
from dimbench.study.designs import base, tables

NAME = "inline"

INDEX = "document_chunks_embedding_idx"
ROW_TARGET = 8160  # the largest toast_tuple_target: a row is kept whole while it fits a page
STORAGE = {"p": "plain", "m": "main", "e": "external", "x": "extended"}


def column_type(build: Build) -> str:
    return f"{build.vector_type}({build.dim})"


def model_column(build: Build) -> str:
    return "embedding_768_model" if build.dim == 768 else "embedding_1536_model"


COPIED = ("embedding", "embedding_model", "created_at")


def sources(build: Build) -> tuple[sql.Composable, ...]:
    """What the copy's COPIED columns are made of, over public.document_chunks as c."""
    return (
        build.expression("c"),  # halfvec1536: embedding_1536 converted to halfvec(1536)
        sql.Identifier("c", model_column(build)),
        sql.Identifier("c", "created_at"),
    )


def distance(build: Build, alias: str = "c") -> sql.Composed:
    return sql.SQL("{} operator(extensions.<=>) {}").format(
        sql.Identifier(alias, "embedding"), base.query_expression(build)
    )


def embedding_storage(conn: psycopg.Connection) -> str:
    """The copy's embedding storage as the catalog has it (plain, by design)."""
    row = conn.execute(
        "select attstorage::text from pg_attribute where attrelid = %s::regclass and attname = 'embedding'",
        (f"{base.schema_of(NAME)}.{tables.TABLE}",),
    ).fetchone()
    assert row is not None
    return STORAGE[row[0]]


class Inline(base.Design):
    NAME = NAME
    INDEX_KINDS = ("exact", "ivfflat", "hnsw")

    def install(self, conn: psycopg.Connection, build: Build, params: dict[str, Any]) -> base.Installed:
        """Copy the chunks with the one column, build the index (none for exact), define the search (from
        scratch: installing twice gives the same state)."""
        if build.index not in self.INDEX_KINDS:
            raise DimbenchError(f"inline works with index {', '.join(self.INDEX_KINDS)}, got {build.index!r}")
        columns = (
            sql.SQL("embedding extensions.{} storage plain").format(sql.SQL(column_type(build))),
            sql.SQL("embedding_model text"),
            sql.SQL("created_at timestamptz not null"),
        )
        with base.timed() as took, conn.transaction():
            base.drop_design(conn, NAME)
            base.create_schema(conn, NAME)
            qual = base.select_policy_qual(conn)
            table = tables.create_table(
                conn, NAME, columns, sql.SQL("with (toast_tuple_target = {})").format(sql.Literal(ROW_TARGET))
            )
            tables.secure(conn, table, qual)
            tables.copy_rows(conn, table, COPIED, sources(build))
            tables.vector_index(conn, table, INDEX, build, sql.Identifier("embedding"))
            tables.finish(conn, NAME, build, distance(build))
        tables.settle(conn, NAME)  # after the commit, outside the timed install
        index_bytes = base.relation_bytes(conn, base.schema_of(NAME), prefix=INDEX)
        return base.Installed(
            NAME,
            build.column_type,
            {},
            took[0],
            index_bytes,
            tables.sizes(conn, NAME, index_bytes),
            {"storage": embedding_storage(conn), "column": column_type(build)},
        )

    def follow(self, conn: psycopg.Connection, build: Build) -> None:
        tables.mirror(conn, NAME, COPIED, sources(build))


DESIGN = Inline()
