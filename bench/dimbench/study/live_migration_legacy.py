"""The legacy RAG database the migration upgrades, built from the study's loaded corpus.

A new database of the same server (prefix MIGRATION_PREFIX, dropped after, or by the next live stage
if a killed run left it): the pre-integration shape (LEGACY_TABLES: documents,
document_chunks with one `embedding vector(1536)`, pgvector in public), filled from the study's
database by binary COPY through the client (rows streamed as they come, nothing parsed), the hnsw index
a legacy app would have built on `embedding`, ANALYZE. The corpus's 768 vectors go to a table of their
own (`dimbench_reembed.embeddings`, by chunk id): what the re-embedding job will write in the backfill.
Then 0001–0004, as `schema apply` runs them on a legacy database before 0005 (they add the shim, move
pgvector to `extensions`, add workspaces and the membership helpers; nothing the legacy tables use).
The study's database is only read.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import psycopg
from psycopg import sql

from dimbench.database import db, schema
from dimbench.errors import DimbenchError

MIGRATION_PREFIX = "dimbench_migration_"  # the legacy databases the live stage makes (and may drop)
# The pre-integration RAG shape: pgvector in public, one ada-002 embedding, no workspaces (the schema
# tests' legacy fixture, tests/fixtures/legacy_rag.sql, fills these same tables).
LEGACY_TABLES = """
create extension if not exists vector;
create table documents (
  id uuid primary key default gen_random_uuid(),
  title text not null,
  source_url text,
  metadata jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
create table document_chunks (
  id uuid primary key default gen_random_uuid(),
  document_id uuid not null references documents (id) on delete cascade,
  chunk_index integer not null,
  content text not null,
  embedding vector(1536),
  created_at timestamptz not null default now()
);
"""
REEMBED_DDL = """
create schema dimbench_reembed;
create table dimbench_reembed.embeddings (id uuid not null, embedding_768 vector(768) not null);
"""
LEGACY_INDEXES = """
create index document_chunks_document_id_idx on document_chunks (document_id);
create index document_chunks_embedding_idx on document_chunks using hnsw (embedding vector_cosine_ops);
alter table dimbench_reembed.embeddings add primary key (id);
analyze;
"""
# (source query in the study's database, target table and columns in the legacy one)
COPIES = (
    (
        "select id, title, source_url, metadata, created_at from public.documents",
        "documents",
        ("id", "title", "source_url", "metadata", "created_at"),
    ),
    (
        "select id, document_id, chunk_index, content, embedding_1536, created_at"
        " from public.document_chunks",
        "document_chunks",
        ("id", "document_id", "chunk_index", "content", "embedding", "created_at"),
    ),
    (
        "select id, embedding_768 from public.document_chunks where embedding_768 is not null",
        "dimbench_reembed.embeddings",
        ("id", "embedding_768"),
    ),
)
SETUP_FILES = ("0001", "0002", "0003", "0004")  # before the seed's Phase 3


@dataclass(frozen=True)
class Legacy:
    name: str
    dsn: str
    chunks: int
    documents: int
    seconds: dict[str, float]  # copy, index (the legacy hnsw build), setup (0001–0004)

    def describe(self) -> dict[str, object]:
        return {
            "database": "a new database, legacy DDL, rows by binary COPY from the study's database",
            "chunks": self.chunks,
            "documents": self.documents,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "setup_files": [f for f in SETUP_FILES],
        }


def leftovers(admin: psycopg.Connection) -> list[str]:
    rows = admin.execute(
        "select datname from pg_database where starts_with(datname, %s) order by 1", (MIGRATION_PREFIX,)
    ).fetchall()
    return [r[0] for r in rows]


def drop(admin: psycopg.Connection, name: str) -> None:
    if not name.startswith(MIGRATION_PREFIX):  # never anything the migration measurement did not make
        raise DimbenchError(f"refusing to drop {name!r}: not a legacy database dimbench live made")
    admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def build(admin: psycopg.Connection, source_dsn: str) -> Legacy:
    """The legacy database filled from the study's (`source_dsn`, read only); the caller drops it."""
    name = f"{MIGRATION_PREFIX}{uuid.uuid4().hex[:8]}"
    admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    dsn = db.with_dbname(source_dsn, name)
    seconds: dict[str, float] = {}
    with db.connect(source_dsn) as src, db.connect(dsn, autocommit=False) as dst:
        start = time.perf_counter()
        dst.execute(LEGACY_TABLES)
        dst.execute(REEMBED_DDL)
        for query, table, columns in COPIES:
            copy_rows(src, dst, query, table, columns)
        dst.commit()
        seconds["copy"] = time.perf_counter() - start
    with db.connect(dsn) as conn:
        start = time.perf_counter()
        conn.execute(LEGACY_INDEXES)
        seconds["index"] = time.perf_counter() - start
        start = time.perf_counter()
        for migration in schema.load_migrations():
            if migration.name[:4] in SETUP_FILES:
                schema.apply_file(conn, migration)
        seconds["setup"] = time.perf_counter() - start
        counts = conn.execute(
            "select (select count(*) from public.document_chunks), (select count(*) from public.documents)"
        ).fetchone()
    assert counts is not None
    return Legacy(name, dsn, int(counts[0]), int(counts[1]), seconds)


def copy_rows(
    src: psycopg.Connection, dst: psycopg.Connection, query: str, table: str, columns: tuple[str, ...]
) -> None:
    """Binary COPY out of one database and into the other, block by block (the types' binary forms
    are the same on both sides: same server, same pgvector)."""
    target = sql.SQL("copy {} ({}) from stdin (format binary)").format(
        sql.Identifier(*table.split(".")), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    out = sql.SQL("copy ({}) to stdout (format binary)").format(sql.SQL(query))  # type: ignore[arg-type]
    with src.cursor().copy(out) as reader, dst.cursor().copy(target) as writer:
        for block in reader:
            writer.write(block)
