"""Requests as PostgREST sends them: claims, escalation attempts, and the search function under RLS."""

from __future__ import annotations

import json
import uuid

import numpy as np
import psycopg
import pytest

from dimbench.database import db, rls
from tests.world import World


def chunk_count(c: psycopg.Connection) -> int:
    return c.execute("select count(*) from document_chunks").fetchone()[0]


# --- claims ---------------------------------------------------------------------------------------


def test_the_request_really_runs_as_authenticated(conn, world):
    with rls.request(conn, "authenticated", world.users["member"]) as c:
        assert current_role(c) == "authenticated"
    assert current_role(conn) != "authenticated"  # transaction-local: nothing leaks


def test_claims_without_sub_see_nothing(conn):
    with rls.request(conn, "authenticated", claims=json.dumps({"role": "authenticated"})) as c:
        assert chunk_count(c) == 0


def test_absent_claims_see_nothing(conn):
    with rls.request(conn, "authenticated", claims="") as c:
        assert chunk_count(c) == 0


def test_a_foreign_sub_sees_nothing(conn):
    with rls.request(conn, "authenticated", uuid.uuid4()) as c:
        assert chunk_count(c) == 0


def test_a_malformed_sub_is_rejected(conn):
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        with rls.request(conn, "authenticated", "not-a-uuid") as c:
            chunk_count(c)


def test_a_service_role_claim_does_not_lift_rls(conn, world):
    hostile = json.dumps({"role": "service_role", "sub": str(world.users["nonmember"])})
    with rls.request(conn, "authenticated", claims=hostile) as c:
        assert chunk_count(c) == World().chunks_per_doc  # B's chunks only


def test_anon_cannot_call_the_membership_helper(conn):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with rls.request(conn, "anon") as c:
            c.execute("select private.workspace_ids('{owner}')")


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_nobody_calls_the_security_definer_trigger_function(conn, world, role):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with rls.request(conn, role, world.users["member"] if role == "authenticated" else None) as c:
            c.execute("select private.add_creator_as_owner()")


def test_the_membership_helper_answers_only_for_the_caller(conn, world):
    # Called as the policies call it (claims set, no role switch needed: it reads auth.uid()).
    with conn.transaction(force_rollback=True):
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (rls.claims_for("authenticated", world.users["nonmember"]),),
        )
        ids = conn.execute("select private.workspace_ids('{owner,admin,member,viewer}')").fetchone()[0]
    assert ids == [world.ws_b]


# --- escalation -----------------------------------------------------------------------------------


def test_nobody_adds_themselves_to_a_workspace(conn, world):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with rls.request(conn, "authenticated", world.users["nonmember"]) as c:
            c.execute(
                "insert into workspace_members (workspace_id, user_id, role) values (%s, %s, 'owner')",
                (world.ws_a, world.users["nonmember"]),
            )


def test_an_owner_cannot_insert_their_own_membership_either(conn, world):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with rls.request(conn, "authenticated", world.users["nonmember"]) as c:
            c.execute(
                "insert into workspace_members (workspace_id, user_id, role) values (%s, %s, 'owner')",
                (world.ws_b, world.users["nonmember"]),
            )


@pytest.mark.parametrize("persona", ["viewer", "member", "admin"])
def test_nobody_raises_their_own_role(conn, world, persona):
    with rls.request(conn, "authenticated", world.users[persona]) as c:
        cur = c.execute(
            "update workspace_members set role = 'owner' where workspace_id = %s and user_id = %s",
            (world.ws_a, world.users[persona]),
        )
        assert cur.rowcount == 0


def test_an_admin_cannot_make_someone_an_owner(conn, world):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with rls.request(conn, "authenticated", world.users["admin"]) as c:
            c.execute(
                "update workspace_members set role = 'owner' where workspace_id = %s and user_id = %s",
                (world.ws_a, world.users["viewer2"]),
            )


def test_an_admin_cannot_demote_or_remove_the_owner(conn, world):
    with rls.request(conn, "authenticated", world.users["admin"]) as c:
        where = (world.ws_a, world.users["owner"])
        assert (
            c.execute(
                "update workspace_members set role = 'viewer' where workspace_id = %s and user_id = %s", where
            ).rowcount
            == 0
        )
        assert (
            c.execute(
                "delete from workspace_members where workspace_id = %s and user_id = %s", where
            ).rowcount
            == 0
        )


def test_an_owner_can_promote_a_member(conn, world):
    with rls.request(conn, "authenticated", world.users["owner"]) as c:
        cur = c.execute(
            "update workspace_members set role = 'admin' where workspace_id = %s and user_id = %s",
            (world.ws_a, world.users["member"]),
        )
        assert cur.rowcount == 1


def test_a_member_may_leave(conn, world):
    with rls.request(conn, "authenticated", world.users["member"]) as c:
        cur = c.execute(
            "delete from workspace_members where workspace_id = %s and user_id = %s",
            (world.ws_a, world.users["member"]),
        )
        assert cur.rowcount == 1


def test_creating_a_workspace_makes_the_creator_its_owner(conn, world):
    user = world.users["stranger"]
    with rls.request(conn, "authenticated", user) as c:
        ws = uuid.uuid4()
        c.execute("insert into workspaces (id, name) values (%s, 'mine')", (ws,))
        role = c.execute(
            "select role from workspace_members where workspace_id = %s and user_id = %s", (ws, user)
        ).fetchone()
        assert role == ("owner",)


# --- apps' everyday writes, as supabase-js sends them -----------------------------------------------


