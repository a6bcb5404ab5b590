"""The bq_rerank design on the tiny corpus: it installs and removes cleanly, keeps tenants apart, its
inner query rides the bit index, and its answers are ordered by the full vector's exact distance."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from psycopg import sql

from dimbench.database import db
from dimbench.study import arms, index
from dimbench.study.configs import Arm
from dimbench.study.designs import base, bq_rerank
from dimbench.study.grid import Build
from dimbench.study.measure import StudyQuery, recall_of, run_cell

NAME = bq_rerank.NAME
K = 10
HNSW = {"m": 16, "ef_construction": 64}
COLUMN_TYPES = ("vector768", "vector1536", "halfvec1536")


def hnsw(column_type: str) -> Build:
    return Build(column_type, "hnsw", dict(HNSW))


@pytest.fixture
def admin(tiny_corpus_db) -> Iterator[psycopg.Connection]:
    with db.connect(tiny_corpus_db[0]) as conn:
        db.use_vectors(conn)
        yield conn


@pytest.fixture
def own(admin) -> Iterator[psycopg.Connection]:
    """A connection for a test that installs the design itself: removed afterwards, even on failure."""
    try:
        yield admin
    finally:
        bq_rerank.DESIGN.remove(admin)


@pytest.fixture
def queries(tiny_corpus_db) -> list[StudyQuery]:
    return tiny_corpus_db[1]


@pytest.fixture(scope="class", params=COLUMN_TYPES)
def installed(request, tiny_corpus_db) -> Iterator[Build]:
    """The design installed (default factor) on one column type's hnsw build, shared by the tests that
    only search it (TestSearch); removed when the class is done with it."""
    build = hnsw(request.param)
    with db.connect(tiny_corpus_db[0]) as conn:
        bq_rerank.DESIGN.install(conn, build, {})
        try:
            yield build
        finally:
            bq_rerank.DESIGN.remove(conn)


def set_hnsw(conn: psycopg.Connection, ef_search: int, iterative_scan: str) -> None:
    conn.execute("select set_config('hnsw.ef_search', %s, false)", (str(ef_search),))
    conn.execute("select set_config('hnsw.iterative_scan', %s, false)", (iterative_scan,))


def explain_candidates(conn: psycopg.Connection, build: Build, query: StudyQuery) -> str:
    """The plan of the function's inner query, unfiltered, as service_role, with the planner's own costs
    (no enable_seqscan = off: on 2k rows it already prefers the bit index to a full sort)."""
    vector = arms.query_vector(query.vector_1536, build)
    literal = sql.SQL("{}::extensions.vector").format(sql.Literal(str(vector.tolist()).replace(" ", "")))
    inner = bq_rerank.candidates(build, literal, sql.Literal(K * 4), sql.SQL("null::uuid[]"))
    with conn.transaction(force_rollback=True):
        conn.execute("set local role service_role")
        rows = conn.execute(sql.SQL("explain (costs off) {}").format(inner)).fetchall()
    return "\n".join(r[0] for r in rows)


def exact_distances(
    conn: psycopg.Connection, build: Build, vector: np.ndarray, ids: list[uuid.UUID]
) -> dict[uuid.UUID, float]:
    """Each row's cosine distance to the query, computed on its own (no index, no design)."""
    statement = sql.SQL(
        "select c.id, {} operator(extensions.<=>) {} from public.document_chunks c where c.id = any (%s)"
    ).format(build.expression("c"), query_literal(build))
    return dict(conn.execute(statement, (vector, ids)).fetchall())


def query_literal(build: Build) -> sql.Composable:
    if build.vector_type == "halfvec":
        return sql.SQL("(%s::extensions.vector::extensions.halfvec(1536))")
    return sql.SQL("%s::extensions.vector")


