"""Calibration: does the synthetic corpus behave like real OpenAI embeddings under pgvector's hnsw?

Real OpenAI embeddings are easy for hnsw: unfiltered recall@10 at pgvector's defaults (m=16,
ef_construction=64, ef_search=40) lands around 0.95–0.99 (DESIGN §2). This measures that number on the
corpus with the real server — a scratch table in the non-exposed `dimbench` schema, dropped afterwards —
and writes it into the manifest, so every result states how realistic its corpus was.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from dimbench.corpus import columns
from dimbench.corpus.generate import write_manifest
from dimbench.corpus.groundtruth import TopK
from dimbench.corpus.load import copy_statement, fixed_width_copy_data, int4_fields, vector_fields
from dimbench.corpus.reader import Corpus
from dimbench.progress import bar
from dimbench.progress import index_build as watch_build
from dimbench.stats import recall_at_k

TABLE = sql.Identifier("dimbench", "calibration_vectors")
HNSW = {"m": 16, "ef_construction": 64, "ef_search": 40}
# Enough for a recall near 0.97 to be known within about ±0.01; more only costs time (exact top-k in
# numpy and one search per query per dimension) on every fresh corpus.
MAX_QUERIES = 400


def sample(queries: np.ndarray, at_most: int = MAX_QUERIES) -> np.ndarray:
    """At most `at_most` of the corpus's queries, evenly spaced (queries come grouped by scope and
    bucket, so every group is represented)."""
    if len(queries) <= at_most:
        return queries
    return queries[np.linspace(0, len(queries) - 1, at_most).round().astype(int)]


def exact_unfiltered(
    corpus: Corpus, queries: np.ndarray, dim: int, k: int, block: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """(Q, k) ids and cosine distances of the true top-k over the whole corpus (no tenant filter), among
    the rows of the `dim` column itself; `queries` are that column's query vectors."""
    emb = columns.ColumnRows(corpus.directory, str(dim))
    top = TopK(len(queries), k)
    for start in range(0, len(emb), block):
        e = emb.rows(start, min(len(emb), start + block))
        top.push((1.0 - queries @ e.T).astype(np.float32), start)
    emb.close()
    return top.result()


def _load_scratch(conn: psycopg.Connection, corpus: Corpus, progress: bool) -> None:
    """Both embeddings into the scratch table, through the loader's binary COPY encoder."""
    statement = copy_statement(TABLE, ["id", "e1536", "e768"])
    with bar(total=corpus.n_chunks, desc="calibration load", unit="chunk", progress=progress) as shown:
        for block in corpus.chunk_blocks(5000):
            ids = np.arange(block.start, block.start + len(block.content))
            data = fixed_width_copy_data(
                [int4_fields(ids), vector_fields(block.emb_1536), vector_fields(block.emb_768)]
            )
            with conn.cursor().copy(statement) as copy:
                copy.write(data)
            shown.update(len(block.content))


def calibrate(conn: psycopg.Connection, corpus: Corpus, *, progress: bool = True) -> dict[str, Any]:
    k = int(corpus.spec["k"])
    vectors = corpus.query_vectors()
    every = vectors["1536"]
    queries = sample(every)
    conn.execute("create schema if not exists dimbench")
    conn.execute(sql.SQL("drop table if exists {}").format(TABLE))
    conn.execute(
        sql.SQL(
            "create table {} (id int, e1536 extensions.vector(1536), e768 extensions.vector(768))"
        ).format(TABLE)
    )
    conn.execute(
        sql.SQL(
            "alter table {} alter column e1536 set storage external, alter column e768 set storage plain"
        ).format(TABLE)
    )
    result: dict[str, Any] = {
        "method": f"pgvector hnsw, unfiltered, {len(queries)} of {len(every)} corpus queries, evenly spaced",
        **HNSW,
        "queries": int(len(queries)),
        "k": k,
    }
    try:
        _load_scratch(conn, corpus, progress)
        for dim, column in ((1536, "e1536"), (768, "e768")):
            started = time.perf_counter()
            with watch_build(conn, f"calibration hnsw {dim}", progress=progress):
                conn.execute(
                    sql.SQL(
                        "create index on {} using hnsw ({} extensions.vector_cosine_ops)"
                        " with (m = 16, ef_construction = 64)"
                    ).format(TABLE, sql.Identifier(column))
                )
            build_seconds = time.perf_counter() - started
            conn.execute("set hnsw.ef_search = 40")
            asked = sample(vectors[str(dim)])
            truth_ids, truth_dist = exact_unfiltered(corpus, asked, dim, k)
            search = sql.SQL(
                "select id, {col} operator(extensions.<=>) %s::extensions.vector from {}"
                " order by {col} operator(extensions.<=>) %s::extensions.vector limit %s"
            ).format(TABLE, col=sql.Identifier(column))
            recalls = []
            for q, want_ids, want_dist in zip(asked, truth_ids, truth_dist, strict=True):
                got = conn.execute(search, (q, q, k), prepare=True).fetchall()
                recalls.append(
                    recall_at_k([r[0] for r in got], [r[1] for r in got], want_ids.tolist(), want_dist, k)
                )
            result[f"hnsw_recall_at_{k}_{dim}"] = round(float(np.mean(recalls)), 4)
            result[f"hnsw_build_seconds_{dim}"] = round(build_seconds, 1)
    finally:
        conn.execute(sql.SQL("drop table if exists {}").format(TABLE))
    return result


def record(corpus: Corpus, calibration: dict[str, Any]) -> None:
    """Write the calibration into the manifest (the manifest is not among the checksummed files)."""
    corpus.manifest["calibration"] = calibration
    write_manifest(corpus.directory, corpus.manifest, checksum=False)
