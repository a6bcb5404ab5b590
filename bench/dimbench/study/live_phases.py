"""What `dimbench live` measures on one installed design, phase by phase (see live.py for the order).

Searches under load go through pgbench (loadgen); writes through live_ingest's PostgREST-style requests;
recall beside concurrent writers from one-snapshot judgements (live_truth.snapshot_answer), recall in
the runbook from numpy over the rows live at that step (live_truth.LiveRows).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from dimbench import stats
from dimbench.database import db
from dimbench.evidence.live import p95_ratio
from dimbench.study import arms, loadgen
from dimbench.study.configs import Arm
from dimbench.study.live_ingest import (
    NOISE,
    Author,
    ChunkMaker,
    LockWatch,
    NewChunks,
    WritePlan,
    Writers,
    authors,
    draw_size,
    ingest_document,
    run_writers,
    tally,
)
from dimbench.study.live_spec import LiveSpec
from dimbench.study.live_truth import LiveRows, recall, snapshot_answer
from dimbench.study.measure import StudyQuery

PROBES_PER_S = 4.0  # recall judgements per second beside the pgbench searches (idle and busy alike)
FRESH_CHUNKS = 10  # the document a freshness probe inserts before it searches for one of its chunks
BACKGROUND_WRITERS = 2  # writers offering the platform's ingest rate during the search phase


@dataclass
class Context:
    """One design installed on its own copy of the corpus, and how to measure it."""

    dsn: str  # the copy's
    spec: LiveSpec
    arm: Arm
    gucs: dict[str, str]  # the query setting's, for every search connection (pgbench: PGOPTIONS)
    queries: list[StudyQuery]  # the arm's questions (its scopes)
    corpus_chunks: int
    save: Callable[[], None] = lambda: None  # write live.json after each phase
    seed: int = 0
    members: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)  # workspace -> writers

    def connect(self) -> psycopg.Connection:
        conn = db.use_vectors(db.connect(self.dsn))
        for name, value in self.gucs.items():
            conn.execute("select set_config(%s, %s, false)", (name, value))
        return conn


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def latency_summary(values_ms: list[float]) -> dict[str, Any]:
    p = stats.percentiles(values_ms)
    return {
        "n": len(values_ms),
        "p50_ms": _r(p["p50"]),
        "p95_ms": _r(p["p95"]),
        "p99_ms": _r(p["p99"]),
        "p95_interval_ms": [_r(x) for x in (stats.percentile_ci(values_ms, 95) or [])] or None,
    }


def recall_summary(values: list[float]) -> dict[str, Any]:
    interval = stats.recall_interval(values)
    return {
        "n": len(values),
        "recall": _r(float(np.mean(values))) if values else None,
        "interval": [_r(x) for x in interval] if interval else None,
    }


# --- authors: who writes where ----------------------------------------------------------------------


def one_workspace(ctx: Context, writers: int) -> list[list[Author]]:
    """Every writer into the largest workspace (its members in turn: a team ingesting together)."""
    ws, users = next(iter(ctx.members.items()))
    return [[Author(ws, users[i % len(users)])] for i in range(writers)]


def many_workspaces(ctx: Context, writers: int) -> list[list[Author]]:
    """Each writer its own workspaces, dealt round-robin (the largest first), never one another's."""
    out: list[list[Author]] = [[] for _ in range(writers)]
    for i, (ws, users) in enumerate(ctx.members.items()):
        out[i % writers].append(Author(ws, users[0]))
    return [w for w in out if w] or one_workspace(ctx, writers)


def replaceable(
    conn: psycopg.Connection, plan: list[list[Author]]
) -> list[list[tuple[uuid.UUID, uuid.UUID]]]:
    """Per writer, the (workspace, document) pairs of its workspaces it may re-process; writers sharing
    a workspace split its documents, so no two re-process the same one."""
    out = []
    for i, writer in enumerate(plan):
        mine = {a.workspace for a in writer}
        rows = conn.execute(
            "select workspace_id, id from public.documents where workspace_id = any (%s) order by id",
            (list(mine),),
        ).fetchall()
        sharing = [j for j, other in enumerate(plan) if {a.workspace for a in other} & mine]
        pairs = [(r[0], r[1]) for r in rows]
        out.append(pairs[sharing.index(i) :: len(sharing)])
    return out