class TestSearch:
    """Searches through one installed design per column type."""

    @pytest.mark.parametrize("access", ["rls", "rls_filter"])
    def test_the_canary_gets_no_rows_through_the_design(self, admin, queries, installed, access):
        build = installed
        someone_elses = sorted({ws for q in queries for ws in q.filter_ids})
        vector = arms.query_vector(queries[0].vector_1536, build)
        arms.check_canary(admin, Arm(access, build, K, NAME), vector, uuid.uuid4(), someone_elses)
        # the check can fail: the same request as service_role (no RLS) does see those rows
        seen = arms.ask(
            admin, Arm(access, build, K, NAME, "service_role"), vector, uuid.uuid4(), someone_elses
        )
        assert seen.ids

    def test_every_answer_passes_the_foreign_row_check_in_every_arm(self, admin, queries, installed):
        build = installed
        set_hnsw(admin, 40, "relaxed_order")
        for access in ("service", "rls", "rls_filter"):
            # run_cell raises on any foreign row
            result = run_cell(admin, Arm(access, build, K, NAME), queries, warmup=0)
            assert all(a.ids for a in result.answers)

    def test_the_inner_query_scans_the_bit_index(self, admin, queries, installed):
        build = installed
        plan = explain_candidates(admin, build, queries[0])
        assert f"Index Scan using {bq_rerank.index_name(build)}" in plan, plan

    def test_answers_are_sorted_by_the_exact_cosine_distance_of_their_rows(self, admin, queries, installed):
        build = installed
        for query in queries:
            vector = arms.query_vector(query.vector_1536, build)
            answer = arms.ask(admin, Arm("service", build, K, NAME), vector, query.user, query.filter_ids)
            exact = exact_distances(admin, build, vector, answer.ids)
            assert answer.distances == sorted(answer.distances)
            assert answer.distances == pytest.approx([exact[i] for i in answer.ids], abs=1e-6)


def test_install_then_remove_leaves_the_catalog_as_it_was_and_both_are_idempotent(own):
    before = base.catalog(own)
    build = hnsw("vector768")
    first = bq_rerank.DESIGN.install(own, build, {})
    installed = base.catalog(own)
    second = bq_rerank.DESIGN.install(own, build, {})
    assert base.catalog(own) == installed
    assert installed != before
    assert first.index_bytes > 0 and second.index_bytes > 0  # hnsw levels are random: sizes vary a little
    assert first.detail == {"factor": 4, "bits": 768} and first.table_bytes == 0
    bq_rerank.DESIGN.remove(own)
    bq_rerank.DESIGN.remove(own)
    assert base.catalog(own) == before


def mean_recall(conn: psycopg.Connection, build: Build, queries: list[StudyQuery]) -> float:
    arm = Arm("service", build, K, NAME)
    answers = run_cell(conn, arm, queries, warmup=0).answers
    return float(np.mean([recall_of(a, q, arm) for a, q in zip(answers, queries, strict=True)]))


@pytest.mark.parametrize("column_type", COLUMN_TYPES)
def test_a_large_factor_recovers_recall_and_factor_one_does_no_better(own, queries, column_type):
    build = hnsw(column_type)
    set_hnsw(own, 400, "relaxed_order")
    bq_rerank.DESIGN.install(own, build, {"factor": 50})
    wide = mean_recall(own, build, queries)
    bq_rerank.DESIGN.install(own, build, {"factor": 1})
    narrow = mean_recall(own, build, queries)
    assert wide >= 0.9
    assert narrow <= wide


@pytest.mark.parametrize("column_type", COLUMN_TYPES)
def test_the_bit_index_is_smaller_than_the_full_hnsw_index_of_the_column(own, column_type):
    build = hnsw(column_type)
    installed = bq_rerank.DESIGN.install(own, build, {})
    try:
        full = index.build(own, build)
    finally:
        index.drop_study_indexes(own, column_type=column_type)
    print(f"{column_type}: bq {installed.index_bytes} B, full hnsw {full.index_bytes} B")
    assert installed.index_bytes < full.index_bytes
