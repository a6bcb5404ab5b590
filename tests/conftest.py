"""One embedded PostgreSQL per test session; each test module gets databases it can trash.

No mocks: every test that touches a database talks to a real PostgreSQL 18 with pgvector.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from dimbench import db, schema

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[db.EmbeddedServer]:
    server = db.EmbeddedServer(tmp_path_factory.mktemp("pg") / "pgdata")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def new_database(pg_server: db.EmbeddedServer) -> Callable[[str], str]:
    """Create an empty database and return its DSN (names are unique per session)."""

    def create(prefix: str = "t") -> str:
        name = f"{prefix}_{next(_counter)}"
        with db.connect(pg_server.dsn) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return db.with_dbname(pg_server.dsn, name)

    return create


@pytest.fixture(scope="session")
def schema_dsn(new_database: Callable[[str], str]) -> str:
    """A database with the full schema applied once for the session. Tests must not leave data."""
    dsn = new_database("schema")
    with db.connect(dsn) as conn:
        schema.apply(conn)
    return dsn


@pytest.fixture
def fresh_schema_dsn(new_database: Callable[[str], str]) -> str:
    """A database with the schema applied, private to one test."""
    dsn = new_database("fresh")
    with db.connect(dsn) as conn:
        schema.apply(conn)
    return dsn


@pytest.fixture
def admin(schema_dsn: str) -> Iterator[psycopg.Connection]:
    """A superuser connection to the shared schema database (autocommit)."""
    with db.connect(schema_dsn) as conn:
        yield conn


@pytest.fixture(scope="session")
def tiny_results(new_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory):
    """One `dimbench run --profile tiny` for the session: (its DSN, its results directory)."""
    from tests.cli_helpers import run_cli

    dsn = new_database("study")
    out = tmp_path_factory.mktemp("results") / "tiny"
    result = run_cli("run", "--profile", "tiny", "--dsn", dsn, "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    return dsn, out


@pytest.fixture(scope="session")
def world_dsn(new_database: Callable[[str], str]) -> str:
    """The small fixed world of tests/world.py, seeded once; tests only touch it in rolled-back requests."""
    from tests.world import seed_world

    dsn = new_database("world")
    with db.connect(dsn) as conn:
        schema.apply(conn)
        seed_world(conn)
    return dsn


@pytest.fixture(scope="session")
def world():
    from tests.world import World

    return World()


@pytest.fixture
def conn(world_dsn: str) -> Iterator[psycopg.Connection]:
    with db.connect(world_dsn) as connection:
        db.use_vectors(connection)
        yield connection
