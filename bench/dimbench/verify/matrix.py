"""The isolation matrix: every table × command × persona, run as PostgREST runs a request.

Each case states what the persona must get — rows seen (exactly the persona's workspaces, no fewer),
rows affected, or SQLSTATE 42501 — and `check` compares it with what the database did. The test suite
parametrizes over these cases; `dimbench verify` runs them all against any database. Every request is
rolled back. Only the world's own workspaces are compared, so a database with real tenants can be
checked too (a probe user seeing any row outside the world is itself a finding).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from dimbench.database import rls
from dimbench.database.inventory import TABLES
from dimbench.verify.world import World

CONTENT = TABLES[2:]
PERSONAS = ("anon", "viewer", "member", "admin", "owner", "nonmember", "stranger", "service_role")
COMMANDS = ("select", "insert", "update", "delete")
WRITERS = {"member", "admin", "owner"}
MANAGERS = {"admin", "owner"}
DENIED = "denied"  # SQLSTATE 42501


def ws_column(table: str) -> str:
    return "id" if table == "workspaces" else "workspace_id"


def counts_by_workspace(conn: psycopg.Connection, table: str) -> dict[uuid.UUID, int]:
    query = sql.SQL("select {col}, count(*) from {tbl} group by 1").format(
        col=sql.Identifier(ws_column(table)), tbl=sql.Identifier("public", table)
    )
    return dict(conn.execute(query).fetchall())


def persona_request(
    conn: psycopg.Connection, world: World, persona: str
) -> AbstractContextManager[psycopg.Connection]:
    if persona in ("anon", "service_role"):
        return rls.request(conn, persona)
    return rls.request(conn, "authenticated", world.users[persona])


def outcome(
    conn: psycopg.Connection, world: World, persona: str, statement: sql.Composable, params: tuple = ()
) -> object:
    """Run one statement as the persona: the rowcount, or DENIED on SQLSTATE 42501."""
    try:
        with persona_request(conn, world, persona) as c:
            return c.execute(statement, params).rowcount
    except psycopg.errors.InsufficientPrivilege:
        return DENIED


# --- expectations ---------------------------------------------------------------------------------


def visible_workspaces(world: World, persona: str) -> set[uuid.UUID]:
    if persona == "service_role":
        return {world.ws_a, world.ws_b}
    if persona == "nonmember":
        return {world.ws_b}
    if persona in ("anon", "stranger"):
        return set()
    return {world.ws_a}


def insert_statement(table: str, world: World, persona: str) -> tuple[sql.Composable, tuple]:
    new = uuid.uuid4()
    if table == "workspaces":
        creator = world.users.get(persona)
        return sql.SQL("insert into public.workspaces (name, created_by) values ('new', %s)"), (creator,)
    if table == "workspace_members":
        return (
            sql.SQL(
                "insert into public.workspace_members (workspace_id, user_id, role) values (%s, %s, 'member')"
            ),
            (world.ws_a, new),
        )
    if table == "documents":
        return sql.SQL("insert into public.documents (id, workspace_id, title) values (%s, %s, 'new')"), (
            new,
            world.ws_a,
        )
    if table == "pdf_documents":
        return (
            sql.SQL(
                "insert into public.pdf_documents (workspace_id, document_id, storage_path)"
                " values (%s, %s, 'x')"
            ),
            (world.ws_a, world.docs_a[1]),
        )
    if table == "processed_documents":
        return (
            sql.SQL("insert into public.processed_documents (workspace_id, document_id) values (%s, %s)"),
            (world.ws_a, world.docs_a[1]),
        )
    return (
        sql.SQL(
            "insert into public.document_chunks (id, workspace_id, document_id, chunk_index, content)"
            " values (%s, %s, %s, 99, 'new')"
        ),
        (new, world.ws_a, world.docs_a[0]),
    )


def expected_insert(table: str, persona: str) -> object:
    if persona == "anon":
        return DENIED
    if persona == "service_role":
        return 1
    if table == "workspaces":
        return 1  # any signed-in user may create a workspace (and becomes its owner)
    if table == "workspace_members":
        return 1 if persona in MANAGERS else DENIED
    return 1 if persona in WRITERS else DENIED


def update_statement(table: str, world: World) -> tuple[sql.Composable, tuple]:
    if table == "workspaces":
        return sql.SQL("update public.workspaces set name = name || '!' where id = %s"), (world.ws_a,)
    if table == "workspace_members":
        return (
            sql.SQL(
                "update public.workspace_members set role = 'member' where workspace_id = %s and user_id = %s"
            ),
            (world.ws_a, world.users["viewer2"]),
        )
    return (
        sql.SQL("update {} set workspace_id = workspace_id where workspace_id = %s").format(
            sql.Identifier("public", table)
        ),
        (world.ws_a,),
    )


def delete_statement(table: str, world: World) -> tuple[sql.Composable, tuple]:
    if table == "workspaces":
        return sql.SQL("delete from public.workspaces where id = %s"), (world.ws_a,)
    if table == "workspace_members":
        return (
            sql.SQL("delete from public.workspace_members where workspace_id = %s and user_id = %s"),
            (world.ws_a, world.users["viewer2"]),
        )
    return sql.SQL("delete from {} where workspace_id = %s").format(sql.Identifier("public", table)), (
        world.ws_a,
    )


def rows_in_a(conn: psycopg.Connection, world: World, table: str) -> int:
    if table in ("workspaces", "workspace_members"):
        return 1  # the statements above target one row
    return counts_by_workspace(conn, table).get(world.ws_a, 0)


def expected_change(table: str, persona: str, rows: int, command: str) -> object:
    if persona == "anon":
        return DENIED
    if persona == "service_role":
        return rows
    if table == "workspaces":
        allowed = {"owner"} if command == "delete" else MANAGERS
        return 1 if persona in allowed else 0
    if table == "workspace_members":
        return 1 if persona in MANAGERS else 0  # the target row is another viewer's
    return rows if persona in WRITERS else 0


# --- the cases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    table: str
    command: str
    persona: str

    def __str__(self) -> str:
        return f"{self.command} on public.{self.table} as {self.persona}"


def cases() -> Iterator[Case]:
    for command in COMMANDS:
        for table in TABLES:
            for persona in PERSONAS:
                yield Case(table, command, persona)


def check(conn: psycopg.Connection, world: World, case: Case) -> str | None:
    """None if the database did what the case expects, else one line saying what went wrong.

    `conn` must be able to see every row of the world (its owner or a superuser).
    """
    table, persona = case.table, case.persona
    try:
        if case.command == "select":
            return _check_select(conn, world, table, persona)
        if case.command == "insert":
            statement, params = insert_statement(table, world, persona)
            expected = expected_insert(table, persona)
        else:
            build = update_statement if case.command == "update" else delete_statement
            statement, params = build(table, world)
            expected = expected_change(table, persona, rows_in_a(conn, world, table), case.command)
        got = outcome(conn, world, persona, statement, params)
    except psycopg.Error as exc:
        return f"{case}: unexpected error {exc.sqlstate}: {_first_line(exc)}"
    if got == expected:
        return None
    return f"{case}: expected {_describe(expected)}, got {_describe(got)}"


def _check_select(conn: psycopg.Connection, world: World, table: str, persona: str) -> str | None:
    everything = counts_by_workspace(conn, table)
    ours = set(world.workspaces)
    try:
        with persona_request(conn, world, persona) as c:
            seen = counts_by_workspace(c, table)
    except psycopg.errors.InsufficientPrivilege:
        return None if persona == "anon" else f"select on public.{table} as {persona}: denied (42501)"
    if persona == "anon":
        return f"select on public.{table} as anon: allowed ({sum(seen.values())} rows), expected denied"
    if persona != "service_role":
        foreign = {ws: n for ws, n in seen.items() if ws not in ours}
        if foreign:
            others = sum(foreign.values())
            return f"select on public.{table} as {persona}: sees {others} row(s) of other workspaces"
    mine = visible_workspaces(world, persona)
    expected = {ws: n for ws, n in everything.items() if ws in mine}
    got = {ws: n for ws, n in seen.items() if ws in ours}
    if got == expected:
        return None
    return (
        f"select on public.{table} as {persona}: sees {_per_workspace(got, world)}, "
        f"expected {_per_workspace(expected, world)}"
    )


def _per_workspace(counts: dict[uuid.UUID, int], world: World) -> str:
    names = {world.ws_a: "A", world.ws_b: "B"}
    parts = [f"{names[ws]}: {n}" for ws, n in sorted(counts.items(), key=lambda item: names[item[0]])]
    return ", ".join(parts) or "nothing"


def _describe(value: object) -> str:
    return "denied (42501)" if value == DENIED else f"{value} row(s)"


def _first_line(exc: psycopg.Error) -> str:
    return (exc.diag.message_primary or str(exc)).splitlines()[0]


def matrix_findings(conn: psycopg.Connection, world: World) -> list[str]:
    return [f"isolation: {found}" for case in cases() if (found := check(conn, world, case))]


# --- match_document_chunks as each persona ---------------------------------------------------------


def query_vector(dim: int) -> np.ndarray:
    v = np.random.default_rng(11).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


SEARCH = "select id, workspace_id from public.match_document_chunks(%s, %s, %s, %s, %s)"


def search_findings(conn: psycopg.Connection, world: World, k: int = 100) -> list[str]:
    """Every persona's search returns exactly the chunks of its workspaces (anon: denied), exact scan."""
    everything = counts_by_workspace(conn, "document_chunks")
    found = []
    for persona in PERSONAS:
        for dim, half in ((768, False), (1536, False), (1536, True)):
            label = f"match_document_chunks({dim}{', half' if half else ''}) as {persona}"
            # service_role sees every tenant: it searches the world's workspaces, as the service arm does.
            filter_ids = list(world.workspaces) if persona == "service_role" else None
            try:
                with persona_request(conn, world, persona) as c:
                    c.execute("set local enable_indexscan = off")  # exact: every visible chunk ranks
                    rows = c.execute(SEARCH, (query_vector(dim), k, filter_ids, dim, half)).fetchall()
            except psycopg.errors.InsufficientPrivilege:
                if persona != "anon":
                    found.append(f"search: {label}: denied (42501)")
                continue
            except psycopg.Error as exc:
                found.append(f"search: {label}: unexpected error {exc.sqlstate}: {_first_line(exc)}")
                continue
            if persona == "anon":
                found.append(f"search: {label}: allowed, expected denied")
                continue
            seen: dict[uuid.UUID, int] = {}
            for _, ws in rows:
                seen[ws] = seen.get(ws, 0) + 1
            ours = set(world.workspaces)
            if persona != "service_role" and any(ws not in ours for ws in seen):
                found.append(f"search: {label}: returned chunks of other workspaces")
                continue
            expected = {ws: n for ws, n in everything.items() if ws in visible_workspaces(world, persona)}
            got = {ws: n for ws, n in seen.items() if ws in ours}
            if got != expected:
                found.append(
                    f"search: {label}: returned {_per_workspace(got, world)}, "
                    f"expected {_per_workspace(expected, world)}"
                )
    return found


