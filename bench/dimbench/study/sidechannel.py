"""The tenant side channel: does another tenant's data move my results or my latency?

A post-filtered approximate search walks the shared index and drops the rows the caller may not see, so
what it returns — and how long it takes — depends on *other tenants'* vectors (pgEdge
pgedge-rag-server#50: a density side channel). For each design: one fixed tenant and query set
per arm — `rls` (no filter: RLS alone, the users who see the fewest rows; the shared index is then
post-filtered) and `rls_filter` (one workspace of the smallest bucket, with the app's filter) — measured
twice without (an A/A pass: the noise floor) and then with a foreign tenant's dense cluster of chunks
placed right at those queries (`per_query` chunks per query, near-duplicates of the query vector, in a
workspace none of the victims may see). A design leaks when the cluster moves its short-result share,
or its p50 by more than twice the A/A difference and beyond both bootstrap intervals.

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
ARMS = {"rls": "all", "rls_filter": "workspace"}  # arm -> the scope its victims' queries have
NOISE = 0.02  # per-dimension noise around the query: cosine similarity ≈ 0.8 to the query


def victims(
    groups: dict[tuple[str, str], list[StudyQuery]], n: int, scope: str = "workspace"
) -> list[StudyQuery]:
    """The fixed query set of one scope: the queries of the smallest bucket that has any."""
    for bucket in ("tiny", "small", "medium"):
        queries = groups.get((scope, bucket))
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
    groups: dict[tuple[str, str], list[StudyQuery]],
    n: int,
    k: int,
    warmup: int,
    per_query: int,
) -> list[dict[str, Any]]:
    """arms_to_measure: (design name, build, install, remove) per design, `install` also applying the
    design's query settings. Each is measured twice without the cluster, then all with it."""
    sets = {arm: victims(groups, n, scope) for arm, scope in ARMS.items()}
    sets = {arm: qs for arm, qs in sets.items() if qs}
    everyone = [q for qs in sets.values() for q in qs]
    workspace, document = foreign_workspace(conn, everyone)

    def both(name: str, build: Any) -> dict[str, dict[str, Any]]:
        return {
            arm: summary(run_cell(conn, build, arm, qs, k, warmup, design=name), qs, k, build.dim)
            for arm, qs in sets.items()
        }

    before: dict[str, list[dict[str, dict[str, Any]]]] = {}
    for name, build, install, remove in arms_to_measure:
        install()
        try:
            before[name] = [both(name, build), both(name, build)]  # A, A again: the noise floor
        finally:
            remove()
    rows = cluster_rows(everyone, per_query)
    insert_cluster(conn, workspace, document, rows)
    out = []
    try:
        for name, build, install, remove in arms_to_measure:
            install()
            try:
                after = both(name, build)
            finally:
                remove()
            for arm in sets:
                b, again, a = before[name][0][arm], before[name][1][arm], after[arm]
                out.append(
                    {
                        "design": name,
                        "build_key": build.key,
                        "access": arm,
                        "cluster_rows": len(rows),
                        "without": b,
                        "without_again": again,
                        "with": a,
                        "p50_ratio": a["p50_ms"] / b["p50_ms"] if b["p50_ms"] else None,
                        "short_share_change": (
                            a["short_share"] - b["short_share"]
                            if a["short_share"] is not None and b["short_share"] is not None
                            else None
                        ),
                    }
                )
    finally:
        delete_cluster(conn)
    return out


def leaks(entry: dict[str, Any]) -> bool | None:
    """Did the other tenant's data move this design's numbers beyond the measurement's own noise?

    Short results moved: their share changed (a count). p50 moved: the change exceeds twice the A/A
    difference of the two passes without the cluster and the two bootstrap intervals do not overlap.
    None when the run measured no A/A pass (older runs): drift between passes is then not excluded, so
    a p50 change alone is not called a leak."""
    b, a = entry["without"], entry["with"]
    if entry.get("short_share_change"):
        return True
    again = entry.get("without_again")
    lo_b, hi_b = b.get("p50_ci95") or [b["p50_ms"]] * 2
    lo_a, hi_a = a.get("p50_ci95") or [a["p50_ms"]] * 2
    apart = hi_a < lo_b or lo_a > hi_b
    if again is None:
        return None if apart else False
    noise = abs(again["p50_ms"] - b["p50_ms"])
    return apart and abs(a["p50_ms"] - b["p50_ms"]) > 2 * noise
