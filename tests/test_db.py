"""The database layer: the embedded server's lifecycle and the checks on any server we are given."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg import sql

from dimbench.database import db
from tests.cli_helpers import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def extension_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Extension search paths: one with no pgvector, one whose pgvector is 0.7.0."""
    root = tmp_path_factory.mktemp("ext")
    empty = root / "empty"
    (empty / "extension").mkdir(parents=True)
    old = root / "old"
    (old / "extension").mkdir(parents=True)
    (old / "extension" / "vector.control").write_text(
        "comment = 'an old pgvector'\ndefault_version = '0.7.0'\nrelocatable = true\n"
    )
    (old / "extension" / "vector--0.7.0.sql").write_text("select 1;\n")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return {"empty": empty, "old": old}


def database_with_extension_path(pg_server: db.EmbeddedServer, new_database, path: Path) -> str:
    """A real database whose server looks for extensions only in `path` (PostgreSQL 18 GUC)."""
    dsn = new_database("ext")
    name = psycopg_dbname(dsn)
    with db.connect(pg_server.dsn) as conn:
        conn.execute(
            sql.SQL("alter database {} set extension_control_path = {}").format(
                sql.Identifier(name), sql.Literal(str(path))
            )
        )
    return dsn


def psycopg_dbname(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(dsn)["dbname"])


def test_db_up_starts_a_server_and_prints_its_dsn_last(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    try:
        result = run_cli("db", "up", "--pgdata", str(pgdata))
        assert result.returncode == 0, result.stderr
        dsn = result.stdout.strip().splitlines()[-1]
        with db.connect(dsn) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        run_cli("db", "down", "--pgdata", str(pgdata))


def test_db_up_reuses_a_running_server(pg_server: db.EmbeddedServer) -> None:
    pid = pg_server.postmaster_pid()
    result = run_cli("db", "up", "--pgdata", str(pg_server.pgdata))
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout
    assert pg_server.postmaster_pid() == pid


def test_db_down_stops_the_server(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    assert run_cli("db", "up", "--pgdata", str(pgdata)).returncode == 0
    result = run_cli("db", "down", "--pgdata", str(pgdata))
    assert result.returncode == 0, result.stderr
    assert not db.EmbeddedServer(pgdata).running()


def test_embedded_server_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    server = db.EmbeddedServer(tmp_path / "pgdata")
    with db.connect(server.start()) as conn:
        conn.execute("create table kept (x int); insert into kept values (42)")
    server.stop()
    with db.connect(server.start()) as conn:
        assert conn.execute("select x from kept").fetchone() == (42,)
    server.stop()


def test_pgdata_whose_parent_is_missing_is_one_line_error(tmp_path: Path) -> None:
    result = run_cli("db", "up", "--pgdata", str(tmp_path / "missing" / "pgdata"))
    assert_one_line_error(result, "does not exist")


def test_pgdata_that_is_not_a_data_directory_is_one_line_error(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "notes.txt").write_text("not a database")
    result = run_cli("db", "up", "--pgdata", str(pgdata))
    assert_one_line_error(result, "not a PostgreSQL data directory")


def test_server_that_cannot_start_is_one_line_error(tmp_path: Path) -> None:
    server = db.EmbeddedServer(tmp_path / "pgdata")
    server.init()
    (server.pgdata / "PG_VERSION").write_text("9\n")  # data from a server this one cannot read
    result = run_cli("db", "up", "--pgdata", str(server.pgdata))
    assert_one_line_error(result, "did not start")


def test_unreachable_dsn_is_one_line_error() -> None:
    result = run_cli("schema", "apply", "--dsn", "host=127.0.0.1 port=9 user=postgres connect_timeout=3")
    assert_one_line_error(result, "cannot connect")


def test_refused_credentials_are_one_line_error(pg_server: db.EmbeddedServer) -> None:
    dsn = db.with_dbname(pg_server.dsn, "postgres").replace("user=postgres", "user=nobody_here")
    result = run_cli("schema", "apply", "--dsn", dsn)
    assert_one_line_error(result, "cannot connect", "nobody_here")


def test_server_without_pgvector_is_one_line_error(pg_server, new_database, extension_dirs) -> None:
    dsn = database_with_extension_path(pg_server, new_database, extension_dirs["empty"])
    result = run_cli("schema", "apply", "--dsn", dsn)
    assert_one_line_error(result, "pgvector is not available")


def test_pgvector_older_than_0_8_is_one_line_error(pg_server, new_database, extension_dirs) -> None:
    dsn = database_with_extension_path(pg_server, new_database, extension_dirs["old"])
    result = run_cli("schema", "apply", "--dsn", dsn)
    assert_one_line_error(result, "0.7.0 is too old")


def test_dsn_and_pgdata_together_are_refused(tmp_path: Path) -> None:
    result = run_cli("schema", "apply", "--dsn", "host=/tmp", "--pgdata", str(tmp_path))
    assert_one_line_error(result, "either --dsn or --pgdata")


def test_unknown_option_is_one_line_error() -> None:
    assert_one_line_error(run_cli("db", "up", "--frobnicate"), "--frobnicate")


def test_unknown_command_is_one_line_error() -> None:
    assert_one_line_error(run_cli("explode"), "explode")


def test_passwords_are_redacted_in_messages() -> None:
    assert "s3cret" not in db.redact("postgresql://u:s3cret@h/db")
    assert "s3cret" not in db.redact("host=h user=u password=s3cret")
