"""Which path served a query: the real call, explained from inside by auto_explain.

The search functions are plpgsql, so an EXPLAIN from outside shows only a Function Scan. Instead the
study asks the very request it measures (same role, claims, settings, design) once more with
auto_explain on for this connection — `log_nested_statements`, ANALYZE and BUFFERS, JSON, sent to the
client as NOTICEs — and reads the plans of the statements that touched the chunks. So the plan is the
one the function really ran, RLS and all. auto_explain needs a superuser to load it (`LOAD`); where the
server refuses (a hosted --dsn without it), the audit is recorded as not measured (null), never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from dimbench.study import measure
from dimbench.study.configs import Arm
from dimbench.study.measure import StudyQuery

AUTO_EXPLAIN = {
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "auto_explain.log_timing": "on",
    "auto_explain.log_nested_statements": "on",
    "auto_explain.log_format": "json",
    "auto_explain.log_level": "notice",
}
CHUNK_TABLE = "document_chunks"  # public's, or a design's copy (its partitions are document_chunks_p*)


def available(conn: psycopg.Connection) -> bool:
    try:
        with conn.transaction():
            conn.execute("load 'auto_explain'")
    except psycopg.Error:
        return False
    return True


@contextmanager
def explaining(conn: psycopg.Connection) -> Iterator[list[dict[str, Any]]]:
    """Within: every statement's plan (nested ones too) is appended to the yielded list."""
    plans: list[dict[str, Any]] = []

    def collect(diag: psycopg.errors.Diagnostic) -> None:
        text = diag.message_primary or ""
        start = text.find("{")
        if "plan:" in text and start >= 0:
            try:
                plans.append(json.loads(text[start:]))
            except ValueError:
                pass

    conn.execute("load 'auto_explain'")
    conn.add_notice_handler(collect)
    for name, value in AUTO_EXPLAIN.items():
        conn.execute("select set_config(%s, %s, false)", (name, value))
    try:
        yield plans
    finally:
        conn.execute("select set_config('auto_explain.log_min_duration', '-1', false)")
        conn.remove_notice_handler(collect)


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def _touches_chunks(node: dict[str, Any]) -> bool:
    return str(node.get("Relation Name", "")).startswith(CHUNK_TABLE)


def index_methods(conn: psycopg.Connection, names: set[str]) -> dict[str, str]:
    """Index name -> access method (hnsw, ivfflat, btree …)."""
    if not names:
        return {}
    rows = conn.execute(
        "select c.relname, a.amname from pg_class c join pg_am a on a.oid = c.relam"
        " where c.relkind = 'i' and c.relname = any (%s)",
        (sorted(names),),
    ).fetchall()
    return dict(rows)


def classify(plans: list[dict[str, Any]], methods: dict[str, str]) -> dict[str, Any]:
    """The path from the plans of the statements that read the chunks.

    path: `vector index` (hnsw/ivfflat ordered scan), `btree + sort` (rows of the caller's workspaces
    through a btree, then sorted by distance), `seq scan + sort`, with `per partition (n)` when more
    than one partition was read; `mixed` when one call took several (e.g. partial indexes for some
    workspaces, the btree for the rest).
    """
    kinds: set[str] = set()
    relations: set[str] = set()
    indexes: set[str] = set()
    sort = False
    hit = read = 0
    for plan in plans:
        root = plan.get("Plan", {})
        chunk_scans = [n for n in _walk(root) if _touches_chunks(n)]
        if not chunk_scans:
            continue
        hit += int(root.get("Shared Hit Blocks", 0))
        read += int(root.get("Shared Read Blocks", 0))
        sort = sort or any(n.get("Node Type") in ("Sort", "Incremental Sort") for n in _walk(root))
        for n in chunk_scans:
            if int(n.get("Actual Loops", 1)) > 0:
                relations.add(str(n.get("Relation Name")))
            if n.get("Node Type") == "Seq Scan":
                kinds.add("seq scan")
                continue
            # An index scan names its index; a bitmap heap scan's index scans are its children.
            names = (
                [n["Index Name"]]
                if "Index Name" in n
                else [c["Index Name"] for c in _walk(n) if c.get("Node Type") == "Bitmap Index Scan"]
            )
            for name in names:
                indexes.add(str(name))
                method = methods.get(str(name), "btree")
                kinds.add("vector index" if method in ("hnsw", "ivfflat") else "btree")
    if not kinds:
        return {"path": None, "indexes": [], "partitions": 0, "buffers": None}
    if len(kinds) > 1:
        path = "mixed: " + " + ".join(sorted(kinds))
    else:
        (kind,) = kinds
        path = kind if kind == "vector index" else f"{kind} + sort" if sort else kind
    partitions = len(relations)
    if partitions > 1:
        path += f" per partition ({partitions})"
    return {
        "path": path,
        "indexes": sorted(indexes),
        "partitions": partitions,
        "buffers": {"shared_hit": hit, "shared_read": read},
    }


def audit(conn: psycopg.Connection, arm: Arm, query: StudyQuery) -> dict[str, Any]:
    """One real call of the cell, explained: its path, the indexes it read, buffers, time."""
    with explaining(conn) as plans:
        answer = measure.ask(conn, arm, query)
    names = {str(n["Index Name"]) for p in plans for n in _walk(p.get("Plan", {})) if "Index Name" in n}
    found = classify(plans, index_methods(conn, names))
    return {**found, "qid": query.qid, "latency_ms": round(answer.latency_ns / 1e6, 3)}


def summarize(audits: list[dict[str, Any]]) -> str | None:
    """One line for a cell: the path of its sampled calls (`a, b` when they differ)."""
    paths = sorted({a["path"] for a in audits if a.get("path")})
    return ", ".join(paths) if paths else None