# --- searches: idle and under ingest ------------------------------------------------------------------


class RecallProbe:
    """A thread judging searches against their own snapshot, PROBES_PER_S a second, until stopped."""

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.recalls, self.failed = ctx, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> RecallProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            with self.ctx.connect() as conn:
                i = 0
                while not self._stop.is_set():
                    q = self.ctx.queries[i % len(self.ctx.queries)]
                    i += 1
                    allowed = q.filter_ids if arms.FILTERED[self.ctx.arm.access] else tuple(q.visible)
                    vector = arms.query_vector(q, self.ctx.arm.build)
                    judged = snapshot_answer(conn, self.ctx.arm, vector, q.user, list(allowed))
                    self.recalls.append(judged.recall)
                    self.failed += judged.failed
                    self._stop.wait(1 / PROBES_PER_S)
        except BaseException as exc:  # re-raised by the phase
            self.error = exc

    def describe(self) -> dict[str, Any]:
        return {
            **recall_summary(self.recalls),
            "outcomes": {"ok": len(self.recalls) - self.failed, "statement_timeout": self.failed},
        }


class FreshnessProbe:
    """A thread that, `probes` times over the phase, inserts a small document as a member (committed) and
    at once searches for one of its chunks as that member: was it found?"""

    def __init__(self, ctx: Context, probes: int, seconds: float) -> None:
        self.ctx, self.probes, self.every = ctx, probes, seconds / max(1, probes)
        self.found = self.asked = 0
        self.logs: list = []
        self.failed_searches = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FreshnessProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join()

    def _run(self) -> None:
        rng = np.random.default_rng((self.ctx.seed, 7))
        try:
            with self.ctx.connect() as conn:
                maker = ChunkMaker(conn)
                members = list(self.ctx.members.items())
                for _ in range(self.probes):
                    ws, users = members[int(rng.integers(len(members)))]
                    author = Author(ws, users[0])
                    logs, made = ingest_document(
                        conn,
                        author,
                        FRESH_CHUNKS,
                        maker,
                        WritePlan(FRESH_CHUNKS, rng, whole_document=self.ctx.spec.whole_document),
                    )
                    self.logs += logs
                    if made:
                        self._probe(conn, author, made[0])
                    self._stop.wait(self.every)
        except BaseException as exc:
            self.error = exc

    def _probe(self, conn: psycopg.Connection, author: Author, made: NewChunks) -> None:
        arm = self.ctx.arm
        vector = made.e768[0] if arm.build.dim == 768 else made.e1536[0]
        answer = arms.ask(conn, arm, np.asarray(vector), author.user, [author.workspace])
        self.asked += 1
        self.failed_searches += answer.failed
        self.found += made.ids[0] in answer.ids

    def describe(self) -> dict[str, Any]:
        interval = stats.recall_interval([1.0] * self.found + [0.0] * (self.asked - self.found))
        writes = tally(self.logs)
        return {
            "probes": self.asked,
            "found": self.found,
            "share": _r(self.found / self.asked) if self.asked else None,
            "interval": [_r(x) for x in interval] if interval else None,
            "chunks_per_probe": FRESH_CHUNKS,
            "outcomes": {"ok": self.asked - self.failed_searches, "statement_timeout": self.failed_searches},
            "write_outcomes": writes,
        }


