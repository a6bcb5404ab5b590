"""Calibration: unfiltered hnsw recall of a corpus, against the same exact top-k and the same tie-credited
recall as the study, loaded through the loader's COPY encoder."""

from __future__ import annotations

import numpy as np
import pytest

from dimbench.corpus import embeddings
from dimbench.corpus.arrays import RowReader
from dimbench.corpus.cache import ensure_corpus
from dimbench.corpus.calibrate import TABLE, _load_scratch, calibrate, exact_unfiltered
from dimbench.corpus.reader import Corpus
from dimbench.database import db
from dimbench.paths import datasets_dir


@pytest.fixture(scope="module")
def tiny() -> Corpus:
    return ensure_corpus(datasets_dir() / "tiny.toml", progress=False, log=lambda *_: None)


@pytest.mark.parametrize("dim", [768, 1536])
def test_the_exact_top_k_is_brute_force_over_every_chunk(tiny, dim):
    queries = tiny.query_vectors()["1536"][:5]
    q = queries if dim == 1536 else embeddings.shorten(queries)  # the generated 768 column is derived
    ids, dist = exact_unfiltered(tiny, q, dim, 10, block=97)  # blocks that do not divide the corpus
    emb = RowReader(tiny.directory / "emb_1536.npy").rows(0, tiny.n_chunks)
    e = emb if dim == 1536 else embeddings.shorten(emb)
    brute = 1.0 - q @ e.T
    np.testing.assert_allclose(dist, np.sort(brute, axis=1)[:, :10], atol=1e-5)
    assert (np.take_along_axis(brute, ids, axis=1) <= dist[:, -1:] + 1e-5).all()


def test_the_scratch_table_holds_the_corpus_vectors_exactly(tiny, fresh_schema_dsn):
    with db.use_vectors(db.connect(fresh_schema_dsn)) as conn:
        conn.execute("create schema if not exists dimbench")
        conn.execute(
            "create table dimbench.calibration_vectors"
            " (id int, e1536 extensions.vector(1536), e768 extensions.vector(768))"
        )
        _load_scratch(conn, tiny, progress=False)
        block = next(tiny.chunk_blocks(7, start=3))
        rows = conn.execute(
            "select e1536, e768 from dimbench.calibration_vectors where id between 3 and 9 order by id"
        ).fetchall()
        count = conn.execute("select count(*) from dimbench.calibration_vectors").fetchone()[0]
    np.testing.assert_array_equal(np.stack([r[0].to_numpy() for r in rows]), block.emb_1536)
    np.testing.assert_array_equal(np.stack([r[1].to_numpy() for r in rows]), block.emb_768)
    assert count == tiny.n_chunks


def test_calibration_measures_recall_and_leaves_no_scratch_table(tiny, fresh_schema_dsn):
    with db.use_vectors(db.connect(fresh_schema_dsn)) as conn:
        result = calibrate(conn, tiny, progress=False)
        assert conn.execute("select to_regclass(%s)", (TABLE.as_string(conn),)).fetchone()[0] is None
    for dim in (768, 1536):
        assert 0.9 <= result[f"hnsw_recall_at_10_{dim}"] <= 1.0  # a tiny corpus: hnsw is all but exact
        assert result[f"hnsw_build_seconds_{dim}"] >= 0


def test_calibration_asks_an_evenly_spaced_sample_of_at_most_max_queries():
    import numpy as np

    from dimbench.corpus.calibrate import sample

    queries = np.arange(2400).reshape(-1, 1)
    picked = sample(queries, 400)[:, 0]
    assert len(picked) == 400 and picked[0] == 0 and picked[-1] == 2399
    assert len(set(np.diff(picked))) <= 2  # evenly spaced (6 or 7 apart after rounding)
    assert len(sample(queries[:300], 400)) == 300  # a small corpus is asked every query
