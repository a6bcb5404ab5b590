"""On-disk embedding cache keyed by (model, dims, sha256(text)); every entry carries its own checksum,
so a corrupted entry is noticed and fetched again rather than silently used."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np

SCHEMA = """
create table if not exists embeddings (
  model text not null, dims integer not null, text_sha text not null,
  vector blob not null, checksum text not null,
  primary key (model, dims, text_sha)
)"""


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class EmbeddingCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute(SCHEMA)
        self.corrupted = 0

    def get(self, model: str, dims: int | None, text: str) -> np.ndarray | None:
        """The cached vector of `text`; `dims` None: of whatever width the cache holds it (a model whose
        width is learned from its first answer)."""
        key = text_sha(text)
        row = self.db.execute(
            "select vector, checksum, dims from embeddings where model = ? and dims = coalesce(?, dims)"
            " and text_sha = ? order by dims limit 1",
            (model, dims, key),
        ).fetchone()
        if row is None:
            return None
        blob, checksum, dims = row
        if len(blob) != 4 * dims or hashlib.sha256(blob).hexdigest() != checksum:
            self.corrupted += 1
            self.db.execute(
                "delete from embeddings where model = ? and dims = ? and text_sha = ?", (model, dims, key)
            )
            self.db.commit()
            return None
        return np.frombuffer(blob, dtype=np.float32)

    def put_many(self, model: str, dims: int, items: list[tuple[str, np.ndarray]]) -> None:
        rows = []
        for text, vector in items:
            blob = np.asarray(vector, dtype=np.float32).tobytes()
            rows.append((model, dims, text_sha(text), blob, hashlib.sha256(blob).hexdigest()))
        self.db.executemany("insert or replace into embeddings values (?, ?, ?, ?, ?)", rows)
        self.db.commit()

    def close(self) -> None:
        self.db.close()
