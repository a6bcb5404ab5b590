"""The fixed world of the isolation tests: it lives in the package (dimbench.verify_world), because
`dimbench verify` seeds the same personas on any database."""

import uuid

import numpy as np

from dimbench.verify.world import World, seed_world, vectors

__all__ = ["World", "chunk_table", "seed_world", "vectors"]


def chunk_table(world: World) -> tuple[list[uuid.UUID], list[uuid.UUID], np.ndarray]:
    """(chunk ids, their workspaces, their 1536-d embeddings) exactly as seed_world wrote them."""
    docs = world.documents()
    emb = vectors(len(docs) * world.chunks_per_doc, 1536, seed=7)
    ids, workspaces = [], []
    for ws, doc in docs:
        for j in range(world.chunks_per_doc):
            ids.append(world.chunk_id(doc, j))
            workspaces.append(ws)
    return ids, workspaces, emb
