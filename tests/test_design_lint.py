"""No design adds a database-linter finding: with each design installed, the splinter checks that
apply to what a design creates (functions, policies, tables that hold tenant rows, foreign keys) find
exactly what they found on the harmonized schema alone — over every schema, the designs' own included.

The checks are splinter's, written as catalog queries (see test_schema.py for the schema's own):
0011 function_search_path_mutable, 0003 auth_rls_initplan, 0006 multiple_permissive_policies,
0013 rls_disabled_in_public (here also: a table of tenant rows in a design's schema that the API roles
can read), 0028/0029 security definer functions executable by the API roles, 0001 unindexed_foreign_keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from dimbench.database import db
from dimbench.study import index
from dimbench.study.designs import module
from dimbench.study.grid import Build
from dimbench.vocabulary import DEFAULT_DESIGN, DESIGNS

HNSW = Build("vector768", "hnsw", {"m": 16, "ef_construction": 64})
PARAMS: dict[str, dict[str, Any]] = {  # small enough for the tiny corpus, each design's real structures
    "routed": {"threshold": 100},
    "partial": {"min_rows": 100},
    "partitioned": {"partitions": 4},
    "bq_rerank": {"factor": 4},
    "inline": {},
}
SKIP = "('pg_catalog', 'information_schema', 'pg_toast', 'auth', 'extensions')"  # Supabase's, not ours

CHECKS = {
    "function_search_path_mutable": f"""
        select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        left join pg_depend d on d.objid = p.oid and d.deptype = 'e'
        where n.nspname not in {SKIP} and d.objid is null
          and not exists (select from unnest(coalesce(p.proconfig, '{{}}')) c
                          where c like 'search_path=%')""",
    "auth_rls_initplan": r"""
        select schemaname || '.' || tablename || ' ' || policyname from pg_policies
        where (qual ~ 'auth\.(uid|jwt|role|email)\(\)'
               and lower(qual) !~ 'select\s+auth\.(uid|jwt|role|email)\(\)')
           or (with_check ~ 'auth\.(uid|jwt|role|email)\(\)'
               and lower(with_check) !~ 'select\s+auth\.(uid|jwt|role|email)\(\)')""",
    "multiple_permissive_policies": """
        select schemaname || '.' || tablename || ' ' || cmd || ' ' || r from pg_policies, unnest(roles) r
        where permissive = 'PERMISSIVE' group by schemaname, tablename, cmd, r having count(*) > 1""",
    "rls_disabled_on_tenant_rows": f"""
        select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname not in {SKIP} and c.relkind in ('r', 'p') and not c.relrowsecurity
          and (n.nspname = 'public' or (
                exists (select from pg_attribute a where a.attrelid = c.oid
                        and a.attname = 'workspace_id' and not a.attisdropped)
                and (has_table_privilege('authenticated', c.oid, 'select')
                     or has_table_privilege('anon', c.oid, 'select'))))""",
    "security_definer_executable_by_api_roles": f"""
        select p.oid::regprocedure::text || ' ' || r from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace, unnest(array['anon', 'authenticated']) r
        where p.prosecdef and n.nspname not in {SKIP} and n.nspname <> 'private'
          and has_function_privilege(r, p.oid, 'execute')""",
    "unindexed_foreign_keys": f"""
        select n.nspname || '.' || c.conname
        from pg_constraint c join pg_namespace n on n.oid = c.connamespace
        where c.contype = 'f' and n.nspname not in {SKIP} and not exists (
          select from pg_index i where i.indrelid = c.conrelid
            and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey)""",
}


def findings(conn: psycopg.Connection) -> dict[str, set[str]]:
    return {name: {row[0] for row in conn.execute(query).fetchall()} for name, query in CHECKS.items()}


@pytest.fixture
def conn(tiny_corpus_db) -> Iterator[psycopg.Connection]:
    with db.connect(tiny_corpus_db[0]) as connection:
        db.use_vectors(connection)
        yield connection
        for name in PARAMS:
            module(name).remove(connection)
        index.drop_study_indexes(connection)


def test_every_design_but_the_shared_one_is_checked():
    assert set(PARAMS) == set(DESIGNS) - {DEFAULT_DESIGN}


def test_the_checks_find_a_finding_a_design_could_add(conn):
    before = findings(conn)
    conn.execute("create schema if not exists dimbench_lint_probe")
    conn.execute("create table dimbench_lint_probe.copy (workspace_id uuid)")
    conn.execute("grant select on dimbench_lint_probe.copy to authenticated")
    conn.execute("create function dimbench_lint_probe.f() returns int language sql as 'select 1'")
    try:
        after = findings(conn)
        assert after["rls_disabled_on_tenant_rows"] - before["rls_disabled_on_tenant_rows"] == {
            "dimbench_lint_probe.copy"
        }
        assert after["function_search_path_mutable"] - before["function_search_path_mutable"] == {
            "dimbench_lint_probe.f()"
        }
    finally:
        conn.execute("drop schema dimbench_lint_probe cascade")


@pytest.mark.parametrize("design", sorted(PARAMS))
def test_installing_a_design_adds_no_linter_finding(conn, design):
    before = findings(conn)
    if getattr(module(design), "NEEDS_SHARED_INDEX", False):
        index.build(conn, HNSW)
    module(design).install(conn, HNSW, PARAMS[design])
    after = findings(conn)
    assert {name: after[name] - before[name] for name in CHECKS} == {name: set() for name in CHECKS}