def search_phase(ctx: Context, conn: psycopg.Connection, busy: bool, multiple: float = 1.0) -> dict[str, Any]:
    """pgbench searches at the offered rate for `seconds` (open loop), a recall probe beside them, and —
    when `busy` — writers offering `multiple` × the platform's ingest rate (with churn) and the freshness
    probe."""
    spec = ctx.spec
    requests = loadgen.requests_for(conn, ctx.arm, ctx.queries)
    load = loadgen.Load(spec.search_clients, spec.seconds, spec.search_rate, spec.latency_limit_ms, ctx.gucs)
    out: dict[str, Any] = {"rows_at_start": _rows(conn)}
    writes: dict[str, Any] = {}
    writer_thread = None
    fresh = None
    with LockWatch(ctx.dsn) as locks, RecallProbe(ctx) as probe:
        if busy:
            plan = many_workspaces(ctx, BACKGROUND_WRITERS)
            writers = Writers(
                ctx.dsn,
                plan,
                spec.seconds + 1.0,  # covers pgbench's whole window
                spec.request_chunks,
                spec.doc_sizes,
                rate=multiple * spec.ingest_chunks_per_s(ctx.corpus_chunks),
                churn=spec.churn,
                replaceable=replaceable(conn, plan),
                seed=ctx.seed,
                whole_document=spec.whole_document,
            )
            writer_thread = threading.Thread(target=lambda: writes.update(result=_safe(run_writers, writers)))
            writer_thread.start()
            fresh = FreshnessProbe(ctx, spec.freshness_probes, spec.seconds)
            fresh.__enter__()
        try:
            result = loadgen.run(ctx.dsn, requests, load)
        finally:
            if fresh is not None:
                fresh.__exit__()
            if writer_thread is not None:
                writer_thread.join()
    for error in (probe.error, fresh.error if fresh else None, writes.get("result", (None, None))[1]):
        if error is not None:
            raise error
    out.update(
        searches={
            **latency_summary(result.latencies_ms()),
            "qps": _r(result.qps(), 2),
            "outcomes": result.outcomes(),
            "aborted": result.aborted[:5],
            "offered_per_s": spec.search_rate,
            "clients": spec.search_clients,
            "latency_limit_ms": spec.latency_limit_ms,
        },
        recall=probe.describe(),
        locks=locks.describe(),
    )
    if busy:
        ingest = writes["result"][0]
        out["ingest"] = {**ingest.describe(), "churn": spec.churn, "rate_multiple": multiple}
        out["freshness"] = fresh.describe() if fresh else None
    out["_latencies"] = result.latencies_ms()
    return out


def _safe(fn: Callable[..., Any], *args: Any) -> tuple[Any, BaseException | None]:
    try:
        return fn(*args), None
    except BaseException as exc:
        return None, exc


def _rows(conn: psycopg.Connection) -> int:
    row = conn.execute("select count(*) from public.document_chunks").fetchone()
    assert row is not None
    return int(row[0])


def searches(ctx: Context, conn: psycopg.Connection, entry: dict[str, Any]) -> None:
    """Idle, then under ingest: p95 of each, their ratio with its interval, recall of each, freshness.
    First the same searches for one phase, not judged: the copy starts with cold buffers, and an idle
    phase that warms them reads slower than the busy one after it (a ratio below 1 that flatters)."""
    spec = ctx.spec
    warm = loadgen.run(
        ctx.dsn,
        loadgen.requests_for(conn, ctx.arm, ctx.queries),
        loadgen.Load(spec.search_clients, spec.seconds, spec.search_rate, spec.latency_limit_ms, ctx.gucs),
    )
    idle = search_phase(ctx, conn, busy=False)
    idle_ms = idle.pop("_latencies")
    entry["search"] = {"warmup": latency_summary(warm.latencies_ms()), "idle": idle}
    ctx.save()
    busy = search_phase(ctx, conn, busy=True)
    busy_ms = busy.pop("_latencies")
    entry["freshness"] = busy.pop("freshness")
    entry["search"]["ingest"] = busy
    entry["search"]["p95_ratio"] = _ratio(idle_ms, busy_ms)
    ctx.save()
    # The same phase at the grid's other multiples of the platform's rate (the 1× phase above is the
    # one the rule judges; these say how far above it the design still holds).
    entry["search"]["rates"] = []
    for multiple in (m for m in ctx.spec.rate_multiples if m != 1.0):
        phase = search_phase(ctx, conn, busy=True, multiple=multiple)
        phase["p95_ratio"] = _ratio(idle_ms, phase.pop("_latencies"))
        entry["search"]["rates"].append(phase)
        ctx.save()


