"""The routed design: exact below T visible rows, the vector index above, decided per call under RLS."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from dimbench.database import db
from dimbench.database.rls import claims_for
from dimbench.study import arms, index, measure, plans
from dimbench.study.configs import Arm
from dimbench.study.designs import base, routed
from dimbench.study.grid import Build
from dimbench.study.live_ingest import Author, authors

K = 10
HNSW = Build("vector768", "hnsw", {"m": 16, "ef_construction": 64})


@pytest.fixture
def conn(tiny_corpus_db) -> Iterator[psycopg.Connection]:
    dsn, _ = tiny_corpus_db
    with db.connect(dsn) as connection:
        db.use_vectors(connection)
        yield connection
        routed.DESIGN.remove(connection)
        index.drop_study_indexes(connection)


@pytest.fixture
def queries(tiny_corpus_db):
    return tiny_corpus_db[1]


@pytest.fixture
def installed(conn) -> psycopg.Connection:
    index.build(conn, HNSW)
    routed.DESIGN.install(conn, HNSW, {"threshold": "measured"})
    return conn


def test_install_then_remove_leaves_the_catalog_as_it_was(conn):
    before = base.catalog(conn)
    routed.DESIGN.install(conn, HNSW, {"threshold": 100})
    routed.DESIGN.install(conn, HNSW, {"threshold": 100})
    assert base.catalog(conn) != before
    routed.DESIGN.remove(conn)
    routed.DESIGN.remove(conn)
    assert base.catalog(conn) == before


def test_the_canary_gets_nothing_through_either_path(installed):
    for threshold in (routed.ALWAYS_EXACT, routed.ALWAYS_INDEX):
        routed.set_threshold(installed, threshold)
        someone = installed.execute("select workspace_id from public.document_chunks limit 1").fetchone()
        for access in ("rls", "rls_filter"):
            answer = arms.ask(
                installed, Arm(access, HNSW, K, routed.NAME), _vector(), uuid.uuid4(), [someone[0]]
            )
            assert answer.ids == []


def test_every_arm_returns_only_rows_its_user_may_see(installed, queries):
    for threshold in (routed.ALWAYS_EXACT, routed.ALWAYS_INDEX):
        routed.set_threshold(installed, threshold)
        for access in ("service", "rls", "rls_filter"):
            measure.run_cell(installed, Arm(access, HNSW, K, routed.NAME), queries, 0)  # raises on a breach


def test_the_exact_path_returns_exactly_the_exact_top_k(installed, queries):
    routed.set_threshold(installed, routed.ALWAYS_EXACT)
    for access in ("rls", "rls_filter", "service"):
        arm = Arm(access, HNSW, K, routed.NAME)
        result = measure.run_cell(installed, arm, queries, 0)
        for answer, q in zip(result.answers, queries, strict=True):
            assert answer.ids == q.truth_ids[768] or measure.recall_of(answer, q, arm) == 1.0


def test_the_index_path_returns_the_rows_of_the_shared_index_at_the_same_settings(installed, queries):
    routed.set_threshold(installed, routed.ALWAYS_INDEX)
    index.query_settings(installed, HNSW, {"ef_search": 40}, "relaxed_order")
    installed.execute("set enable_sort = off")  # so the shared design's plan uses its index too
    for q in queries:
        shared = measure.ask(installed, Arm("rls_filter", HNSW, K), q)
        mine = measure.ask(installed, Arm("rls_filter", HNSW, K, routed.NAME), q)
        assert mine.ids == shared.ids


def test_under_rls_the_largest_tenant_takes_the_index_and_the_smallest_the_btree(installed, queries):
    mine = [q for q in queries if q.scope == "all"]  # the `rls` arm: RLS alone says what a user sees
    by_size = sorted(mine, key=lambda q: routed.visible_rows(installed, q.visible))
    smallest, largest = by_size[0], by_size[-1]
    threshold = routed.visible_rows(installed, smallest.visible)
    assert routed.visible_rows(installed, largest.visible) > threshold
    routed.set_threshold(installed, threshold)
    arm = Arm("rls", HNSW, K, routed.NAME)
    assert plans.audit(installed, arm, largest)["path"] == "vector index"
    assert plans.audit(installed, arm, smallest)["path"] == "btree + sort"


def test_the_count_follows_inserts_and_deletes(installed):
    ws, doc = installed.execute(
        "select workspace_id, document_id from public.document_chunks limit 1"
    ).fetchone()
    before = routed.visible_rows(installed, [ws])
    with installed.transaction(force_rollback=True):
        installed.execute(
            "insert into public.document_chunks (workspace_id, document_id, chunk_index, content)"
            " values (%s, %s, 100000, 'x'), (%s, %s, 100001, 'y')",
            (ws, doc, ws, doc),
        )
        assert routed.visible_rows(installed, [ws]) == before + 2
        installed.execute(
            "delete from public.document_chunks where chunk_index >= 100000 and workspace_id = %s", (ws,)
        )
        assert routed.visible_rows(installed, [ws]) == before


def test_the_threshold_is_the_measured_crossover():
    samples = [
        routed.Sample(10, exact_ms=1.0, index_ms=2.0, index_recall=1.0),
        routed.Sample(100, exact_ms=2.0, index_ms=2.5, index_recall=1.0),
        routed.Sample(1000, exact_ms=9.0, index_ms=3.0, index_recall=1.0),
        routed.Sample(5000, exact_ms=40.0, index_ms=3.5, index_recall=1.0),
    ]
    assert routed.choose_threshold(samples, 0.95) == 100


def test_one_neighbour_missed_among_routed_samples_does_not_keep_them_exact():
    samples = [
        routed.Sample(10, exact_ms=1.0, index_ms=2.0, index_recall=1.0),
        routed.Sample(1000, exact_ms=9.0, index_ms=3.0, index_recall=0.9),
        *[routed.Sample(5000 + i, exact_ms=40.0, index_ms=3.5, index_recall=1.0) for i in range(9)],
    ]
    assert routed.choose_threshold(samples, 0.95) == 10


def test_samples_the_index_answers_badly_are_not_routed_to_it():
    samples = [
        routed.Sample(10, exact_ms=5.0, index_ms=1.0, index_recall=0.4),
        routed.Sample(5000, exact_ms=40.0, index_ms=3.5, index_recall=1.0),
    ]
    assert routed.choose_threshold(samples, 0.95) == 10


def test_calibration_sets_the_threshold_it_reports(installed, queries):
    found = routed.Routed(repeats=1).calibrate(installed, HNSW, queries[:6], K)
    (stored,) = installed.execute("select threshold from dimbench_routed.settings").fetchone()
    assert stored == found["threshold"]
    assert len(found["samples"]) == 6


def _vector():
    import numpy as np

    v = np.ones(768, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_a_measured_threshold_is_read_at_its_own_query_setting():
    detail = {"thresholds": {"(ef_search=40)/relaxed_order": 5000, "(ef_search=100)/relaxed_order": 300}}
    assert routed.DESIGN.measured_at(detail, "(ef_search=100)/relaxed_order") == 300
    assert routed.DESIGN.measured_at(detail, "(ef_search=40)/relaxed_order") == 5000
    assert routed.DESIGN.measured_at(detail, "(ef_search=200)/relaxed_order") is None


def test_one_threshold_for_every_setting_is_read_from_results_written_before_per_setting_calibration():
    assert routed.DESIGN.measured_at({"threshold": 960}, "(ef_search=100)/relaxed_order") == 960


# --- the write path: the count must not make writers wait ---------------------------------------


def insert_chunks(conn: psycopg.Connection, author, document, first: int, n: int) -> None:
    """Statements of one request by `author`: n chunks of `document` (no embeddings: the count is what
    is measured here, not the index)."""
    conn.execute(
        "insert into public.document_chunks (workspace_id, document_id, chunk_index, content)"
        " select %s, %s, i, 'x' from generate_series(%s::int, %s::int) i",
        (author.workspace, document, first, first + n - 1),
    )


@pytest.fixture
def writer(installed, tiny_corpus_db):
    """The largest workspace's owner-side writer and one of its documents, the count installed."""
    ws, users = next(iter(authors(installed).items()))
    (doc,) = installed.execute(
        "select id from public.documents where workspace_id = %s limit 1", (ws,)
    ).fetchone()
    yield tiny_corpus_db[0], Author(ws, users[0]), doc
    installed.execute("delete from public.document_chunks where chunk_index >= 100000")


