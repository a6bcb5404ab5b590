"""The platform's write path, as PostgREST would run it: workspace members create documents, insert
their chunks (both embeddings each) and re-process documents (delete the chunks, insert new ones).

Every write is one request: one transaction that first runs the arms' PostgREST preamble as the member
(role `authenticated`, their claims, the role's statement_timeout), so RLS's `with check` and every
trigger a design adds are paid as in production. A document's chunks go `request_chunks` per request.
Each request's outcome is kept: ok, statement timeout, lock timeout, deadlock, serialization failure or
another error — a failed request is counted, never dropped.

New chunks look like the corpus's: each takes a stored chunk's two embeddings and perturbs each on its
own (then renormalizes), so they fall in the corpus's clusters without duplicating any vector.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from dimbench import stats
from dimbench.database import db
from dimbench.database.rls import claims_for
from dimbench.study import arms
from dimbench.study.live_spec import DocSizes

WRITER_ROLES = ("owner", "admin", "member")  # who may write content (viewers may not)
NOISE = 0.05  # how far a new chunk strays from the stored chunk it is made from
POOL = 512  # stored chunks new ones are made from
APPLICATION = "dimbench-live-writer"

INSERT_DOCUMENT = (
    "insert into public.documents (id, workspace_id, title, status) values (%s, %s, %s, 'ready')"
)
INSERT_CHUNKS = (
    "insert into public.document_chunks (id, workspace_id, document_id, chunk_index, content,"
    " embedding_1536, embedding_768, embedding_1536_model, embedding_768_model)"
    " select u.id, %s, %s, u.i, u.t, u.a, u.b, %s, %s"
    " from unnest(%s::uuid[], %s::int[], %s::text[], %s::extensions.vector[], %s::extensions.vector[])"
    " as u(id, i, t, a, b)"
)
DELETE_CHUNKS = "delete from public.document_chunks where workspace_id = %s and document_id = %s"


@dataclass(frozen=True)
class Author:
    """A member who may write into a workspace."""

    workspace: uuid.UUID
    user: uuid.UUID


def authors(conn: psycopg.Connection) -> dict[uuid.UUID, list[uuid.UUID]]:
    """workspace -> the members who may write there, largest workspace first."""
    rows = conn.execute(
        "select m.workspace_id, m.user_id from public.workspace_members m"
        " join (select workspace_id, count(*) n from public.document_chunks group by 1) c"
        " using (workspace_id)"
        " where m.role = any (%s) order by c.n desc, m.workspace_id, m.user_id",
        (list(WRITER_ROLES),),
    ).fetchall()
    out: dict[uuid.UUID, list[uuid.UUID]] = {}
    for ws, user in rows:
        out.setdefault(ws, []).append(user)
    return out


def classify(exc: psycopg.Error) -> str:
    """A failed request's kind, as the study counts it."""
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return "statement_timeout" if "statement timeout" in (exc.diag.message_primary or "") else "canceled"
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return "lock_timeout"
    if isinstance(exc, psycopg.errors.DeadlockDetected):
        return "deadlock"
    if isinstance(exc, psycopg.errors.SerializationFailure):
        return "serialization"
    return "error"


@dataclass
class Logged:
    """One write request: what it did, how long it took, how it ended."""

    kind: str  # document | chunks | delete
    chunks: int
    started: float  # perf_counter seconds
    seconds: float
    outcome: str = "ok"
    error: str | None = None


def request(conn: psycopg.Connection, author: Author, statements: Sequence[tuple[str, tuple]]) -> None:
    """One PostgREST request as `author`: the arms' preamble, then `statements`, committed."""
    timeout = arms.role_timeouts(conn).get("authenticated")
    with conn.transaction():
        conn.execute(arms.PREAMBLE, (("authenticated"), claims_for("authenticated", author.user), timeout))
        for statement, params in statements:
            conn.execute(statement, params, binary=True)


def timed_request(
    conn: psycopg.Connection,
    author: Author,
    kind: str,
    statements: Sequence[tuple[str, tuple]],
    chunks: int = 0,
) -> Logged:
    start = time.perf_counter()
    try:
        request(conn, author, statements)
    except psycopg.Error as exc:
        cancelled = isinstance(exc, psycopg.errors.QueryCanceled) and classify(exc) != "statement_timeout"
        if conn.broken or cancelled:
            raise  # the server went away, or someone cancelled us (Ctrl-C, a shutdown): not a measurement
        return Logged(kind, chunks, start, time.perf_counter() - start, classify(exc), _line(exc))
    return Logged(kind, chunks, start, time.perf_counter() - start)


