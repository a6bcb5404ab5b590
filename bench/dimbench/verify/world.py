"""A small multi-tenant world of personas, shared by the isolation tests and `dimbench verify`.

Workspace A has an owner, an admin, a member and two viewers; workspace B has one owner (the
"nonmember" of A); "stranger" belongs nowhere (the canary). Each workspace holds documents (one in A
without pdf/processed rows, so inserts of those can be tried), pdf/processed rows and chunks with both
embeddings. Ids derive from a namespace: the tests use a fixed one, `dimbench verify` one per run, and
its workspace names carry PROBE_MARKER so a later run can find anything an earlier one left behind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np
import psycopg

PROBE_MARKER = "dimbench-verify-probe"
PERSONA_NAMES = ("owner", "admin", "member", "viewer", "viewer2", "nonmember", "stranger")


@dataclass
class World:
    namespace: str = "dimbench-test"
    label: str = ""  # prefix of the workspace names
    chunks_per_doc: int = 3
    ws_a: uuid.UUID = field(init=False)
    ws_b: uuid.UUID = field(init=False)
    users: dict[str, uuid.UUID] = field(init=False)
    docs_a: list[uuid.UUID] = field(init=False)
    docs_b: list[uuid.UUID] = field(init=False)

    def __post_init__(self) -> None:
        self.ws_a, self.ws_b = self.id("ws-a"), self.id("ws-b")
        self.users = {name: self.id(f"user-{name}") for name in PERSONA_NAMES}
        self.docs_a = [self.id("doc-a1"), self.id("doc-a2")]
        self.docs_b = [self.id("doc-b1")]

    @classmethod
    def probe(cls) -> World:
        """A world no earlier run has used, named so that leftovers are recognisable."""
        run = uuid.uuid4()
        return cls(namespace=f"{PROBE_MARKER}/{run}", label=f"{PROBE_MARKER} {run} ")

    def id(self, name: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"{self.namespace}/{name}")

    @property
    def workspaces(self) -> tuple[uuid.UUID, uuid.UUID]:
        return self.ws_a, self.ws_b

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

    def documents(self) -> list[tuple[uuid.UUID, uuid.UUID]]:
        return [(self.ws_a, d) for d in self.docs_a] + [(self.ws_b, d) for d in self.docs_b]

    def chunk_id(self, doc: uuid.UUID, j: int) -> uuid.UUID:
        return self.id(f"chunk-{doc}-{j}")


def vectors(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def seed_world(conn: psycopg.Connection, world: World | None = None) -> World:
    """Insert the world as the connecting (owner or superuser) role, to which RLS does not apply.

    Runs in a transaction of its own, or as a savepoint inside the caller's (verify never commits it).
    """
    from dimbench.database.db import use_vectors

    world = world or World()
    use_vectors(conn)
    with conn.transaction():
        conn.execute(
            "insert into public.workspaces (id, name) values (%s, %s), (%s, %s)",
            (world.ws_a, world.label + "A", world.ws_b, world.label + "B"),
        )
        for ws, user, role in world.memberships:
            conn.execute(
                "insert into public.workspace_members (workspace_id, user_id, role) values (%s, %s, %s)",
                (ws, user, role),
            )
        docs = world.documents()
        emb1536 = vectors(len(docs) * world.chunks_per_doc, 1536, seed=7)
        for i, (ws, doc) in enumerate(docs):
            conn.execute(
                "insert into public.documents (id, workspace_id, title, status) values (%s, %s, %s, 'ready')",
                (doc, ws, f"doc {i}"),
            )
            if doc != world.docs_a[1]:
                conn.execute(
                    "insert into public.pdf_documents (workspace_id, document_id, storage_path)"
                    " values (%s, %s, %s)",
                    (ws, doc, f"pdf/{doc}.pdf"),
                )
                conn.execute(
                    "insert into public.processed_documents (workspace_id, document_id, status)"
                    " values (%s, %s, 'completed')",
                    (ws, doc),
                )
            for j in range(world.chunks_per_doc):
                v = emb1536[i * world.chunks_per_doc + j]
                short = v[:768] / np.linalg.norm(v[:768])
                conn.execute(
                    "insert into public.document_chunks (id, workspace_id, document_id, chunk_index,"
                    " content, embedding_1536, embedding_768) values (%s, %s, %s, %s, %s, %s, %s)",
                    (world.chunk_id(doc, j), ws, doc, j, f"chunk {j} of {doc}", v, short),
                )
    return world
