"""Deterministic UUIDs: (corpus digest, entity kind, index) → 16 bytes, so tables store plain indices.

High 8 bytes: the first 7 bytes of the corpus digest + the kind; low 8 bytes: the index, big-endian.
The same bytes are what binary COPY sends for a uuid, so the loader never formats a UUID string.
"""

from __future__ import annotations

import uuid

import numpy as np

KINDS = {"workspace": 1, "user": 2, "document": 3, "chunk": 4}


def prefix(digest: str, kind: str) -> bytes:
    return bytes.fromhex(digest[:14]) + bytes([KINDS[kind]])


def uuid_bytes(digest: str, kind: str, indices: np.ndarray) -> np.ndarray:
    """(n, 16) uint8: the UUIDs of `indices`."""
    out = np.empty((len(indices), 16), dtype=np.uint8)
    out[:, :8] = np.frombuffer(prefix(digest, kind), dtype=np.uint8)
    out[:, 8:] = np.asarray(indices, dtype=">u8").view(np.uint8).reshape(-1, 8)
    return out


def to_uuid(digest: str, kind: str, index: int) -> uuid.UUID:
    return uuid.UUID(bytes=prefix(digest, kind) + int(index).to_bytes(8, "big"))
