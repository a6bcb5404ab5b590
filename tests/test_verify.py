"""`dimbench verify`: passes on a correct database and leaves nothing behind; names what is wrong on a
broken one; refuses a database without the schema."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from psycopg import sql

from dimbench.database import db
from dimbench.verify import matrix as verify_matrix
from dimbench.verify import runner as verify
from tests.cli_helpers import assert_one_line_error, run_cli


def every_table(dsn: str) -> dict[str, int]:
    """Row count of every table in the database outside the system schemas."""
    with db.connect(dsn) as conn:
        names = conn.execute(
            "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema')"
            " and n.nspname not like 'pg_toast%' order by 1, 2"
        ).fetchall()
        return {
            f"{schema}.{table}": conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
            ).fetchone()[0]
            for schema, table in names
        }


def test_verify_passes_on_a_fresh_schema_and_leaves_no_row_behind(fresh_schema_dsn):
    before = every_table(fresh_schema_dsn)
    result = run_cli("verify", "--dsn", fresh_schema_dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("verify: no findings")
    assert every_table(fresh_schema_dsn) == before


def test_verify_leaves_a_populated_world_as_it_was(world_dsn):
    before = every_table(world_dsn)
    with db.connect(world_dsn) as conn:
        assert verify.findings(conn) == []
    assert every_table(world_dsn) == before


def test_a_granted_truncate_is_one_clear_finding(fresh_schema_dsn):
    with db.connect(fresh_schema_dsn) as conn:
        conn.execute("grant truncate on public.document_chunks to authenticated")
    result = run_cli("verify", "--dsn", fresh_schema_dsn)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "privilege: authenticated holds TRUNCATE on table public.document_chunks",
        result.stdout.splitlines()[-1],
    ]
    assert "1 finding(s)" in result.stdout


def test_a_dropped_policy_is_found(fresh_schema_dsn):
    with db.connect(fresh_schema_dsn) as conn:
        conn.execute("drop policy documents_insert on public.documents")
    result = run_cli("verify", "--dsn", fresh_schema_dsn)
    assert result.returncode == 1
    assert "isolation: insert on public.documents as member: expected 1 row(s), got denied (42501)" in (
        result.stdout.splitlines()
    )


def test_a_database_without_the_schema_is_refused_in_one_line(new_database: Callable[[str], str]):
    result = run_cli("verify", "--dsn", new_database("bare"))
    assert_one_line_error(result, "does not have dimbench's schema", "schema apply")


def test_an_interrupted_verify_leaves_no_row_behind(fresh_schema_dsn, monkeypatch):
    def interrupt(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(verify, "search_findings", interrupt)
    before = every_table(fresh_schema_dsn)
    with db.connect(fresh_schema_dsn) as conn, pytest.raises(KeyboardInterrupt):
        verify.findings(conn)
    assert every_table(fresh_schema_dsn) == before


def test_leftover_probes_of_an_earlier_run_are_removed(fresh_schema_dsn):
    before = every_table(fresh_schema_dsn)
    with db.connect(fresh_schema_dsn) as conn:
        world = verify_matrix.World.probe()
        verify.seed_world(conn, world)  # committed, as if an earlier run had died mid-way
        conn.execute("insert into workspaces (name) values ('a real tenant')")
        logged: list[str] = []
        assert verify.findings(conn, log=logged.append) == []
        assert logged == ["removed 2 probe workspace(s) an earlier run left behind"]
        conn.execute("delete from workspaces where name = 'a real tenant'")
    assert every_table(fresh_schema_dsn) == before


def test_the_replica_check_runs_only_as_a_superuser(fresh_schema_dsn):
    # Supabase's `postgres` is no superuser: there verify says it skipped the check instead of failing.
    with db.connect(fresh_schema_dsn) as conn:
        assert verify.replica_allowed(conn)
        conn.execute("set role service_role")
        assert not verify.replica_allowed(conn)
