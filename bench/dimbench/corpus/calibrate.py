"""Calibration: does the synthetic corpus behave like real OpenAI embeddings under pgvector's hnsw?

Real OpenAI embeddings are easy for hnsw: unfiltered recall@10 at pgvector's defaults (m=16,
ef_construction=64, ef_search=40) lands around 0.95–0.99 (DESIGN §2). This measures that number on the
corpus with the real server — a scratch table in the non-exposed `dimbench` schema, dropped afterwards —
and writes it into the manifest, so every result states how realistic its corpus was.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from dimbench.corpus import embeddings
from dimbench.corpus.arrays import RowReader
from dimbench.corpus.reader import Corpus
from dimbench.results import write_atomic

TABLE = sql.Identifier("dimbench", "calibration_vectors")
HNSW = {"m": 16, "ef_construction": 64, "ef_search": 40}


def exact_unfiltered(corpus: Corpus, queries: np.ndarray, dim: int, k: int, block: int = 8192) -> np.ndarray:
    emb = RowReader(corpus.directory / "emb_1536.npy")
    q = queries if dim == 1536 else embeddings.shorten(queries)
    best_d = np.full((len(q), 0), np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    for start in range(0, len(emb), block):
        e = emb.rows(start, min(len(emb), start + block))
        e = e if dim == 1536 else embeddings.shorten(e)
        d = np.concatenate([best_d, 1 - q @ e.T], axis=1)
        i = np.concatenate(
            [best_i, np.broadcast_to(np.arange(start, start + len(e)), (len(q), len(e)))], axis=1
        )
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        best_d, best_i = np.take_along_axis(d, order, axis=1), np.take_along_axis(i, order, axis=1)
    return best_i


def calibrate(conn: psycopg.Connection, corpus: Corpus, *, progress: bool = True) -> dict[str, Any]:
    from tqdm import tqdm

    k = int(corpus.spec["k"])
    queries = corpus.queries()["vector"]
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
        "method": "pgvector hnsw, unfiltered, all corpus queries",
        **HNSW,
        "queries": int(len(queries)),
        "k": k,
    }
    try:
        with tqdm(total=corpus.n_chunks, desc="calibration load", unit="chunk", disable=not progress) as bar:
            for block in corpus.chunk_blocks(5000):
                with conn.cursor().copy(
                    sql.SQL("copy {} (id, e1536, e768) from stdin with (format binary)").format(TABLE)
                ) as copy:
                    copy.set_types(["int4", "vector", "vector"])
                    for i in range(len(block.content)):
                        copy.write_row((block.start + i, block.emb_1536[i], block.emb_768[i]))
                bar.update(len(block.content))
        for dim, column in ((1536, "e1536"), (768, "e768")):
            started = time.perf_counter()
            conn.execute(
                sql.SQL(
                    "create index on {} using hnsw ({} extensions.vector_cosine_ops)"
                    " with (m = 16, ef_construction = 64)"
                ).format(TABLE, sql.Identifier(column))
            )
            build_seconds = time.perf_counter() - started
            conn.execute("set hnsw.ef_search = 40")
            truth = exact_unfiltered(corpus, queries, dim, k)
            search = sql.SQL(
                "select id from {} order by {} operator(extensions.<=>) %s::extensions.vector limit %s"
            ).format(TABLE, sql.Identifier(column))
            recalls = []
            for q, want in zip(queries if dim == 1536 else embeddings.shorten(queries), truth, strict=True):
                got = {r[0] for r in conn.execute(search, (q, k), prepare=True).fetchall()}
                recalls.append(len(got & set(want.tolist())) / k)
            result[f"hnsw_recall_at_{k}_{dim}"] = round(float(np.mean(recalls)), 4)
            result[f"hnsw_build_seconds_{dim}"] = round(build_seconds, 1)
    finally:
        conn.execute(sql.SQL("drop table if exists {}").format(TABLE))
    return result


def record(corpus: Corpus, calibration: dict[str, Any]) -> None:
    """Write the calibration into the manifest (the manifest is not among the checksummed files)."""
    corpus.manifest["calibration"] = calibration
    write_atomic(
        corpus.directory / "manifest.json", json.dumps(corpus.manifest, indent=2, sort_keys=True) + "\n"
    )
