"""Load a corpus into the harmonized tables with binary COPY, resumably.

Runs as the table owner (the embedded superuser, or `postgres` on Supabase): owners are not subject to
RLS, as a migration or ETL job would run. Chunks go in blocks, one transaction each, and every block is
recorded in dimbench.load_progress in the same transaction as its rows: after any interruption (even
kill -9 of the server) a rerun skips exactly the committed blocks, so the result has every row once.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from dimbench.corpus.reader import ChunkBlock, Corpus
from dimbench.database.inventory import TABLES
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
CONTENT_TABLES = tuple(reversed(TABLES))  # children first
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
# Study scaffolding, not the harmonized schema (no migration creates it): ada-002's own vectors, so the
# study can index and search them like any column. Added by the loader only for a corpus that has them.
ADA_COLUMN = "embedding_ada"
CHUNKS = sql.Identifier("public", "document_chunks")
STDIN = sql.SQL("stdin")
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
COPY_TRAILER = struct.pack("!h", -1)


@dataclass
class LoadReport:
    corpus: str
    rows: dict[str, int] = field(default_factory=dict)
    skipped_blocks: int = 0
    seconds: float = 0.0
    chunk_seconds: float = 0.0  # the chunk COPY phase alone (no small tables, no ANALYZE)

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


def resumed_block_rows(conn: psycopg.Connection, key: str) -> int | None:
    """The block size an interrupted load of this corpus used (its largest block), if any."""
    row = conn.execute(
        "select max(rows) from dimbench.load_progress where corpus = %s and tbl = 'document_chunks'", (key,)
    ).fetchone()
    return int(row[0]) if row and row[0] else None


def record(conn: psycopg.Connection, key: str, table: str, block: int, rows: int) -> None:
    conn.execute(
        "insert into dimbench.load_progress (corpus, tbl, block, rows) values (%s, %s, %s, %s)",
        (key, table, block, rows),
    )


def copy_statement(
    table: sql.Composable, columns: Sequence[str], source: sql.Composable = STDIN
) -> sql.Composed:
    """The one binary COPY statement: from the client (stdin) or from a file on the server."""
    return sql.SQL("copy {} ({}) from {} with (format binary)").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns)), source
    )


def copy_rows(
    conn: psycopg.Connection, table: str, columns: list[str], types: list[str], rows: Iterable[tuple]
) -> int:
    n = 0
    with conn.cursor().copy(copy_statement(sql.Identifier("public", table), columns)) as copy:
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


def _fixed_head(block: ChunkBlock) -> np.ndarray:
    """Per row: field count, the three uuids and chunk_index, each length-prefixed (70 bytes)."""
    n = len(block.content)
    head = np.zeros((n, 70), dtype=np.uint8)
    fields = len(chunk_columns(block.emb_ada is not None))
    head[:, 0:2] = np.frombuffer(struct.pack("!h", fields), dtype=np.uint8)
    for offset, ids in ((2, block.ids), (22, block.workspace_ids), (42, block.document_ids)):
        head[:, offset : offset + 4] = np.frombuffer(struct.pack("!i", 16), dtype=np.uint8)
        head[:, offset + 4 : offset + 20] = ids
    head[:, 62:70] = int4_fields(block.chunk_index)
    return head


def chunk_columns(ada: bool) -> tuple[str, ...]:
    """The chunk COPY's columns: the harmonized ones, then embedding_ada when the corpus has ada."""
    return (*CHUNK_COLUMNS, ADA_COLUMN) if ada else CHUNK_COLUMNS


def add_ada_column(conn: psycopg.Connection) -> None:
    """embedding_ada on document_chunks, nullable (rows of a corpus without ada leave it null)."""
    conn.execute(
        sql.SQL("alter table {} add column if not exists {} extensions.vector(1536)").format(
            CHUNKS, sql.Identifier(ADA_COLUMN)
        )
    )


def int4_fields(values: np.ndarray) -> np.ndarray:
    """Per row, a length-prefixed binary int4 field (8 bytes)."""
    n = len(values)
    out = np.empty((n, 8), dtype=np.uint8)
    out[:, 0:4] = np.frombuffer(struct.pack("!i", 4), dtype=np.uint8)
    out[:, 4:] = np.asarray(values, dtype=">i4").view(np.uint8).reshape(n, 4)
    return out


