"""Ground truth while the corpus changes.

`LiveRows` keeps every live chunk of one column in memory (ids, workspaces, documents, vectors), in step
with every write the runbook commits, so each search step is judged against *that step's* exact top-k
(numpy over the rows live then, within what the asker may see under RLS) — big-ann-benchmarks' streaming
rule. `snapshot_answer` judges a search that runs beside concurrent writers: the design's search and an
exact scan run in one REPEATABLE READ transaction, so both see the same rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from dimbench import stats
from dimbench.database.rls import claims_for
from dimbench.study import arms
from dimbench.study.configs import Arm, Build
from dimbench.study.designs.base import search_function
from dimbench.study.live_ingest import NewChunks, as_array
from dimbench.vocabulary import COLUMN_SOURCE


class LiveRows:
    """The live chunks of one build's column, as numpy arrays, updated by add() and delete()."""

    def __init__(
        self, conn: psycopg.Connection, build: Build, workspaces: Collection[uuid.UUID] | None = None
    ) -> None:
        """`workspaces`: only their rows (a search judged here may see no others; at 1M every row is
        gigabytes of vectors read for nothing); None: every row."""
        column = sql.Identifier(COLUMN_SOURCE[build.column_type][0])
        self.build = build
        self.workspaces = None if workspaces is None else frozenset(workspaces)
        rows = conn.execute(
            sql.SQL(
                "select id, workspace_id, document_id, {} from public.document_chunks where {} is not null"
                " and (%s::uuid[] is null or workspace_id = any (%s::uuid[]))"
            ).format(column, column),
            (None if workspaces is None else list(workspaces),) * 2,
            binary=True,
        ).fetchall()
        self.ids: list[uuid.UUID] = []
        self._codes: dict[uuid.UUID, int] = {}  # workspace -> a small integer (numpy compares those)
        self._ws: list[int] = []
        self._rows_of: dict[tuple[uuid.UUID, uuid.UUID], list[int]] = {}  # (workspace, document) -> rows
        self._blocks: list[np.ndarray] = []
        self._alive = np.zeros(0, dtype=bool)
        self._matrix: np.ndarray | None = None
        self._ws_arr = np.zeros(0, dtype=np.int64)
        self._append([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])

    def __len__(self) -> int:
        return int(self._alive.sum())

    def _append(self, ids: list, workspaces: list, documents: list, vectors: Sequence) -> None:
        first = len(self.ids)
        self.ids += ids
        for i, (w, d) in enumerate(zip(workspaces, documents, strict=True)):
            self._ws.append(self._codes.setdefault(w, len(self._codes)))
            self._rows_of.setdefault((w, d), []).append(first + i)
        if len(ids):
            self._blocks.append(np.stack([as_array(v) for v in vectors]))
        self._alive = np.concatenate([self._alive, np.ones(len(ids), dtype=bool)])
        self._matrix = None

    def add(self, made: NewChunks) -> None:
        vectors = made.e768 if self.build.dim == 768 else made.e1536
        n = len(made.ids)
        self._append(list(made.ids), [made.workspace] * n, [made.document] * n, list(vectors))

    def delete_document(self, workspace: uuid.UUID, document: uuid.UUID) -> int:
        rows = self._rows_of.pop((workspace, document), [])
        gone = [i for i in rows if self._alive[i]]
        self._alive[gone] = False
        return len(gone)

    def documents(self, workspace: uuid.UUID) -> list[uuid.UUID]:
        """The live documents of a workspace, in a stable order."""
        return sorted(
            d for (w, d), rows in self._rows_of.items() if w == workspace and self._alive[rows].any()
        )

    def rows_of(self, workspace: uuid.UUID) -> list[int]:
        """The live rows of a workspace (positions, for vector())."""
        return [i for (w, _), rows in self._rows_of.items() if w == workspace for i in rows if self._alive[i]]

    def vector(self, row: int) -> np.ndarray:
        return self._arrays()[0][row]

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._matrix is None:
            dim = self.build.dim
            matrix = np.concatenate(self._blocks) if self._blocks else np.zeros((0, dim), np.float32)
            self._matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
            self._ws_arr = np.asarray(self._ws, dtype=np.int64)
        return self._matrix, self._ws_arr

    def truth(
        self, vector: np.ndarray, workspaces: Collection[uuid.UUID], k: int
    ) -> tuple[list, list[float]]:
        """The exact top-k (ids, cosine distances) among live rows of `workspaces`."""
        matrix, ws = self._arrays()
        wanted = [self._codes[w] for w in workspaces if w in self._codes]
        mask = self._alive & np.isin(ws, wanted)
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return [], []
        q = np.asarray(vector, dtype=np.float32)
        distances = 1.0 - matrix[rows] @ (q / np.linalg.norm(q))
        top = np.argsort(distances, kind="stable")[:k] if rows.size <= k else None
        if top is None:
            part = np.argpartition(distances, k - 1)[:k]
            top = part[np.argsort(distances[part], kind="stable")]
        return [self.ids[int(rows[i])] for i in top], [float(distances[i]) for i in top]


