"""The tenant side channel: does another tenant's data move my results or my latency?

A post-filtered approximate search walks the shared index and drops the rows the caller may not see, so
what it returns — and how long it takes — depends on *other tenants'* vectors (pgEdge
pgedge-rag-server#50: a density side channel). For each design: one fixed tenant and query set
per arm — `rls` (no filter: RLS alone, the users who see the fewest rows; the shared index is then
post-filtered) and `rls_filter` (one workspace of the smallest bucket, with the app's filter) — measured
without, then `cycles` times with a foreign tenant's dense cluster of chunks placed right at those
queries (`per_query` chunks per query, near-duplicates of the query vector, in a workspace none of the
victims may see) and without again once the cluster is deleted: A/B/A/B/A/B/A for three cycles.

Why cycles: one A/B/A of ~1 ms latencies is not reproducible. Five single A/B/A runs on this machine
flagged inline and partitioned in one, shared in another and nothing in the other three, and two passes
without the cluster differed by up to 72 % — the drift between passes is larger than a pass's own
bootstrap interval says. So a design leaks only when every pass with the cluster lies beyond
every pass without it, on the same side (in p50 or in short-result share): a rank test whose chance
under no effect is 2 / C(2c+1, c) (0.057 for three cycles), stated next to every verdict.

Each pass installs the design afresh (so its copies and partial indexes hold the cluster exactly when
public does, as they would in production) after the cluster is inserted (superuser) or deleted and the
table settled (vacuum analyze, no maintenance running), measures, and removes it. The corpus is left as
it was.
"""

from __future__ import annotations

import math
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
    cycles: int = 3,
) -> list[dict[str, Any]]:
    """arms_to_measure: (design name, build, install, remove) per design, `install` also applying the
    design's query settings. Each design: without, then `cycles` times with the cluster and without."""
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
        passes = [(False, one_pass(name, build, install, remove))]
        for _ in range(cycles):
            insert_cluster(conn, workspace, document, rows)
            try:
                passes.append((True, one_pass(name, build, install, remove)))
            finally:
                delete_cluster(conn)
            passes.append((False, one_pass(name, build, install, remove)))
        for arm in sets:
            timeline = [{**p[arm], "cluster": c} for c, p in passes]
            out.append(entry(name, build.key, arm, len(rows), timeline))
    return out


def entry(design: str, build_key: str, arm: str, cluster: int, passes: list[dict]) -> dict[str, Any]:
    """One design and arm: every pass in time order, and the passes with the cluster against those
    without (medians of their p50s, means of their short shares)."""
    without = pooled([p for p in passes if not p["cluster"]])
    with_ = pooled([p for p in passes if p["cluster"]])
    return {
        "design": design,
        "build_key": build_key,
        "access": arm,
        "order": "/".join("B" if p["cluster"] else "A" for p in passes),
        "cluster_rows": cluster,
        "passes": passes,
        "without": without,
        "with": with_,
        "p50_ratio": with_["p50_ms"] / without["p50_ms"] if without["p50_ms"] else None,
        "short_share_change": (
            with_["short_share"] - without["short_share"]
            if None not in (with_["short_share"], without["short_share"])
            else None
        ),
    }


def pooled(passes: list[dict]) -> dict[str, Any]:
    p50s = [p["p50_ms"] for p in passes]
    shorts = [p["short_share"] for p in passes]
    recalls = [p["recall_mean"] for p in passes]
    return {
        "p50_ms": float(np.median(p50s)),
        "p50_range": [min(p50s), max(p50s)],
        "short_share": None if None in shorts else float(np.mean(shorts)),
        "recall_mean": None if None in recalls else float(np.mean(recalls)),
        "n_queries": passes[0]["n_queries"],
        "passes": len(passes),
    }


def leaks(entry: dict[str, Any]) -> bool | None:
    """Did the other tenant's data move this design's numbers in every cycle?

    A leak: every pass with the cluster lies beyond every pass without it, on the same side — in p50 or in
    short-result share. If the passes were exchangeable (no effect) that happens by chance with
    probability `chance(entry)` (2 / C(7, 3) ≈ 0.06 for three cycles). None — not judged — for
    fewer than two passes with the cluster (results measured before repeated cycles): one pass
    against its neighbours cannot tell a move from the machine's drift between passes."""
    moved = moved_by(entry)
    return None if moved is None else bool(moved)


def moved_by(entry: dict[str, Any]) -> list[str] | None:
    """What the cluster separated: "p50" and/or "short share" (empty: nothing); None when not judged."""
    split = _split(entry)
    if split is None:
        return None
    measures = (("p50", "p50_ms"), ("short share", "short_share"))
    return [name for name, key in measures if _separated(*split, key)]


def _split(entry: dict[str, Any]) -> tuple[list[dict], list[dict]] | None:
    """(passes without the cluster, passes with it); None — not judged — for fewer than two with it."""
    passes = entry.get("passes") or []
    with_ = [p for p in passes if p["cluster"]]
    if len(with_) < 2:
        return None
    return [p for p in passes if not p["cluster"]], with_


def _separated(without: list[dict], with_: list[dict], key: str) -> bool:
    a = [p[key] for p in without]
    b = [p[key] for p in with_]
    if None in a or None in b:
        return False
    return min(b) > max(a) or max(b) < min(a)


def chance(entry: dict[str, Any]) -> float | None:
    """The probability that exchangeable passes separate as a leak requires (either side)."""
    split = _split(entry)
    if split is None:
        return None
    without, with_ = split
    return 2 / math.comb(len(without) + len(with_), len(with_))


def p50_floor(entry: dict[str, Any]) -> float | None:
    """How far the passes without the cluster spread around their median p50 (a share of it): a move
    inside that spread cannot separate, so a "no" bounds a leak by it rather than ruling one out."""
    split = _split(entry)
    if split is None:
        return None
    a = [p["p50_ms"] for p in split[0]]
    median = float(np.median(a))
    return max(max(a) / median - 1, 1 - min(a) / median) if median else None
