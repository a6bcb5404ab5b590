"""The tenant side channel: does another tenant's data move my results or my latency?

A post-filtered approximate search walks the shared index and drops the rows the caller may not see, so
what it returns — and how long it takes — depends on *other tenants'* vectors (pgEdge
pgedge-rag-server#50: a density side channel). For each design: one fixed tenant and query set
per arm — `rls` (no filter: RLS alone, the users who see the fewest rows; the shared index is then
post-filtered) and `rls_filter` (one workspace of the smallest bucket, with the app's filter) — measured
three times, A/B/A: without, then with a foreign tenant's dense cluster of chunks placed right at those
queries (`per_query` chunks per query, near-duplicates of the query vector, in a workspace none of the
victims may see), then without again once the cluster is deleted. The two passes without bracket the
one with it in time, so the machine's drift shows as their difference (the noise floor) instead of as a
leak. A design leaks when the cluster moves its short-result share beyond the two passes' difference, or
its p50 by more than twice their difference and beyond all three bootstrap intervals.

Each design gets its own A/B/A, one after the other: insert the cluster (superuser), settle (vacuum
analyze, no maintenance running), install the design afresh on it (so its copies and partial indexes
include the cluster, as they would in production), measure, remove it, delete the cluster, settle. The
corpus is left as it was.
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
BRACKETED = "A/B/A"  # an entry's "order" when its two passes without bracket the one with the cluster


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
    design's query settings. Each design: without, with the cluster, without again (A/B/A)."""
    sets = {arm: victims(groups, n, scope) for arm, scope in ARMS.items()}
    sets = {arm: qs for arm, qs in sets.items() if qs}
    everyone = [q for qs in sets.values() for q in qs]
    workspace, document = foreign_workspace(conn, everyone)
    rows = cluster_rows(everyone, per_query)

    def one_pass(name: str, build: Any, install: Callable[[], Any], remove: Callable[[], None]) -> dict:
        install()
        try:
            settle.wait_quiet(conn)
            return {
                arm: summary(run_cell(conn, build, arm, qs, k, warmup, design=name), qs, k, build.dim)
                for arm, qs in sets.items()
            }
        finally:
            remove()

    out = []
    for name, build, install, remove in arms_to_measure:
        before = one_pass(name, build, install, remove)
        insert_cluster(conn, workspace, document, rows)
        try:
            during = one_pass(name, build, install, remove)
        finally:
            delete_cluster(conn)
        after = one_pass(name, build, install, remove)
        out += [entry(name, build.key, arm, len(rows), before[arm], during[arm], after[arm]) for arm in sets]
    return out


def entry(
    design: str, build_key: str, arm: str, cluster: int, before: dict, during: dict, after: dict
) -> dict[str, Any]:
    """One design and arm: the pass with the cluster against the mean of the two bracketing it."""
    base_p50 = (before["p50_ms"] + after["p50_ms"]) / 2
    shorts = (before["short_share"], during["short_share"], after["short_share"])
    return {
        "design": design,
        "build_key": build_key,
        "access": arm,
        "order": BRACKETED,
        "cluster_rows": cluster,
        "without": before,
        "with": during,
        "without_again": after,
        "p50_ratio": during["p50_ms"] / base_p50 if base_p50 else None,
        "short_share_change": (
            during["short_share"] - (before["short_share"] + after["short_share"]) / 2
            if None not in shorts
            else None
        ),
    }


def leaks(entry: dict[str, Any]) -> bool | None:
    """Did the other tenant's data move this design's numbers beyond the measurement's own noise?

    Short results moved: their share changed by more than the two passes without differ (a count).
    p50 moved: the change from the mean of the two passes without exceeds twice their difference, and
    the interval with the cluster overlaps neither of theirs. None when the passes without do not
    bracket the one with it (runs before A/B/A measured A, A again, then the cluster): drift between
    passes is then not excluded, so a p50 change alone is not called a leak."""
    b, a = entry["without"], entry["with"]
    again = entry.get("without_again")
    bracketed = entry.get("order") == BRACKETED and again is not None
    change = entry.get("short_share_change")
    if change:
        floor = 0.0
        if bracketed and b["short_share"] is not None and again["short_share"] is not None:
            floor = abs(again["short_share"] - b["short_share"])
        if abs(change) > floor:
            return True
    passes = [b, again] if again is not None else [b]
    apart = all(_apart(a, p) for p in passes)
    floor = p50_floor(entry)
    if floor is None:
        return None if apart else False
    mean = (b["p50_ms"] + again["p50_ms"]) / 2
    return apart and abs(a["p50_ms"] / mean - 1) > floor


def p50_floor(entry: dict[str, Any]) -> float | None:
    """The smallest p50 move (a share of the bracketing mean) this A/B/A could call a leak: twice the
    two passes without's difference. A "no" says no move beyond it, not that there is none. None when
    the passes do not bracket."""
    b, again = entry["without"], entry.get("without_again")
    if entry.get("order") != BRACKETED or again is None:
        return None
    mean = (b["p50_ms"] + again["p50_ms"]) / 2
    return 2 * abs(again["p50_ms"] - b["p50_ms"]) / mean if mean else None


def _apart(x: dict[str, Any], y: dict[str, Any]) -> bool:
    """The two p50 bootstrap intervals do not overlap."""
    lo_x, hi_x = x.get("p50_ci95") or [x["p50_ms"]] * 2
    lo_y, hi_y = y.get("p50_ci95") or [y["p50_ms"]] * 2
    return hi_x < lo_y or lo_x > hi_y