def test_the_count_is_exact_after_concurrent_writers_and_deletes(installed, writer):
    dsn, author, doc = writer
    ws = author.workspace
    before = routed.visible_rows(installed, [ws])

    def write(first: int) -> None:
        for i in range(5):
            with db.connect(dsn) as conn, conn.transaction():
                conn.execute(arms.PREAMBLE, ("authenticated", claims_for("authenticated", author.user), None))
                insert_chunks(conn, author, doc, first + 10 * i, 10)
                if i % 2:
                    conn.execute(
                        "delete from public.document_chunks where workspace_id = %s and chunk_index"
                        " between %s and %s",
                        (ws, first + 10 * i, first + 10 * i + 2),
                    )

    threads = [threading.Thread(target=write, args=(100000 + 1000 * t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (actual,) = installed.execute(
        "select count(*) from public.document_chunks where workspace_id = %s", (ws,)
    ).fetchone()
    assert actual == before + 3 * (50 - 2 * 3)
    assert routed.visible_rows(installed, [ws]) == actual


def test_a_writer_skips_the_fold_while_another_transaction_folds_and_the_count_stays_exact(installed, writer):
    dsn, author, doc = writer
    ws = author.workspace
    before = routed.visible_rows(installed, [ws])
    deltas = sql.Identifier("dimbench_routed", "workspace_chunk_deltas")
    folding = db.connect(dsn)
    try:
        folding.execute("begin")
        folding.execute("select pg_advisory_xact_lock(%s)", (routed.FOLD_LOCK,))
        with db.connect(dsn) as conn, conn.transaction():
            conn.execute(arms.PREAMBLE, ("authenticated", claims_for("authenticated", author.user), "2s"))
            insert_chunks(conn, author, doc, 100000, 7)
        (waiting,) = installed.execute(sql.SQL("select count(*) from {}").format(deltas)).fetchone()
        assert waiting >= 1  # not folded: the lock was taken
        assert routed.visible_rows(installed, [ws]) == before + 7
    finally:
        folding.execute("rollback")
        folding.close()
    with db.connect(dsn) as conn, conn.transaction():
        conn.execute(arms.PREAMBLE, ("authenticated", claims_for("authenticated", author.user), None))
        insert_chunks(conn, author, doc, 100100, 3)
    (waiting,) = installed.execute(sql.SQL("select count(*) from {}").format(deltas)).fetchone()
    assert waiting == 0  # the next writer folded everything
    assert routed.visible_rows(installed, [ws]) == before + 10


def test_the_live_check_finds_every_count_right_after_writes_and_a_wrong_one_by_its_rows(installed, writer):
    dsn, author, doc = writer
    with db.connect(dsn) as conn, conn.transaction():
        conn.execute(arms.PREAMBLE, ("authenticated", claims_for("authenticated", author.user), None))
        insert_chunks(conn, author, doc, 100000, 12)
    check = routed.DESIGN.live_check(installed)
    assert check["miscounted"] == 0 and check["workspaces"] > 1
    installed.execute(
        sql.SQL("update {} set chunks = chunks + 5 where workspace_id = %s").format(
            sql.Identifier("dimbench_routed", "workspace_chunks")
        ),
        (author.workspace,),
    )
    check = routed.DESIGN.live_check(installed)
    assert check["miscounted"] == 1 and check["largest_error_rows"] == 5