def _ratio(idle_ms: list[float], busy_ms: list[float]) -> dict[str, Any]:
    return {
        k: (_r(v) if not isinstance(v, list) else [_r(x) for x in v]) if k not in ("n_idle", "n_busy") else v
        for k, v in p95_ratio(idle_ms, busy_ms).items()
    }


# --- maximum ingest --------------------------------------------------------------------------------


def ingest_max(ctx: Context, entry: dict[str, Any]) -> None:
    """Closed-loop writers (as fast as they go) with 1, 2, 4 … writers, into one workspace and into many:
    chunks/s, every request's outcome, lock waits over 1 s."""
    entry["ingest_max"] = []
    for target, plan_for in (("one workspace", one_workspace), ("many workspaces", many_workspaces)):
        for n in ctx.spec.writers:
            plan = Writers(
                ctx.dsn,
                plan_for(ctx, n),
                ctx.spec.seconds,
                ctx.spec.request_chunks,
                ctx.spec.doc_sizes,
                seed=ctx.seed + n,
                whole_document=ctx.spec.whole_document,
            )
            with LockWatch(ctx.dsn) as locks:
                result = run_writers(plan)
            entry["ingest_max"].append({"target": target, **result.describe(), "locks": locks.describe()})
            ctx.save()


def replace_document(
    ctx: Context, conn: psycopg.Connection, rows: LiveRows, author: Author, what: tuple
) -> tuple[list, int]:
    """Re-process one document (`what`: its id, the chunk maker, the rng) with as many chunks as it had:
    its old chunks deleted, new ones inserted, `rows` kept in step. Returns the logs and its size."""
    doc, maker, rng = what
    size = rows.delete_document(author.workspace, doc)
    plan = WritePlan(ctx.spec.request_chunks, rng, doc, whole_document=ctx.spec.whole_document)
    done, made = ingest_document(conn, author, max(1, size), maker, plan)
    for m in made:
        rows.add(m)
    return done, size


# --- the runbook -----------------------------------------------------------------------------------


