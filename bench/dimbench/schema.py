"""Apply schema/*.sql in file-name order, once each, recorded in a ledger table.

Every migration is also written to be idempotent on its own, so the same files apply to a fresh
database, to a legacy RAG database (upgraded in place) and to a real Supabase project. The ledger
(`dimbench.migrations`, a schema PostgREST does not expose) lets a second run change nothing and say so.
A file whose first line contains `no-transaction` runs statement by statement outside a transaction
(needed for `create index concurrently`); every other file runs in one transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg

from dimbench.errors import DimbenchError
from dimbench.paths import schema_dir

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

    def summary(self) -> str:
        if not self.applied:
            return f"schema is up to date: {len(self.unchanged)} migrations, nothing changed"
        return f"applied {len(self.applied)} migration(s): {', '.join(self.applied)}"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or schema_dir()
    files = sorted(directory.glob("*.sql"))
    if not files:
        raise DimbenchError(f"no migrations found in {directory}")
    return [Migration(path.name, path.read_text()) for path in files]


def split_statements(sql: str) -> list[str]:
    """Split SQL on top-level semicolons, respecting quotes, dollar quotes and comments."""
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
            buf.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end == -1 else end + 2
            buf.append(sql[i:end])
            i = end
        elif ch == "'":
            end = i + 1
            while end < n:
                if sql[end] == "'" and sql.startswith("''", end):
                    end += 2
                    continue
                if sql[end] == "'":
                    break
                end += 1
            buf.append(sql[i : end + 1])
            i = end + 1
        elif ch == "$":
            close = sql.find("$", i + 1)
            tag = sql[i : close + 1] if close != -1 else ""
            if tag and (tag == "$$" or tag[1:-1].replace("_", "").isalnum()):
                end = sql.find(tag, close + 1)
                end = n if end == -1 else end + len(tag)
                buf.append(sql[i:end])
                i = end
            else:
                buf.append(ch)
                i += 1
        elif ch == ";":
            statement = "".join(buf).strip()
            if _has_code(statement):
                statements.append(statement)
            buf = []
            i += 1
        else:
            buf.append(ch)
            i += 1
    tail = "".join(buf).strip()
    if _has_code(tail):
        statements.append(tail)
    return statements


def _has_code(statement: str) -> bool:
    lines = [ln for ln in statement.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    return bool(lines)


def applied_checksums(conn: psycopg.Connection) -> dict[str, str]:
    exists = conn.execute("select to_regclass('dimbench.migrations') is not null").fetchone()
    if not exists or not exists[0]:
        return {}
    return dict(conn.execute("select name, checksum from dimbench.migrations").fetchall())


def apply(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> ApplyReport:
    """Apply what is new or changed. `conn` must be in autocommit mode and connected as an owner."""
    if not conn.autocommit:
        raise ValueError("schema.apply needs an autocommit connection")
    migrations = migrations if migrations is not None else load_migrations()
    done = applied_checksums(conn)
    report = ApplyReport(applied=[], unchanged=[])
    for migration in migrations:
        if done.get(migration.name) == migration.checksum:
            report.unchanged.append(migration.name)
            continue
        try:
            _run(conn, migration)
        except psycopg.Error as exc:
            message = (exc.diag.message_primary or str(exc)).splitlines()[0]
            raise DimbenchError(f"migration {migration.name} failed: {message}") from exc
        report.applied.append(migration.name)
    return report


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
    for statement in split_statements(migration.sql):
        conn.execute(statement)
    conn.execute(record, (migration.name, migration.checksum))
