"""The probed design: routed's rule (exact below T visible rows, the index above) with nothing on the
write path, so one writer of a workspace never waits for another."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from dimbench.database import db, rls
from dimbench.study import designs, index, measure
from dimbench.study.configs import Arm, Build
from dimbench.study.designs import base
from tests.world import World, seed_world

HNSW = Build("vector768", "hnsw", {"m": 16, "ef_construction": 64})
HOLD_S = 3.0  # how long the big ingest keeps its transaction open (a slow client, a big PDF)


@pytest.fixture
def world_db(fresh_schema_dsn: str) -> str:
    with db.connect(fresh_schema_dsn) as conn:
        seed_world(conn)
    return fresh_schema_dsn


def insert_chunks(conn: psycopg.Connection, world: World, n: int, first: int, document: int = 0) -> None:
    """n chunks into one of workspace A's documents, in the request the caller opened."""
    rng = np.random.default_rng(first)
    rows = []
    for i in range(n):
        v = rng.standard_normal(768).astype(np.float32)
        rows.append(
            (world.ws_a, world.docs_a[document], first + i, f"chunk {first + i}", v / np.linalg.norm(v))
        )
    conn.cursor().executemany(
        "insert into public.document_chunks (workspace_id, document_id, chunk_index, content, embedding_768)"
        " values (%s, %s, %s, %s, %s)",
        rows,
    )


def short_ingest_beside_a_long_one(
    dsn: str, world: World, lock_document: bool = False
) -> tuple[float, str | None]:
    """A 400-chunk ingest holds its transaction open; a 10-chunk ingest into the same workspace starts
    while it is open. Returns the short ingest's seconds and its error (None: it went through).
    `lock_document`: another session locks the document's row (the control: a wait to be seen)."""
    opened = threading.Event()

    def long_ingest() -> None:
        with (
            db.use_vectors(db.connect(dsn)) as conn,
            rls.request(conn, "authenticated", world.users["owner"]),
        ):
            insert_chunks(conn, world, 400, 1000)
            with db.connect(dsn) as locker, locker.transaction():
                if lock_document:  # another session holds the document's row: the short insert's
                    # foreign-key check waits for it
                    locker.execute(
                        "select 1 from public.documents where id = %s for update", (world.docs_a[1],)
                    )
                opened.set()
                time.sleep(HOLD_S)  # rolled back at the end: nothing is left behind

    writer = threading.Thread(target=long_ingest)
    writer.start()
    try:
        assert opened.wait(30)
        with db.use_vectors(db.connect(dsn)) as conn:
            start = time.perf_counter()
            error = None
            try:
                with rls.request(conn, "authenticated", world.users["member"]):
                    conn.execute("set local statement_timeout = '8s'")
                    insert_chunks(conn, world, 10, 5000, document=1)  # another document
            except psycopg.errors.QueryCanceled as exc:
                error = exc.diag.message_primary
            return time.perf_counter() - start, error
    finally:
        writer.join()


@pytest.fixture
def installed(world_db: str, request) -> Iterator[str]:
    design = designs.get(request.param)
    with db.connect(world_db) as conn:
        db.use_vectors(conn)
        design.install(conn, HNSW, {"threshold": 100})
    yield world_db
    with db.connect(world_db) as conn:
        design.remove(conn)


@pytest.mark.parametrize("installed", ["probed", "routed"], indirect=True)
def test_a_short_ingest_beside_a_long_one_does_not_wait(installed, world):
    # routed's count was a row per workspace updated in place: the short ingest waited out the long one.
    seconds, error = short_ingest_beside_a_long_one(installed, world)
    assert error is None and seconds <= 0.5, (seconds, error)


@pytest.mark.parametrize("installed", ["probed"], indirect=True)
def test_the_short_ingest_measures_a_wait_when_there_is_one(installed, world):
    """The control: proof that the measurement above can see a wait."""
    seconds, error = short_ingest_beside_a_long_one(installed, world, lock_document=True)
    assert error is None and seconds >= HOLD_S * 0.5, (seconds, error)


def test_install_then_remove_leaves_the_catalog_as_it_was(world_db):
    with db.connect(world_db) as conn:
        before = base.catalog(conn)
        designs.get("probed").install(conn, HNSW, {"threshold": 5})
        designs.get("probed").install(conn, HNSW, {"threshold": 5})
        assert base.catalog(conn) != before
        designs.get("probed").remove(conn)
        designs.get("probed").remove(conn)
        assert base.catalog(conn) == before


def test_probed_answers_exactly_below_its_threshold_and_through_the_index_above(tiny_corpus_db):
    dsn, queries = tiny_corpus_db
    design = designs.get("probed")
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        index.build(conn, HNSW)
        try:
            design.install(conn, HNSW, {"threshold": 10**9})  # everything exact
            arm = Arm("rls", HNSW, 10, "probed")
            exact = [measure.recall_of(measure.ask(conn, arm, q), q, arm) for q in queries]
            assert exact == [1.0] * len(queries)
            design.set_measured(conn, -1)  # everything through the index: it still answers, under RLS
            assert all(measure.ask(conn, arm, q).ids for q in queries if q.truth_ids[768])
        finally:
            design.remove(conn)
            index.drop_study_indexes(conn)


def test_a_user_without_memberships_gets_nothing_through_either_path(tiny_corpus_db):
    from dimbench.study import arms

    dsn, queries = tiny_corpus_db
    design = designs.get("probed")
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        try:
            for threshold in (10**9, -1):
                design.install(conn, Build("vector768", "exact", {}), {"threshold": threshold})
                vector = arms.query_vector(queries[0].vector_1536, HNSW)
                answer = arms.ask(conn, Arm("rls", HNSW, 10, "probed"), vector, uuid.uuid4(), None)
                assert answer.ids == []
        finally:
            design.remove(conn)
