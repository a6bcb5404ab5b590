"""The tenant side channel: does another tenant's data move my results or my latency?

A post-filtered approximate search walks the shared index and drops the rows the caller may not see, so
what it returns — and how long it takes — depends on *other tenants'* vectors (pgEdge
pgedge-rag-server#50: a density side channel). For each design: one fixed tenant and query set
(the corpus's one-workspace queries of the smallest bucket), measured as that tenant's users
(`rls_filter`) without and then with a foreign tenant's dense cluster of chunks placed right at those
queries (`cluster` chunks per query, near-duplicates of the query vector, in a workspace none of the
victims may see). A design whose p50 or short-result share moves leaks the other tenant's density.

The cluster is inserted by the superuser, the table settled (vacuum analyze), each design installed
afresh on it (so its copies and partial indexes include the cluster, as they would in production), and
deleted again at the end (vacuumed), leaving the corpus as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from dimbench.database import settle
from dimbench.study import metrics
from dimbench.study.measure import StudyQuery, run_cell

MARK = 900_000_000  # chunk_index of the cluster's rows: no corpus document has that many chunks
ACCESS = "rls_filter"
NOISE = 0.02  # per-dimension noise around the query: cosine similarity ≈ 0.8 to the query


def victims(groups: dict[tuple[str, str], list[StudyQuery]], n: int) -> list[StudyQuery]:
    """The fixed query set: one-workspace queries of the smallest bucket that has any."""
    for bucket in ("tiny", "small", "medium"):
        queries = groups.get(("workspace", bucket))
        if queries:
            return queries[:n]
    return []


def foreign_workspace(conn: psycopg.Connection, queries: list[StudyQuery]) -> tuple[uuid.UUID, uuid.UUID]:
    """The largest workspace none of the victims may see, and one of its documents."""
    seen = sorted({ws for q in queries for ws in q.visible})
    row = conn.execute(
        "select workspace_id, min(document_id::text)::uuid from public.document_chunks"
        " where workspace_id <> all (%s) group by workspace_id order by count(*) desc limit 1",
        (seen,),
    ).fetchone()
    if row is None:
        raise RuntimeError("no workspace outside the victims' to place a cluster in")
    return row[0], row[1]


def cluster_rows(
    queries: list[StudyQuery], per_query: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(embedding_1536, embedding_768) near-duplicates of each query (768 = renormalized prefix)."""
    rng = np.random.default_rng(seed)
    rows = []
    for q in queries:
        for _ in range(per_query):
            v = q.vector_1536 + rng.normal(0, NOISE, q.vector_1536.shape).astype(np.float32)
            v = v / np.linalg.norm(v)
            prefix = v[:768] / np.linalg.norm(v[:768])
            rows.append((v.astype(np.float32), prefix.astype(np.float32)))
    return rows


def insert_cluster(conn: psycopg.Connection, workspace: uuid.UUID, document: uuid.UUID, rows: list) -> None:
    with (
        conn.transaction(),
        conn.cursor().copy(
            "copy public.document_chunks (workspace_id, document_id, chunk_index, content, embedding_1536,"
            " embedding_768) from stdin"
        ) as copy,
    ):
        for i, (v1536, v768) in enumerate(rows):
            copy.write_row((workspace, document, MARK + i, "side-channel cluster", v1536, v768))
    settle.vacuum_analyze(conn)


def delete_cluster(conn: psycopg.Connection) -> None:
    conn.execute(
        sql.SQL("delete from public.document_chunks where chunk_index >= {}").format(sql.Literal(MARK))
    )
    settle.vacuum_analyze(conn)


def summary(result: Any, queries: list[StudyQuery], k: int, dim: int) -> dict[str, Any]:
    latencies = [a.latency_ns / 1e6 for a in result.answers]
    return {
        "p50_ms": metrics.percentiles(latencies, (50,))["p50"],
        "p50_ci95": metrics.percentile_ci(latencies, 50),
        "short_share": metrics.short_share(
            [len(a.ids) for a in result.answers], [min(k, len(q.truth_ids[dim])) for q in queries]
        ),
        "recall_mean": float(np.mean(result.recalls)) if result.recalls else None,
        "n_queries": len(queries),
    }


def measure(
    conn: psycopg.Connection,
    arms_to_measure: list[tuple[str, Any, Callable[[], Any], Callable[[], None]]],
    queries: list[StudyQuery],
    k: int,
    warmup: int,
    per_query: int,
) -> list[dict[str, Any]]:
    """arms_to_measure: (design name, build, install, remove) per design, `install` also applying the
    design's query settings. Each is measured without the cluster, then all with it."""
    workspace, document = foreign_workspace(conn, queries)
    before: dict[str, dict[str, Any]] = {}
    for name, build, install, remove in arms_to_measure:
        install()
        try:
            result = run_cell(conn, build, ACCESS, queries, k, warmup, design=name)
            before[name] = summary(result, queries, k, build.dim)
        finally:
            remove()
    rows = cluster_rows(queries, per_query)
    insert_cluster(conn, workspace, document, rows)
    out = []
    try:
        for name, build, install, remove in arms_to_measure:
            install()
            try:
                result = run_cell(conn, build, ACCESS, queries, k, warmup, design=name)
                after = summary(result, queries, k, build.dim)
            finally:
                remove()
            b = before[name]
            out.append(
                {
                    "design": name,
                    "build_key": build.key,
                    "access": ACCESS,
                    "cluster_rows": len(rows),
                    "without": b,
                    "with": after,
                    "p50_ratio": after["p50_ms"] / b["p50_ms"] if b["p50_ms"] else None,
                    "short_share_change": (
                        after["short_share"] - b["short_share"]
                        if after["short_share"] is not None and b["short_share"] is not None
                        else None
                    ),
                }
            )
    finally:
        delete_cluster(conn)
    return out


def leaks(entry: dict[str, Any]) -> bool:
    """Did the other tenant's data move this design's numbers beyond the measurement's own noise?

    p50 moved if the with-cluster p50 lies outside the without-cluster p50's bootstrap interval and
    vice versa; short results moved if their share changed at all (a count, not a latency)."""
    b, a = entry["without"], entry["with"]
    moved_short = bool(entry.get("short_share_change"))
    lo_b, hi_b = b.get("p50_ci95") or [b["p50_ms"]] * 2
    lo_a, hi_a = a.get("p50_ci95") or [a["p50_ms"]] * 2
    moved_p50 = hi_a < lo_b or lo_a > hi_b
    return moved_short or moved_p50
