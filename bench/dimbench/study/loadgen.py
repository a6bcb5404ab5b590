"""A load generator that is not the bottleneck: pgbench itself, sending the study's own requests.

The study's Python request path reaches about 0.44× pgbench's throughput at 4 clients on 2 cores, so a
throughput or a latency under load measured through it would measure the harness. Here every request is
a pgbench transaction written exactly as `arms.ask` sends it (PostgREST's preamble: role, claims and the
role's statement_timeout, all transaction-local; then the design's search function) — one custom script
per request, the query vector and the caller's claims as literals (pgbench cannot bind a vector), run
with `-M prepared` so each is parsed once per connection, as the study's prepared statements are.
Query settings (ef_search, iterative scan) reach every pgbench connection through PGOPTIONS.

pgbench runs closed loop (`qps`: as fast as it can) or open loop (`-R`, each transaction scheduled
whether or not the one before has finished, with `--latency-limit`); `-l` writes one line per
transaction, which is where every number here comes from. A request the server cancels (statement
timeout) makes pgbench abort that client: it is counted as failed from pgbench's own message, and what
that client was still scheduled to send is counted as `unsent` — never dropped.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from dimbench.database import db
from dimbench.database.rls import claims_for
from dimbench.errors import DimbenchError
from dimbench.study import arms
from dimbench.study.configs import Arm
from dimbench.study.designs.base import search_function
from dimbench.study.measure import StudyQuery

# pgbench accepts at most this many scripts (MAX_SCRIPTS in pgbench.c): requests beyond it are sampled.
MAX_SCRIPTS = 128
APPLICATION = "dimbench-loadgen"  # how its sessions show in pg_stat_activity
ABORTED = re.compile(r"client (\d+) (?:script \d+ )?aborted in command \d+(?: query \d+)?: (.*)")


@dataclass(frozen=True)
class Request:
    """One search exactly as the arm sends it, ready to write as a pgbench script."""

    role: str
    claims: str
    timeout: str | None  # the role's statement_timeout (None: the server's)
    function: sql.Identifier
    vector: np.ndarray = field(repr=False, hash=False, compare=False)
    k: int = 10
    filter_ids: tuple[str, ...] | None = None
    dim: int = 768
    half: bool = False
    qid: int | None = None  # the StudyQuery it asks


def request_for(arm: Arm, query: StudyQuery, timeouts: Mapping[str, str]) -> Request:
    role = arm.role or arms.ARM_ROLE[arm.access]
    filter_ids = tuple(map(str, query.filter_ids)) if arms.FILTERED[arm.access] else None
    return Request(
        role,
        claims_for(role, query.user if role == "authenticated" else None),
        timeouts.get(role),
        search_function(arm.design, arm.build),
        arms.query_vector(query, arm.build),
        arm.k,
        filter_ids,
        arm.build.dim,
        arm.build.vector_type == "halfvec",
        query.qid,
    )


def requests_for(conn: psycopg.Connection, arm: Arm, queries: Sequence[StudyQuery]) -> list[Request]:
    """Up to MAX_SCRIPTS requests, evenly spaced over `queries` (every one of them when fewer)."""
    if not queries:
        raise DimbenchError("the load generator needs at least one query")
    timeouts = arms.role_timeouts(conn)
    picked = np.unique(np.linspace(0, len(queries) - 1, min(len(queries), MAX_SCRIPTS)).round().astype(int))
    return [request_for(arm, queries[i], timeouts) for i in picked.tolist()]


def vector_literal(vector: np.ndarray) -> str:
    # float32 round-trips through 9 significant digits: the server parses the same vector the arm binds
    return "[" + ",".join(f"{x:.9g}" for x in np.asarray(vector, dtype=np.float32).tolist()) + "]"


def script(request: Request) -> str:
    """The request as a pgbench script: the transaction arms.ask runs, statement for statement."""
    preamble = sql.SQL(
        "select set_config('role', {}, true), set_config('request.jwt.claims', {}, true),"
        " set_config('statement_timeout', coalesce({}, current_setting('statement_timeout')), true);"
    ).format(sql.Literal(request.role), sql.Literal(request.claims), sql.Literal(request.timeout))
    filter_ids = (
        sql.SQL("null::uuid[]")
        if request.filter_ids is None
        else sql.SQL("{}::uuid[]").format(sql.Literal("{" + ",".join(request.filter_ids) + "}"))
    )
    search = sql.SQL(
        "select id, workspace_id, 1 - similarity from {}({}::extensions.vector, {}, {}, {}, {});"
    ).format(
        request.function,
        sql.Literal(vector_literal(request.vector)),
        sql.Literal(request.k),
        filter_ids,
        sql.Literal(request.dim),
        sql.Literal(request.half),
    )
    return "\n".join(["begin;", preamble.as_string(None), search.as_string(None), "commit;", ""])


@dataclass(frozen=True)
class Load:
    """How pgbench drives the requests."""

    clients: int
    seconds: float
    rate: float | None = None  # transactions/s over all clients (open loop); None: closed loop
    latency_limit_ms: float | None = None  # with a rate: later than this counts as late, and a
    # transaction already that late when its turn comes is skipped (counted, never sent)
    settings: Mapping[str, str] = field(default_factory=dict, hash=False)  # GUCs for every connection
    log: bool = True


@dataclass
class Transaction:
    client: int
    script: int  # index into the requests
    latency_ms: float | None  # None: skipped (or failed), see outcome
    done_us: int  # completion time, µs since the epoch (a fresh clock reading per entry)
    lag_ms: float | None = None  # open loop: how late it started against its schedule
    outcome: str = "ok"  # ok | skipped | failed | serialization | deadlock


@dataclass
class Result:
    load: Load
    transactions: list[Transaction]
    aborted: list[dict[str, Any]] = field(default_factory=list)  # {client, error}: a failed request each
    tps_reported: float | None = None  # pgbench's own figure
    seconds: float = 0.0  # wall time of the pgbench process

    @property
    def ok(self) -> list[Transaction]:
        return [t for t in self.transactions if t.outcome == "ok"]

    def latencies_ms(self) -> list[float]:
        return [t.latency_ms for t in self.ok if t.latency_ms is not None]

    def qps(self) -> float | None:
        """Completed transactions per second between the first and last completion (fresh clock)."""
        done = sorted(t.done_us for t in self.ok)
        if len(done) < 2 or done[-1] == done[0]:
            return None
        return (len(done) - 1) / ((done[-1] - done[0]) / 1e6)

    def outcomes(self) -> dict[str, int]:
        """Every request's outcome: none is dropped. `unsent`: what an aborted client was scheduled to
        send after its abort (open loop), or 0."""
        counts = {"ok": 0, "skipped": 0, "failed": 0, "serialization": 0, "deadlock": 0}
        for t in self.transactions:
            counts[t.outcome] = counts.get(t.outcome, 0) + 1
        # an aborted client is one failed request: by its statement timeout, or by another error
        counts["statement_timeout"] = sum("statement timeout" in a["error"] for a in self.aborted)
        counts["aborted"] = len(self.aborted) - counts["statement_timeout"]
        counts["unsent"] = self.unsent()
        return counts

    def unsent(self) -> int:
        if not self.aborted or self.load.rate is None:
            return 0
        expected = self.load.rate * self.load.seconds
        return max(0, round(expected) - len(self.transactions) - len(self.aborted))


def pgbench_args(dsn: str, load: Load) -> tuple[list[str], dict[str, str]]:
    """The command line (without scripts) and environment that reach `dsn` as pgbench would."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    jobs = max(1, min(load.clients, os.cpu_count() or 1))
    args = [str(db.EmbeddedServer.bin_dir() / "pgbench"), "-n", "-M", "prepared"]
    args += ["-c", str(load.clients), "-j", str(jobs), "-T", str(max(1, math.ceil(load.seconds)))]
    if load.rate is not None:
        args += ["-R", f"{load.rate:.6g}"]
        if load.latency_limit_ms is not None:
            args += ["-L", f"{load.latency_limit_ms:.6g}"]
    if load.log:
        args += ["-l", "--log-prefix", "txn", "--failures-detailed"]
    for flag, key in (("-h", "host"), ("-p", "port"), ("-U", "user")):
        if params.get(key):
            args += [flag, str(params[key])]
    env = {"PATH": os.environ.get("PATH", ""), "PGAPPNAME": APPLICATION}
    if params.get("password"):
        env["PGPASSWORD"] = str(params["password"])
    if params.get("sslmode"):
        env["PGSSLMODE"] = str(params["sslmode"])
    if load.settings:
        # -c name=value per setting: applied at connection start, before any request
        env["PGOPTIONS"] = " ".join(f"-c {name}={value}" for name, value in sorted(load.settings.items()))
    return args, env


