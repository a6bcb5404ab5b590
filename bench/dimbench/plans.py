"""What the server used for a cell: EXPLAIN of the query match_document_chunks runs, as the arm's user.

The function body is plpgsql, so its plan is invisible from outside; the same SELECT is explained
inline, with the same parameters, inside the same PostgREST-style request (so RLS is in the plan).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from dimbench import arms
from dimbench.grid import Build
from dimbench.measure import StudyQuery
from dimbench.rls import SET_ROLE_AND_CLAIMS, claims_for


def inline_search_sql(build: Build, filtered: bool) -> sql.Composed:
    if build.vector_type == "halfvec":
        distance = sql.SQL(
            "(c.embedding_1536::extensions.halfvec(1536)) operator(extensions.<=>) "
            "(%(q)s::extensions.vector::extensions.halfvec(1536))"
        )
    else:
        column = "embedding_768" if build.dim == 768 else "embedding_1536"
        distance = sql.SQL("c.{} operator(extensions.<=>) %(q)s::extensions.vector").format(
            sql.Identifier(column)
        )
    where = sql.SQL("where c.workspace_id = any (%(f)s)") if filtered else sql.SQL("")
    return sql.SQL(
        "explain (format json) select c.id from public.document_chunks c {} order by {} limit %(k)s"
    ).format(where, distance)


def describe(conn: psycopg.Connection, build: Build, access: str, query: StudyQuery, k: int) -> str:
    role = arms.ARM_ROLE[access]
    filtered = arms.FILTERED[access]
    params = {"q": arms.query_vector(query.vector_1536, build), "k": k, "f": list(query.filter_ids)}
    with conn.transaction(force_rollback=True):
        conn.execute(SET_ROLE_AND_CLAIMS, (role, claims_for(role, query.user)))
        row = conn.execute(inline_search_sql(build, filtered), params).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    return summarize(plan)


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node]
    for child in node.get("Plans", []):
        found += _walk(child)
    return found


def summarize(plan: list[dict[str, Any]]) -> str:
    """A short line naming the access path: which index (or seq scan), post-filter, sort, RLS initplan."""
    nodes = _walk(plan[0]["Plan"])
    scans = [
        n
        for n in nodes
        if "Scan" in n["Node Type"]
        and n.get("Relation Name", "") == "document_chunks"
        or n["Node Type"] == "Bitmap Index Scan"
    ]
    parts = []
    for n in scans:
        if n["Node Type"] == "Bitmap Heap Scan":
            continue
        label = n["Node Type"]
        if "Index Name" in n:
            label += f" using {n['Index Name']}"
        if "workspace_id" in n.get("Filter", ""):
            label += " (post-filter on workspace_id)"
        parts.append(label)
    if any(n["Node Type"] == "Sort" for n in nodes):
        parts.append("Sort")
    if any(
        n.get("Parent Relationship") == "InitPlan" or "InitPlan" in n.get("Subplan Name", "") for n in nodes
    ):
        parts.append("RLS InitPlan")
    return " → ".join(parts) if parts else plan[0]["Plan"]["Node Type"]