def tally(logs: Sequence[Logged]) -> dict[str, int]:
    """How many requests ended each way."""
    out: dict[str, int] = {}
    for log in logs:
        out[log.outcome] = out.get(log.outcome, 0) + 1
    return out


def _line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class ChunkMaker:
    """New chunks' embeddings from a fixed pool of stored chunks, each perturbed and renormalized."""

    def __init__(self, conn: psycopg.Connection, pool: int = POOL) -> None:
        rows = conn.execute(
            "select embedding_1536, embedding_768, embedding_1536_model, embedding_768_model"
            " from public.document_chunks where embedding_1536 is not null and embedding_768 is not null"
            " order by md5(id::text) limit %s",
            (pool,),
        ).fetchall()
        if not rows:
            from dimbench.errors import DimbenchError

            raise DimbenchError("the database has no chunks with both embeddings to make new ones from")
        self.e1536 = np.stack([as_array(r[0]) for r in rows])
        self.e768 = np.stack([as_array(r[1]) for r in rows])
        self.models = (rows[0][2], rows[0][3])

    def make(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        pick = rng.integers(0, len(self.e1536), n)
        return _perturb(self.e1536[pick], rng), _perturb(self.e768[pick], rng)


def as_array(value: Any) -> np.ndarray:
    """A vector as pgvector-python hands it back (an ndarray, or a Vector in some formats)."""
    to_numpy = getattr(value, "to_numpy", None)
    return np.asarray(to_numpy() if to_numpy else value, dtype=np.float32)


def _perturb(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    scale = NOISE / np.sqrt(vectors.shape[1])
    out = vectors + rng.standard_normal(vectors.shape, dtype=np.float32) * scale
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


@dataclass
class NewChunks:
    """Chunks one request inserted (ids and both embeddings), for freshness and the runbook's truth."""

    ids: list[uuid.UUID]
    e1536: np.ndarray
    e768: np.ndarray
    workspace: uuid.UUID
    document: uuid.UUID


def chunk_statement(author: Author, document: uuid.UUID, first: int, made: NewChunks, models) -> tuple:
    n = len(made.ids)
    params = (
        author.workspace,
        document,
        models[0],
        models[1],
        made.ids,
        list(range(first, first + n)),
        [f"live chunk {first + i} of {document}" for i in range(n)],
        list(made.e1536),
        list(made.e768),
    )
    return INSERT_CHUNKS, params


def ingest_document(
    conn: psycopg.Connection, author: Author, size: int, maker: ChunkMaker, plan: WritePlan
) -> tuple[list[Logged], list[NewChunks]]:
    """A new document of `size` chunks (its row, then its chunks, request_chunks per request), or a
    re-processed one when `plan.replace` gives a document id (its chunks deleted first). With
    `plan.whole_document` all of it is one transaction (document_transaction)."""
    if plan.whole_document:
        return document_transaction(conn, author, size, maker, plan)
    logs: list[Logged] = []
    made_all: list[NewChunks] = []
    document = plan.replace or uuid.uuid4()
    if plan.replace is None:
        logs.append(
            timed_request(
                conn, author, "document", [(INSERT_DOCUMENT, (document, author.workspace, "live document"))]
            )
        )
        if logs[-1].outcome != "ok":
            return logs, made_all
    else:
        logs.append(timed_request(conn, author, "delete", [(DELETE_CHUNKS, (author.workspace, document))]))
    for first, made in batches(author, document, size, maker, plan):
        n = len(made.ids)
        logs.append(
            timed_request(
                conn, author, "chunks", [chunk_statement(author, document, first, made, maker.models)], n
            )
        )
        if logs[-1].outcome == "ok":
            made_all.append(made)
        if plan.pace is not None:
            plan.pace(n)
    return logs, made_all


def batches(
    author: Author, document: uuid.UUID, size: int, maker: ChunkMaker, plan: WritePlan
) -> Iterator[tuple[int, NewChunks]]:
    """A document's new chunks, request_chunks at a time (first chunk_index, the chunks), until the
    plan's deadline."""
    for first in range(0, size, plan.request_chunks):
        if plan.deadline is not None and time.perf_counter() >= plan.deadline:
            return
        n = min(plan.request_chunks, size - first)
        e1536, e768 = maker.make(n, plan.rng)
        yield first, NewChunks([uuid.uuid4() for _ in range(n)], e1536, e768, author.workspace, document)


@dataclass
class WritePlan:
    """How one document goes in."""

    request_chunks: int
    rng: np.random.Generator
    replace: uuid.UUID | None = None  # re-process this document instead of creating one
    deadline: float | None = None  # perf_counter seconds: stop between requests after it
    pace: Callable[[int], None] | None = None  # called after each chunk request with its chunk count
    whole_document: bool = False  # one transaction for the whole document (an ingest worker's way)


def document_transaction(
    conn: psycopg.Connection, author: Author, size: int, maker: ChunkMaker, plan: WritePlan
) -> tuple[list[Logged], list[NewChunks]]:
    """The document as an ingest worker writes it: one transaction (the preamble once, as the member),
    its row or the delete of its old chunks, then its chunks request_chunks per statement, paced as the
    embeddings arrive — nothing of it visible until all of it is. A statement that fails rolls the whole
    document back: that statement is counted by its kind, the ones before it as `rolled_back`."""
    logs: list[Logged] = []
    made_all: list[NewChunks] = []
    document = plan.replace or uuid.uuid4()
    timeout = arms.role_timeouts(conn).get("authenticated")
    started = time.perf_counter()
    try:
        with conn.transaction():
            conn.execute(arms.PREAMBLE, ("authenticated", claims_for("authenticated", author.user), timeout))
            if plan.replace is None:
                _timed(
                    conn, logs, "document", (INSERT_DOCUMENT, (document, author.workspace, "live document"))
                )
            else:
                _timed(conn, logs, "delete", (DELETE_CHUNKS, (author.workspace, document)))
            for first, made in batches(author, document, size, maker, plan):
                statement = chunk_statement(author, document, first, made, maker.models)
                _timed(conn, logs, "chunks", statement, len(made.ids))
                made_all.append(made)
                if plan.pace is not None:
                    plan.pace(len(made.ids))
            commit_from = time.perf_counter()
        logs[-1].seconds += time.perf_counter() - commit_from  # the commit belongs to the last statement
    except psycopg.Error as exc:
        cancelled = isinstance(exc, psycopg.errors.QueryCanceled) and classify(exc) != "statement_timeout"
        if conn.broken or cancelled:
            raise
        for log in logs:
            log.outcome = "rolled_back"
        logs.append(Logged("failed", 0, started, time.perf_counter() - started, classify(exc), _line(exc)))
        return logs, []
    return logs, made_all


def _timed(
    conn: psycopg.Connection, logs: list[Logged], kind: str, statement: tuple, chunks: int = 0
) -> None:
    start = time.perf_counter()
    logs.append(Logged(kind, chunks, start, 0.0))
    conn.execute(statement[0], statement[1], binary=True)
    logs[-1].seconds = time.perf_counter() - start


@dataclass
class Writers:
    """Writers running for `seconds`: closed loop (as fast as they can) or at an offered `rate` in
    chunks/s shared between them. Each writer has its own authors (workspaces) and its own documents to
    re-process (so two writers never replace the same document)."""

    dsn: str
    authors: list[list[Author]]  # one list per writer
    seconds: float
    request_chunks: int
    doc_sizes: DocSizes
    rate: float | None = None
    churn: float = 0.0  # share of documents that replace an existing one
    # per writer, (workspace, document) pairs it may re-process (of its own authors' workspaces)
    replaceable: list[list[tuple[uuid.UUID, uuid.UUID]]] = field(default_factory=list)
    seed: int = 0
    whole_document: bool = True  # a document is one transaction (live_spec.LiveSpec.transaction)


@dataclass
class WriteResult:
    writers: int
    seconds: float
    offered_chunks_per_s: float | None
    logs: list[Logged]
    made: list[NewChunks] = field(repr=False, default_factory=list)

    @property
    def chunks(self) -> int:
        return sum(log.chunks for log in self.logs if log.kind == "chunks" and log.outcome == "ok")

    def outcomes(self) -> dict[str, int]:
        counts = {
            "ok": 0,
            "rolled_back": 0,
            "statement_timeout": 0,
            "lock_timeout": 0,
            "deadlock": 0,
            "serialization": 0,
            "error": 0,
        }
        return {**counts, **tally(self.logs)}

    def describe(self) -> dict[str, Any]:
        chunk_ms = [log.seconds * 1000 for log in self.logs if log.kind == "chunks" and log.outcome == "ok"]
        errors = sorted({log.error for log in self.logs if log.error})
        return {
            "writers": self.writers,
            "seconds": round(self.seconds, 3),
            "offered_chunks_per_s": self.offered_chunks_per_s,
            "chunks": self.chunks,
            "chunks_per_s": round(self.chunks / self.seconds, 2) if self.seconds else None,
            "requests": len(self.logs),
            "outcomes": self.outcomes(),
            "errors": errors[:5],
            "chunk_request_ms": {k: _round(v) for k, v in stats.percentiles(chunk_ms).items()},
            "chunk_requests": len(chunk_ms),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def run_writers(plan: Writers, stop: threading.Event | None = None) -> WriteResult:
    """Run the writers (threads, one connection each: they wait on the server, not on Python)."""
    n = len(plan.authors)
    logs: list[list[Logged]] = [[] for _ in range(n)]
    made: list[list[NewChunks]] = [[] for _ in range(n)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(n + 1)
    per_writer = None if plan.rate is None else plan.rate / n
    stop = stop or threading.Event()

    def writer(i: int) -> None:
        rng = np.random.default_rng((plan.seed, i))
        try:
            with db.connect(plan.dsn, application_name=APPLICATION) as conn:
                db.use_vectors(conn)
                maker = ChunkMaker(conn)
                barrier.wait()
                start = time.perf_counter()
                deadline = start + plan.seconds
                due = [start]

                def pace(chunks: int) -> None:
                    if per_writer is None:
                        return
                    due[0] += chunks / per_writer
                    wait = due[0] - time.perf_counter()
                    if wait > 0:
                        stop.wait(min(wait, max(0.0, deadline - time.perf_counter())))

                replaceable = list(plan.replaceable[i]) if i < len(plan.replaceable) else []
                while time.perf_counter() < deadline and not stop.is_set():
                    author = plan.authors[i][int(rng.integers(len(plan.authors[i])))]
                    replace = None
                    if replaceable and rng.random() < plan.churn:
                        workspace, replace = replaceable.pop(int(rng.integers(len(replaceable))))
                        # re-processed by a member of its own workspace
                        author = next(a for a in plan.authors[i] if a.workspace == workspace)
                    size = draw_size(plan.doc_sizes, rng)
                    w = WritePlan(plan.request_chunks, rng, replace, deadline, pace, plan.whole_document)
                    done, new = ingest_document(conn, author, size, maker, w)
                    logs[i].extend(done)
                    made[i].extend(new)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
            if not barrier.broken:
                barrier.abort()

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return WriteResult(n, elapsed, plan.rate, [x for w in logs for x in w], [x for w in made for x in w])


def draw_size(sizes: DocSizes, rng: np.random.Generator) -> int:
    shares = np.array([s for s, _, _ in sizes.mix])
    _, low, high = sizes.mix[int(rng.choice(len(shares), p=shares / shares.sum()))]
    return int(rng.integers(low, high + 1))


class LockWatch:
    """Samples pg_stat_activity every `every` s: statements of this database waiting on a lock, how long
    each had been running when last seen waiting. `waits_over(1.0)` counts the long ones."""

    def __init__(self, dsn: str, every: float = 0.1) -> None:
        self.dsn, self.every = dsn, every
        self.seen: dict[tuple[int, str], dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockWatch:
        self._conn = db.connect(self.dsn)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        query = sql.SQL(
            "select pid, query_start::text, extract(epoch from clock_timestamp() - query_start)::float8,"
            " wait_event, application_name, left(query, 80), pg_blocking_pids(pid)"
            " from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'"
            " and pid <> pg_backend_pid()"
        )
        while not self._stop.is_set():
            try:
                rows = self._conn.execute(query).fetchall()
            except psycopg.Error:  # the server is going away: what was seen stands
                return
            for pid, started, waited, event, app, text, blockers in rows:
                entry = self.seen.setdefault(
                    (pid, started),
                    {"event": event, "application": app, "query": text, "blocked_by": blockers},
                )
                entry["seconds"] = max(entry.get("seconds", 0.0), float(waited))
            self._stop.wait(self.every)

    def waits_over(self, seconds: float) -> list[dict[str, Any]]:
        return [w for w in self.seen.values() if w["seconds"] > seconds]

    def describe(self, over: float = 1.0) -> dict[str, Any]:
        longest = max((w["seconds"] for w in self.seen.values()), default=None)
        return {
            "waits_seen": len(self.seen),
            "waits_over_1s": len(self.waits_over(over)),
            "longest_s": None if longest is None else round(longest, 3),
            "sampled_every_s": self.every,
        }
