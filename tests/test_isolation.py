"""The isolation matrix: every table × command × persona, run as PostgREST runs a request.

The cases and their expected outcomes live in dimbench.verify_matrix (`dimbench verify` runs the same
matrix against any database); here each case is one test against the fixed world.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from dimbench.verify import matrix as verify_matrix
from dimbench.verify.matrix import TABLES, Case


@pytest.mark.parametrize("case", list(verify_matrix.cases()), ids=str)
def test_each_persona_gets_exactly_what_its_role_allows(conn, world, case: Case):
    assert verify_matrix.check(conn, world, case) is None


@pytest.mark.parametrize("persona", verify_matrix.PERSONAS)
def test_search_returns_exactly_the_personas_chunks(conn, world, persona):
    found = [f for f in verify_matrix.search_findings(conn, world) if f" as {persona}:" in f]
    assert found == []


def snapshot(conn: psycopg.Connection) -> dict[str, tuple[int, str]]:
    """Every table's row count and a digest of all its rows (read as the superuser)."""
    taken = {}
    for table in TABLES:
        query = sql.SQL(
            "select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {} t"
        ).format(sql.Identifier("public", table))
        taken[table] = tuple(conn.execute(query).fetchone())
    return taken


def test_the_matrix_leaves_the_world_unchanged(conn, world):
    # Runs the whole matrix itself, so it checks something however the tests are selected or ordered.
    before = snapshot(conn)
    assert before["document_chunks"][0] == 9  # the world is there to be changed
    for case in verify_matrix.cases():
        verify_matrix.check(conn, world, case)
    verify_matrix.search_findings(conn, world)
    assert snapshot(conn) == before
