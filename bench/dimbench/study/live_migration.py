"""The migration under traffic: the seed's Phase 3 on a legacy database while searches and ingest run
(live.json's `migration`, measured after the designs when the grid has `[live.migration]`).

On a legacy database built from the study's corpus (live_migration_legacy.py), with traffic running
(live_migration_traffic.py), in this order, each a phase with its start and end:

  before migration  the legacy app alone: searches on `embedding`, single-chunk inserts with a 1536 vector;
  0005…0012   each file applied as `schema apply` applies it (its lock_timeout, retried on 55P03),
              then `settle_s` of traffic; the legacy app keeps sending throughout, and what it sends
              after 0005 renames its column fails — counted by error, never dropped. The upgraded app
              (searches on `embedding_1536`, inserts with a workspace and both vectors) starts as soon
              as 0005 has committed, as a deploy right after the rename would;
  before backfill   the upgraded app alone, the baseline the backfill is compared with;
  backfill    embedding_768 written in batches of `batch_rows` through the backfill queue index (the
              corpus's 768 vectors; a chunk the legacy app inserted during the run has none, so its
              first 768 dimensions normalized stand in — counted apart);
  index       `create index concurrently` of the grid's live build (the index the decision deploys:
              on embedding_768 or on embedding_1536, as its column type says).

The study's database is only read; the legacy database is dropped after (or by the next live stage).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from dimbench.database import db, schema
from dimbench.errors import DimbenchError
from dimbench.study import index
from dimbench.study import live_migration_legacy as legacy_db
from dimbench.study import live_migration_stats as stats
from dimbench.study.configs import Build
from dimbench.study.live_ingest import LockWatch
from dimbench.study.live_migration_traffic import Stream, Traffic

PHASE3_FROM = "0005"
SAMPLES = 16  # chunks whose vectors the scripts carry (search by a stored chunk's vector; ingest copies)
SESSION = {"search_path": "public,extensions"}  # as Supabase's API sets it: pgvector lives in extensions
MODEL_1536 = "text-embedding-ada-002"  # what 0005 records for the legacy column
BACKFILL = sql.SQL(
    "with batch as (select workspace_id, id from public.document_chunks"
    " where embedding_768 is null and embedding_1536 is not null order by workspace_id, id limit {}"
    " for update skip locked)"
    " update public.document_chunks c set embedding_768 = coalesce(e.embedding_768,"
    " extensions.l2_normalize(extensions.subvector(c.embedding_1536, 1, 768))), embedding_768_model = {}"
    " from batch left join dimbench_reembed.embeddings e on e.id = batch.id"
    " where c.workspace_id = batch.workspace_id and c.id = batch.id"
    " returning e.id is not null"
)
CIC_NAME = "document_chunks_embedding_768_migration_idx"


def measure(chosen: Any, dsn: str, live: dict[str, Any], save: Callable[[], None]) -> None:
    """live["migration"] when the plan's [live.migration] asks for it (the live stage's one call)."""
    settings = chosen.spec.migration
    if not settings or not settings["enabled"]:
        return
    live["migration"] = entry = {"status": "running", "settings": settings, "phases": []}
    save()
    print("live: the migration under traffic (legacy upgrade, backfill, concurrent index)", flush=True)
    try:
        with db.connect(live_admin(dsn)) as admin:
            built = legacy_db.build(admin, dsn)
        entry["legacy"] = built.describe()
        save()
        try:
            run(built.dsn, settings, entry, save, chosen.build, model_768(dsn))
        finally:
            with db.connect(live_admin(dsn)) as admin:
                legacy_db.drop(admin, built.name)
        entry["status"] = "done"
    except KeyboardInterrupt:
        entry["status"] = "interrupted"
        raise
    finally:
        save()


def live_admin(dsn: str) -> str:
    return db.with_dbname(dsn, "postgres")


def drop_leftovers(admin: psycopg.Connection) -> None:
    for name in legacy_db.leftovers(admin):
        legacy_db.drop(admin, name)
        print(f"dropped {name}: a legacy database a killed run left behind (the corpus was never written)")


def model_768(dsn: str) -> str:
    with db.connect(dsn) as conn:
        row = conn.execute(
            "select embedding_768_model from public.document_chunks where embedding_768_model is not null"
            " limit 1"
        ).fetchone()
    return row[0] if row else "text-embedding-3-small"


def scripts(conn: psycopg.Connection, model: str) -> dict[str, list[str]]:
    """pgbench scripts for both apps, each carrying one of SAMPLES chunks' vectors as literals."""
    rows = conn.execute(
        "select c.id, c.document_id, c.embedding::text, e.embedding_768::text from public.document_chunks c"
        " join dimbench_reembed.embeddings e on e.id = c.id where c.embedding is not null"
        " order by c.id limit %s",
        (SAMPLES,),
    ).fetchall()
    if not rows:
        raise DimbenchError("the migration under traffic needs a corpus with embedded chunks")
    legacy_search = sql.SQL(
        "select id from public.document_chunks order by embedding <=> {}::vector limit 10;"
    )
    search = sql.SQL("select id from public.document_chunks order by embedding_1536 <=> {}::vector limit 10;")
    legacy_insert = sql.SQL(
        "insert into public.document_chunks (document_id, chunk_index, content, embedding)"
        " values ({}, :ci, 'ingested during the migration', {});"
    )
    insert = sql.SQL(
        "insert into public.document_chunks (workspace_id, document_id, chunk_index, content,"
        " embedding_1536, embedding_1536_model, embedding_768, embedding_768_model)"
        " values ({}, {}, :ci, 'ingested during the migration', {}, {}, {}, {});"
    )
    workspace = "00000000-0000-4000-8000-000000000000"  # 0005's default workspace
    out: dict[str, list[str]] = {"legacy_search": [], "legacy_ingest": [], "search": [], "ingest": []}
    for _, document, v1536, v768 in rows:
        doc, vec = sql.Literal(str(document)), sql.Literal(v1536)
        chunk = "\\set ci random(100000, 999999)\n"
        out["legacy_search"].append(legacy_search.format(vec).as_string(None) + "\n")
        out["search"].append(search.format(vec).as_string(None) + "\n")
        out["legacy_ingest"].append(chunk + legacy_insert.format(doc, vec).as_string(None) + "\n")
        out["ingest"].append(
            chunk
            + insert.format(
                sql.Literal(workspace),
                doc,
                vec,
                sql.Literal(MODEL_1536),
                sql.Literal(v768),
                sql.Literal(model),
            ).as_string(None)
            + "\n"
        )
    return out


