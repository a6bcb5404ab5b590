"""A design with its own copy of the chunks follows public's writes (Design.follow): the side channel keeps
it installed across its passes and writes the cluster into the copy, so a row inserted into public is
found through the design, and a row deleted there is gone from it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dimbench.database import db
from dimbench.study import arms, sidechannel
from dimbench.study.configs import Arm
from dimbench.study.designs import inline, partitioned
from dimbench.study.grid import Build
from dimbench.study.measure import StudyQuery

K = 10
BUILD = Build("halfvec1536", "hnsw", {"m": 16, "ef_construction": 64})
DESIGNS = {"inline": inline.DESIGN, "partitioned": partitioned.DESIGN}


@pytest.fixture(scope="module")
def conn(tiny_corpus_db: tuple[str, list[StudyQuery]]) -> Iterator[psycopg.Connection]:
    dsn, _ = tiny_corpus_db
    with db.connect(dsn) as connection:
        db.use_vectors(connection)
        yield connection
        sidechannel.delete_cluster(connection)
        for design in DESIGNS.values():
            design.remove(connection)


def copy_count(conn: psycopg.Connection, name: str) -> int:
    return conn.execute(f"select count(*) from dimbench_{name}.document_chunks").fetchone()[0]


def public_count(conn: psycopg.Connection) -> int:
    return conn.execute("select count(*) from public.document_chunks").fetchone()[0]


def nearest(conn: psycopg.Connection, name: str, chunk: object) -> object:
    """The design's top answer to a search with this chunk's own vector (itself, where it is there)."""
    vector = conn.execute(
        "select embedding_1536 from public.document_chunks where id = %s", (chunk,)
    ).fetchone()[0]
    return arms.ask(conn, Arm("service", BUILD, K, name), vector, None, None).ids[0]


def copied(conn: psycopg.Connection, name: str) -> set:
    rows = conn.execute(
        f"select id from dimbench_{name}.document_chunks where chunk_index >= %s", (sidechannel.MARK,)
    ).fetchall()
    return {r[0] for r in rows}


def cluster_ids(conn: psycopg.Connection) -> set:
    rows = conn.execute(
        "select id from public.document_chunks where chunk_index >= %s", (sidechannel.MARK,)
    ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_a_standing_copy_finds_rows_inserted_into_public_and_loses_rows_deleted_there(
    conn, tiny_corpus_db, name
):
    design = DESIGNS[name]
    query = tiny_corpus_db[1][0]
    design.install(conn, BUILD, {})
    try:
        workspace, document = sidechannel.foreign_workspace(conn, [query])
        sidechannel.insert_cluster(conn, workspace, document, sidechannel.cluster_rows([query], K))
        inserted = cluster_ids(conn)
        assert len(inserted) == K
        one = sorted(inserted)[0]
        assert nearest(conn, name, one) != one  # installed before the insert: the copy lacks it

        design.follow(conn, BUILD)
        assert copy_count(conn, name) == public_count(conn)
        assert copied(conn, name) == inserted
        assert nearest(conn, name, one) == one  # through the design's own index

        sidechannel.delete_cluster(conn)
        design.follow(conn, BUILD)
        assert copy_count(conn, name) == public_count(conn)
        assert not copied(conn, name)
    finally:
        design.remove(conn)
