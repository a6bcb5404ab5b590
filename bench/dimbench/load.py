"""Load a corpus into the harmonized tables with binary COPY, resumably.

Runs as the table owner (the embedded superuser, or `postgres` on Supabase): owners are not subject to
RLS, as a migration or ETL job would run. Chunks go in blocks, one transaction each, and every block is
recorded in dimbench.load_progress in the same transaction as its rows: after any interruption (even
kill -9 of the server) a rerun skips exactly the committed blocks, so the result has every row once.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from dimbench.corpus.reader import MODEL_768, MODEL_1536, ChunkBlock, Corpus
from dimbench.errors import DimbenchError

LEDGER_DDL = """
create schema if not exists dimbench;
create table if not exists dimbench.load_progress (
  corpus text not null,
  tbl text not null,
  block bigint not null,
  rows bigint not null,
  loaded_at timestamptz not null default now(),
  primary key (corpus, tbl, block)
)"""
CONTENT_TABLES = (
    "document_chunks",
    "processed_documents",
    "pdf_documents",
    "documents",
    "workspace_members",
    "workspaces",
)
CHUNK_COLUMNS = (
    "id",
    "workspace_id",
    "document_id",
    "chunk_index",
    "content",
    "embedding_1536",
    "embedding_768",
    "embedding_1536_model",
    "embedding_768_model",
)
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
COPY_TRAILER = struct.pack("!h", -1)


@dataclass
class LoadReport:
    corpus: str
    rows: dict[str, int] = field(default_factory=dict)
    skipped_blocks: int = 0
    seconds: float = 0.0

    @property
    def chunk_rate(self) -> float | None:
        n = self.rows.get("document_chunks", 0)
        return n / self.seconds if self.seconds and n else None

    def summary(self) -> str:
        if not self.rows:
            return f"corpus {self.corpus}: already loaded, nothing to do"
        rate = f", {self.chunk_rate:,.0f} chunks/s" if self.chunk_rate else ""
        loaded = ", ".join(f"{t} {n}" for t, n in self.rows.items())
        resumed = f" (resumed: {self.skipped_blocks} blocks were already in)" if self.skipped_blocks else ""
        return f"corpus {self.corpus}: loaded {loaded} in {self.seconds:.1f} s{rate}{resumed}"


def loaded_corpora(conn: psycopg.Connection) -> set[str]:
    conn.execute(LEDGER_DDL)
    return {r[0] for r in conn.execute("select distinct corpus from dimbench.load_progress").fetchall()}


def check_target(conn: psycopg.Connection, key: str, replace: bool) -> None:
    """Refuse to mix corpora, and never touch data dimbench did not load."""
    others = loaded_corpora(conn) - {key}
    has_rows = conn.execute("select exists (select from public.workspaces)").fetchone()[0]
    if others:
        if not replace:
            raise DimbenchError(
                f"the database holds another corpus ({sorted(others)[0]}); rerun with --replace "
                "to swap it for this one, or use another --pgdata/--dsn"
            )
        with conn.transaction():
            conn.execute(
                sql.SQL("truncate {} cascade").format(
                    sql.SQL(", ").join(sql.Identifier("public", t) for t in CONTENT_TABLES)
                )
            )
            conn.execute("delete from dimbench.load_progress")
    elif has_rows and not loaded_corpora(conn):
        raise DimbenchError(
            "the database already holds workspaces that dimbench did not load; refusing to mix "
            "them with a synthetic corpus (use an empty database)"
        )


def corpus_key(corpus: Corpus) -> str:
    return f"{corpus.name}-{corpus.digest}"


def done_blocks(conn: psycopg.Connection, key: str, table: str) -> set[int]:
    rows = conn.execute(
        "select block from dimbench.load_progress where corpus = %s and tbl = %s", (key, table)
    )
    return {r[0] for r in rows.fetchall()}


def record(conn: psycopg.Connection, key: str, table: str, block: int, rows: int) -> None:
    conn.execute(
        "insert into dimbench.load_progress (corpus, tbl, block, rows) values (%s, %s, %s, %s)",
        (key, table, block, rows),
    )


def copy_rows(
    conn: psycopg.Connection, table: str, columns: list[str], types: list[str], rows: Iterable[tuple]
) -> int:
    statement = sql.SQL("copy {} ({}) from stdin with (format binary)").format(
        sql.Identifier("public", table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    n = 0
    with conn.cursor().copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def small_tables(corpus: Corpus) -> list[tuple[str, list[str], list[str], Callable[[], Iterable[tuple]]]]:
    """(table, columns, types, rows) for everything but the chunks, in foreign-key order."""
    n_docs = len(corpus.doc_workspace)
    per_doc = np.diff(corpus.doc_offsets)

    def workspaces() -> Iterable[tuple]:
        for i in range(len(corpus.ws_documents)):
            yield corpus.uuid("workspace", i), corpus.workspace_name(i)

    def members() -> Iterable[tuple]:
        for ws, user, role in corpus.memberships.tolist():
            yield corpus.uuid("workspace", ws), corpus.uuid("user", user), corpus.role(role)

    def documents() -> Iterable[tuple]:
        for d in range(n_docs):
            yield (
                corpus.uuid("document", d),
                corpus.uuid("workspace", int(corpus.doc_workspace[d])),
                f"document {d} (topic {int(corpus.doc_topic[d])})",
                "ready",
            )

    def pdfs() -> Iterable[tuple]:
        for d in range(n_docs):
            yield (
                corpus.uuid("workspace", int(corpus.doc_workspace[d])),
                corpus.uuid("document", d),
                f"pdf/{d}.pdf",
                1 + int(per_doc[d]) // 2,
            )

    def processed() -> Iterable[tuple]:
        for d in range(n_docs):
            yield (
                corpus.uuid("workspace", int(corpus.doc_workspace[d])),
                corpus.uuid("document", d),
                "completed",
                int(per_doc[d]),
            )

    return [
        ("workspaces", ["id", "name"], ["uuid", "text"], workspaces),
        ("workspace_members", ["workspace_id", "user_id", "role"], ["uuid", "uuid", "text"], members),
        ("documents", ["id", "workspace_id", "title", "status"], ["uuid", "uuid", "text", "text"], documents),
        (
            "pdf_documents",
            ["workspace_id", "document_id", "storage_path", "page_count"],
            ["uuid", "uuid", "text", "int4"],
            pdfs,
        ),
        (
            "processed_documents",
            ["workspace_id", "document_id", "status", "chunk_count"],
            ["uuid", "uuid", "text", "int4"],
            processed,
        ),
    ]


def _field(payload: bytes) -> bytes:
    return struct.pack("!i", len(payload)) + payload


def _vector_fields(emb: np.ndarray) -> list[bytes]:
    """pgvector's binary form per row: int16 dim, int16 unused, big-endian float4s (length-prefixed)."""
    dim = emb.shape[1]
    head = struct.pack("!ihh", 4 + 4 * dim, dim, 0)
    body = np.ascontiguousarray(emb, dtype=">f4").tobytes()
    step = 4 * dim
    return [head + body[i * step : (i + 1) * step] for i in range(len(emb))]