# --- removed and changed memberships ---------------------------------------------------------------


def visible_rows(conn: psycopg.Connection, world: World, persona: str) -> dict[str, int]:
    """How many of the world's rows the persona sees, per table and through search."""
    ours = list(world.workspaces)
    seen = {}
    with persona_request(conn, world, persona) as c:
        for table in TABLES:
            query = sql.SQL("select count(*) from {} where {} = any(%s)").format(
                sql.Identifier("public", table), sql.Identifier(ws_column(table))
            )
            seen[table] = c.execute(query, (ours,)).fetchone()[0]
        c.execute("set local enable_indexscan = off")
        rows = c.execute(SEARCH, (query_vector(768), 1000, None, 768, False)).fetchall()
        seen["match_document_chunks"] = sum(1 for _, ws in rows if ws in ours)
    return seen


def membership_findings(conn: psycopg.Connection, world: World, replica: bool) -> list[str]:
    """Remove viewer2 and demote member to viewer, then look for access left behind.

    With `replica`, the changes are made under session_replication_role = replica, where triggers
    and foreign-key actions do not fire (replication apply, data-only restores): state derived from
    memberships by trigger would go stale there. Everything is rolled back.
    """
    mode = "under session_replication_role = replica" if replica else "in normal mode"
    found = []
    with conn.transaction(force_rollback=True):
        if replica:
            conn.execute("set local session_replication_role = replica")
        conn.execute(
            "delete from public.workspace_members where workspace_id = %s and user_id = %s",
            (world.ws_a, world.users["viewer2"]),
        )
        conn.execute(
            "update public.workspace_members set role = 'viewer' where workspace_id = %s and user_id = %s",
            (world.ws_a, world.users["member"]),
        )
        left = {what: n for what, n in visible_rows(conn, world, "viewer2").items() if n}
        if left:
            found.append(
                f"membership: a member removed {mode} still sees "
                + ", ".join(f"{what} ({n})" for what, n in left.items())
            )
        for table in CONTENT:
            statement, params = insert_statement(table, world, "member")
            got = outcome(conn, world, "member", statement, params)
            if got != DENIED:
                found.append(
                    f"membership: a member demoted to viewer {mode} may still insert into public.{table}"
                )
    return found
