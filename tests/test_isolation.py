"""The isolation matrix: every table × command × persona, run as PostgREST runs a request.

Expected outcomes are stated per persona, then checked against what the database did: rows seen
(exactly the persona's workspaces, no fewer), rows affected, or SQLSTATE 42501.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from dimbench import rls
from tests.world import World

TABLES = (
    "workspaces",
    "workspace_members",
    "documents",
    "pdf_documents",
    "processed_documents",
    "document_chunks",
)
CONTENT = TABLES[2:]
PERSONAS = ("anon", "viewer", "member", "admin", "owner", "nonmember", "service_role")
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


def persona_request(conn: psycopg.Connection, world: World, persona: str):
    if persona in ("anon", "service_role"):
        return rls.request(conn, persona)
    return rls.request(conn, "authenticated", world.users[persona])


def outcome(
    conn: psycopg.Connection, world: World, persona: str, statement: sql.Composable, params: tuple = ()
) -> object:
    """Run one statement as the persona: the rowcount, or DENIED on SQLSTATE 42501."""
    try:
        with persona_request(conn, world, persona) as c:
            cur = c.execute(statement, params)
            return cur.rowcount
    except psycopg.errors.InsufficientPrivilege:
        return DENIED


# --- select -------------------------------------------------------------------------------------


def visible_workspaces(world: World, persona: str) -> set[uuid.UUID]:
    if persona == "service_role":
        return {world.ws_a, world.ws_b}
    if persona == "nonmember":
        return {world.ws_b}
    return {world.ws_a}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("table", TABLES)
def test_select_shows_exactly_the_personas_workspaces(conn, world, table, persona):
    everything = counts_by_workspace(conn, table)
    if persona == "anon":
        with pytest.raises(psycopg.errors.InsufficientPrivilege), persona_request(conn, world, persona) as c:
            counts_by_workspace(c, table)
        return
    with persona_request(conn, world, persona) as c:
        seen = counts_by_workspace(c, table)
    expected = {ws: n for ws, n in everything.items() if ws in visible_workspaces(world, persona)}
    assert seen == expected


# --- insert -------------------------------------------------------------------------------------


def insert_statement(table: str, world: World, persona: str) -> tuple[sql.Composable, tuple]:
    new = uuid.uuid4()
    if table == "workspaces":
        creator = world.users.get(persona)
        return sql.SQL("insert into workspaces (name, created_by) values ('new', %s)"), (creator,)
    if table == "workspace_members":
        return (
            sql.SQL("insert into workspace_members (workspace_id, user_id, role) values (%s, %s, 'member')"),
            (world.ws_a, new),
        )
    if table == "documents":
        return sql.SQL("insert into documents (id, workspace_id, title) values (%s, %s, 'new')"), (
            new,
            world.ws_a,
        )
    if table == "pdf_documents":
        return (
            sql.SQL(
                "insert into pdf_documents (workspace_id, document_id, storage_path) values (%s, %s, 'x')"
            ),
            (world.ws_a, world.docs_a[1]),
        )
    if table == "processed_documents":
        return (
            sql.SQL("insert into processed_documents (workspace_id, document_id) values (%s, %s)"),
            (world.ws_a, world.docs_a[1]),
        )
    return (
        sql.SQL(
            "insert into document_chunks (id, workspace_id, document_id, chunk_index, content)"
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


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("table", TABLES)
def test_insert_into_workspace_a(conn, world, table, persona):
    statement, params = insert_statement(table, world, persona)
    assert outcome(conn, world, persona, statement, params) == expected_insert(table, persona)


# --- update -------------------------------------------------------------------------------------


def update_statement(table: str, world: World) -> tuple[sql.Composable, tuple]:
    if table == "workspaces":
        return sql.SQL("update workspaces set name = name || '!' where id = %s"), (world.ws_a,)
    if table == "workspace_members":
        return (
            sql.SQL("update workspace_members set role = 'member' where workspace_id = %s and user_id = %s"),
            (world.ws_a, world.users["viewer2"]),
        )
    return (
        sql.SQL("update {} set workspace_id = workspace_id where workspace_id = %s").format(
            sql.Identifier("public", table)
        ),
        (world.ws_a,),
    )


def expected_change(table: str, persona: str, rows_in_a: int, command: str) -> object:
    if persona == "anon":
        return DENIED
    if persona == "service_role":
        return rows_in_a
    if table == "workspaces":
        allowed = {"owner"} if command == "delete" else MANAGERS
        return 1 if persona in allowed else 0
    if table == "workspace_members":
        return 1 if persona in MANAGERS else 0  # the target row is another viewer's
    return rows_in_a if persona in WRITERS else 0


def rows_in_a(conn, world: World, table: str) -> int:
    if table == "workspaces":
        return 1
    if table == "workspace_members":
        return 1
    return counts_by_workspace(conn, table)[world.ws_a]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("table", TABLES)
def test_update_in_workspace_a(conn, world, table, persona):
    statement, params = update_statement(table, world)
    expected = expected_change(table, persona, rows_in_a(conn, world, table), "update")
    assert outcome(conn, world, persona, statement, params) == expected


# --- delete -------------------------------------------------------------------------------------


def delete_statement(table: str, world: World) -> tuple[sql.Composable, tuple]:
    if table == "workspaces":
        return sql.SQL("delete from workspaces where id = %s"), (world.ws_a,)
    if table == "workspace_members":
        return (
            sql.SQL("delete from workspace_members where workspace_id = %s and user_id = %s"),
            (world.ws_a, world.users["viewer2"]),
        )
    return sql.SQL("delete from {} where workspace_id = %s").format(sql.Identifier("public", table)), (
        world.ws_a,
    )


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("table", TABLES)
def test_delete_in_workspace_a(conn, world, table, persona):
    statement, params = delete_statement(table, world)
    expected = expected_change(table, persona, rows_in_a(conn, world, table), "delete")
    assert outcome(conn, world, persona, statement, params) == expected


def test_the_matrix_left_the_world_unchanged(conn, world):
    # Every request above was rolled back: the world is intact for the other modules' tests.
    counts = {table: sum(counts_by_workspace(conn, table).values()) for table in TABLES}
    assert counts == {
        "workspaces": 2,
        "workspace_members": 6,
        "documents": 3,
        "pdf_documents": 2,
        "processed_documents": 2,
        "document_chunks": 9,
    }
