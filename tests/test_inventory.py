"""`schema apply` does not trust its ledger blindly: what the migrations create is checked in the catalog
(the same check `verify` makes), re-created when it was dropped, and named in one line when the
migrations cannot bring it back."""

from __future__ import annotations

from collections.abc import Callable

from dimbench.database import db, inventory, schema
from dimbench.verify import runner as verify
from tests.cli_helpers import assert_one_line_error, run_cli

SEARCH = "function public.match_document_chunks(extensions.vector,integer,uuid[],integer,boolean)"


def test_a_fresh_schema_has_everything_the_inventory_lists(schema_dsn: str):
    with db.connect(schema_dsn) as conn:
        assert inventory.missing(conn) == []


def test_a_bare_database_lacks_everything_but_the_cluster_wide_roles(new_database: Callable[[str], str]):
    # The check sees absence: nothing of a database without the schema counts as present.
    with db.connect(new_database("bare_inventory")) as conn:
        assert inventory.missing(conn) == [i for i in inventory.expected() if i.kind != "role"]


def test_apply_restores_a_dropped_function_and_verify_agrees(fresh_schema_dsn: str):
    with db.connect(fresh_schema_dsn) as conn:
        conn.execute(f"drop {SEARCH}")
    before = run_cli("verify", "--dsn", fresh_schema_dsn)
    assert_one_line_error(before, "does not have dimbench's schema", SEARCH, "schema apply")

    applied = run_cli("schema", "apply", "--dsn", fresh_schema_dsn)
    assert applied.returncode == 0, applied.stderr
    assert f"the schema was missing {SEARCH}: re-applied 12 migration(s)" in applied.stdout

    after = run_cli("verify", "--dsn", fresh_schema_dsn)  # privileges on it included (0012 ran again)
    assert after.returncode == 0, after.stdout + after.stderr
    again = run_cli("schema", "apply", "--dsn", fresh_schema_dsn)
    assert "schema is up to date" in again.stdout


def test_apply_restores_a_dropped_policy_that_verify_reports(fresh_schema_dsn: str):
    with db.connect(fresh_schema_dsn) as conn:
        conn.execute("drop policy documents_insert on public.documents")
        found = verify.findings(conn)
        assert (
            "schema: policy documents_insert on public.documents is missing (run `dimbench schema apply`)"
            in (found)
        )
        report = schema.apply(conn)
        assert [str(item) for item in report.restored] == ["policy documents_insert on public.documents"]
        assert verify.findings(conn) == []


def test_what_the_migrations_cannot_restore_is_named_in_one_line(fresh_schema_dsn: str):
    # 0003 creates the table with its checks only when the table does not exist yet.
    with db.connect(fresh_schema_dsn) as conn:
        conn.execute("alter table public.workspace_members drop constraint workspace_members_role_check")
        assert "schema: constraint workspace_members_role_check on public.workspace_members is missing" in (
            " ".join(verify.findings(conn))
        )
    result = run_cli("schema", "apply", "--dsn", fresh_schema_dsn)
    assert_one_line_error(
        result, "constraint workspace_members_role_check on public.workspace_members still missing", "by hand"
    )


def test_a_migration_the_ledger_lacks_is_applied_not_taken_for_a_restore(fresh_schema_dsn: str):
    # A new release's file creates what the inventory lists: it is applied as new, nothing "restored".
    with db.connect(fresh_schema_dsn) as conn:
        conn.execute(f"drop {SEARCH}")
        conn.execute("delete from dimbench.migrations where name = '0008_match_document_chunks.sql'")
        report = schema.apply(conn)
        assert (report.applied, report.restored) == (["0008_match_document_chunks.sql"], [])
        assert inventory.missing(conn) == []


def test_rls_switched_off_is_switched_back_on(fresh_schema_dsn: str):
    with db.connect(fresh_schema_dsn) as conn:
        conn.execute("alter table public.document_chunks disable row level security")
        report = schema.apply(conn)
        assert [str(item) for item in report.restored] == ["row level security on public.document_chunks"]
        assert inventory.missing(conn) == []