def chunk_copy_data(block: ChunkBlock, framed: bool = True) -> bytes:
    """The binary COPY stream of one block, built with numpy rather than row by row.

    `framed=False` leaves out the stream header and trailer (to concatenate blocks into one file)."""
    count = struct.pack("!h", len(CHUNK_COLUMNS))
    uuid_len = struct.pack("!i", 16)
    int_len = struct.pack("!i", 4)
    m1536 = _field(MODEL_1536.encode())
    m768 = _field(MODEL_768.encode())
    e1536 = _vector_fields(block.emb_1536)
    e768 = _vector_fields(block.emb_768)
    ids, wss, docs = block.ids.tobytes(), block.workspace_ids.tobytes(), block.document_ids.tobytes()
    parts = [COPY_HEADER] if framed else []
    for i, text in enumerate(block.content):
        a = 16 * i
        parts += [
            count,
            uuid_len,
            ids[a : a + 16],
            uuid_len,
            wss[a : a + 16],
            uuid_len,
            docs[a : a + 16],
            int_len,
            struct.pack("!i", int(block.chunk_index[i])),
            _field(text.encode()),
            e1536[i],
            e768[i],
            m1536,
            m768,
        ]
    if framed:
        parts.append(COPY_TRAILER)
    return b"".join(parts)


