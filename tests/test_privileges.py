"""Least privilege under Supabase's default privileges: each API role holds exactly what it needs on
every table, function and schema of ours — TRUNCATE (which ignores RLS) and friends included."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from dimbench.database import rls
from dimbench.verify.privileges import (
    EXPECTED_FUNCTIONS,
    EXPECTED_SCHEMAS,
    EXPECTED_TABLES,
    held,
    privilege_findings,
)


def test_api_roles_hold_exactly_the_listed_privileges(admin):
    tables, functions, schemas = held(admin)
    assert tables == {name: want for name, want in EXPECTED_TABLES.items() if name in tables}
    assert functions == EXPECTED_FUNCTIONS
    assert schemas == EXPECTED_SCHEMAS
    assert privilege_findings(admin) == []


def test_every_table_of_ours_is_listed(admin):
    tables, _, _ = held(admin)
    assert {name for name in tables if name.startswith(("public.", "private."))} == {
        name for name in EXPECTED_TABLES if name.startswith("public.")
    }


def test_default_privileges_would_open_a_new_table_to_every_api_role(admin):
    # We really live in Supabase's world: without 0012's revokes, authenticated could truncate.
    with admin.transaction(force_rollback=True):
        admin.execute("create table public.probe_default_acl (id int)")
        can = admin.execute(
            "select has_table_privilege('authenticated', 'public.probe_default_acl', 'truncate')"
        ).fetchone()[0]
    assert can


@pytest.mark.parametrize(
    "statement",
    [
        "truncate public.document_chunks",
        "truncate public.documents cascade",
        "create trigger probe before insert on public.document_chunks"
        " for each row execute function private.add_creator_as_owner()",
        "select private.workspace_ids('{owner}')",
        "select private.add_creator_as_owner()",
    ],
)
def test_an_authenticated_user_cannot_bypass_rls_by_privilege(conn, statement):
    # Not here: `lock table … in access exclusive mode` needs UPDATE, DELETE, TRUNCATE or MAINTAIN, and
    # authenticated keeps UPDATE and DELETE for its writes. PostgREST sends no LOCK (no raw SQL), and
    # a lock lasts one request, which the role's statement_timeout bounds.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with rls.request(conn, "authenticated", uuid.uuid4()) as c:
            c.execute(statement)


def test_a_granted_truncate_is_a_finding(admin):
    with admin.transaction(force_rollback=True):
        admin.execute("grant truncate on public.document_chunks to authenticated")
        found = privilege_findings(admin)
    assert found == ["privilege: authenticated holds TRUNCATE on table public.document_chunks"]


def test_a_missing_grant_is_a_finding(admin):
    with admin.transaction(force_rollback=True):
        admin.execute("revoke select on public.documents from authenticated")
        found = privilege_findings(admin)
    assert found == ["privilege: authenticated lacks SELECT on table public.documents"]
