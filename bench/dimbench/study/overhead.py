"""How much does the harness itself add? The same request through dimbench and through pgbench.

One fixed search (service_role, one workspace, 768 dims), sent as the study sends it: a transaction with
the PostgREST-style set_config, the match_document_chunks call, commit. pgbench runs the identical SQL
from a custom script (-M prepared, one client) on the same server; both p50s are printed. The harness
must stay within 10% of pgbench, or its latencies would measure the harness rather than the database.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from dimbench.database import db
from dimbench.errors import DimbenchError
from dimbench.study import arms
from dimbench.study.configs import Arm, Build

TOLERANCE = 1.10


@dataclass
class Overhead:
    harness_p50_ms: float
    pgbench_p50_ms: float
    limit: float = TOLERANCE  # the largest harness/pgbench ratio that passes

    @property
    def ratio(self) -> float:
        return self.harness_p50_ms / self.pgbench_p50_ms

    @property
    def ok(self) -> bool:
        return self.ratio <= self.limit

    def summary(self) -> str:
        verdict = "ok" if self.ok else "TOO SLOW"
        return (
            f"harness p50 {self.harness_p50_ms:.3f} ms, pgbench p50 {self.pgbench_p50_ms:.3f} ms, "
            f"ratio {self.ratio:.3f} (limit {self.limit:.2f}): {verdict}"
        )


def fixed_query(conn: psycopg.Connection) -> tuple[np.ndarray, str]:
    """A stored 768-d vector (a real row's) and the largest workspace: a query with real work to do."""
    row = conn.execute(
        "select embedding_768::text, workspace_id from public.document_chunks where embedding_768 is not null"
        " and workspace_id = (select workspace_id from public.document_chunks"
        " group by 1 order by count(*) desc limit 1) limit 1"
    ).fetchone()
    if row is None:
        raise DimbenchError(
            "the database has no chunks: run `dimbench corpus load` (or `dimbench run`) first"
        )
    return np.asarray(row[0].strip("[]").split(","), dtype=np.float32), str(row[1])


def harness_p50(
    conn: psycopg.Connection, vector: np.ndarray, workspace: str, n: int, warmup: int = 20
) -> float:
    import uuid

    arm = Arm("service", Build("vector768", "exact", {}), 10)
    ws = [uuid.UUID(workspace)]
    for _ in range(warmup):
        arms.ask(conn, arm, vector, None, ws)
    return statistics.median(arms.ask(conn, arm, vector, None, ws).latency_ns / 1e6 for _ in range(n))


def pgbench_p50(dsn: str, vector: np.ndarray, workspace: str, n: int, warmup: int = 20) -> float:
    pgbench = db.EmbeddedServer.bin_dir() / "pgbench"
    literal = "[" + ",".join(f"{x:.8g}" for x in vector.tolist()) + "]"
    search = sql.SQL(
        "select id, workspace_id, 1 - similarity"
        " from public.match_document_chunks({}::extensions.vector, 10, {}::uuid[], 768, false);"
    ).format(sql.Literal(literal), sql.Literal("{" + workspace + "}"))
    script = "\n".join(
        [
            "begin;",
            "select set_config('role', 'service_role', true),"
            " set_config('request.jwt.claims', '{\"role\": \"service_role\"}', true);",
            search.as_string(None),
            "commit;",
            "",
        ]
    )
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    args = [str(pgbench), "-n", "-M", "prepared", "-c", "1", "-l"]
    for flag, key in (("-h", "host"), ("-p", "port"), ("-U", "user")):
        if params.get(key):
            args += [flag, str(params[key])]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "search.sql").write_text(script)
        command = args + [
            "-t",
            str(n + warmup),
            "-f",
            "search.sql",
            "--log-prefix",
            "txn",
            str(params["dbname"]),
        ]
        done = subprocess.run(
            command,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=600,
            env={"PGPASSWORD": str(params.get("password", ""))} if params.get("password") else None,
        )
        if done.returncode != 0:
            raise DimbenchError(f"pgbench failed: {(done.stderr or done.stdout).strip().splitlines()[-1]}")
        logs = sorted(Path(tmp).glob("txn*"))
        latencies_ms = latencies_from_log([line for log in logs for line in log.read_text().splitlines()])
    if len(latencies_ms) <= warmup:
        raise DimbenchError(
            f"pgbench logged {len(latencies_ms)} latencies, none left after its {warmup} warm-up"
        )
    return statistics.median(latencies_ms[warmup:])


def latencies_from_log(lines: list[str]) -> list[float]:
    """Per-transaction latency (ms) of one pgbench client, from the gaps between its logged completion
    times (the log's last two fields, read fresh from the clock for every entry).

    Not from the log's own latency field: pgbench computes that from a lazily cached clock reading, and
    on a loaded machine, when a result is already waiting as pgbench looks for it, the reading is not
    refreshed and the field says 0 µs (seen here: a median of 0 and a division by zero). With one client
    running its transactions back to back, the gap between two completions is the second transaction's
    latency (plus pgbench's own microseconds between transactions). The first transaction has no gap."""
    done_us = [int(f[4]) * 1_000_000 + int(f[5]) for f in (line.split() for line in lines) if len(f) >= 6]
    return [(b - a) / 1000 for a, b in zip(done_us, done_us[1:], strict=False)]


def measure(dsn: str, n: int = 500, limit: float = TOLERANCE) -> Overhead:
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        conn.execute("set role service_role")  # read the fixed vector as the arm would
        vector, workspace = fixed_query(conn)
        conn.execute("reset role")
        # Interleave the two, twice, so a drifting machine does not favour one.
        harness = [harness_p50(conn, vector, workspace, n // 2) for _ in range(2)]
        bench = [pgbench_p50(dsn, vector, workspace, n // 2) for _ in range(2)]
    return Overhead(statistics.mean(harness), statistics.mean(bench), limit)
