"""One source of truth for membership: a removed or demoted member keeps nothing, also where triggers
and foreign-key actions do not fire (session_replication_role = replica: logical replication apply,
`pg_restore --disable-triggers`, data-only restores)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from dimbench.database import db, schema
from dimbench.verify.matrix import (
    CONTENT,
    DENIED,
    insert_statement,
    membership_findings,
    outcome,
    visible_rows,
)
from tests.world import World, seed_world


@pytest.fixture
def world_db(new_database: Callable[[str], str]) -> str:
    dsn = new_database("members")
    with db.connect(dsn) as conn:
        schema.apply(conn)
        seed_world(conn)
    return dsn


def remove_and_demote(dsn: str, world: World, replica: bool) -> None:
    with db.connect(dsn) as conn, conn.transaction():
        if replica:
            conn.execute("set local session_replication_role = replica")
        conn.execute(
            "delete from workspace_members where workspace_id = %s and user_id = %s",
            (world.ws_a, world.users["viewer2"]),
        )
        conn.execute(
            "update workspace_members set role = 'viewer' where workspace_id = %s and user_id = %s",
            (world.ws_a, world.users["member"]),
        )


def assert_no_access_left(dsn: str, world: World) -> None:
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        assert set(visible_rows(conn, world, "viewer2").values()) == {0}
        for table in CONTENT:
            statement, params = insert_statement(table, world, "member")
            assert outcome(conn, world, "member", statement, params) == DENIED, table
        assert visible_rows(conn, world, "viewer")["document_chunks"] == 6  # the others keep theirs


@pytest.mark.parametrize("replica", [False, True], ids=["origin", "replica"])
def test_a_removed_or_demoted_member_keeps_nothing(world_db, world, replica):
    remove_and_demote(world_db, world, replica)
    assert_no_access_left(world_db, world)


@pytest.mark.parametrize("replica", [False, True], ids=["origin", "replica"])
def test_the_verify_membership_check_passes(conn, world, replica):
    assert membership_findings(conn, world, replica) == []


def tool(name: str) -> str:
    return str(db.EmbeddedServer.bin_dir() / name)


def test_a_data_only_dump_and_restore_leaves_no_access_behind(
    world_db, world, new_database: Callable[[str], str], tmp_path: Path
):
    # The source removed and demoted members before the dump; the restore (Supabase's way: data only,
    # triggers disabled) must not bring their access back, and must not need any trigger to be right.
    remove_and_demote(world_db, world, replica=False)
    dump = tmp_path / "data.dump"
    subprocess.run(
        [
            tool("pg_dump"),
            "--data-only",
            "--schema=public",
            "--format=custom",
            "--file",
            str(dump),
            "--dbname",
            world_db,
        ],
        check=True,
        capture_output=True,
    )
    target = new_database("restored")
    with db.connect(target) as conn:
        schema.apply(conn)
    subprocess.run(
        [tool("pg_restore"), "--data-only", "--disable-triggers", "--dbname", target, str(dump)],
        check=True,
        capture_output=True,
    )
    assert_no_access_left(target, world)
    # And a removal in replica mode after the restore takes effect at once too.
    with db.connect(target) as conn, conn.transaction():
        conn.execute("set local session_replication_role = replica")
        conn.execute("delete from workspace_members where user_id = %s", (world.users["viewer"],))
    with db.connect(target) as conn:
        db.use_vectors(conn)
        assert set(visible_rows(conn, world, "viewer").values()) == {0}
