"""A design with its own copy of the chunks (inline, partitioned) stays installed between stages.

Its install is a copy of every chunk and an index build (inline: ~30 s on `small`), and screening,
confirmation, the side channel and the deployment stage each used to pay it again for the same build.
Such a copy touches nothing of public's (no index, trigger or policy on public.document_chunks), so
it may stand while other designs are measured; a stage that would install it again finds it standing
and reuses it — only if it was installed for the same build and parameters and public's rows are
still the ones it copied (or followed: `Design.follow`). The record of that is a one-row table in the
design's own schema, so `remove` takes it with the rest. A standing copy that nothing reads holds
shared_buffers only until PostgreSQL's clock sweep needs them (unused pages go first); the run removes
every design at its end.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import psycopg
from psycopg import sql

from dimbench.study.configs import Build
from dimbench.study.designs.base import Design, Installed, schema_of

MARKER = "standing_install"

# What the copy was made from: the rows' ids and their last writers (an insert, update or delete of
# public's rows changes it; a rolled-back one does not). A policy variant cannot be in place at an
# install (the copy takes over public's document_chunks_select, which a variant replaces).
PUBLIC_STATE = (
    "select count(*)::text || ':' || coalesce(sum(hashtext(id::text)::bigint), 0)::text || ':'"
    " || coalesce(max(xmin::text::bigint), 0)::text from public.document_chunks"
)


def public_state(conn: psycopg.Connection) -> str:
    row = conn.execute(PUBLIC_STATE).fetchone()
    assert row is not None
    return str(row[0])


def key(build: Build, params: dict[str, Any]) -> str:
    return f"{build.key} {json.dumps(params, sort_keys=True)}"


def _marker(design: Design) -> sql.Identifier:
    return sql.Identifier(schema_of(design.NAME), MARKER)


def record(
    conn: psycopg.Connection, design: Design, build: Build, params: dict[str, Any], done: Installed
) -> None:
    """Note that `design` now stands for (build, params), copied from public as it is now."""
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "create table if not exists {} (key text not null, state text not null, installed jsonb)"
            ).format(_marker(design))
        )
        conn.execute(sql.SQL("truncate {}").format(_marker(design)))
        conn.execute(
            sql.SQL("insert into {} values (%s, %s, %s)").format(_marker(design)),
            (key(build, params), public_state(conn), json.dumps(asdict(done))),
        )


def followed(conn: psycopg.Connection, design: Design) -> None:
    """The copy was just brought in line with public (`Design.follow`): it stands for public as it is now."""
    if exists(conn, design):
        conn.execute(sql.SQL("update {} set state = %s").format(_marker(design)), (public_state(conn),))


def exists(conn: psycopg.Connection, design: Design) -> bool:
    row = conn.execute(
        "select to_regclass(%s) is not null", (f"{schema_of(design.NAME)}.{MARKER}",)
    ).fetchone()
    return bool(row and row[0])


def reusable(
    conn: psycopg.Connection, design: Design, build: Build, params: dict[str, Any]
) -> Installed | None:
    """The standing install of (build, params) if it is still a copy of public as it is; else None."""
    if not exists(conn, design):
        return None
    row = conn.execute(sql.SQL("select key, state, installed from {}").format(_marker(design))).fetchone()
    if row is None or row[0] != key(build, params) or row[1] != public_state(conn):
        return None
    return Installed(**{**row[2], "reused": True})