def runbook(ctx: Context, conn: psycopg.Connection, entry: dict[str, Any]) -> None:
    """Steps of inserts, document replacements and a search step; recall@k at each search step against
    that step's own exact top-k (the rows live then, within what the asker may see), averaged."""
    book = ctx.spec.runbook
    rng = np.random.default_rng((ctx.seed, 11))
    asked = [ctx.queries[i % len(ctx.queries)] for i in range(book.steps * book.queries)]
    seen = {w for q in asked for w in (q.filter_ids if arms.FILTERED[ctx.arm.access] else q.visible)}
    rows = LiveRows(conn, ctx.arm.build, seen)  # the rows those questions may see, nothing more
    maker = ChunkMaker(conn)
    members = list(ctx.members.items())
    replaceable_members = [m for m in members if m[0] in seen] or members
    steps = []
    every: list[float] = []
    for step in range(book.steps):
        logs: list = []
        for _ in range(book.insert_docs):
            ws, users = members[int(rng.integers(len(members)))]
            done, made = ingest_document(
                conn,
                Author(ws, users[0]),
                draw_size(ctx.spec.doc_sizes, rng),
                maker,
                WritePlan(ctx.spec.request_chunks, rng, whole_document=ctx.spec.whole_document),
            )
            logs += done
            for m in made:
                rows.add(m)
        for _ in range(book.replace_docs):  # where the truth is kept: a replacement the questions see
            ws, users = replaceable_members[int(rng.integers(len(replaceable_members)))]
            docs = rows.documents(ws)
            if not docs:
                continue
            doc = docs[int(rng.integers(len(docs)))]
            logs += replace_document(ctx, conn, rows, Author(ws, users[0]), (doc, maker, rng))[0]
        recalls, latencies, failed = [], [], 0
        for i in range(book.queries):
            q = ctx.queries[(step * book.queries + i) % len(ctx.queries)]
            allowed = q.filter_ids if arms.FILTERED[ctx.arm.access] else tuple(q.visible)
            vector = arms.query_vector(q, ctx.arm.build)
            answer = arms.ask(conn, ctx.arm, vector, q.user, list(q.filter_ids))
            recalls.append(recall(answer, rows.truth(vector, allowed, ctx.arm.k), ctx.arm.build, ctx.arm.k))
            latencies.append(answer.latency_ns / 1e6)
            failed += answer.failed
        writes = tally(logs)
        every += recalls
        steps.append(
            {
                "step": step + 1,
                "live_rows": _rows(conn),
                "judged_rows": len(rows),  # the live rows this step's questions may see (their truth)
                **recall_summary(recalls),
                "p50_ms": _r(stats.percentiles(latencies)["p50"]),
                "write_outcomes": writes,
                "outcomes": {"ok": len(recalls) - failed, "statement_timeout": failed},
            }
        )
    means = [s["recall"] for s in steps if s["recall"] is not None]
    entry["runbook"] = {
        "steps": steps,
        "recall_mean_over_steps": _r(float(np.mean(means))) if means else None,
        "over_all_queries": recall_summary(every),
        "settings": dict(book.__dict__),
    }
    ctx.save()


# --- replacement, VACUUM, REINDEX ------------------------------------------------------------------