def vector_fields(emb: np.ndarray) -> np.ndarray:
    """Per row, pgvector's binary form, length-prefixed: int32 len, int16 dim, int16 unused, float4s."""
    n, dim = emb.shape
    out = np.empty((n, 8 + 4 * dim), dtype=np.uint8)
    out[:, 0:8] = np.frombuffer(struct.pack("!ihh", 4 + 4 * dim, dim, 0), dtype=np.uint8)
    out[:, 8:] = np.ascontiguousarray(emb, dtype=">f4").view(np.uint8).reshape(n, 4 * dim)
    return out


def fixed_width_copy_data(fields: Sequence[np.ndarray]) -> bytes:
    """A framed binary COPY stream of rows whose fields are all fixed-width ((n, w) uint8 each, as made
    by int4_fields / vector_fields): one numpy concatenation, no per-row Python."""
    n = len(fields[0])
    count = np.broadcast_to(np.frombuffer(struct.pack("!h", len(fields)), dtype=np.uint8), (n, 2))
    rows = np.concatenate([count, *fields], axis=1)
    return COPY_HEADER + rows.tobytes() + COPY_TRAILER


def chunk_copy_data(block: ChunkBlock, framed: bool = True) -> bytes:
    """The binary COPY stream of one block. Fixed-width fields are laid out with numpy; per row only the
    variable-length content is framed, and slices are memoryviews (no copies) until the final join.
    `framed=False` leaves out the stream header and trailer (to concatenate blocks into one file)."""
    head = _fixed_head(block)
    model_1536, model_768 = block.models
    models = np.frombuffer(_field(model_1536.encode()) + _field(model_768.encode()), dtype=np.uint8)
    tail = np.concatenate(
        [
            vector_fields(block.emb_1536),
            vector_fields(block.emb_768),
            np.broadcast_to(models, (len(block.content), len(models))),
            *([vector_fields(block.emb_ada)] if block.emb_ada is not None else []),
        ],
        axis=1,
    )
    texts = [t.encode() for t in block.content]
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)).astype(">i4").tobytes()
    heads, tails, sizes = memoryview(head.tobytes()), memoryview(tail.tobytes()), memoryview(lengths)
    hw, tw = head.shape[1], tail.shape[1]
    parts: list = [COPY_HEADER] if framed else []
    for i, text in enumerate(texts):
        parts += (heads[i * hw : (i + 1) * hw], sizes[4 * i : 4 * i + 4], text, tails[i * tw : (i + 1) * tw])
    if framed:
        parts.append(COPY_TRAILER)
    return b"".join(parts)


# Loading workers: each process keeps its corpus reader and one connection for its lifetime.
_worker: dict = {}


def _worker_init(directory: str, manifest: dict, dsn: str, key: str) -> None:
    from dimbench.database import db

    # An initializer that raises breaks the whole pool with a traceback; keep the error for the first
    # task to raise instead, so the caller gets it as one line.
    try:
        conn = db.use_vectors(db.connect(dsn))
        conn.execute("set synchronous_commit = off")
    except (DimbenchError, psycopg.Error) as exc:
        _worker.update(error=str(exc))
        return
    _worker.update(corpus=Corpus(Path(directory), manifest), conn=conn, key=key)


def _worker_load(start: int, rows: int) -> tuple[int, int]:
    if "error" in _worker:
        raise DimbenchError(_worker["error"])
    try:
        return load_block(_worker["conn"], _worker["corpus"], _worker["key"], start, rows)
    except psycopg.OperationalError as exc:  # the server went away mid-load
        raise DimbenchError(f"loading block {start} failed: {str(exc).splitlines()[0]}") from None


