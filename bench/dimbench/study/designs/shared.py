"""`shared`: the harmonized schema as migrated, one approximate index over every tenant's chunks.

Nothing to install on the harmonized columns: its index is the study's own build, and it searches
public.match_document_chunks. A study column outside that schema (embedding_ada, ada-002's own vectors)
gets the same search in a function of its own, so the harmonized function stays as migrated.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from dimbench.study.configs import Build
from dimbench.study.designs import base, tables
from dimbench.study.designs.base import Design, Installed
from dimbench.vocabulary import COLUMN_SOURCE, DEFAULT_DESIGN, HARMONIZED_COLUMNS, INDEX_KINDS


class Shared(Design):
    NAME = DEFAULT_DESIGN
    INDEX_KINDS = INDEX_KINDS

    def install(self, conn: psycopg.Connection, build: Build, params: dict[str, Any]) -> Installed:
        if COLUMN_SOURCE[build.column_type][0] not in HARMONIZED_COLUMNS:
            with conn.transaction():
                base.create_schema(conn, self.NAME)
                # public.match_document_chunks's search (schema/0008) on this column: a copy's search
                # (tables.SEARCH) over public's own table
                body = sql.SQL(tables.SEARCH).format(
                    prologue=base.prologue(build),
                    distance=base.distance(build),
                    table=sql.Identifier("public", "document_chunks"),
                )
                base.define_search(conn, self.NAME, body)
        return Installed(self.NAME, build.column_type, {}, 0.0, index_bytes=0, table_bytes=0)

    def remove(self, conn: psycopg.Connection) -> None:
        """The harmonized schema stays; the study's indexes are index.py's to drop."""
        conn.execute(
            sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(base.schema_of(self.NAME)))
        )


DESIGN = Shared()