class Clock:
    """Offsets from the start of traffic, and the phases as they happen."""

    def __init__(self, entry: dict[str, Any], save: Callable[[], None]) -> None:
        self.t0 = time.time()
        self.entry, self.save = entry, save

    def at(self, t: float) -> float:
        return round(t - self.t0, 3)

    def phase(self, name: str, kind: str, start: float, end: float, **more: Any) -> dict[str, Any]:
        record = {"phase": name, "kind": kind, "start_s": self.at(start), "end_s": self.at(end), **more}
        self.entry["phases"].append(record)
        self.save()
        return record


def run(
    dsn: str,
    settings: dict[str, Any],
    entry: dict[str, Any],
    save: Callable[[], None],
    build: Build,
    model: str,
) -> None:
    with db.connect(dsn) as conn:
        texts = scripts(conn, model)
    traffic = Traffic()

    def stream(name: str, what: str) -> Stream:
        return Stream(name, dsn, texts[name], settings[f"{what}_rate"], settings[f"{what}_clients"], SESSION)

    clock = Clock(entry, save)
    windows: list[tuple[dict[str, Any], float, float]] = []  # (phase record, its window)
    try:
        traffic.start(stream("legacy_search", "search"))
        traffic.start(stream("legacy_ingest", "ingest"))
        windows.append(timed_wait(clock, "before migration", settings["seconds"]))
        with db.connect(dsn) as conn:
            for migration in schema.load_migrations():
                if migration.name[:4] < PHASE3_FROM:
                    continue
                windows.append(apply_file(clock, conn, dsn, migration, settings["settle_s"]))
                if migration.name.startswith(PHASE3_FROM):  # the upgraded app deploys once 0005 committed
                    traffic.start(stream("search", "search"))
                    traffic.start(stream("ingest", "ingest"))
        traffic.stop("legacy_search", "legacy_ingest")
        windows.append(timed_wait(clock, "before backfill", settings["seconds"]))
        with db.connect(dsn) as conn:
            windows.append(backfill(clock, conn, settings, model))
            time.sleep(settings["settle_s"])
            windows.append(concurrent_index(clock, conn, dsn, build, settings["settle_s"]))
        traffic.stop()
    finally:
        traffic.stop_quietly()
    summarize(entry, traffic, windows, clock, dsn)
    save()