def vector_indexes(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """The vector indexes on public.document_chunks (the study's and a design's): (schema, name)."""
    rows = conn.execute(
        "select n.nspname, c.relname from pg_index i"
        " join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace"
        " join pg_am a on a.oid = c.relam"
        " where i.indrelid = 'public.document_chunks'::regclass and a.amname in ('hnsw', 'ivfflat')"
        " order by 1, 2"
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def tenant_queries(
    conn: psycopg.Connection,
    rows: LiveRows,
    tenant: uuid.UUID,
    user: uuid.UUID,
    rng: np.random.Generator,
    n: int,
) -> list[StudyQuery]:
    """Questions a member of `tenant` asks about it: stored chunks of the tenant, perturbed."""
    visible = frozenset(
        r[0]
        for r in conn.execute(
            "select workspace_id from public.workspace_members where user_id = %s", (user,)
        ).fetchall()
    )
    mine = rows.rows_of(tenant)
    picked = rng.choice(mine, size=min(n, len(mine)), replace=False)
    out = []
    for j, i in enumerate(picked.tolist()):
        base = rows.vector(i)
        v = base + rng.standard_normal(base.shape[0]).astype(np.float32) * (NOISE / np.sqrt(base.shape[0]))
        v = (v / np.linalg.norm(v)).astype(np.float32)
        out.append(
            StudyQuery(
                j,
                user,
                "workspace",
                "tenant",
                (tenant,),
                visible,
                v,
                {},
                {},
                {},
                vectors={rows.build.embedding: v},
            )
        )
    return out


def replacement(ctx: Context, conn: psycopg.Connection, entry: dict[str, Any]) -> None:
    """Replace `replace_share` of the largest tenant's chunks (its documents re-processed), then its
    searches' latency and recall: before, after the replacement, after VACUUM, after REINDEX INDEX
    CONCURRENTLY then VACUUM (as pgvector's README advises for hnsw), with each one's duration."""
    rng = np.random.default_rng((ctx.seed, 13))
    tenant, users = next(iter(ctx.members.items()))
    visible = [
        r[0]
        for r in conn.execute(
            "select workspace_id from public.workspace_members where user_id = %s", (users[0],)
        ).fetchall()
    ]
    rows = LiveRows(conn, ctx.arm.build, {tenant, *visible})  # what the tenant's member may see
    author = Author(tenant, users[0])
    queries = tenant_queries(conn, rows, tenant, author.user, rng, max(10, ctx.spec.runbook.queries))
    arm = ctx.arm
    table = sql.Identifier("public", "document_chunks")

    def measure(label: str, **extra: Any) -> dict[str, Any]:
        requests = loadgen.requests_for(conn, arm, queries)
        result = loadgen.run(ctx.dsn, requests, loadgen.Load(1, ctx.spec.seconds, settings=ctx.gucs))
        recalls = []
        failed = 0
        for q in queries:
            answer = arms.ask(conn, arm, q.vectors[arm.build.dim], q.user, [tenant])
            allowed = [tenant] if arms.FILTERED[arm.access] else q.visible
            recalls.append(
                recall(answer, rows.truth(q.vectors[arm.build.dim], allowed, arm.k), arm.build, arm.k)
            )
            failed += answer.failed
        outcomes = result.outcomes()
        outcomes["statement_timeout"] += failed
        return {
            "phase": label,
            **extra,
            "searches": {
                **latency_summary(result.latencies_ms()),
                "qps": _r(result.qps(), 2),
                "outcomes": outcomes,
            },
            "recall": recall_summary(recalls),
            "dead_rows": _dead(conn),
        }

    tenant_chunks = len(rows.rows_of(tenant))
    phases = [measure("before")]
    target = ctx.spec.replace_share * tenant_chunks
    replaced, logs = 0, []
    started = time.perf_counter()
    maker = ChunkMaker(conn)
    for doc in rows.documents(tenant):
        if replaced >= target:
            break
        done, size = replace_document(ctx, conn, rows, author, (doc, maker, rng))
        logs += done
        replaced += size
    writes = tally(logs)
    phases.append(
        measure(
            "after replacement",
            seconds=_r(time.perf_counter() - started),
            replaced_chunks=replaced,
            write_outcomes=writes,
        )
    )
    with_time = time.perf_counter()
    conn.execute(sql.SQL("vacuum (analyze) {}").format(table))
    phases.append(measure("after vacuum", vacuum_s=_r(time.perf_counter() - with_time)))
    if not ctx.spec.reindex:  # the grid leaves it out (said in the record)
        entry["replacement"] = _replacement(ctx, tenant, tenant_chunks, replaced, phases)
        ctx.save()
        return
    reindex_s = {}
    for schema, name in vector_indexes(conn):
        t = time.perf_counter()
        conn.execute(sql.SQL("reindex index concurrently {}").format(sql.Identifier(schema, name)))
        reindex_s[name] = _r(time.perf_counter() - t)
    t = time.perf_counter()
    conn.execute(sql.SQL("vacuum (analyze) {}").format(table))
    phases.append(
        measure(
            "after reindex concurrently + vacuum", reindex_s=reindex_s, vacuum_s=_r(time.perf_counter() - t)
        )
    )
    entry["replacement"] = _replacement(ctx, tenant, tenant_chunks, replaced, phases)
    ctx.save()


def _replacement(
    ctx: Context, tenant: uuid.UUID, tenant_chunks: int, replaced: int, phases: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "tenant": str(tenant),
        "tenant_chunks": tenant_chunks,
        "replace_share": ctx.spec.replace_share,
        "replaced_chunks": replaced,
        "reindex": ctx.spec.reindex,
        "phases": phases,
    }


def _dead(conn: psycopg.Connection) -> int | None:
    row = conn.execute(
        "select n_dead_tup from pg_stat_user_tables where relid = 'public.document_chunks'::regclass"
    ).fetchone()
    return None if row is None else int(row[0])


def members(conn: psycopg.Connection) -> dict[uuid.UUID, list[uuid.UUID]]:
    return authors(conn)
