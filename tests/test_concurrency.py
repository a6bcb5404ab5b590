"""Concurrent load on loopback: writers insert into their own workspaces while readers search as their
users. Afterwards every committed row is there exactly once and no reader ever saw a foreign row."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import numpy as np
import pytest

from dimbench.database import db, rls, schema

WRITERS, READERS, SECONDS = 3, 3, 4.0


@pytest.fixture
def dsn(new_database: Callable[[str], str]) -> str:
    dsn = new_database("conc")
    with db.connect(dsn) as conn:
        schema.apply(conn)
        conn.execute(
            "create index conc_hnsw on document_chunks"
            " using hnsw (embedding_768 extensions.vector_cosine_ops)"
        )
    return dsn


def unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(768).astype(np.float32)
    return v / np.linalg.norm(v)


def test_writers_and_readers_keep_isolation_and_lose_nothing(dsn, record_property):
    tenants = [(uuid.uuid4(), uuid.uuid4()) for _ in range(max(WRITERS, READERS))]  # (workspace, its member)
    with db.connect(dsn) as conn:
        for i, (ws, user) in enumerate(tenants):
            conn.execute("insert into workspaces (id, name) values (%s, %s)", (ws, f"tenant {i}"))
            conn.execute(
                "insert into workspace_members (workspace_id, user_id, role) values (%s, %s, 'member')",
                (ws, user),
            )
    committed: list[list[uuid.UUID]] = [[] for _ in range(WRITERS)]
    breaches: list[str] = []
    queries = [0] * READERS
    errors: list[BaseException] = []
    stop = time.monotonic() + SECONDS

    def writer(i: int) -> None:
        ws, user = tenants[i]
        rng = np.random.default_rng(i)
        try:
            with db.use_vectors(db.connect(dsn)) as conn:
                while time.monotonic() < stop:
                    doc = uuid.uuid4()
                    chunks = [uuid.uuid4() for _ in range(5)]
                    with rls.request(conn, "authenticated", user, commit=True) as c:
                        c.execute(
                            "insert into documents (id, workspace_id, title) values (%s, %s, 't')", (doc, ws)
                        )
                        for j, chunk in enumerate(chunks):
                            c.execute(
                                "insert into document_chunks (id, workspace_id, document_id, chunk_index,"
                                " content, embedding_768) values (%s, %s, %s, %s, 'c', %s)",
                                (chunk, ws, doc, j, unit(rng)),
                            )
                    committed[i] += chunks
        except BaseException as exc:
            errors.append(exc)

    def reader(i: int) -> None:
        ws, user = tenants[i]
        rng = np.random.default_rng(100 + i)
        try:
            with db.use_vectors(db.connect(dsn)) as conn:
                while time.monotonic() < stop:
                    with rls.request(conn, "authenticated", user) as c:
                        rows = c.execute(
                            "select workspace_id from match_document_chunks(%s, 20)", (unit(rng),)
                        ).fetchall()
                    queries[i] += 1
                    breaches.extend(f"reader {i} saw {r[0]}" for r in rows if r[0] != ws)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    threads += [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.monotonic() - started
    assert not errors, errors[0]
    assert breaches == []
    with db.connect(dsn) as conn:
        stored = [r[0] for r in conn.execute("select id from document_chunks").fetchall()]
    written = [chunk for chunks in committed for chunk in chunks]
    assert sorted(stored) == sorted(written) and len(set(stored)) == len(stored)
    record_property("rows_per_second", round(len(written) / elapsed))
    record_property("queries_per_second", round(sum(queries) / elapsed))
    print(
        f"concurrent load: {len(written) / elapsed:.0f} rows/s written, "
        f"{sum(queries) / elapsed:.0f} queries/s"
    )