def run(dsn: str, requests: Sequence[Request], load: Load) -> Result:
    """Run pgbench over `requests` (equal weights) for load.seconds; parse its per-transaction log."""
    import time

    if not requests:
        raise DimbenchError("the load generator needs at least one request")
    if len(requests) > MAX_SCRIPTS:
        raise DimbenchError(f"pgbench takes at most {MAX_SCRIPTS} scripts, got {len(requests)}")
    args, env = pgbench_args(dsn, load)
    dbname = str(psycopg.conninfo.conninfo_to_dict(dsn).get("dbname") or "postgres")
    with tempfile.TemporaryDirectory(prefix="dimbench-loadgen-") as tmp:
        for i, request in enumerate(requests):
            (Path(tmp) / f"r{i}.sql").write_text(script(request))
            args += ["-f", f"r{i}.sql@1"]
        start = time.perf_counter()
        done = subprocess.run(
            [*args, dbname],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=load.seconds + 120,
            env=env,
        )
        seconds = time.perf_counter() - start
        aborted = [
            {"client": int(m.group(1)), "error": m.group(2).strip()}
            for m in map(ABORTED.search, done.stderr.splitlines())
            if m
        ]
        if done.returncode not in (0, 2) or (done.returncode == 2 and not aborted):
            # 2 with aborted clients is a run with failed requests, which we count; anything else is ours
            last = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
            raise DimbenchError(f"pgbench failed: {last[-1]}")
        lines = [line for log in sorted(Path(tmp).glob("txn*")) for line in log.read_text().splitlines()]
    reported = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    return Result(
        load,
        parse_log(lines, load.rate is not None),
        aborted,
        float(reported.group(1)) if reported else None,
        seconds,
    )


