"""The partitioned design on the tiny corpus: it installs and removes cleanly, RLS holds through it, exact
search through the partitions is the shared table's exact search, and the planner prunes partitions
only for a constant filter."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from dimbench.database import db
from dimbench.study import arms
from dimbench.study.configs import Arm
from dimbench.study.designs import base, partitioned
from dimbench.study.grid import Build
from dimbench.study.measure import StudyQuery, run_cell

K = 10
ARMS = ("service", "rls", "rls_filter")
HNSW = Build("vector768", "hnsw", {"m": 16, "ef_construction": 64})
IVFFLAT = Build("vector1536", "ivfflat", {"lists": 4})


@pytest.fixture(scope="module")
def conn(tiny_corpus_db: tuple[str, list[StudyQuery]]) -> Iterator[psycopg.Connection]:
    dsn, _ = tiny_corpus_db
    with db.connect(dsn) as connection:
        db.use_vectors(connection)
        yield connection
        partitioned.DESIGN.remove(connection)  # whatever a failed test left behind


@pytest.fixture(scope="module")
def queries(tiny_corpus_db: tuple[str, list[StudyQuery]]) -> list[StudyQuery]:
    return tiny_corpus_db[1]


@contextmanager
def installed(
    conn: psycopg.Connection, build: Build, params: dict[str, Any] | None = None
) -> Iterator[base.Installed]:
    try:
        yield partitioned.DESIGN.install(conn, build, params or {})
    finally:
        partitioned.DESIGN.remove(conn)


def populated_workspaces(conn: psycopg.Connection) -> list[uuid.UUID]:
    return [r[0] for r in conn.execute("select distinct workspace_id from public.document_chunks limit 3")]


def test_install_then_remove_leaves_the_catalog_as_it_was(conn):
    before = base.catalog(conn)
    partitioned.DESIGN.install(conn, HNSW, {})
    once = base.catalog(conn)
    partitioned.DESIGN.install(conn, HNSW, {})
    assert base.catalog(conn) == once != before
    partitioned.DESIGN.remove(conn)
    partitioned.DESIGN.remove(conn)
    assert base.catalog(conn) == before


@pytest.mark.parametrize("access", ["rls", "rls_filter"])
def test_the_canary_gets_no_rows(conn, queries, access):
    with installed(conn, HNSW):
        vector = arms.query_vector(queries[0].vector_1536, HNSW)
        others = populated_workspaces(conn)
        arms.check_canary(conn, Arm(access, HNSW, K, partitioned.NAME), vector, uuid.uuid4(), others)


@pytest.mark.parametrize("build", [HNSW, IVFFLAT], ids=lambda b: b.key)
def test_no_arm_returns_a_foreign_row(conn, queries, build):
    with installed(conn, build):
        for access in ARMS:  # run_cell raises IsolationBreach on any row outside what the query may see
            result = run_cell(conn, Arm(access, build, K, partitioned.NAME), queries, warmup=0)
            assert all(a.ids for a in result.answers), access


@pytest.mark.parametrize("column_type", ["vector768", "vector1536", "halfvec1536"])
def test_exact_search_through_the_partitions_is_the_shared_exact_search(conn, queries, column_type):
    build = Build(column_type, "exact", {})  # no vector index anywhere: both searches are exact
    with installed(conn, build):
        differ = []
        for access in ARMS:
            for q in queries:
                vector = arms.query_vector(q.vector_1536, build)
                ask = [vector, q.user, q.filter_ids]
                shared = arms.ask(conn, Arm(access, build, K), *ask)
                mine = arms.ask(conn, Arm(access, build, K, partitioned.NAME), *ask)
                if mine.ids != shared.ids or not shared.ids:
                    differ.append((access, q.qid))
        assert differ == []


def test_each_partition_gets_its_own_vector_index_and_index_bytes_are_theirs(conn):
    build = Build("halfvec1536", "hnsw", {"m": 8, "ef_construction": 32})
    with installed(conn, build, {"partitions": 4}) as result:
        rows = conn.execute(
            "select c.relname, pg_relation_size(c.oid), pg_get_indexdef(c.oid) from pg_inherits i"
            " join pg_class c on c.oid = i.inhrelid"
            " where i.inhparent = 'dimbench_partitioned.document_chunks_embedding_idx'::regclass"
        ).fetchall()
        counts = conn.execute(
            "select count(*) from dimbench_partitioned.document_chunks group by tableoid"
        ).fetchall()
    assert len(rows) == 4
    expected = (
        "USING hnsw (((embedding_1536)::halfvec(1536)) halfvec_cosine_ops) WITH (ef_construction='32', m='8')"
    )
    assert all(expected in r[2] for r in rows)
    assert result.index_bytes == sum(r[1] for r in rows) > 0
    assert result.detail["partitions"] == 4
    assert (
        sum(n for (n,) in counts) == conn.execute("select count(*) from public.document_chunks").fetchone()[0]
    )
    assert result.detail["rows_per_partition"][1] == max(n for (n,) in counts)


def test_every_partition_is_vacuumed_once_installed(conn):
    with installed(conn, HNSW):
        pages = conn.execute(
            "select c.relpages, c.relallvisible from pg_inherits i join pg_class c on c.oid = i.inhrelid"
            " where i.inhparent = 'dimbench_partitioned.document_chunks'::regclass and c.relpages > 0"
        ).fetchall()
    assert pages and all(visible == total for total, visible in pages)


def test_the_copy_keeps_publics_vector_storage_in_every_partition(conn):
    storage = (
        "select attname, attstorage from pg_attribute where attrelid = %s::regclass"
        " and attname in ('embedding_768', 'embedding_1536') order by 1"
    )
    public = conn.execute(storage, ("public.document_chunks",)).fetchall()
    with installed(conn, HNSW):
        parts = [
            r[0]
            for r in conn.execute(
                "select inhrelid::regclass::text from pg_inherits"
                " where inhparent = 'dimbench_partitioned.document_chunks'::regclass"
            )
        ]
        copied = {part: conn.execute(storage, (part,)).fetchall() for part in parts}
    assert public == [("embedding_1536", "e"), ("embedding_768", "p")]
    assert len(copied) == 16 and all(s == public for s in copied.values())


@contextmanager
def nested_plans(conn: psycopg.Connection) -> Iterator[list[str]]:
    """The plans of the statements the search function runs (auto_explain, reported as notices)."""
    plans: list[str] = []
    conn.execute("load 'auto_explain'")
    settings = {
        "auto_explain.log_min_duration": "0",
        "auto_explain.log_nested_statements": "on",
        "auto_explain.log_level": "notice",
    }
    for name, value in settings.items():
        conn.execute("select set_config(%s, %s, false)", (name, value))
    conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
    yield plans


def partitions_in(plans: list[str]) -> set[str]:
    (plan,) = [p for p in plans if "limit match_count" in p]
    return set(re.findall(r"document_chunks_p\d+", plan))


def one_workspace_query(queries: list[StudyQuery]) -> StudyQuery:
    return next(q for q in queries if len(q.visible) == 1)


def test_a_one_workspace_filter_is_pruned_to_one_partition_at_plan_time(tiny_corpus_db, queries):
    q = one_workspace_query(queries)
    vector = arms.query_vector(q.vector_1536, HNSW)
    with db.connect(tiny_corpus_db[0]) as conn, installed(conn, HNSW):
        db.use_vectors(conn)
        with nested_plans(conn) as plans:
            arms.ask(conn, Arm("rls_filter", HNSW, K, partitioned.NAME), vector, q.user, q.filter_ids)
        assert len(partitions_in(plans)) == 1


def test_rls_alone_searches_every_partition(tiny_corpus_db, queries):
    """The policy's `workspace_id = any ((select …))` is an InitPlan parameter, which PostgreSQL cannot
    prune hash partitions by (neither at plan time nor at executor startup): a caveat of the `rls` arm.
    If a PostgreSQL release learns to, this test says so."""
    q = one_workspace_query(queries)
    vector = arms.query_vector(q.vector_1536, HNSW)
    with db.connect(tiny_corpus_db[0]) as conn, installed(conn, HNSW):
        db.use_vectors(conn)
        with nested_plans(conn) as plans:
            answer = arms.ask(conn, Arm("rls", HNSW, K, partitioned.NAME), vector, q.user, q.filter_ids)
        assert answer.ids and len(partitions_in(plans)) == 16
