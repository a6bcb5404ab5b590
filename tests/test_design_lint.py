"""No design adds a database-linter finding: with each design installed, the splinter checks that
apply to what a design creates (tests/splinter.py: functions, policies, tables that hold tenant rows,
foreign keys) find exactly what they found on the harmonized schema alone — over every schema, the
designs' own included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from dimbench.database import db
from dimbench.study import designs, index
from dimbench.study.grid import Build
from dimbench.vocabulary import DEFAULT_DESIGN, DESIGNS
from tests.splinter import CHECKS, findings

HNSW = Build("vector768", "hnsw", {"m": 16, "ef_construction": 64})
PARAMS: dict[str, dict[str, Any]] = {  # small enough for the tiny corpus, each design's real structures
    "routed": {"threshold": 100},
    "probed": {"threshold": 100},
    "partial": {"min_rows": 100},
    "partitioned": {"partitions": 4},
    "bq_rerank": {"factor": 4},
    "inline": {},
}


@pytest.fixture
def conn(tiny_corpus_db) -> Iterator[psycopg.Connection]:
    with db.connect(tiny_corpus_db[0]) as connection:
        db.use_vectors(connection)
        yield connection
        for name in PARAMS:
            designs.get(name).remove(connection)
        index.drop_study_indexes(connection)


def test_every_design_but_the_shared_one_is_checked():
    assert set(PARAMS) == set(DESIGNS) - {DEFAULT_DESIGN}


def test_the_checks_find_a_finding_a_design_could_add(conn):
    before = findings(conn)
    conn.execute("create schema if not exists dimbench_lint_probe")
    conn.execute("create table dimbench_lint_probe.copy (workspace_id uuid)")  # tenant rows the API can read
    conn.execute("grant select on dimbench_lint_probe.copy to authenticated")
    conn.execute("create function dimbench_lint_probe.f() returns int language sql as 'select 1'")
    conn.execute("create table dimbench_lint_probe.policed (workspace_id uuid)")
    conn.execute("alter table dimbench_lint_probe.policed enable row level security")
    conn.execute(
        "create policy per_row on dimbench_lint_probe.policed for select to authenticated"
        " using (workspace_id = auth.uid())"  # auth.uid() once per row: no initplan
    )
    path = conn.execute("select current_setting('search_path')").fetchone()[0]
    conn.execute("set search_path = auth, public, extensions")  # pg_policies would print uid() bare
    try:
        after = findings(conn)
        added = {name: after[name] - before[name] for name in CHECKS}
        assert added == {
            **{name: set() for name in CHECKS},
            "rls_disabled_on_tenant_rows": {"dimbench_lint_probe.copy"},
            "function_search_path_mutable": {"dimbench_lint_probe.f()"},
            "auth_rls_initplan": {"dimbench_lint_probe.policed per_row"},
        }
    finally:
        conn.execute("select set_config('search_path', %s, false)", [path])
        conn.execute("drop schema dimbench_lint_probe cascade")


@pytest.mark.parametrize("design", sorted(PARAMS))
def test_installing_a_design_adds_no_linter_finding(conn, design):
    before = findings(conn)
    if designs.get(design).layout.searches_shared_index:
        index.build(conn, HNSW)
    designs.get(design).install(conn, HNSW, PARAMS[design])
    after = findings(conn)
    assert {name: after[name] - before[name] for name in CHECKS} == {name: set() for name in CHECKS}
