"""The fixed world of the isolation tests: it lives in the package (dimbench.verify_world), because
`dimbench verify` seeds the same personas on any database."""

from dimbench.verify.world import World, chunk_table, seed_world, vectors

__all__ = ["World", "chunk_table", "seed_world", "vectors"]