def recall(answer: arms.Answer, truth: tuple[list, list[float]], build: Build, k: int) -> float:
    """Recall@k with tie credit, as the study judges it (a failed request scores 0; halfvec by id)."""
    if answer.failed:
        return 0.0
    distances = answer.distances if build.vector_type == "vector" else [float("inf")] * len(answer.ids)
    return stats.recall_at_k(answer.ids, distances, truth[0], truth[1], k)


@dataclass
class Judged:
    """One search judged against the rows its own snapshot saw."""

    recall: float
    latency_ms: float
    failed: bool


def snapshot_answer(
    conn: psycopg.Connection, arm: Arm, vector: np.ndarray, user: uuid.UUID, workspaces: Sequence[uuid.UUID]
) -> Judged:
    """The arm's request and an exact scan of `workspaces` (what the asker may see) in one REPEATABLE READ
    transaction: recall against exactly the rows the search could see, however fast others write.
    `(distance) + 0` keeps the exact scan off the vector index."""
    build = arm.build
    role = arm.role or arms.ARM_ROLE[arm.access]
    claims = claims_for(role, user if role == "authenticated" else None)
    filter_ids = list(workspaces) if arms.FILTERED[arm.access] else None
    params = (vector, arm.k, filter_ids, build.dim, build.vector_type == "halfvec")
    cast = sql.SQL("::extensions.halfvec(1536)") if build.vector_type == "halfvec" else sql.SQL("")
    exact = sql.SQL(
        "select id, ({} operator(extensions.<=>) %s{}) + 0 as d from public.document_chunks c"
        " where c.workspace_id = any (%s) order by d limit %s"
    ).format(build.expression("c"), cast)
    timeout = arms.role_timeouts(conn).get(role)
    failed = False
    rows: list = []
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read")
        conn.execute(arms.PREAMBLE, (role, claims, timeout), prepare=True)
        start = time.perf_counter_ns()
        try:
            with conn.transaction():  # a savepoint: a timeout fails the search, not the judgement
                statement = sql.SQL(arms.SEARCH).format(search_function(arm.design, arm.build))
                rows = conn.execute(statement, params, prepare=True, binary=True).fetchall()
        except psycopg.errors.QueryCanceled as exc:
            if "statement timeout" not in (exc.diag.message_primary or ""):
                raise
            failed = True
        latency = (time.perf_counter_ns() - start) / 1e6
        conn.execute("select set_config('role', 'none', true), set_config('statement_timeout', '0', true)")
        truth = conn.execute(exact, (vector, list(workspaces), arm.k), binary=True).fetchall()
    answer = arms.Answer([r[0] for r in rows], [r[1] for r in rows], [float(r[2]) for r in rows], 0, failed)
    judged = recall(answer, ([r[0] for r in truth], [float(r[1]) for r in truth]), build, arm.k)
    return Judged(judged, latency, failed)