def timed_wait(clock: Clock, name: str, seconds: float) -> tuple[dict[str, Any], float, float]:
    start = time.time()
    time.sleep(seconds)
    end = time.time()
    return clock.phase(name, "traffic", start, end), start, end


def apply_file(
    clock: Clock, conn: psycopg.Connection, dsn: str, migration: schema.Migration, settle_s: float
) -> tuple[dict[str, Any], float, float]:
    """One file applied under traffic; its window runs until the next one starts (settle_s after it)."""
    with LockWatch(dsn) as watch:
        start = time.time()
        tries = schema.apply_file(conn, migration)
        end = time.time()
        time.sleep(settle_s)
    record = clock.phase(
        migration.name, "migration", start, end, retries=tries - 1, lock_waits=watch.describe()
    )
    return record, start, time.time()


def backfill(
    clock: Clock, conn: psycopg.Connection, settings: dict[str, Any], model: str
) -> tuple[dict[str, Any], float, float]:
    """embedding_768 in batches through the backfill queue until it is empty (or the cap)."""
    cap, size = settings["backfill_max_rows"], settings["batch_rows"]
    rows = from_corpus = batches = 0
    batch_ms: list[float] = []
    start = time.time()
    while not cap or rows < cap:
        limit = size if not cap else min(size, cap - rows)
        began = time.perf_counter()
        done = conn.execute(BACKFILL.format(sql.Literal(limit), sql.Literal(model))).fetchall()
        batch_ms.append((time.perf_counter() - began) * 1000)
        if not done:
            batch_ms.pop()  # the empty query that found the queue empty is no batch
            break
        rows, from_corpus, batches = rows + len(done), from_corpus + sum(r[0] for r in done), batches + 1
    end = time.time()
    left = conn.execute("select count(*) from public.document_chunks where embedding_768 is null").fetchone()
    seconds = end - start
    record = clock.phase(
        "backfill",
        "backfill",
        start,
        end,
        rows=rows,
        rows_from_corpus=from_corpus,
        rows_stand_in=rows - from_corpus,
        batches=batches,
        batch_rows=size,
        seconds=round(seconds, 3),
        rows_per_s=round(rows / seconds, 1) if rows and seconds > 0 else None,
        batch=stats.latency_of(batch_ms),
        remaining_null=int(left[0]) if left else None,
    )
    return record, start, end


def concurrent_index(
    clock: Clock, conn: psycopg.Connection, dsn: str, build: Build, settle_s: float
) -> tuple[dict[str, Any], float, float]:
    """The grid's live build (on its own column: the backfilled one for vector768), `create index
    concurrently`, as 0009 sets it."""
    conn.execute("set lock_timeout = '1min'")
    conn.execute("set statement_timeout = '1h'")
    index.size_maintenance_memory(conn, build)
    with LockWatch(dsn) as watch:
        start = time.time()
        conn.execute(index.create_statement(build, CIC_NAME, concurrently=True))
        end = time.time()
        time.sleep(settle_s)
    record = clock.phase(
        "create index concurrently",
        "index",
        start,
        end,
        build=build.key,
        seconds=round(end - start, 3),
        lock_waits=watch.describe(),
    )
    return record, start, time.time()


def summarize(
    entry: dict[str, Any],
    traffic: Traffic,
    windows: list[tuple[dict[str, Any], float, float]],
    clock: Clock,
    dsn: str,
) -> None:
    sent = {name: s.sent for name, s in traffic.streams.items()}
    for record, start, end in windows:
        record["window_end_s"] = clock.at(end)
        record["traffic"] = stats.phase_traffic(sent, start, end)
    entry["streams"] = {
        name: {"rate": s.rate, "clients": s.clients, **stats.outcomes(s.sent), **stats.latency(s.sent)}
        for name, s in traffic.streams.items()
    }
    by_name = {record["phase"]: (start, end) for record, start, end in windows}
    entry["backfill_effect"] = {
        what: stats.ratio(
            stats.completed_ms(sent[what], *by_name["backfill"]),
            stats.completed_ms(sent[what], *by_name["before backfill"]),
        )
        for what in ("search", "ingest")
        if what in sent
    }
    last = max(end for _, _, end in windows)
    entry["timeline"] = stats.timeline(sent, clock.t0, last)
    with db.connect(dsn) as conn:
        row = conn.execute(
            "select count(*), count(*) filter (where embedding_768 is null) from public.document_chunks"
        ).fetchone()
    entry["chunks_after"] = {"chunks": int(row[0]), "embedding_768_null": int(row[1])} if row else None
