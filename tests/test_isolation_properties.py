"""Property: in any world of workspaces, users, roles and memberships, every user sees exactly the rows
of their own workspaces (no more, no fewer) — by plain queries and by match_document_chunks, at 768 and
1536 dims, by sequential scan and through hnsw indexes — and every write into a foreign workspace fails."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from dimbench.database import db, rls, schema

ROLES = ("owner", "admin", "member", "viewer")
WRITERS = {"owner", "admin", "member"}
WORLDS = 200


@st.composite
def worlds(draw) -> dict:
    n_ws = draw(st.integers(1, 4))
    n_users = draw(st.integers(1, 5))
    memberships = {}
    for user in range(n_users):
        for ws in draw(st.sets(st.integers(0, n_ws - 1), max_size=n_ws)):
            memberships[(ws, user)] = draw(st.sampled_from(ROLES))
    chunks = [draw(st.integers(0, 4)) for _ in range(n_ws)]
    seed = draw(st.integers(0, 2**31))
    return {"workspaces": n_ws, "users": n_users, "memberships": memberships, "chunks": chunks, "seed": seed}


@pytest.fixture(scope="module")
def dsn(new_database: Callable[[str], str]) -> str:
    dsn = new_database("props")
    with db.connect(dsn) as conn:
        schema.apply(conn)
        conn.execute(
            "create index props_hnsw_768 on document_chunks"
            " using hnsw (embedding_768 extensions.vector_cosine_ops)"
        )
        conn.execute(
            "create index props_hnsw_1536 on document_chunks"
            " using hnsw (embedding_1536 extensions.vector_cosine_ops)"
        )
    return dsn


def build(
    conn: psycopg.Connection, world: dict
) -> tuple[list[uuid.UUID], list[uuid.UUID], dict[uuid.UUID, uuid.UUID]]:
    conn.execute("truncate workspaces cascade")
    ws_ids = [uuid.uuid4() for _ in range(world["workspaces"])]
    users = [uuid.uuid4() for _ in range(world["users"])]
    rng = np.random.default_rng(world["seed"])
    owner_of: dict[uuid.UUID, uuid.UUID] = {}
    docs: dict[uuid.UUID, uuid.UUID] = {}
    with conn.transaction():
        for i, ws in enumerate(ws_ids):
            conn.execute("insert into workspaces (id, name) values (%s, %s)", (ws, f"w{i}"))
            doc = docs[ws] = uuid.uuid4()
            conn.execute("insert into documents (id, workspace_id, title) values (%s, %s, 'd')", (doc, ws))
            for c in range(world["chunks"][i]):
                v = rng.standard_normal(1536).astype(np.float32)
                v /= np.linalg.norm(v)
                chunk = uuid.uuid4()
                owner_of[chunk] = ws
                conn.execute(
                    "insert into document_chunks (id, workspace_id, document_id, chunk_index, content,"
                    " embedding_1536, embedding_768) values (%s, %s, %s, %s, 'c', %s, %s)",
                    (chunk, ws, doc, c, v, v[:768] / np.linalg.norm(v[:768])),
                )
        for (ws, user), role in world["memberships"].items():
            conn.execute(
                "insert into workspace_members (workspace_id, user_id, role) values (%s, %s, %s)",
                (ws_ids[ws], users[user], role),
            )
    return ws_ids, users, owner_of, docs


def visible(c: psycopg.Connection, dim: int, via_search: bool) -> set[uuid.UUID]:
    if via_search:
        q = np.ones(dim, dtype=np.float32) / np.sqrt(dim)
        return {r[0] for r in c.execute("select id from match_document_chunks(%s, 100, null, %s)", (q, dim))}
    return {r[0] for r in c.execute("select id from document_chunks")}


@settings(
    max_examples=WORLDS,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_every_user_sees_exactly_their_workspaces_and_cannot_write_elsewhere(dsn, world):
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        ws_ids, users, owner_of, docs = build(conn, world)
        for u, user in enumerate(users):
            mine = {ws_ids[ws] for (ws, uu) in world["memberships"] if uu == u}
            expected = {chunk for chunk, ws in owner_of.items() if ws in mine}
            for scan in ("enable_indexscan", "enable_seqscan"):  # turned off: forces the other path
                for dim in (768, 1536):
                    for via_search in (False, True):
                        with rls.request(conn, "authenticated", user) as c:
                            c.execute(sql.SQL("set local {} = off").format(sql.Identifier(scan)))
                            assert visible(c, dim, via_search) == expected, (scan, dim, via_search)
            for ws in ws_ids:
                role = world["memberships"].get((ws_ids.index(ws), u))
                statement = (
                    "insert into document_chunks (workspace_id, document_id, chunk_index, content)"
                    " values (%s, %s, 99, 'x')"
                )
                if role in WRITERS:
                    continue
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    with rls.request(conn, "authenticated", user) as c:
                        c.execute(statement, (ws, docs[ws]))
