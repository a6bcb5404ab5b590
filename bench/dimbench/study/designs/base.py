"""The design interface (`Design`), and what every design shares: its own schema, its search function,
its sizes, and a catalog snapshot.

A design lives in schema `dimbench_<name>` (not exposed by PostgREST), so removing it is one
`drop schema … cascade` plus the indexes it put on public tables (named `dimbench_<name>_*`). Its
search function has public.match_document_chunks's signature, security invoker, `search_path = ''`
and a custom plan per call, so RLS applies to it exactly as to the original.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from dimbench.errors import DimbenchError
from dimbench.study.configs import Build
from dimbench.vocabulary import COLUMN_SOURCE, DESIGNS, HARMONIZED_COLUMNS, Layout

SIGNATURE = sql.SQL(
    "query_embedding extensions.vector, match_count integer, filter_workspace_ids uuid[] default null,"
    " embedding_dim integer default 768, half_precision boolean default false"
)
ARGUMENT_TYPES = sql.SQL("extensions.vector, integer, uuid[], integer, boolean")
RETURNS = sql.SQL(
    "table (id uuid, workspace_id uuid, document_id uuid, content text, similarity double precision)"
)
# The checks public.match_document_chunks makes, plus: a design is installed for one column type.
PROLOGUE = """
  if match_count is null or match_count < 1 then
    raise exception 'match_count must be a positive integer' using errcode = '22023';
  end if;
  if embedding_dim is distinct from {dim} or half_precision is distinct from {half}
     or extensions.vector_dims(query_embedding) <> {dim} then
    raise exception 'this design is installed for % only', {column_type} using errcode = '22023';
  end if;
