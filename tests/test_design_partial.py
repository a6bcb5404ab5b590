"""The `partial` design on the tiny corpus: install/remove leave the schema as it was, RLS still decides
what each caller sees, big tenants are served by their own partial index and small ones exactly."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from dimbench.database import db
from dimbench.study import arms, index
from dimbench.study.configs import Arm
from dimbench.study.designs import base, partial
from dimbench.study.grid import Build
from dimbench.study.measure import StudyQuery, recall_of, run_cell
from dimbench.vocabulary import PGVECTOR_DEFAULTS

K = 10
MIN_ROWS = 200  # tiny: tenants of 640 and 250 chunks get an index, 38 tenants of 5-160 do not
HNSW = {"m": 16, "ef_construction": 64}
VECTOR768 = Build("vector768", "hnsw", HNSW)


@pytest.fixture(scope="module")
def corpus_conn(tiny_corpus_db) -> Iterator[psycopg.Connection]:
    dsn, _ = tiny_corpus_db
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        yield conn


@pytest.fixture(scope="module")
def queries(tiny_corpus_db) -> list[StudyQuery]:
    return tiny_corpus_db[1]


@pytest.fixture(scope="module")
def installed(corpus_conn: psycopg.Connection) -> Iterator[base.Installed]:
    """The shared study index (the build the design rides on) and the design over it."""
    try:
        index.build(corpus_conn, VECTOR768)
        yield partial.DESIGN.install(corpus_conn, VECTOR768, {"min_rows": MIN_ROWS})
    finally:
        partial.DESIGN.remove(corpus_conn)
        index.drop_study_indexes(corpus_conn)
        pgvector_defaults(corpus_conn)


def pgvector_defaults(conn: psycopg.Connection) -> None:
    for name, value in PGVECTOR_DEFAULTS.items():
        conn.execute("select set_config(%s, %s, false)", (name, value))


def tenant_sizes(conn: psycopg.Connection) -> dict[uuid.UUID, int]:
    return dict(
        conn.execute("select workspace_id, count(*) from public.document_chunks group by 1").fetchall()
    )


def plans_of(dsn: str, access: str, build: Build, query: StudyQuery) -> str:
    """Every plan the design's search runs for one request (auto_explain of its nested statements),
    on a connection of its own so the logging settings go with it."""
    logged: list[str] = []
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        conn.add_notice_handler(lambda diag: logged.append(diag.message_primary or ""))
        conn.execute("load 'auto_explain'")
        for name, value in (
            ("auto_explain.log_min_duration", "0"),
            ("auto_explain.log_nested_statements", "on"),
            ("client_min_messages", "log"),
        ):
            conn.execute("select set_config(%s, %s, false)", (name, value))
        arms.ask(
            conn,
            Arm(access, build, K, partial.NAME),
            arms.query_vector(query.vector_1536, build),
            query.user,
            query.filter_ids,
        )
    return "\n".join(logged)


def indexes_used(plans: str) -> set[str]:
    return set(re.findall(r"(?:Index Scan|Index Only Scan) using (\S+) on document_chunks", plans)) | set(
        re.findall(r"Bitmap Index Scan on (document_chunks\S*|dimbench_\S+)", plans)
    )


def btrees_of_chunks(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "select c.relname from pg_index i join pg_class c on c.oid = i.indexrelid"
        " join pg_am a on a.oid = c.relam where i.indrelid = 'public.document_chunks'::regclass"
        " and a.amname = 'btree'"
    ).fetchall()
    return {name for (name,) in rows}


# install / remove (these two run before the module's `installed` exists: each installs its own) -------


def test_install_then_remove_leaves_the_catalog_as_it_was(corpus_conn):
    before = base.catalog(corpus_conn)
    try:
        partial.DESIGN.install(corpus_conn, VECTOR768, {"min_rows": MIN_ROWS})
        once = base.catalog(corpus_conn)
        partial.DESIGN.install(corpus_conn, VECTOR768, {"min_rows": MIN_ROWS})
        assert base.catalog(corpus_conn) == once
        assert once != before
    finally:
        partial.DESIGN.remove(corpus_conn)
        partial.DESIGN.remove(corpus_conn)
    assert base.catalog(corpus_conn) == before


def test_halfvec_tenants_are_served_by_their_halfvec_partial_index(tiny_corpus_db, corpus_conn, queries):
    halfvec = Build("halfvec1536", "hnsw", HNSW)
    try:
        index.build(corpus_conn, halfvec)
        partial.DESIGN.install(corpus_conn, halfvec, {"min_rows": MIN_ROWS})
        names = partial.indexed_tenants(corpus_conn)
        query = next(q for q in queries if q.scope == "all" and set(q.visible) & set(names))
        used = indexes_used(plans_of(tiny_corpus_db[0], "rls", halfvec, query))
        assert {names[ws] for ws in set(query.visible) & set(names)} <= used
    finally:
        partial.DESIGN.remove(corpus_conn)
        index.drop_study_indexes(corpus_conn, column_type=halfvec.column_type)


def test_install_indexes_exactly_the_tenants_above_min_rows(corpus_conn, installed):
    big = {ws for ws, n in tenant_sizes(corpus_conn).items() if n > MIN_ROWS}
    assert big and set(partial.indexed_tenants(corpus_conn)) == big
    assert installed.detail == {"indexed_tenants": len(big), "min_rows": MIN_ROWS}
    sizes = corpus_conn.execute(
        "select sum(pg_relation_size(indexrelid)) from pg_index i join pg_class c on c.oid = i.indexrelid"
        " where c.relname like 'dimbench\\_partial\\_%' and i.indpred is not null"
    ).fetchone()
    assert installed.index_bytes == sizes[0] > 0


# isolation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("access", ["rls", "rls_filter"])
def test_the_canary_gets_nothing_through_the_design(corpus_conn, installed, queries, access):
    indexed = list(partial.indexed_tenants(corpus_conn))  # real, populated, partially indexed
    vector = arms.query_vector(queries[0].vector_1536, VECTOR768)
    arms.check_canary(corpus_conn, Arm(access, VECTOR768, K, partial.NAME), vector, uuid.uuid4(), indexed)


@pytest.mark.parametrize("access", ["service", "rls", "rls_filter"])
def test_no_answer_holds_a_foreign_row(corpus_conn, installed, queries, access):
    result = run_cell(corpus_conn, Arm(access, VECTOR768, K, partial.NAME), queries, warmup=0)
    assert len(result.answers) == len(queries) and not any(a.failed for a in result.answers)


# routing and recall ------------------------------------------------------------------------------


def test_an_indexed_tenant_is_served_by_its_partial_index(tiny_corpus_db, corpus_conn, installed, queries):
    names = partial.indexed_tenants(corpus_conn)
    query = next(q for q in queries if q.scope == "all" and set(q.visible) & set(names))
    used = indexes_used(plans_of(tiny_corpus_db[0], "rls", VECTOR768, query))
    assert {names[ws] for ws in set(query.visible) & set(names)} <= used
    assert index.index_name(VECTOR768) not in used  # the shared index is there, and not taken


def test_a_small_tenant_is_served_by_the_btree(tiny_corpus_db, corpus_conn, installed, queries):
    names = partial.indexed_tenants(corpus_conn)
    query = next(q for q in queries if q.scope == "all" and not set(q.visible) & set(names))
    used = indexes_used(plans_of(tiny_corpus_db[0], "rls", VECTOR768, query))
    assert used and used <= btrees_of_chunks(corpus_conn)


@pytest.mark.parametrize("access", ["rls", "rls_filter"])
def test_with_a_wide_ef_search_every_answer_is_the_exact_top_k(corpus_conn, installed, queries, access):
    pgvector_defaults(corpus_conn)
    corpus_conn.execute("select set_config('hnsw.ef_search', '400', false)")
    try:
        result = run_cell(corpus_conn, Arm(access, VECTOR768, K, partial.NAME), queries, warmup=0)
    finally:
        pgvector_defaults(corpus_conn)
    assert result.recalls == [1.0] * len(queries)


def test_small_tenants_are_exact_whatever_the_ef_search(corpus_conn, installed, queries):
    indexed = set(partial.indexed_tenants(corpus_conn))
    small = [q for q in queries if not set(q.filter_ids) & indexed]
    assert small
    arm = Arm("rls_filter", VECTOR768, K, partial.NAME)
    # ef_search 1 makes any vector index a poor answer; sort off makes the planner want one anyway.
    corpus_conn.execute("select set_config('hnsw.ef_search', '1', false)")
    corpus_conn.execute("set enable_sort = off")
    try:
        result = run_cell(corpus_conn, arm, small, warmup=0)
    finally:
        pgvector_defaults(corpus_conn)
        corpus_conn.execute("reset enable_sort")
    assert [recall_of(a, q, arm) for a, q in zip(result.answers, small, strict=True)] == [1.0] * len(small)


def test_service_without_a_filter_searches_every_workspace(corpus_conn, installed, queries):
    vector = arms.query_vector(queries[0].vector_1536, VECTOR768)
    answer = arms.ask(corpus_conn, Arm("service", VECTOR768, K, partial.NAME), vector, None, None)
    exact = corpus_conn.execute(
        "select id from (select id, embedding_768 <=> %s as d from public.document_chunks offset 0) s"
        " order by d limit %s",
        (vector, K),
    ).fetchall()
    assert answer.ids == [i for (i,) in exact]
