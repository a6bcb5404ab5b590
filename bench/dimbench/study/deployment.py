"""After the decision: what deploying it costs, measured on the loaded table (run.json's "deployment").

- cic: `create index concurrently` of the chosen build's index (the statement the record's SQL prints),
  beside the study's index under another name, timed; the plain build's seconds beside it.
- sizing: heap, TOAST and every index of public.document_chunks as loaded (both embedding columns),
  per million chunks; the one-column table where the `inline` design measured it.
- cold_warm: embedded server only — restart it (and drop the OS page cache where permitted), then the
  chosen configuration's requests for a fixed sample per cell: the first pass is cold, the immediate
  second pass of the same queries warm.

None (JSON null) is "not measured"; each part says why in its `status`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import psycopg
from psycopg import sql

from dimbench import stats
from dimbench.database import db
from dimbench.database.rls import claims_for
from dimbench.evidence.rule import Config
from dimbench.study import arms, designs, index
from dimbench.study.configs import Arm, Build, QuerySetting
from dimbench.study.measure import StudyQuery, ask
from dimbench.vocabulary import ARM_ROLE, CHOOSABLE, SCOPES_BY_ACCESS

SAMPLE = 20  # queries per (scope, bucket) cell, asked cold and then warm
CIC_SUFFIX = "_cic"


def chosen(store: Any, session: Any) -> Config | None:
    """The rule's choice on what this run measured (as decided_designs reads it)."""
    from dimbench.evidence.results import Results
    from dimbench.evidence.rule import decide

    rows = [r for r in store.rows.values() if r["run_id"] == session.run_id]
    decision = decide(Results(session.out, session.info, rows, [session.info]))
    return decision.chosen.config if decision.chosen else None


def build_of(config: Config) -> Build:
    return Build(config.column_type, config.index, json.loads(config.build_params))


def measure(
    dsn: str,
    target: db.Target,
    config: Config | None,
    info: dict[str, Any],
    groups: dict[tuple[str, str], list[StudyQuery]],
    k: int,
    *,
    drop_os_cache: bool = True,
) -> dict[str, Any]:
    """The stage: CIC and sizing on the loaded table, then (embedded only) cold vs warm p95."""
    if config is None:
        why = "not measured: no choice"
        return {"status": why, "cic": None, "sizing": None, "cold_warm": None}
    build = build_of(config)
    with db.connect(dsn) as conn:
        cic = concurrent_build(conn, build, info)
        sizing = sizes(conn, build, info)
    if not target.embedded:
        cold_warm: dict[str, Any] = {"status": "not measured: external server"}
    else:
        assert target.pgdata is not None
        cold_warm = cold_and_warm(dsn, target, config, info, groups, k, drop_os_cache=drop_os_cache)
    return {
        "status": "measured",
        "config": config.label,
        "cic": cic,
        "sizing": sizing,
        "cold_warm": cold_warm,
    }


# --- CIC -------------------------------------------------------------------------------------------


def concurrent_build(conn: psycopg.Connection, build: Build, info: dict[str, Any]) -> dict[str, Any]:
    """Time `create index concurrently` of the build's index under another name; keep it as the study
    index when none stands (the cold/warm passes search it), else drop it."""
    plain = next(
        (b.get("seconds") for b in info.get("builds") or [] if b.get("build_key") == build.key), None
    )
    if build.index == "exact":
        return {"status": "not measured: exact search builds no vector index", "plain_seconds": plain}
    record = next(
        (b for b in info.get("builds") or [] if b.get("build_key") == build.key and b.get("concurrently")),
        None,
    )
    if record is not None and index.index_name(build) in index.study_indexes(conn):
        # the study built this very index concurrently and it still stands: that build is the measurement
        return {
            "status": "measured",
            "build_key": build.key,
            "seconds": record["seconds"],
            "plain_seconds": None,
            "valid": True,
            "index_bytes": record.get("index_bytes"),
            "beside_standing_index": False,
            "source": "the study's own build of it (create index concurrently, run.json builds)",
            "maintenance_work_mem": record.get("maintenance_work_mem"),
        }
    name = index.index_name(build) + CIC_SUFFIX
    conn.execute(sql.SQL("drop index if exists {}").format(sql.Identifier("public", name)))
    if build.index == "hnsw":
        index.size_maintenance_memory(conn, build)
    start = time.perf_counter_ns()
    conn.execute(index.create_statement(build, name, concurrently=True))
    seconds = (time.perf_counter_ns() - start) / 1e9
    row = conn.execute(
        "select i.indisvalid, pg_relation_size(i.indexrelid) from pg_index i"
        " where i.indexrelid = %s::regclass",
        (f"public.{name}",),
    ).fetchone()
    assert row is not None
    standing = index.index_name(build) in index.study_indexes(conn)
    if standing:
        conn.execute(sql.SQL("drop index {}").format(sql.Identifier("public", name)))
    else:  # the plain build is not standing: this one serves the cold/warm passes, then the run drops it
        conn.execute(
            sql.SQL("alter index {} rename to {}").format(
                sql.Identifier("public", name), sql.Identifier(index.index_name(build))
            )
        )
    return {
        "status": "measured",
        "build_key": build.key,
        "seconds": round(seconds, 3),
        "plain_seconds": plain,
        "valid": bool(row[0]),
        "index_bytes": int(row[1]),
        "beside_standing_index": standing,
        "maintenance_work_mem": conn.execute("select current_setting('maintenance_work_mem')").fetchone()[0],
    }