"""


@dataclass
class Installed:
    """What installing a design for one build cost, and what it now occupies."""

    design: str
    column_type: str
    params: dict[str, Any]
    seconds: float
    index_bytes: int  # every index the design's searches use (all partitions, all partial indexes)
    table_bytes: int  # every table the design added (0 when it searches public.document_chunks)
    detail: dict[str, Any] = field(default_factory=dict)  # e.g. the measured threshold, the partitions
    reused: bool = False  # found standing from an earlier stage's install (designs/standing.py), whose
    #                       `seconds` these are


class Design:
    """One table layout and search route. A design is one module exporting `DESIGN`, an instance of a
    subclass that sets NAME (its word in the vocabulary, with its Layout there) and overrides what
    differs; the study never names a design, it asks the instance.

    install(conn, build, params) builds the design's structures for one build (timed, sized) and its
    search function `dimbench_<name>.match_document_chunks` (the signature of
    public.match_document_chunks, so every access arm calls it the same way); remove(conn) takes all of
    it away again, idempotently, leaving the harmonized schema as it was.

    A design may measure one of its parameters per query setting (MEASURED: routed's threshold) when the
    grid gives it as "measured": `calibrate` measures and sets it, `set_measured` applies a value measured
    earlier, `measured_at` reads one back from what an install recorded.
    """

    NAME: ClassVar[str]
    INDEX_KINDS: ClassVar[tuple[str, ...]] = ("hnsw",)
    PARAMS: ClassVar[dict[str, Any]] = {}  # its grid parameters and their defaults
    MEASURED: ClassVar[str | None] = None

    @property
    def layout(self) -> Layout:
        """What its storage, install cost and arms include (the vocabulary's, shared with the report)."""
        return DESIGNS[self.NAME]

    def install(self, conn: psycopg.Connection, build: Build, params: dict[str, Any]) -> Installed:
        raise NotImplementedError

    def remove(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            drop_design(conn, self.NAME)

    def follow(self, conn: psycopg.Connection, build: Build) -> None:
        """Bring what the design keeps of the chunks in line with public.document_chunks after writes to
        it (rows inserted or deleted since the install), as the app's own writes would: nothing for a
        design that searches public itself (its indexes and triggers see the writes)."""

    def measures(self, params: dict[str, Any]) -> bool:
        """Is a parameter of this install measured per query setting (rather than given)?"""
        return self.MEASURED is not None and params.get(self.MEASURED) == "measured"

    def calibrate(self, conn: psycopg.Connection, build: Build, queries: list[Any], k: int) -> dict[str, Any]:
        """Measure MEASURED at the session's query settings, set it, and return what was measured (the
        value under MEASURED's name)."""
        raise NotImplementedError(f"{self.NAME} measures nothing")

    def set_measured(self, conn: psycopg.Connection, value: Any) -> None:
        raise NotImplementedError(f"{self.NAME} measures nothing")

    def measured_values(self, detail: dict[str, Any]) -> dict[str, Any]:
        """What an install recorded, per query setting's key ("": one value for every setting)."""
        return {}

    def live_check(self, conn: psycopg.Connection) -> dict[str, Any] | None:
        """After the live stage's writes: whatever of the design's own state they could have put wrong,
        checked against the rows (None: it keeps nothing that writes could skew)."""
        return None

    def script(self, build: Build, measured: Any = None) -> list[str]:
        """The SQL a team applies to deploy this design for one build as public's search function, with
        its measured value substituted ([]: nothing beyond the shared index and its settings)."""
        return []

    def measured_at(self, detail: dict[str, Any], setting_key: str) -> Any:
        """The value an install recorded for one query setting (None: none)."""
        values = self.measured_values(detail)
        return values.get(setting_key, values.get(""))

    @property
    def setting_name(self) -> str:
        """How a measured value is recorded among a cell's settings (e.g. routed.threshold)."""
        return f"{self.NAME}.{self.MEASURED}"


def schema_of(name: str) -> str:
    return f"dimbench_{name}"


def search_function(design: str, build: Build | None = None) -> sql.Identifier:
    """The function the arms call for a design (shared on a study column: its own, designs/shared.py)."""
    if design == "shared" and (build is None or COLUMN_SOURCE[build.column_type][0] in HARMONIZED_COLUMNS):
        return sql.Identifier("public", "match_document_chunks")
    return sql.Identifier(schema_of(design), "match_document_chunks")


def index_prefix(name: str) -> str:
    """Indexes a design puts on public tables are named so: remove() finds them by it."""
    return f"dimbench_{name}_"


def create_schema(conn: psycopg.Connection, name: str) -> None:
    schema = sql.Identifier(schema_of(name))
    conn.execute(sql.SQL("create schema if not exists {}").format(schema))
    conn.execute(sql.SQL("revoke all on schema {} from public").format(schema))
    conn.execute(sql.SQL("grant usage on schema {} to authenticated, service_role").format(schema))


def drop_design(conn: psycopg.Connection, name: str) -> None:
    """The design's schema (cascade) and its indexes on public tables; nothing else is touched."""
    conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema_of(name))))
    rows = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind = 'i' and starts_with(c.relname, %s)",
        (index_prefix(name),),
    ).fetchall()
    for (index_name,) in rows:
        conn.execute(sql.SQL("drop index if exists {}").format(sql.Identifier("public", index_name)))


def select_policy_qual(conn: psycopg.Connection) -> str:
    """public.document_chunks's select policy as the server renders it with an empty search_path, so
    every function and type in it is schema-qualified (it is re-created in another schema)."""
    saved = conn.execute("select current_setting('search_path')").fetchone()
    assert saved is not None
    with conn.transaction():
        conn.execute("select set_config('search_path', '', true)")
        row = conn.execute(
            "select qual from pg_catalog.pg_policies where schemaname = 'public' and tablename = %s"
            " and policyname = %s",
            ("document_chunks", "document_chunks_select"),
        ).fetchone()
        conn.execute("select pg_catalog.set_config('search_path', %s, true)", (saved[0],))
    if row is None:
        raise DimbenchError(
            "public.document_chunks has no document_chunks_select policy to copy: is the schema applied?"
        )
    return str(row[0])


# public.document_chunks's select policy as schema/0007 writes it: a design's script has no database to
# copy it from (an install copies the live one, select_policy_qual).
SELECT_POLICY = "workspace_id = any ((select private.workspace_ids('{owner,admin,member,viewer}'))::uuid[])"


def dollar_quoted(body: sql.Composable) -> sql.Composed:
    """A function body quoted as $body$ … $body$: a script a team reads keeps its quotes single."""
    text = body.as_string(None)
    if "$body$" in text:
        raise ValueError("a function body may not contain $body$")
    return sql.SQL("$body$") + sql.SQL(text) + sql.SQL("$body$")


