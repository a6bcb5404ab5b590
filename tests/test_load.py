"""Loading a corpus: binary COPY, exact rows, idempotent, resumable after a failure or kill -9."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import psycopg
import pytest
from psycopg import sql

from dimbench.corpus.cache import ensure_corpus
from dimbench.corpus.load import load_corpus
from dimbench.corpus.reader import Corpus
from dimbench.database import db, rls, schema
from dimbench.errors import DimbenchError
from dimbench.paths import datasets_dir
from dimbench.study.inputs import study_queries
from tests.test_corpus import quiet, spec_file

TINY = datasets_dir() / "tiny.toml"


@pytest.fixture(scope="module")
def tiny() -> Corpus:
    return ensure_corpus(TINY, progress=False, log=quiet)


def connect(dsn: str) -> psycopg.Connection:
    return db.use_vectors(db.connect(dsn))


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    tables = (
        "workspaces",
        "workspace_members",
        "documents",
        "pdf_documents",
        "processed_documents",
        "document_chunks",
    )
    query = "select count(*) from {}"
    return {t: conn.execute(sql.SQL(query).format(sql.Identifier("public", t))).fetchone()[0] for t in tables}


def chunk_checksum(conn: psycopg.Connection) -> tuple:
    return conn.execute(
        "select count(*), count(distinct id),"
        " md5(string_agg(id::text || embedding_768::text, ',' order by id)) from document_chunks"
    ).fetchone()


def expected_counts(corpus: Corpus) -> dict[str, int]:
    c = corpus.manifest["counts"]
    return {
        "workspaces": c["workspaces"],
        "workspace_members": c["memberships"],
        "documents": c["documents"],
        "pdf_documents": c["documents"],
        "processed_documents": c["documents"],
        "document_chunks": c["chunks"],
    }


def test_a_load_writes_exactly_the_corpus_rows(tiny, fresh_schema_dsn):
    with connect(fresh_schema_dsn) as conn:
        load_corpus(conn, tiny, progress=False)
        assert table_counts(conn) == expected_counts(tiny)


def test_embeddings_round_trip_bit_exactly(tiny, fresh_schema_dsn):
    with connect(fresh_schema_dsn) as conn:
        load_corpus(conn, tiny, progress=False)
        block = next(tiny.chunk_blocks(50))
        for i in (0, 17, 49):
            row = conn.execute(
                "select embedding_1536, embedding_768 from document_chunks where id = %s",
                (tiny.uuid("chunk", i),),
            ).fetchone()
            assert np.array_equal(row[0].to_numpy(), block.emb_1536[i])
            assert np.array_equal(row[1].to_numpy(), block.emb_768[i])


def test_loading_twice_leaves_one_copy(tiny, fresh_schema_dsn):
    with connect(fresh_schema_dsn) as conn:
        load_corpus(conn, tiny, progress=False)
        again = load_corpus(conn, tiny, progress=False)
        assert again.rows == {} and "already loaded" in again.summary()
        assert table_counts(conn) == expected_counts(tiny)


def test_another_corpus_is_refused_unless_replaced(tiny, fresh_schema_dsn, tmp_path):
    other = ensure_corpus(spec_file(tmp_path, seed=99), tmp_path / "other", progress=False, log=quiet)
    with connect(fresh_schema_dsn) as conn:
        load_corpus(conn, tiny, progress=False)
        with pytest.raises(DimbenchError, match="another corpus"):
            load_corpus(conn, other, progress=False)
        load_corpus(conn, other, replace=True, progress=False)
        assert table_counts(conn) == expected_counts(other)
        assert conn.execute("select count(*) from public.workspace_members").fetchone()[0] == len(
            other.memberships
        )


def test_data_dimbench_did_not_load_is_never_touched(tiny, fresh_schema_dsn):
    with connect(fresh_schema_dsn) as conn:
        conn.execute("insert into workspaces (name) values ('a real tenant')")
        with pytest.raises(DimbenchError, match="did not load"):
            load_corpus(conn, tiny, replace=True, progress=False)
        assert table_counts(conn)["workspaces"] == 1


def test_a_load_interrupted_after_a_block_resumes_without_duplicates(tiny, fresh_schema_dsn, new_database):
    clean = new_database("clean")
    with db.connect(clean) as conn:
        schema.apply(conn)
        db.use_vectors(conn)
        load_corpus(conn, tiny, block_rows=300, progress=False)
        want = chunk_checksum(conn)

    def fail_after_third(start: int) -> None:
        if start == 600:
            raise RuntimeError("interrupted")

    with connect(fresh_schema_dsn) as conn:
        with pytest.raises(RuntimeError):
            load_corpus(conn, tiny, block_rows=300, workers=1, progress=False, after_block=fail_after_third)
        assert 0 < table_counts(conn)["document_chunks"] < tiny.n_chunks
        report = load_corpus(conn, tiny, block_rows=300, progress=False)
        assert report.skipped_blocks == 3
        assert chunk_checksum(conn) == want


@pytest.mark.slow
def test_a_load_survives_kill_9_of_the_server(tmp_path):
    smoke_spec = datasets_dir() / "smoke.toml"
    smoke = ensure_corpus(smoke_spec, progress=False, log=quiet)
    server = db.EmbeddedServer(tmp_path / "pgdata")
    server.start()
    try:
        command = [
            sys.executable,
            "-m",
            "dimbench.cli",
            "corpus",
            "load",
            "--spec",
            str(smoke_spec),
            "--pgdata",
            str(server.pgdata),
            "--block-rows",
            "500",
            "--no-progress",
        ]
        loader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        study_dsn = db.with_dbname(server.dsn, "dimbench")
        deadline = time.monotonic() + 60
        blocks = 0
        while blocks < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                with db.connect(study_dsn) as conn:
                    blocks = conn.execute(
                        "select count(*) from dimbench.load_progress where tbl = 'document_chunks'"
                    ).fetchone()[0]
            except (DimbenchError, psycopg.Error):
                continue
        pid = server.postmaster_pid()
        assert pid and blocks >= 3
        subprocess.run(["kill", "-9", str(pid)], check=True)
        loader.wait(timeout=60)
        assert loader.returncode != 0  # the load died with its server
        again = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        with connect(study_dsn) as conn:
            assert table_counts(conn) == expected_counts(smoke)
            total, distinct, _ = chunk_checksum(conn)
            assert total == distinct == smoke.n_chunks
    finally:
        server.stop()


def test_postgres_exact_search_through_rls_matches_the_ground_truth(tiny_results):
    dsn, _ = tiny_results  # the tiny study database: corpus loaded, no vector index left
    corpus = ensure_corpus(TINY, progress=False, log=quiet)
    queries = study_queries(corpus)[::3]
    with connect(dsn) as conn:
        for q in queries:
            for dim in (768, 1536):
                vector = (
                    q.vector_1536
                    if dim == 1536
                    else q.vector_1536[:768] / np.linalg.norm(q.vector_1536[:768])
                )
                filter_ids = list(q.filter_ids) if q.scope == "workspace" else None
                with rls.request(conn, "authenticated", q.user) as c:
                    rows = c.execute(
                        "select id, 1 - similarity from match_document_chunks(%s, 10, %s, %s)",
                        (vector, filter_ids, dim),
                    ).fetchall()
                got = [r[0] for r in rows]
                kth = q.truth_distances[dim][-1]
                assert len(got) == len(q.truth_ids[dim])
                assert all(i in q.truth_ids[dim] or d <= kth + 1e-5 for i, d in rows)


def test_a_resumed_load_keeps_its_block_boundaries_whatever_block_size_is_asked(tiny, fresh_schema_dsn):
    def stop_after_first(start: int) -> None:
        raise RuntimeError("interrupted")

    with connect(fresh_schema_dsn) as conn:
        with pytest.raises(RuntimeError):
            load_corpus(conn, tiny, block_rows=300, workers=1, progress=False, after_block=stop_after_first)
        load_corpus(conn, tiny, block_rows=5000, progress=False)
        total, distinct, _ = chunk_checksum(conn)
        assert total == distinct == tiny.n_chunks


def test_loader_processes_that_cannot_reach_the_server_are_one_error_not_a_traceback(
    tiny, fresh_schema_dsn, monkeypatch, capfd
):
    import dimbench.corpus.load

    # The workers (forked) get a DSN of a server that is not there, as when it goes away mid-load.
    monkeypatch.setattr(dimbench.corpus.load, "full_conninfo", lambda conn: "host=/nonexistent dbname=x")
    with db.connect(fresh_schema_dsn) as conn, pytest.raises(DimbenchError, match="cannot connect"):
        load_corpus(conn, tiny, block_rows=300, progress=False)
    assert "Traceback" not in capfd.readouterr().err
