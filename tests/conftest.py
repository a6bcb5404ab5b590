"""One embedded PostgreSQL per test session; each test module gets databases it can trash.

No mocks: every test that touches a database talks to a real PostgreSQL 18 with pgvector.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from dimbench.database import db, schema

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
def tiny_run_output(new_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory):
    """One `dimbench run --profile tiny` for the session, as a user runs it (no --out): its DSN, its run
    directory (the only one under DIMBENCH_RUNS), what it printed, and results/ before and after."""
    from dimbench.paths import repo_root
    from tests.cli_helpers import run_cli

    def published() -> dict[str, bytes]:
        root = repo_root() / "results"
        return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    dsn = new_database("study")
    runs = tmp_path_factory.mktemp("runs")
    before = published()
    result = run_cli(
        "run",
        "--profile",
        "tiny",
        "--dsn",
        dsn,
        "--no-progress",
        "--side-channel",
        "all",
        env={"DIMBENCH_RUNS": str(runs)},
    )
    assert result.returncode == 0, result.stderr
    (out,) = list((runs / "tiny").iterdir())
    return {"dsn": dsn, "out": out, "stdout": result.stdout, "published": (before, published())}


@pytest.fixture(scope="session")
def tiny_results(tiny_run_output) -> tuple[str, Path]:
    """(the tiny study's DSN, its run directory)."""
    return tiny_run_output["dsn"], tiny_run_output["out"]


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


@pytest.fixture(scope="session")
def tiny_corpus_db(new_database: Callable[[str], str]):
    """A database with the schema and the tiny corpus loaded and settled, no study index, and the study's
    queries (each with its exact answer per dimension): what the design tests search. Tests must leave it
    as they found it (remove what they install)."""
    from dimbench.corpus.cache import ensure_corpus
    from dimbench.paths import datasets_dir

    corpus = ensure_corpus(datasets_dir() / "tiny.toml", progress=False, log=lambda *_: None)
    return loaded_and_settled(new_database("designs"), corpus)


def loaded_and_settled(dsn: str, corpus) -> tuple[str, list]:
    """The schema applied, `corpus` loaded and vacuumed into `dsn`: (dsn, the corpus's study queries)."""
    from dimbench.corpus.load import load_corpus
    from dimbench.database.settle import vacuum_analyze
    from dimbench.study.inputs import study_queries

    with db.connect(dsn) as conn:
        schema.apply(conn)
        db.use_vectors(conn)
        load_corpus(conn, corpus, progress=False)
        vacuum_analyze(conn)
    return dsn, study_queries(corpus)
