"""Measure one cell: a set of queries, one access arm, one query setting, on one built index.

Turns raw answers into the metrics of a measurements.jsonl line. The raw answers are kept (ids and
latencies) for re-analysis; every number in the line is derived from them here.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from dimbench import stats
from dimbench.study import arms
from dimbench.study.configs import Arm


@dataclass(frozen=True)
class StudyQuery:
    """One user question, with what the user may see and the exact answer for each dimension."""

    qid: int
    user: uuid.UUID
    scope: str  # workspace | all
    bucket: str  # tiny | small | medium | large
    filter_ids: tuple[uuid.UUID, ...]  # the explicit filter: the one workspace, or all the user's
    visible: frozenset[uuid.UUID]  # every workspace the user may see
    vector_1536: np.ndarray = field(repr=False)
    # Build.embedding (768, 1536, "ada") -> that column's exact top-k ids
    truth_ids: dict[int | str, list[uuid.UUID]] = field(repr=False)
    truth_distances: dict[int | str, list[float]] = field(repr=False)
    relevance: dict[uuid.UUID, int] = field(repr=False)  # graded labels for nDCG@10
    # Build.embedding -> the query's own vector for that column (an imported 768 is another model's, not
    # the 1536's prefix; "ada" is ada-002's); empty: derive 768 from vector_1536 (arms.query_vector)
    vectors: dict[int | str, np.ndarray] = field(default_factory=dict, repr=False)
    # what exact search on each stored embedding scores (nDCG@10 of its exact top-10): "768", "1536",
    # "ada" — the model's own quality, no index involved; the rule's quality reference
    exact_ndcg: dict[str, float | None] = field(default_factory=dict, repr=False)


@dataclass
class CellResult:
    answers: list[arms.Answer]
    recalls: list[float]


@dataclass
class Observed:
    """What was seen around a cell's queries: throughput, the path its audited calls took, maintenance."""

    qps: dict[str, float | None]
    plan: str | None = None  # plans.summarize of the audited calls
    maintenance: bool | None = None  # autovacuum/analyze ran on the study's tables during the cell


def allowed_for(query: StudyQuery, access: str) -> set[uuid.UUID]:
    return set(query.filter_ids) if arms.FILTERED[access] else set(query.visible)


def ask(conn: psycopg.Connection, arm: Arm, query: StudyQuery) -> arms.Answer:
    """One request for one study query through the arm, checked for foreign rows."""
    vector = arms.query_vector(query, arm.build)
    answer = arms.ask(conn, arm, vector, query.user, query.filter_ids)
    arms.check_visible(answer, allowed_for(query, arm.access), arm.access, query.user)
    return answer


def recall_of(answer: arms.Answer, query: StudyQuery, arm: Arm) -> float:
    """Recall@k against the exact top-k of the build's dimension; a failed request scores 0."""
    build = arm.build
    # halfvec distances are rounded: judge those answers by id alone (no tie credit).
    distances = answer.distances if build.vector_type == "vector" else [float("inf")] * len(answer.ids)
    return stats.recall_at_k(
        answer.ids, distances, query.truth_ids[build.embedding], query.truth_distances[build.embedding], arm.k
    )


def run_cell(conn: psycopg.Connection, arm: Arm, queries: Sequence[StudyQuery], warmup: int) -> CellResult:
    """Warm up (discarded), then each query once; every answer is checked for foreign rows."""
    for query in list(queries)[:warmup]:
        ask(conn, arm, query)
    answers = [ask(conn, arm, query) for query in queries]
    return CellResult(answers, [recall_of(a, q, arm) for a, q in zip(answers, queries, strict=True)])


def ndcg_of(answer: arms.Answer, query: StudyQuery, k: int = 10) -> float | None:
    """nDCG@k of one answer against the query's graded labels (None: the query has no labels)."""
    returned = [query.relevance.get(i, 0) for i in answer.ids]
    ideal = sorted(query.relevance.values(), reverse=True)
    return stats.ndcg_at_k(returned, ideal, k)


def answer_recall_of(answer: arms.Answer, query: StudyQuery, k: int = 10) -> float | None:
    """Answer recall@k: the share of the most relevant chunks (the top grade: the document the question
    is about) that came back, of as many as fit in k. None when nothing is labelled."""
    if not query.relevance:
        return None
    top = max(query.relevance.values())
    wanted = {c for c, g in query.relevance.items() if g == top}
    return len(wanted & set(answer.ids[:k])) / min(k, len(wanted))


def ndcg(answers: Sequence[arms.Answer], queries: Sequence[StudyQuery], k: int = 10) -> float | None:
    scores = [s for a, q in zip(answers, queries, strict=True) if (s := ndcg_of(a, q, k)) is not None]
    return float(np.mean(scores)) if scores else None