def parse_log(lines: Sequence[str], throttled: bool) -> list[Transaction]:
    """pgbench's per-transaction log: `client txn latency_us script epoch_s us [lag_us] …`.

    The latency field may hold `skipped` (open loop: too late to send) or a failure's kind. In open loop
    the latency counts from the transaction's scheduled start, so waiting for a busy server is included
    (no coordinated omission); closed loop latencies come from the gaps between one client's completions
    (see overhead.latencies_from_log: pgbench's own field reads a lazily cached clock)."""
    out: list[Transaction] = []
    for line in lines:
        f = line.split()
        if len(f) < 6:
            continue
        done_us = int(f[4]) * 1_000_000 + int(f[5])
        lag = float(f[6]) / 1000 if throttled and len(f) > 6 and f[6].lstrip("-").isdigit() else None
        if f[2].isdigit():
            out.append(Transaction(int(f[0]), int(f[3]), int(f[2]) / 1000, done_us, lag))
        else:
            outcome = f[2] if f[2] in ("skipped", "serialization", "deadlock") else "failed"
            out.append(Transaction(int(f[0]), int(f[3]), None, done_us, lag, outcome))
    if not throttled:
        last: dict[int, int] = {}
        for t in sorted(out, key=lambda t: (t.client, t.done_us)):
            t.latency_ms = (t.done_us - last[t.client]) / 1000 if t.client in last else None
            last[t.client] = t.done_us
    return out


def qps(
    dsn: str,
    arm: Arm,
    queries: Sequence[StudyQuery],
    clients: int,
    seconds: float,
    settings: Mapping[str, str] | None = None,
) -> float | None:
    """Requests per second that `clients` pgbench connections sustain for `seconds`, asking `queries`
    through `arm` exactly as the study asks them (for the study's QPS column). `settings`: the query
    setting's GUCs (index.query_settings). None if fewer than two requests completed; a request that
    failed makes this an error (a throughput over failed requests is no throughput)."""
    with db.connect(dsn) as conn:
        requests = requests_for(conn, arm, queries)
    result = run(dsn, requests, Load(clients, seconds, settings=dict(settings or {})))
    failed = {k: v for k, v in result.outcomes().items() if k not in ("ok", "unsent") and v}
    if failed:
        raise DimbenchError(f"the load generator's requests failed: {failed}")
    return result.qps()


@dataclass
class Check:
    """loadgen.qps against pgbench's own report of the same requests (no log, its own tps)."""

    clients: int
    loadgen_qps: float
    pgbench_tps: float
    limit: float = 0.9

    @property
    def ratio(self) -> float:
        return self.loadgen_qps / self.pgbench_tps

    @property
    def ok(self) -> bool:
        return self.ratio >= self.limit

    def summary(self) -> str:
        verdict = "ok" if self.ok else "TOO SLOW"
        return (
            f"{self.clients} clients: loadgen {self.loadgen_qps:,.0f} req/s, pgbench {self.pgbench_tps:,.0f} "
            f"tps, ratio {self.ratio:.3f} (limit {self.limit:.2f}): {verdict}"
        )


def check(
    dsn: str,
    arm: Arm,
    queries: Sequence[StudyQuery],
    clients: Sequence[int] = (4, 8),
    seconds: float = 5.0,
    rounds: int = 2,
) -> list[Check]:
    """The `dimbench overhead` check for the load generator: at each client count, loadgen.qps (logging,
    one script per request, our arithmetic) vs pgbench running the same scripts unlogged and reporting
    its own tps. `rounds` pairs each, the order alternating (ours first, then theirs first), so a drifting
    machine favours neither; the means are compared."""
    with db.connect(dsn) as conn:
        requests = requests_for(conn, arm, queries)
    out = []
    for n in clients:
        ours: list[float] = []
        theirs: list[float] = []
        for r in range(rounds):
            for logged in (True, False) if r % 2 == 0 else (False, True):
                result = run(dsn, requests, Load(n, seconds, log=logged))
                value = result.qps() if logged else result.tps_reported
                if value is None:
                    raise DimbenchError(f"pgbench completed too few requests at {n} clients to compare")
                (ours if logged else theirs).append(value)
        out.append(Check(n, sum(ours) / len(ours), sum(theirs) / len(theirs)))
    return out
