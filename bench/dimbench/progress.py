"""Progress for long work: tqdm bars on a terminal only, and a bar for CREATE INDEX fed by the server.

Bars are drawn only when progress is wanted and stderr is a terminal, so logs and CI output never get
carriage-return garbage. An index build reports itself in pg_stat_progress_create_index (phase,
blocks and tuples done / total); a thread polls it from a second connection, as ann-benchmarks'
pgvector module does, because the building connection is busy until the build ends.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

POLL_SECONDS = 0.5


def bar(*, progress: bool = True, **kwargs: Any):
    """A tqdm bar, disabled unless progress is wanted and stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(disable=not (progress and sys.stderr.isatty()), **kwargs)


def conninfo(conn: psycopg.Connection) -> str:
    """Everything the connection was opened with (password included), to open a second one."""
    options = {
        opt.keyword.decode(): opt.val.decode()
        for opt in conn.pgconn.info
        if opt.val is not None and opt.keyword.decode() not in ("dbname", "replication")
    }
    options["dbname"] = conn.info.dbname
    return psycopg.conninfo.make_conninfo(**options)


PROGRESS_SQL = (
    "select phase, blocks_done, blocks_total, tuples_done, tuples_total"
    " from pg_stat_progress_create_index where pid = %s"
)


def read_progress(watcher: psycopg.Connection, pid: int) -> tuple[str, str, int, int, int] | None:
    """(phase, unit, done, total, tuples done) of the build running in backend `pid`: counted in tuples
    when the phase knows their total, else in heap blocks (hnsw's load phase); None when no build runs."""
    row = watcher.execute(PROGRESS_SQL, (pid,)).fetchone()
    if row is None:
        return None
    phase, blocks_done, blocks_total, tuples_done, tuples_total = row
    if tuples_total:
        return phase, "tuples", int(tuples_done), int(tuples_total), int(tuples_done)
    return phase, "blocks", int(blocks_done or 0), int(blocks_total or 0), int(tuples_done or 0)


@contextmanager
def index_build(
    conn: psycopg.Connection, desc: str, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Show the progress of the CREATE INDEX that `conn` runs inside this block.

    On a terminal: a bar per phase (done / total, ETA). Otherwise, if progress is wanted: one line saying
    what is being built. Polling problems never fail the build: the bar just stops moving.
    """
    if not progress:
        yield
        return
    if not sys.stderr.isatty():
        (log or _stderr_line)(f"{desc}: building (no terminal: no progress bar)")
        yield
        return
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(conninfo(conn), conn.info.backend_pid, desc, stop), daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=5)


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _watch(dsn: str, pid: int, desc: str, stop: threading.Event) -> None:
    from tqdm import tqdm

    try:
        watcher = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.Error:
        return
    phase: tuple[str, str] | None = None
    shown = tqdm(desc=desc, unit="", unit_scale=True, leave=False)
    try:
        while not stop.wait(POLL_SECONDS):
            try:
                state = read_progress(watcher, pid)
            except psycopg.Error:
                return
            if state is None:
                continue
            now_phase, unit, done, total, tuples = state
            if (now_phase, unit) != phase:  # a new phase, or the same one now counting tuples
                phase = (now_phase, unit)
                shown.reset(total=total or None)
                shown.unit = f" {unit}"
                shown.set_description(f"{desc}: {now_phase}")
            if total and shown.total != total:
                shown.total = total
            shown.n = done
            if unit == "blocks" and tuples:
                shown.set_postfix_str(f"{tuples:,} tuples", refresh=False)
            shown.refresh()
    finally:
        shown.close()
        watcher.close()