def prologue(build: Build) -> sql.Composed:
    return sql.SQL(PROLOGUE).format(
        dim=sql.Literal(build.dim),
        half=sql.Literal(build.vector_type == "halfvec"),
        column_type=sql.Literal(build.column_type),
    )


def define_search(conn: psycopg.Connection, name: str, body: sql.Composable) -> None:
    """Create the design's search function from a plpgsql body (`declare … begin … end`)."""
    for statement in search_statements(
        sql.Identifier(schema_of(name), "match_document_chunks"), sql.Literal(body.as_string(conn))
    ):
        conn.execute(statement)


def search_statements(function: sql.Identifier, source: sql.Composable) -> list[sql.Composed]:
    """A search function from its quoted source, and who may execute it (install and script alike)."""
    return [
        sql.SQL(
            "create or replace function {}({}) returns {} language plpgsql stable security invoker"
            " set search_path = '' set plan_cache_mode = force_custom_plan as {}"
        ).format(function, SIGNATURE, RETURNS, source),
        sql.SQL("revoke execute on function {}({}) from public, anon").format(function, ARGUMENT_TYPES),
        sql.SQL("grant execute on function {}({}) to authenticated, service_role").format(
            function, ARGUMENT_TYPES
        ),
    ]


def query_expression(build: Build) -> sql.Composable:
    if build.vector_type == "halfvec":
        return sql.SQL("(query_embedding::extensions.halfvec(1536))")
    return sql.SQL("query_embedding")


def distance(build: Build, alias: str = "c") -> sql.Composed:
    return sql.SQL("{} operator(extensions.<=>) {}").format(build.expression(alias), query_expression(build))


def relation_bytes(conn: psycopg.Connection, schema: str, prefix: str = "", kind: str = "i") -> int:
    """Total size of the relations of one kind ('i' index, 'r'/'p' table) in a schema whose name starts
    with `prefix` (a partitioned table's bytes are its partitions')."""
    row = conn.execute(
        "select coalesce(sum(pg_total_relation_size(c.oid)) filter (where c.relkind in ('r', 'm')),"
        "                0)::bigint, coalesce(sum(pg_relation_size(c.oid)) filter (where c.relkind = 'i'),"
        "                0)::bigint"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and starts_with(c.relname, %s)",
        (schema, prefix),
    ).fetchone()
    assert row is not None
    return int(row[1] if kind == "i" else row[0])


@contextmanager
def timed() -> Iterator[list[float]]:
    """with timed() as t: …  → t[0] is the seconds it took."""
    out = [0.0]
    start = time.perf_counter()
    try:
        yield out
    finally:
        out[0] = round(time.perf_counter() - start, 3)


CATALOG = {
    "relations": """
        select n.nspname, c.relname, c.relkind::text, coalesce(c.relacl::text, ''),
               c.relrowsecurity, c.relforcerowsecurity
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
        order by 1, 2""",
    "functions": """
        select n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc),
               coalesce(p.proconfig::text, ''), coalesce(p.proacl::text, ''), p.prosecdef
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname not in ('pg_catalog', 'information_schema')
        order by 1, 2, 3""",
    "policies": """
        select schemaname, tablename, policyname, cmd, roles::text, coalesce(qual, ''),
               coalesce(with_check, '')
        from pg_policies order by 1, 2, 3""",
    "triggers": """
        select c.relname, t.tgname, pg_get_triggerdef(t.oid)
        from pg_trigger t join pg_class c on c.oid = t.tgrelid where not t.tgisinternal order by 1, 2""",
    "schemas": """
        select nspname, coalesce(nspacl::text, '') from pg_namespace
        where nspname not like 'pg\\_temp%' and nspname not like 'pg\\_toast\\_temp%' order by 1""",
    "indexes": """
        select schemaname, tablename, indexname, indexdef from pg_indexes
        where schemaname not in ('pg_catalog') order by 1, 2, 3""",
    "columns": """
        select table_schema, table_name, column_name, data_type, coalesce(column_default, ''),
               is_nullable
        from information_schema.columns
        where table_schema not in ('pg_catalog', 'information_schema') order by 1, 2, ordinal_position""",
}


def catalog(conn: psycopg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """What a design must leave as it found it: relations, functions, policies, triggers, grants."""
    return {name: conn.execute(query).fetchall() for name, query in CATALOG.items()}
