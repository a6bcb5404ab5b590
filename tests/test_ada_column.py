"""ada-002 as a stored study column: embedding_ada is loaded from a corpus that carries ada vectors, and
each of its searches is judged against its own exact ground truth with its own query vectors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dimbench.corpus.generate import generate, verify
from dimbench.corpus.load import load_corpus
from dimbench.corpus.reader import Corpus
from dimbench.corpus.spec import load_spec
from dimbench.database import db, schema
from dimbench.database.settle import vacuum_analyze
from dimbench.study import measure
from dimbench.study.configs import Arm, Build
from dimbench.study.designs import routed, shared
from dimbench.study.inputs import study_queries

K = 10
EXACT = Build("ada_vector1536", "exact", {})


@pytest.fixture(scope="module")
def ada_db(new_database, tmp_path_factory):
    directory = generate(
        replace(load_spec("tiny"), ada=True), tmp_path_factory.mktemp("ada") / "tiny", progress=False
    )
    corpus = Corpus(directory, verify(directory))
    dsn = new_database("ada_column")
    with db.connect(dsn) as conn:
        schema.apply(conn)
        db.use_vectors(conn)
        load_corpus(conn, corpus, progress=False)
        vacuum_analyze(conn)
    return dsn, corpus, study_queries(corpus)


@pytest.fixture
def conn(ada_db):
    with db.connect(ada_db[0]) as connection:
        db.use_vectors(connection)
        yield connection
        shared.DESIGN.remove(connection)
        routed.DESIGN.remove(connection)


def test_the_ada_column_holds_the_corpuss_ada_vectors(conn, ada_db):
    corpus = ada_db[1]
    n, first = conn.execute(
        "select count(embedding_ada), (array_agg(embedding_ada order by id))[1] from public.document_chunks"
    ).fetchone()
    assert n == corpus.n_chunks
    block = next(corpus.chunk_blocks(corpus.n_chunks))
    order = np.argsort([bytes(u) for u in block.ids])
    assert np.allclose(first.to_numpy(), block.emb_ada[order[0]], atol=1e-6)


def test_exact_search_on_ada_under_rls_finds_its_own_ground_truth_in_every_bucket(conn, ada_db):
    queries = ada_db[2]
    shared.DESIGN.install(conn, EXACT, {})
    result = measure.run_cell(conn, Arm("rls", EXACT, K, "shared"), queries, 0)
    by_bucket: dict[str, list[float]] = {}
    for q, recall in zip(queries, result.recalls, strict=True):
        by_bucket.setdefault(q.bucket, []).append(recall)
    assert by_bucket.keys() == {q.bucket for q in queries} and len(by_bucket) >= 3
    assert all(np.mean(v) == 1.0 for v in by_bucket.values()), by_bucket


def test_ada_queries_are_ada_vectors_not_3_smalls(ada_db):
    from dimbench.study.arms import query_vector

    q = ada_db[2][0]
    assert np.array_equal(query_vector(q, EXACT), q.vectors["ada"])
    assert not np.allclose(query_vector(q, EXACT), query_vector(q, Build("vector1536", "exact", {})))


def test_routed_on_ada_answers_exactly_on_its_exact_path(conn, ada_db):
    queries = ada_db[2]
    build = Build("ada_vector1536", "hnsw", {"m": 16, "ef_construction": 64})
    installed = routed.DESIGN.install(conn, build, {"threshold": routed.ALWAYS_EXACT})
    assert installed.column_type == "ada_vector1536"
    result = measure.run_cell(conn, Arm("rls", build, K, routed.NAME), queries, 0)
    assert min(result.recalls) == 1.0


def test_the_canary_check_runs_on_an_ada_arm_with_ada_vectors(conn, ada_db):
    from dimbench.study.screening import canary_check

    queries = ada_db[2]
    shared.DESIGN.install(conn, EXACT, {})
    someone_elses = sorted({ws for q in queries for ws in q.visible})
    # raises on a leak, or on a query without its ada vector
    canary_check(conn, Arm("rls", EXACT, K, "shared"), queries[0], someone_elses)