def load_block(conn: psycopg.Connection, corpus: Corpus, key: str, start: int, rows: int) -> tuple[int, int]:
    """Build one block's COPY stream and load it, with its ledger row, in one transaction."""
    block = next(corpus.chunk_blocks(rows, start=start))
    data = chunk_copy_data(block)
    with conn.transaction():
        columns = chunk_columns(block.emb_ada is not None)
        with conn.cursor().copy(copy_statement(CHUNKS, columns)) as copy:
            copy.write(data)
        record(conn, key, "document_chunks", start, len(block.content))
    return start, len(block.content)


def full_conninfo(conn: psycopg.Connection) -> str:
    """The connection's parameters including the password (conn.info.dsn leaves it out)."""
    password = conn.info.password
    return psycopg.conninfo.make_conninfo(conn.info.dsn, **({"password": password} if password else {}))


def load_blocks_parallel(
    conn: psycopg.Connection, corpus: Corpus, key: str, todo: list[int], block_rows: int, workers: int
) -> Iterator[tuple[int, int]]:
    """Load blocks with `workers` processes, each building and sending its own blocks over its own
    connection: the server parses one stream per core instead of waiting on one client."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_worker_init,
        initargs=(str(corpus.directory), corpus.manifest, full_conninfo(conn), key),
    ) as pool:
        futures = [pool.submit(_worker_load, start, block_rows) for start in todo]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BrokenProcessPool as exc:
            raise DimbenchError(f"a loader process died ({exc}); rerun to resume the load") from None
        finally:
            for future in futures:
                future.cancel()


def load_corpus(
    conn: psycopg.Connection,
    corpus: Corpus,
    *,
    replace: bool = False,
    block_rows: int = 5000,
    workers: int = 2,
    progress: bool = True,
    after_block: Callable[[int], None] | None = None,
) -> LoadReport:
    """Load what is not loaded yet. `after_block` is a test hook called after each committed block."""
    from tqdm import tqdm

    if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
        raise DimbenchError(f"block rows must be a positive integer, got {block_rows!r}")
    key = corpus_key(corpus)
    report = LoadReport(key)
    started = time.perf_counter()
    conn.execute("set synchronous_commit = off")  # a crash loses at most the last blocks; the ledger knows
    check_target(conn, key, replace)
    if corpus.has_ada:
        add_ada_column(conn)
    for table, columns, types, rows in small_tables(corpus):
        if 0 in done_blocks(conn, key, table):
            continue
        with conn.transaction():
            report.rows[table] = copy_rows(conn, table, columns, types, rows())
            record(conn, key, table, 0, report.rows[table])
    done = done_blocks(conn, key, "document_chunks")
    block_rows = resumed_block_rows(conn, key) or block_rows  # a resumed load keeps its block boundaries
    starts = list(range(0, corpus.n_chunks, block_rows))
    todo = [start for start in starts if start not in done]
    report.skipped_blocks = len(starts) - len(todo)
    with tqdm(
        total=corpus.n_chunks, desc=f"load {corpus.name}", unit="chunk", unit_scale=True, disable=not progress
    ) as bar:
        bar.update(sum(min(block_rows, corpus.n_chunks - s) for s in done if s in set(starts)))
        chunks_started = time.perf_counter()
        if workers > 1 and len(todo) > 1:
            loaded = load_blocks_parallel(conn, corpus, key, todo, block_rows, workers)
        else:
            loaded = (load_block(conn, corpus, key, start, block_rows) for start in todo)
        for start, n in loaded:
            report.rows["document_chunks"] = report.rows.get("document_chunks", 0) + n
            bar.update(n)
            if after_block is not None:
                after_block(start)
    report.chunk_seconds = time.perf_counter() - chunks_started
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

    def empty() -> None:
        conn.execute(sql.SQL("truncate {}").format(CHUNKS))
        conn.execute("delete from dimbench.load_progress where tbl = 'document_chunks'")
        conn.execute("checkpoint")

    empty()
    start = time.perf_counter()
    with conn.transaction():
        conn.execute(copy_statement(CHUNKS, chunk_columns(corpus.has_ada), sql.Literal(str(file))))
    server = time.perf_counter() - start
    empty()
    client = load_corpus(conn, corpus, block_rows=block_rows, progress=False).chunk_seconds
    return LoadBenchmark(corpus.n_chunks, client, server, file.stat().st_size)