def test_creating_a_workspace_returns_its_row_to_the_creator(conn, world):
    # supabase-js `.insert({name}).select()` = PostgREST `Prefer: return=representation`.
    with rls.request(conn, "authenticated", world.users["stranger"]) as c:
        row = c.execute(
            "insert into workspaces (name) values ('mine') returning id, name, created_by"
        ).fetchone()
        assert row[1:] == ("mine", world.users["stranger"])
        role = c.execute("select role from workspace_members where workspace_id = %s", (row[0],)).fetchone()
        assert role == ("owner",)


def test_a_creator_who_left_no_longer_sees_the_workspace(fresh_schema_dsn):
    user, other = uuid.uuid4(), uuid.uuid4()
    with db.connect(fresh_schema_dsn) as conn:
        with rls.request(conn, "authenticated", user, commit=True) as c:
            ws = c.execute("insert into workspaces (name) values ('mine') returning id").fetchone()[0]
            c.execute(
                "insert into workspace_members (workspace_id, user_id, role) values (%s, %s, 'owner')",
                (ws, other),
            )
        with rls.request(conn, "authenticated", user, commit=True) as c:
            c.execute("delete from workspace_members where workspace_id = %s and user_id = %s", (ws, user))
        with rls.request(conn, "authenticated", user) as c:
            assert c.execute("select count(*) from workspaces").fetchone() == (0,)


def test_a_document_and_its_chunks_are_added_in_one_request(conn, world):
    with rls.request(conn, "authenticated", world.users["member"]) as c:
        doc = c.execute(
            "insert into documents (workspace_id, title) values (%s, 'new') returning id", (world.ws_a,)
        ).fetchone()[0]
        chunks = c.execute(
            "insert into document_chunks (workspace_id, document_id, chunk_index, content, embedding_768)"
            " select %s, %s, i, 'c' || i, %s from generate_series(0, 2) i returning id",
            (world.ws_a, doc, query_vector(768)),
        ).fetchall()
        assert len(chunks) == 3


def test_a_document_and_its_chunks_are_added_in_one_statement(conn, world):
    with rls.request(conn, "authenticated", world.users["member"]) as c:
        rows = c.execute(
            "with d as (insert into documents (workspace_id, title) values (%s, 'new')"
            "           returning id, workspace_id)"
            " insert into document_chunks (workspace_id, document_id, chunk_index, content)"
            " select d.workspace_id, d.id, i, 'c' || i from d, generate_series(0, 3) i returning document_id",
            (world.ws_a,),
        ).fetchall()
        assert len(rows) == 4


def test_a_chunk_cannot_move_into_a_foreign_workspace(conn, world):
    with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.ForeignKeyViolation)):
        with rls.request(conn, "authenticated", world.users["member"]) as c:
            c.execute(
                "update document_chunks set workspace_id = %s where workspace_id = %s",
                (world.ws_b, world.ws_a),
            )


def test_a_chunk_cannot_reference_another_workspaces_document(conn, world):
    # The caller may write in A (and B's owner may write in B): the composite key still forbids the mix.
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        with rls.request(conn, "service_role") as c:
            c.execute(
                "insert into document_chunks (workspace_id, document_id, chunk_index, content)"
                " values (%s, %s, 0, 'x')",
                (world.ws_a, world.docs_b[0]),
            )


# --- match_document_chunks ------------------------------------------------------------------------


def query_vector(dim: int) -> np.ndarray:
    v = np.random.default_rng(11).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def search(c: psycopg.Connection, dim: int, filter_ids=None, k: int = 50) -> list[tuple]:
    return c.execute(
        "select id, workspace_id, similarity from match_document_chunks(%s, %s, %s, %s)",
        (query_vector(dim), k, filter_ids, dim),
    ).fetchall()


@pytest.mark.parametrize("dim", [768, 1536])
def test_search_returns_exactly_the_users_workspaces(conn, world, dim):
    with rls.request(conn, "authenticated", world.users["viewer"]) as c:
        rows = search(c, dim)
    assert {r[1] for r in rows} == {world.ws_a}
    assert len(rows) == len(world.docs_a) * world.chunks_per_doc


@pytest.mark.parametrize("dim", [768, 1536])
def test_search_results_are_ordered_by_similarity(conn, world, dim):
    with rls.request(conn, "authenticated", world.users["owner"]) as c:
        sims = [r[2] for r in search(c, dim)]
    assert sims == sorted(sims, reverse=True)


def test_search_with_a_filter_outside_the_users_workspaces_returns_nothing(conn, world):
    with rls.request(conn, "authenticated", world.users["viewer"]) as c:
        assert search(c, 768, [world.ws_b]) == []


def test_the_canary_user_gets_no_rows_from_search(conn, world):
    with rls.request(conn, "authenticated", world.users["stranger"]) as c:
        assert search(c, 1536) == []


def test_search_rejects_a_query_of_the_wrong_dimension(conn, world):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="767 dimensions"):
        with rls.request(conn, "authenticated", world.users["viewer"]) as c:
            c.execute("select * from match_document_chunks(%s, 5)", (query_vector(767),))


def test_anon_cannot_search(conn):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with rls.request(conn, "anon") as c:
            search(c, 768)


def test_half_precision_search_matches_full_precision_order(conn, world):
    with rls.request(conn, "authenticated", world.users["owner"]) as c:
        full = [r[0] for r in search(c, 1536)]
        half = [
            r[0]
            for r in c.execute(
                "select id from match_document_chunks(%s, 50, null, 1536, true)", (query_vector(1536),)
            ).fetchall()
        ]
    assert set(half) == set(full)


def current_role(conn) -> str:
    return conn.execute("select current_user").fetchone()[0]
