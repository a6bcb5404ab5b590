"""The tenant side channel: does another tenant's data move my results or my latency?

A post-filtered approximate search walks the shared index and drops the rows the caller may not see, so
what it returns — and how long it takes — depends on *other tenants'* vectors (pgEdge
pgedge-rag-server#50: a density side channel). For each design: one fixed tenant and query set
per arm — `rls` (no filter: RLS alone, the users who see the fewest rows; the shared index is then
post-filtered) and `rls_filter` (one workspace of the smallest bucket, with the app's filter) — measured
without, then `cycles` times with a foreign tenant's dense cluster of chunks placed right at those
queries (`per_query` chunks per query, near-duplicates of the query vector, in a workspace none of the
victims may see) and without again once the cluster is deleted: A/B/A/B/A/B/A for three cycles.

Why cycles: one A/B/A of ~1 ms latencies is not reproducible (the drift between passes is larger than a
pass's own bootstrap interval says; README gives the runs that showed it), so the verdict
(evidence/side_channel.py) asks every pass with the cluster to lie beyond every pass without it.

A design is installed once for all its passes and sees the cluster as production would see a tenant's
writes: its indexes and triggers on public take the insert and the delete, and a design with its own copy
of the chunks (inline, partitioned) gets the same rows written into that copy (`Design.follow`) — an
insert into its graph, not a rebuild (reinstalling inline for each of seven passes took 217 s of small's
run). Only a design that must not see the shared index (partial) is installed and removed pass by pass:
the others need that index standing. Each pass measures once the table is settled (vacuum analyze, no
maintenance running). The corpus is left as it was.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from dimbench import stats
from dimbench.corpus.load import copy_statement
from dimbench.database import settle
from dimbench.study import designs, index
from dimbench.study.configs import Arm, Build, QuerySetting
from dimbench.study.grid import Grid
from dimbench.study.measure import StudyQuery, run_cell
from dimbench.study.session import Session

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


def cluster_rows(queries: list[StudyQuery], per_query: int, seed: int = 0) -> list[tuple]:
    """(embedding_1536, embedding_768, embedding_ada or None) near-duplicates of each query (768 = the
    renormalized prefix; ada near the query's own ada vector where the corpus has one)."""
    rng = np.random.default_rng(seed)

    def near(u: np.ndarray) -> np.ndarray:
        v = u + rng.normal(0, NOISE, u.shape).astype(np.float32)
        return (v / np.linalg.norm(v)).astype(np.float32)

    rows = []
    for q in queries:
        ada = q.vectors.get("ada")
        for _ in range(per_query):
            v = near(q.vector_1536)
            prefix = v[:768] / np.linalg.norm(v[:768])
            rows.append((v, prefix.astype(np.float32), None if ada is None else near(ada)))
    return rows


def insert_cluster(conn: psycopg.Connection, workspace: uuid.UUID, document: uuid.UUID, rows: list) -> None:
    ada = all(r[2] is not None for r in rows)  # the ada column is loaded (its queries carry ada vectors)
    columns = ["workspace_id", "document_id", "chunk_index", "content", "embedding_1536", "embedding_768"]
    columns += ["embedding_ada"] if ada else []
    types = ["uuid", "uuid", "int4", "text", "vector", "vector"] + (["vector"] if ada else [])
    statement = copy_statement(sql.Identifier("public", "document_chunks"), columns)
    # binary: the text form of 3,000 vectors cost 12 s of Python per run (three cycles), the insert 1 s
    with conn.transaction(), conn.cursor().copy(statement) as copy:
        copy.set_types(types)
        for i, (v1536, v768, vada) in enumerate(rows):
            values = (workspace, document, MARK + i, "side-channel cluster", v1536, v768)
            copy.write_row(values + ((vada,) if ada else ()))
    settle.vacuum_analyze(conn)


def delete_cluster(conn: psycopg.Connection) -> None:
    conn.execute(
        sql.SQL("delete from public.document_chunks where chunk_index >= {}").format(sql.Literal(MARK))
    )
    settle.vacuum_analyze(conn)


def summary(result: Any, queries: list[StudyQuery], k: int, dim: int | str) -> dict[str, Any]:
    latencies = [a.latency_ns / 1e6 for a in result.answers]
    return {
        "p50_ms": stats.percentiles(latencies, (50,))["p50"],
        "p50_ci95": stats.percentile_ci(latencies, 50),
        "short_share": stats.short_share(
            [len(a.ids) for a in result.answers], [min(k, len(q.truth_ids[dim])) for q in queries]
        ),
        "recall_mean": float(np.mean(result.recalls)) if result.recalls else None,
        "n_queries": len(queries),
    }


@dataclass(frozen=True)
class Entrant:
    """One design in the side channel: on which build, at which query setting, with which parameters."""

    design: str
    build: Build
    setting: QuerySetting
    params: dict[str, Any] = field(hash=False)


def entrants(grid: Grid, session: Session, only: set[str] | None = None) -> list[Entrant]:
    """Each design once (`only` these, when given; shared always) on its first entry's first column type,
    with the build arguments of the grid's first hnsw entry, at its first setting (shared: the first with
    iterative scan on), with the parameters screening measured. A design the grid also lists on another
    column (small's routed on ada) is the same mechanism: a second entrant would add its own index to
    every cluster insert and pass, and a second verdict on the same question."""
    hnsw = next(((b, s) for b, s in grid.builds() if b.index == "hnsw"), None)
    if hnsw is None:
        return []
    first_build, settings = hnsw
    relaxed = [s for s in settings if s.iterative_scan == "relaxed_order"] or settings
    shared = grid.designs_on(first_build)[0]
    out = [Entrant(shared.name, first_build, relaxed[0], {})]
    for spec in grid.designs:  # each on its own first column type, with the first hnsw build's arguments
        if (only is not None and spec.name not in only) or any(e.design == spec.name for e in out):
            continue
        build = Build(spec.column_types[0], "hnsw", first_build.params)
        setting = spec.settings(settings)[0]
        params = dict(spec.params)
        design = designs.get(spec.name)
        if design.measures(params):
            measured = design.measured_at(session.design_detail(spec.name, build.key), setting.key)
            if measured is not None:
                params[design.MEASURED] = measured
        out.append(Entrant(spec.name, build, setting, params))
    # A design that drops the shared index (partial) goes first: the index the others need is then
    # built once, after it, and still stands for confirmation, which reuses it instead of building it.
    return sorted(out, key=lambda e: not designs.get(e.design).layout.excludes_shared_index)


def measure(
    conn: psycopg.Connection,
    entries: list[Entrant],
    groups: dict[tuple[str, str], list[StudyQuery]],
    plan: dict[str, int],
    k: int,
    warmup: int,
) -> list[dict[str, Any]]:
    """Each design: without, then `plan["cycles"]` times with the cluster and without again; `plan` is
    the grid's [side_channel] (queries per arm, cluster chunks per query, cycles)."""
    sets = {arm: victims(groups, plan["queries"], scope) for arm, scope in ARMS.items()}
    sets = {arm: qs for arm, qs in sets.items() if qs}
    everyone = [q for qs in sets.values() for q in qs]
    workspace, document = foreign_workspace(conn, everyone)
    rows = cluster_rows(everyone, plan["per_query"])

    # Installed once, for every pass: each design but one that must not see the shared index (partial).
    standing = [e for e in entries if not designs.get(e.design).layout.excludes_shared_index]

    def one_pass(e: Entrant) -> dict:
        design = designs.get(e.design)
        if e in standing:
            designs.shared_index_for(conn, design, e.build)  # a pass of partial's may have dropped it
        else:
            designs.bring_up(conn, design, e.build, dict(e.params))
        index.query_settings(conn, e.build, e.setting.params, e.setting.iterative_scan)
        try:
            settle.wait_quiet(conn)
            return {
                arm: summary(
                    run_cell(conn, Arm(arm, e.build, k, e.design), qs, warmup), qs, k, e.build.embedding
                )
                for arm, qs in sets.items()
            }
        finally:
            if e not in standing:
                designs.put_away(conn, design)

    def follow() -> None:  # the cluster's insert or delete reaches each standing design's own copy
        for e in standing:
            designs.follow(conn, designs.get(e.design), e.build)

    # The cluster goes in and out once per cycle for every design (each insert and delete is an hnsw
    # insert and a graph repair on every standing index: the side channel's cost), and each pass
    # measures the designs in turn, so each design still sees A/B/A/B/A/B/A.
    timelines: list[list[tuple[bool, dict]]] = [[] for _ in entries]

    def every_design(cluster: bool) -> None:
        for e, timeline in zip(entries, timelines, strict=True):
            timeline.append((cluster, one_pass(e)))

    try:
        for e in standing:
            designs.bring_up(conn, designs.get(e.design), e.build, dict(e.params))
        every_design(False)
        for _ in range(plan["cycles"]):
            insert_cluster(conn, workspace, document, rows)
            try:
                follow()
                every_design(True)
            finally:
                delete_cluster(conn)
                follow()
            every_design(False)
    finally:
        for e in standing:
            designs.put_away(conn, designs.get(e.design))
    out = []
    for e, passes in zip(entries, timelines, strict=True):
        for arm in sets:
            timeline = [{**p[arm], "cluster": c} for c, p in passes]
            out.append(entry(e.design, e.build.key, arm, len(rows), timeline))
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