# --- sizing ----------------------------------------------------------------------------------------

SIZES = """
select pg_table_size(t.oid) - coalesce(pg_total_relation_size(nullif(t.reltoastrelid, 0)), 0),
       coalesce(pg_total_relation_size(nullif(t.reltoastrelid, 0)), 0),
       pg_total_relation_size(t.oid),
       (select count(*) from public.document_chunks)
from pg_class t where t.oid = 'public.document_chunks'::regclass
"""
INDEXES = """
select c.relname, pg_total_relation_size(c.oid) from pg_index i join pg_class c on c.oid = i.indexrelid
where i.indrelid = 'public.document_chunks'::regclass order by c.relname
"""


def per_million(value: float | None, rows: int) -> float | None:
    return None if value is None or not rows else value / rows * 1e6


def sizes(conn: psycopg.Connection, build: Build, info: dict[str, Any]) -> dict[str, Any]:
    """public.document_chunks as loaded: heap (all forks), TOAST (its table and index), each index (all
    forks); heap + TOAST + indexes = pg_total_relation_size. `deployed`: heap + TOAST + the schema's own
    indexes + the chosen index (the other study indexes are the study's, not the deployment's)."""
    row = conn.execute(SIZES).fetchone()
    assert row is not None
    heap, toast, total, rows = (int(v) for v in row)
    chosen_name = index.index_name(build) if build.index != "exact" else None
    indexes = []
    for name, size in conn.execute(INDEXES).fetchall():
        role = "chosen" if name == chosen_name else "study" if name.startswith("dimbench_") else "schema"
        indexes.append({"name": name, "bytes": int(size), "role": role})
    deployed = heap + toast + sum(i["bytes"] for i in indexes if i["role"] != "study")
    inline = next(
        (
            d
            for d in info.get("designs") or []
            if d.get("design") == "inline" and d.get("column_type") == build.column_type
        ),
        None,
    )
    one_column = (
        {
            "bytes_per_million": per_million(inline.get("table_bytes"), rows),
            "source": f"measured: the inline design's copy on {inline.get('build_key')} (heap + TOAST + "
            "primary key, one embedding column)",
        }
        if inline and inline.get("table_bytes") is not None
        else {"bytes_per_million": None, "source": f"not measured: no inline design on {build.column_type}"}
    )
    return {
        "status": "measured",
        "rows": rows,
        "heap_bytes": heap,
        "toast_bytes": toast,
        "indexes": indexes,
        "total_bytes": total,
        "deployed_bytes": deployed,
        "per_million": {
            "heap": per_million(heap, rows),
            "toast": per_million(toast, rows),
            "indexes": per_million(sum(i["bytes"] for i in indexes), rows),
            "chosen_index": per_million(sum(i["bytes"] for i in indexes if i["role"] == "chosen"), rows),
            "total": per_million(total, rows),
            "deployed": per_million(deployed, rows),
        },
        "one_column_table": one_column,
    }


# --- cold vs warm ----------------------------------------------------------------------------------

STATIO = """
select coalesce(sum(heap_blks_read + coalesce(idx_blks_read, 0) + coalesce(toast_blks_read, 0)
                    + coalesce(tidx_blks_read, 0)), 0)::bigint,
       coalesce(sum(heap_blks_hit + coalesce(idx_blks_hit, 0) + coalesce(toast_blks_hit, 0)
                    + coalesce(tidx_blks_hit, 0)), 0)::bigint
from pg_statio_all_tables where relid = 'public.document_chunks'::regclass or schemaname like 'dimbench%%'
"""


