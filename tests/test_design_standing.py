"""A design with its own copy of the chunks stands between stages (designs/standing.py): a stage that
brings it up for the same build and parameters reuses the copy while it is still a copy of public as it
is, and installs it again when it is not; every other design is removed when a stage puts it away."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dimbench.database import db
from dimbench.study import designs, sidechannel
from dimbench.study.grid import Build
from dimbench.study.measure import StudyQuery

HNSW = Build("halfvec1536", "hnsw", {"m": 16, "ef_construction": 64})
EXACT = Build("halfvec1536", "exact", {})
INLINE = designs.get("inline")


@pytest.fixture
def conn(tiny_corpus_db: tuple[str, list[StudyQuery]]) -> Iterator[psycopg.Connection]:
    dsn, _ = tiny_corpus_db
    with db.connect(dsn) as connection:
        db.use_vectors(connection)
        designs.remove_all(connection)
        yield connection
        sidechannel.delete_cluster(connection)
        designs.remove_all(connection)


def copy_oid(conn: psycopg.Connection, name: str = "inline") -> int | None:
    return conn.execute("select to_regclass(%s)::oid", (f"dimbench_{name}.document_chunks",)).fetchone()[0]


def insert_cluster(conn: psycopg.Connection, query: StudyQuery) -> None:
    workspace, document = sidechannel.foreign_workspace(conn, [query])
    sidechannel.insert_cluster(conn, workspace, document, sidechannel.cluster_rows([query], 3))


def test_bringing_up_the_same_build_again_reuses_the_standing_copy(conn):
    first, _ = designs.bring_up(conn, INLINE, HNSW, {})
    designs.put_away(conn, INLINE)
    oid = copy_oid(conn)
    again, _ = designs.bring_up(conn, INLINE, HNSW, {})
    assert not first.reused and again.reused
    assert copy_oid(conn) == oid
    assert again.seconds == first.seconds and again.index_bytes == first.index_bytes


def test_another_build_installs_the_copy_again(conn):
    designs.bring_up(conn, INLINE, HNSW, {})
    oid = copy_oid(conn)
    other, _ = designs.bring_up(conn, INLINE, EXACT, {})
    assert not other.reused
    assert copy_oid(conn) != oid


def test_a_write_to_public_the_copy_did_not_follow_installs_it_again(conn, tiny_corpus_db):
    designs.bring_up(conn, INLINE, HNSW, {})
    insert_cluster(conn, tiny_corpus_db[1][0])
    again, _ = designs.bring_up(conn, INLINE, HNSW, {})
    assert not again.reused


def test_a_copy_that_followed_public_writes_is_reused(conn, tiny_corpus_db):
    designs.bring_up(conn, INLINE, HNSW, {})
    oid = copy_oid(conn)
    insert_cluster(conn, tiny_corpus_db[1][0])
    designs.follow(conn, INLINE, HNSW)
    sidechannel.delete_cluster(conn)
    designs.follow(conn, INLINE, HNSW)
    again, _ = designs.bring_up(conn, INLINE, HNSW, {})
    assert again.reused and copy_oid(conn) == oid


def test_putting_away_a_design_on_public_removes_it(conn):
    routed = designs.get("routed")
    designs.bring_up(conn, routed, EXACT, {"threshold": 100})
    designs.put_away(conn, routed)
    assert conn.execute("select to_regnamespace('dimbench_routed')").fetchone()[0] is None
