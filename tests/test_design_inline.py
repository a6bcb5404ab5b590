"""The inline design on the tiny corpus: it installs and removes cleanly, RLS holds through it, its exact
search is the shared table's, and its one column is stored in the row with nothing in TOAST."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from dimbench.database import db
from dimbench.study import arms
from dimbench.study.configs import Arm
from dimbench.study.designs import base, inline
from dimbench.study.grid import Build
from dimbench.study.measure import StudyQuery, run_cell
from dimbench.vocabulary import COLUMN_BYTES

K = 10
ARMS = ("service", "rls", "rls_filter")
COLUMN_TYPES = ("vector768", "vector1536", "halfvec1536")
BUILDS = (
    Build("vector768", "exact", {}),
    Build("vector1536", "ivfflat", {"lists": 4}),
    Build("halfvec1536", "hnsw", {"m": 16, "ef_construction": 64}),
)
TABLE = "dimbench_inline.document_chunks"


@pytest.fixture(scope="module")
def conn(tiny_corpus_db: tuple[str, list[StudyQuery]]) -> Iterator[psycopg.Connection]:
    dsn, _ = tiny_corpus_db
    with db.connect(dsn) as connection:
        db.use_vectors(connection)
        yield connection
        inline.DESIGN.remove(connection)  # whatever a failed test left behind


@pytest.fixture(scope="module")
def queries(tiny_corpus_db: tuple[str, list[StudyQuery]]) -> list[StudyQuery]:
    return tiny_corpus_db[1]


@contextmanager
def installed(conn: psycopg.Connection, build: Build) -> Iterator[base.Installed]:
    try:
        yield inline.DESIGN.install(conn, build, {})
    finally:
        inline.DESIGN.remove(conn)


def test_install_then_remove_leaves_the_catalog_as_it_was(conn):
    build = BUILDS[2]
    before = base.catalog(conn)
    inline.DESIGN.install(conn, build, {})
    once = base.catalog(conn)
    inline.DESIGN.install(conn, build, {})
    assert base.catalog(conn) == once != before
    inline.DESIGN.remove(conn)
    inline.DESIGN.remove(conn)
    assert base.catalog(conn) == before


@pytest.mark.parametrize("access", ["rls", "rls_filter"])
def test_the_canary_gets_no_rows(conn, queries, access):
    build = BUILDS[1]
    with installed(conn, build):
        vector = arms.query_vector(queries[0].vector_1536, build)
        others = [
            r[0] for r in conn.execute("select distinct workspace_id from public.document_chunks limit 3")
        ]
        arms.check_canary(conn, Arm(access, build, K, inline.NAME), vector, uuid.uuid4(), others)


@pytest.mark.parametrize("build", BUILDS, ids=lambda b: b.key)
def test_no_arm_returns_a_foreign_row(conn, queries, build):
    with installed(conn, build):
        for access in ARMS:  # run_cell raises IsolationBreach on any row outside what the query may see
            result = run_cell(conn, Arm(access, build, K, inline.NAME), queries, warmup=0)
            assert all(a.ids for a in result.answers), access


@pytest.mark.parametrize("column_type", COLUMN_TYPES)
def test_exact_search_is_the_shared_exact_search(conn, queries, column_type):
    """halfvec1536: the copy stores the halfvec the shared search casts to, so the ids are the same too."""
    build = Build(column_type, "exact", {})
    with installed(conn, build):
        differ = []
        for access in ARMS:
            for q in queries:
                vector = arms.query_vector(q.vector_1536, build)
                ask = [vector, q.user, q.filter_ids]
                shared = arms.ask(conn, Arm(access, build, K), *ask)
                mine = arms.ask(conn, Arm(access, build, K, inline.NAME), *ask)
                if mine.ids != shared.ids or not shared.ids:
                    differ.append((access, q.qid))
        assert differ == []


@pytest.mark.parametrize("column_type", COLUMN_TYPES)
def test_the_column_is_stored_plain_and_no_row_is_toasted(conn, column_type):
    build = Build(column_type, "exact", {})
    with installed(conn, build) as result:
        (storage, type_name, typmod), *others = conn.execute(
            "select a.attstorage::text, t.typname::text, a.atttypmod from pg_attribute a"
            " join pg_type t on t.oid = a.atttypid where a.attrelid = %s::regclass and a.attnum > 0"
            " and t.typname in ('vector', 'halfvec')",
            (TABLE,),
        ).fetchall()
        sizes = conn.execute(
            "select min(pg_column_size(embedding)), max(pg_column_size(embedding)), count(*)"
            " from dimbench_inline.document_chunks"
        ).fetchone()
        toast = conn.execute(
            "select pg_relation_size(reltoastrelid) from pg_class where oid = %s::regclass", (TABLE,)
        ).fetchone()
    assert (storage, type_name, typmod, others) == ("p", build.vector_type, build.dim, [])
    assert sizes[:2] == (COLUMN_BYTES[column_type],) * 2 and sizes[2] > 0
    assert toast == (0,)
    assert result.detail == {"storage": "plain", "column": f"{build.vector_type}({build.dim})"}


@pytest.mark.parametrize("build", BUILDS, ids=lambda b: b.key)
def test_the_builds_index_is_on_the_one_column(conn, build):
    with installed(conn, build) as result:
        indexes = conn.execute(
            "select pg_get_indexdef(i.indexrelid), pg_relation_size(i.indexrelid) from pg_index i"
            " where i.indrelid = %s::regclass and not i.indisprimary",
            (TABLE,),
        ).fetchall()
    if build.index == "exact":
        assert indexes == [] and result.index_bytes == 0
        return
    ((indexdef, size),) = indexes
    options = ", ".join(f"{k}='{v}'" for k, v in sorted(build.params.items()))
    assert f"USING {build.index} (embedding {build.vector_type}_cosine_ops) WITH ({options})" in indexdef
    assert result.index_bytes == size > 0


def test_the_copy_is_vacuumed_once_installed_so_autovacuum_does_not_start_on_it_mid_measurement(conn):
    with installed(conn, BUILDS[0]):
        (pages, visible) = conn.execute(
            "select relpages, relallvisible from pg_class where oid = %s::regclass", (TABLE,)
        ).fetchone()
    assert pages > 0 and visible == pages


def test_maintenance_on_a_design_s_own_table_is_seen_by_the_measurement_s_watch(conn):
    from dimbench.database.settle import MaintenanceWatch

    with installed(conn, BUILDS[0]):
        with MaintenanceWatch(conn) as watch:
            conn.execute(f"analyze {TABLE}")
    assert watch.flagged