def drop_page_cache() -> str:
    """Ask the kernel to drop the OS page cache (root, writable /proc/sys): what happened, in words."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as exc:
        return f"not dropped ({exc.strerror}): only PostgreSQL's shared_buffers were cold"
    return "dropped"


def block_counts(conn: psycopg.Connection) -> tuple[int, int]:
    """(blocks read into shared_buffers, blocks found there) on the study's tables so far."""
    conn.execute("select pg_stat_force_next_flush()")
    conn.execute("select pg_stat_clear_snapshot()")
    row = conn.execute(STATIO).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def request_role(conn: psycopg.Connection, arm: Arm, user: Any) -> str:
    """current_user inside a request made as the arm makes it (its preamble), rolled back."""
    role = arm.role or ARM_ROLE[arm.access]
    with conn.transaction(force_rollback=True):
        conn.execute(arms.PREAMBLE, (role, claims_for(role, user if role == "authenticated" else None), None))
        return str(conn.execute("select current_user").fetchone()[0])


def sample(groups: dict[tuple[str, str], list[StudyQuery]], access: str) -> dict[str, list[StudyQuery]]:
    return {
        f"{scope}/{bucket}": qs[:SAMPLE]
        for (scope, bucket), qs in sorted(groups.items())
        if scope in SCOPES_BY_ACCESS[access] and qs
    }


def one_pass(conn: psycopg.Connection, arm: Arm, cells: dict[str, list[StudyQuery]]) -> dict[str, Any]:
    """Every sampled query once, round-robin over the cells (each cell meets the cold start alike)."""
    latencies: dict[str, list[float]] = {c: [] for c in cells}
    failed = 0
    before = block_counts(conn)
    for i in range(max(len(qs) for qs in cells.values())):
        for cell, qs in cells.items():
            if i < len(qs):
                answer = ask(conn, arm, qs[i])
                failed += answer.failed
                latencies[cell].append(answer.latency_ns / 1e6)
    after = block_counts(conn)
    per_cell = {
        cell: {
            "n": len(ms),
            "p95_ms": stats.percentiles(ms, (95,))["p95"],
            "p95_ci95": stats.percentile_ci(ms, 95),
        }
        for cell, ms in latencies.items()
    }
    worst = max(per_cell, key=lambda c: per_cell[c]["p95_ms"] or 0.0)
    block = int(conn.execute("select current_setting('block_size')").fetchone()[0])
    return {
        "requests": sum(len(ms) for ms in latencies.values()),
        "failed": failed,
        "cells": per_cell,
        "worst": {"cell": worst, **per_cell[worst]},
        "bytes_read": (after[0] - before[0]) * block,  # into shared_buffers (from the OS cache or disk)
        "bytes_hit": (after[1] - before[1]) * block,
    }


def cold_and_warm(
    dsn: str,
    target: db.Target,
    config: Config,
    info: dict[str, Any],
    groups: dict[tuple[str, str], list[StudyQuery]],
    k: int,
    *,
    drop_os_cache: bool = True,
) -> dict[str, Any]:
    """The decided design installed (with its measured value), the server restarted, two passes."""
    if config.access not in CHOOSABLE:
        return {"status": f"not measured: arm {config.access} swaps the policy"}
    build = build_of(config)
    setting = QuerySetting(json.loads(config.query_params), config.iterative_scan)
    design = designs.get(config.design)
    params = json.loads(config.design_params)
    detail = next(
        (
            d.get("detail") or {}
            for d in info.get("designs") or []
            if (d.get("design"), d.get("build_key")) == (config.design, build.key)
        ),
        {},
    )
    measured = design.measured_at(detail, setting.key) if design.measures(params) else None
    if measured is not None:
        params = {**params, design.MEASURED: measured}
    cells = sample(groups, config.access)
    if not cells:
        return {"status": "not measured: no queries in the arm's scopes"}
    arm = Arm(config.access, build, k, config.design)
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        designs.bring_up(conn, design, build, params)
    try:
        assert target.pgdata is not None
        server = db.EmbeddedServer(target.pgdata)
        start = time.perf_counter()
        server.stop()
        os_cache = drop_page_cache() if drop_os_cache else "not dropped (asked not to)"
        server.start()
        restart_s = time.perf_counter() - start
        with db.connect(dsn) as conn:
            db.use_vectors(conn)
            index.query_settings(conn, build, setting.params, setting.iterative_scan)
            role = request_role(conn, arm, next(iter(cells.values()))[0].user)
            cold = one_pass(conn, arm, cells)
            warm = one_pass(conn, arm, cells)
            shared_buffers = conn.execute("select current_setting('shared_buffers')").fetchone()[0]
    finally:
        with db.connect(dsn) as conn:
            designs.put_away(conn, design)
    return {
        "status": "measured",
        "sample_per_cell": SAMPLE,
        "measured_value": measured,
        "role_in_request": role,
        "os_page_cache": os_cache,
        "restart_seconds": round(restart_s, 3),
        "shared_buffers": shared_buffers,
        "cold": cold,
        "warm": warm,
    }