def load_corpus(
    conn: psycopg.Connection,
    corpus: Corpus,
    *,
    replace: bool = False,
    block_rows: int = 5000,
    progress: bool = True,
    after_block: Callable[[int], None] | None = None,
) -> LoadReport:
    """Load what is not loaded yet. `after_block` is a test hook called after each committed block."""
    from tqdm import tqdm

    key = corpus_key(corpus)
    report = LoadReport(key)
    started = time.perf_counter()
    conn.execute("set synchronous_commit = off")  # a crash loses at most the last blocks; the ledger knows
    check_target(conn, key, replace)
    for table, columns, types, rows in small_tables(corpus):
        if 0 in done_blocks(conn, key, table):
            continue
        with conn.transaction():
            report.rows[table] = copy_rows(conn, table, columns, types, rows())
            record(conn, key, table, 0, report.rows[table])
    done = done_blocks(conn, key, "document_chunks")
    statement = sql.SQL("copy {} ({}) from stdin with (format binary)").format(
        sql.Identifier("public", "document_chunks"), sql.SQL(", ").join(map(sql.Identifier, CHUNK_COLUMNS))
    )
    with tqdm(
        total=corpus.n_chunks, desc=f"load {corpus.name}", unit="chunk", unit_scale=True, disable=not progress
    ) as bar:
        for block in corpus.chunk_blocks(block_rows):
            n = len(block.content)
            if block.start in done:
                report.skipped_blocks += 1
                bar.update(n)
                continue
            data = chunk_copy_data(block)
            with conn.transaction():
                with conn.cursor().copy(statement) as copy:
                    copy.write(data)
                record(conn, key, "document_chunks", block.start, n)
            report.rows["document_chunks"] = report.rows.get("document_chunks", 0) + n
            bar.update(n)
            if after_block is not None:
                after_block(block.start)
    if report.rows:
        conn.execute("analyze")
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class LoadBenchmark:
    chunks: int
    client_seconds: float
    server_seconds: float
    file_bytes: int

    @property
    def ratio(self) -> float:
        return self.server_seconds / self.client_seconds

    def summary(self) -> str:
        client, server = self.chunks / self.client_seconds, self.chunks / self.server_seconds
        mb = self.file_bytes / 1e6
        return (
            f"dimbench load: {client:,.0f} chunks/s ({mb / self.client_seconds:,.0f} MB/s); "
            f"server COPY FROM file: {server:,.0f} chunks/s ({mb / self.server_seconds:,.0f} MB/s); "
            f"ratio {self.ratio:.2f} (target 0.80)"
        )


def benchmark_load(
    conn: psycopg.Connection, corpus: Corpus, directory: Path, block_rows: int = 5000
) -> LoadBenchmark:
    """The same chunk rows loaded twice into the same (emptied) table: by dimbench's block-wise client COPY,
    and by the server's own COPY FROM a pre-made binary file (one transaction, no network)."""
    load_corpus(conn, corpus, progress=False)  # everything the chunks reference
    file = directory / "chunks.copy"
    with file.open("wb") as out:
        out.write(COPY_HEADER)
        for block in corpus.chunk_blocks(block_rows):
            out.write(chunk_copy_data(block, framed=False))
        out.write(COPY_TRAILER)
    file.chmod(0o644)
    directory.chmod(0o755)
    columns = sql.SQL(", ").join(map(sql.Identifier, CHUNK_COLUMNS))
    table = sql.Identifier("public", "document_chunks")

    def empty() -> None:
        conn.execute(sql.SQL("truncate {}").format(table))
        conn.execute("delete from dimbench.load_progress where tbl = 'document_chunks'")
        conn.execute("checkpoint")

    empty()
    start = time.perf_counter()
    with conn.transaction():
        conn.execute(
            sql.SQL("copy {} ({}) from {} with (format binary)").format(
                table, columns, sql.Literal(str(file))
            )
        )
    server = time.perf_counter() - start
    empty()
    start = time.perf_counter()
    load_corpus(conn, corpus, block_rows=block_rows, progress=False)
    client = time.perf_counter() - start
    return LoadBenchmark(corpus.n_chunks, client, server, file.stat().st_size)