def concurrent_qps(
    connect: Callable[[], psycopg.Connection],
    arm: Arm,
    queries: Sequence[StudyQuery],
    clients: int,
    total: int,
    setup: Callable[[psycopg.Connection], None],
) -> float:
    """Queries per second with `clients` connections each running its share of `total` requests."""
    connections = [connect() for _ in range(clients)]
    try:
        for c in connections:
            setup(c)
        barrier = threading.Barrier(clients + 1)
        errors: list[BaseException] = []

        def worker(c: psycopg.Connection, share: int, offset: int) -> None:
            try:
                barrier.wait()
                for i in range(share):
                    q = queries[(offset + i) % len(queries)]
                    ask(c, arm, q)
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

        share = max(1, total // clients)
        threads = [
            threading.Thread(target=worker, args=(c, share, i * share)) for i, c in enumerate(connections)
        ]
        for t in threads:
            t.start()
        barrier.wait()
        start = time.perf_counter_ns()
        for t in threads:
            t.join()
        elapsed = time.perf_counter_ns() - start
        if errors:
            raise errors[0]
        return share * clients / (elapsed / 1e9)
    finally:
        for c in connections:
            c.close()


def per_query(arm: Arm, queries: Sequence[StudyQuery], result: CellResult) -> dict[str, list[Any]]:
    """What each query of a cell gave, in query order: the raw material every metric of the line is
    computed from (and what a later round of the same cell is appended to)."""
    return {
        "qid": [q.qid for q in queries],
        "recall": [round(float(r), 6) for r in result.recalls],
        "latency_ms": [round(a.latency_ns / 1e6, 4) for a in result.answers],
        "returned": [len(a.ids) for a in result.answers],
        "expected": [min(arm.k, len(q.truth_ids[arm.build.embedding])) for q in queries],
        "ndcg10": [ndcg_of(a, q) for a, q in zip(result.answers, queries, strict=True)],
        "answer_recall10": [
            answer_recall_of(a, q, arm.k) for a, q in zip(result.answers, queries, strict=True)
        ],
        "failed": [a.failed for a in result.answers],
        **{
            f"exact_ndcg10_{option}": [q.exact_ndcg.get(option) for q in queries]
            for option in sorted({o for q in queries for o in q.exact_ndcg})
        },
    }


def extended(earlier: dict[str, list[Any]], later: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """One cell's per-query lists with a later round's appended."""
    return {key: [*earlier.get(key, []), *later[key]] for key in later}


def summary(
    fields: dict[str, Any], arm: Arm, queries: dict[str, list[Any]], observed: Observed
) -> dict[str, Any]:
    """One measurements.jsonl line: the cell's identity (Cell.fields), its per-query data and the metrics
    derived from them."""
    build = arm.build
    latencies_ms = queries["latency_ms"]
    recalls = queries["recall"]
    scores = [s for s in queries["ndcg10"] if s is not None]
    return {
        **fields,
        "dim": build.dim,
        "k": arm.k,
        "n_queries": len(recalls),
        "failed_queries": sum(queries["failed"]),
        "recall_mean": float(np.mean(recalls)) if recalls else None,
        "recall_ci95": stats.recall_interval(recalls),
        "short_share": stats.short_share(queries["returned"], queries["expected"]),
        "latency_ms": stats.percentiles(latencies_ms),
        "latency_p95_ci95": stats.percentile_ci(latencies_ms, 95),
        "qps": observed.qps,
        "ndcg10": float(np.mean(scores)) if scores else None,
        **quality(queries),
        "plan": observed.plan,
        "maintenance": observed.maintenance,  # autovacuum/analyze seen on the study's tables during the cell
        "build_key": build.key,
        "per_query": queries,
    }


def quality(queries: dict[str, list[Any]]) -> dict[str, Any]:
    """The cell's retrieval quality: nDCG@10 and answer recall@10 with intervals over its queries, and
    nDCG@10's shortfall against the best option's exact search on the same queries (`quality_reference`:
    the stored embedding — 768, 1536, ada — whose exact nDCG is highest there), with a paired interval.
    The rule judges a configuration's quality by that shortfall's lower bound."""
    out: dict[str, Any] = {}
    scores = [s for s in queries.get("ndcg10", []) if s is not None]
    out["ndcg10_ci95"] = stats.mean_ci(scores)
    found = [s for s in queries.get("answer_recall10", []) if s is not None]
    out["answer_recall10"] = float(np.mean(found)) if found else None
    out["answer_recall10_ci95"] = stats.mean_ci(found)
    options = {
        key.removeprefix("exact_ndcg10_"): values
        for key, values in queries.items()
        if key.startswith("exact_ndcg10_")
    }
    paired = {
        option: [
            (s, r)
            for s, r in zip(queries.get("ndcg10", []), values, strict=True)
            if s is not None and r is not None
        ]
        for option, values in options.items()
    }
    paired = {o: p for o, p in paired.items() if p}
    if not paired:
        return {**out, "quality_reference": None, "ndcg10_gap": None, "ndcg10_gap_ci95": None}
    best = max(sorted(paired), key=lambda o: float(np.mean([r for _, r in paired[o]])))
    gap = stats.paired_relative_gap([s for s, _ in paired[best]], [r for _, r in paired[best]])
    out["quality_reference"] = best
    out["ndcg10_gap"], out["ndcg10_gap_ci95"] = gap if gap is not None else (None, None)
    return out


def quality_decided(
    answers: Sequence[arms.Answer], queries: Sequence[StudyQuery], tolerance: float | None
) -> bool:
    """Is the cell's nDCG@10 shortfall (against the best option's exact search, paired) judged against the
    rule's tolerance: its interval wholly within it or wholly beyond? True without a tolerance or labels.
    An interval across the tolerance needs more queries: the rule reads its lower bound."""
    if tolerance is None:
        return True
    options = sorted({o for q in queries for o in q.exact_ndcg})
    per = {
        "ndcg10": [ndcg_of(a, q) for a, q in zip(answers, queries, strict=True)],
        **{f"exact_ndcg10_{o}": [q.exact_ndcg.get(o) for q in queries] for o in options},
    }
    gap = quality(per)["ndcg10_gap_ci95"]
    return gap is None or gap[0] >= -tolerance or gap[1] < -tolerance


def measurement(
    fields: dict[str, Any], arm: Arm, queries: Sequence[StudyQuery], result: CellResult, observed: Observed
) -> dict[str, Any]:
    """One measurements.jsonl line for a cell measured in one go."""
    return summary(fields, arm, per_query(arm, queries, result), observed)
