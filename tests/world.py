"""A small, fixed multi-tenant world for the isolation tests, written as a superuser.

Workspace A has an owner, an admin, a member, two viewers; workspace B has one member (the
"non-member" of A). Each workspace holds documents (one without pdf/processed rows, so inserts of
those can be tried), pdf/processed rows and chunks with both embeddings.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np
import psycopg


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"dimbench-test/{name}")


@dataclass
class World:
    ws_a: uuid.UUID = field(default_factory=lambda: _id("ws-a"))
    ws_b: uuid.UUID = field(default_factory=lambda: _id("ws-b"))
    users: dict[str, uuid.UUID] = field(
        default_factory=lambda: {
            name: _id(f"user-{name}")
            for name in ("owner", "admin", "member", "viewer", "viewer2", "nonmember", "stranger")
        }
    )
    docs_a: list[uuid.UUID] = field(default_factory=lambda: [_id("doc-a1"), _id("doc-a2")])
    docs_b: list[uuid.UUID] = field(default_factory=lambda: [_id("doc-b1")])
    chunks_per_doc: int = 3

    @property
    def memberships(self) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
        u = self.users
        return [
            (self.ws_a, u["owner"], "owner"),
            (self.ws_a, u["admin"], "admin"),
            (self.ws_a, u["member"], "member"),
            (self.ws_a, u["viewer"], "viewer"),
            (self.ws_a, u["viewer2"], "viewer"),
            (self.ws_b, u["nonmember"], "owner"),
        ]


def vectors(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def seed_world(conn: psycopg.Connection, world: World | None = None) -> World:
    """Insert the world (superuser, so RLS does not apply). Idempotent per database."""
    from dimbench.db import use_vectors

    world = world or World()
    use_vectors(conn)
    with conn.transaction():
        conn.execute(
            "insert into workspaces (id, name) values (%s, 'A'), (%s, 'B')", (world.ws_a, world.ws_b)
        )
        for ws, user, role in world.memberships:
            conn.execute(
                "insert into workspace_members (workspace_id, user_id, role) values (%s, %s, %s)",
                (ws, user, role),
            )
        docs = [(world.ws_a, d) for d in world.docs_a] + [(world.ws_b, d) for d in world.docs_b]
        emb1536 = vectors(len(docs) * world.chunks_per_doc, 1536, seed=7)
        for i, (ws, doc) in enumerate(docs):
            conn.execute(
                "insert into documents (id, workspace_id, title, status) values (%s, %s, %s, 'ready')",
                (doc, ws, f"doc {i}"),
            )
            if doc != world.docs_a[1]:
                conn.execute(
                    "insert into pdf_documents (workspace_id, document_id, storage_path) values (%s, %s, %s)",
                    (ws, doc, f"pdf/{doc}.pdf"),
                )
                conn.execute(
                    "insert into processed_documents (workspace_id, document_id, status)"
                    " values (%s, %s, 'completed')",
                    (ws, doc),
                )
            for j in range(world.chunks_per_doc):
                v = emb1536[i * world.chunks_per_doc + j]
                short = v[:768] / np.linalg.norm(v[:768])
                conn.execute(
                    "insert into document_chunks (id, workspace_id, document_id, chunk_index, content,"
                    " embedding_1536, embedding_768) values (%s, %s, %s, %s, %s, %s, %s)",
                    (_id(f"chunk-{doc}-{j}"), ws, doc, j, f"chunk {j} of {doc}", v, short),
                )
    return world


def chunk_table(world: World) -> tuple[list[uuid.UUID], list[uuid.UUID], np.ndarray]:
    """(chunk ids, their workspaces, their 1536-d embeddings) exactly as seed_world wrote them."""
    docs = [(world.ws_a, d) for d in world.docs_a] + [(world.ws_b, d) for d in world.docs_b]
    emb = vectors(len(docs) * world.chunks_per_doc, 1536, seed=7)
    ids, workspaces = [], []
    for ws, doc in docs:
        for j in range(world.chunks_per_doc):
            ids.append(_id(f"chunk-{doc}-{j}"))
            workspaces.append(ws)
    return ids, workspaces, emb
