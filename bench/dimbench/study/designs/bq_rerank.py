"""bq_rerank: hnsw over the vectors' binary quantization, candidates reranked by the full vector.

pgvector's README ("Binary Quantization"): an expression index on `binary_quantize(v)::bit(d)` with
`bit_hamming_ops`, whose tuples hold one bit per dimension instead of a float or a half. The search
takes the match_count × factor nearest rows by hamming distance from it, in the index's order (the
session's hnsw.ef_search / iterative_scan / max_scan_tuples apply to that scan as to any hnsw scan), then
orders those candidates by the full vector's cosine distance and keeps match_count.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from dimbench.errors import DimbenchError
from dimbench.study.configs import Build
from dimbench.study.designs import base
from dimbench.vocabulary import COLUMN_SOURCE

NAME = "bq_rerank"

# The candidates, in the bit index's order. A template so a probe (EXPLAIN) can run the very same query
# with literals where the function has its arguments.
CANDIDATES = """
        select c.id, c.workspace_id, c.document_id, c.content, c.{column}
        from public.document_chunks c
        where {filter} is null or c.workspace_id = any ({filter})
        order by {bits} operator(extensions.<~>) {query_bits}
        limit {count}"""
# The rerank: exact cosine distance of the candidates only (computed above the inner LIMIT).
BODY = """
begin
{prologue}
  return query
    select s.id, s.workspace_id, s.document_id, s.content, 1 - s.distance
    from (
      select b.id, b.workspace_id, b.document_id, b.content, {distance} as distance
      from ({candidates}
      ) b
    ) s
    order by s.distance
    limit match_count;
end
"""


def index_name(build: Build) -> str:
    return base.index_prefix(NAME) + build.column_type


def factor_of(params: dict[str, Any]) -> int:
    factor = {**DESIGN.PARAMS, **params}["factor"]
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise DimbenchError(f"design {NAME}: factor must be a positive integer, got {factor!r}")
    return factor


def quantized(vector: sql.Composable, dim: int) -> sql.Composed:
    """The expression the index holds (and the search must order by, token for token in meaning)."""
    return sql.SQL("(extensions.binary_quantize({})::bit({}))").format(vector, sql.Literal(dim))


def stored_column(build: Build) -> sql.Identifier:
    """The table column the rerank reads (halfvec1536 casts embedding_1536)."""
    return sql.Identifier(COLUMN_SOURCE[build.column_type][0])


def _create_index(conn: psycopg.Connection, build: Build) -> int:
    """Build the bit index with the build's hnsw arguments; its bytes."""
    name = index_name(build)
    conn.execute(
        sql.SQL(
            "create index {} on public.document_chunks using hnsw ({} extensions.bit_hamming_ops)"
            " with (m = {}, ef_construction = {})"
        ).format(
            sql.Identifier(name),
            quantized(build.expression(), build.dim),
            sql.Literal(int(build.params["m"])),
            sql.Literal(int(build.params["ef_construction"])),
        )
    )
    return base.relation_bytes(conn, "public", name)


def candidates(
    build: Build, query: sql.Composable, count: sql.Composable, filter_ids: sql.Composable
) -> sql.Composed:
    """The inner query: the `count` nearest visible rows by hamming distance to the quantized query."""
    if build.vector_type == "halfvec":
        query = sql.SQL("({}::extensions.halfvec(1536))").format(query)
    return sql.SQL(CANDIDATES).format(
        column=stored_column(build),
        filter=filter_ids,
        bits=quantized(build.expression("c"), build.dim),
        query_bits=quantized(query, build.dim),
        count=count,
    )


def _body(build: Build, factor: int) -> sql.Composed:
    count = sql.SQL("match_count * {}").format(sql.Literal(factor))
    inner = candidates(build, sql.SQL("query_embedding"), count, sql.SQL("filter_workspace_ids"))
    return sql.SQL(BODY).format(
        prologue=base.prologue(build), distance=base.distance(build, "b"), candidates=inner
    )


class BqRerank(base.Design):
    NAME = NAME
    INDEX_KINDS = ("hnsw",)
    PARAMS: dict[str, Any] = {"factor": 4}  # candidates per answer row

    def install(self, conn: psycopg.Connection, build: Build, params: dict[str, Any]) -> base.Installed:
        """The bit index for this build's column and m/ef_construction, then the search function.

        Whatever was installed before (another build, another factor) is removed first, so installing twice
        leaves the same state.
        """
        if build.index not in self.INDEX_KINDS:
            raise DimbenchError(f"design {NAME} rides on hnsw builds only, not {build.index}")
        factor = factor_of(params)
        self.remove(conn)
        with base.timed() as seconds:  # the build alone, as index.build times the study's
            index_bytes = _create_index(conn, build)
        conn.execute("analyze public.document_chunks")  # the expression's statistics
        base.create_schema(conn, NAME)
        base.define_search(conn, NAME, _body(build, factor))
        return base.Installed(
            design=NAME,
            column_type=build.column_type,
            params={"factor": factor},
            seconds=seconds[0],
            index_bytes=index_bytes,
            table_bytes=0,
            detail={"factor": factor, "bits": build.dim},
        )


DESIGN = BqRerank()
