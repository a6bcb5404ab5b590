"""The load generator: pgbench sending the study's own requests, every outcome counted.

Short runs on the tiny corpus: they check the mechanism (same request, same answer; throughput as pgbench
itself reports it; a cancelled request counted), not the machine's speed.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from dimbench.database import db
from dimbench.study import arms, loadgen
from dimbench.study.configs import Arm, Build

EXACT = Build("vector768", "exact", {})


def rls_queries(queries):
    return [q for q in queries if q.scope == "all"]


def run_script(conn, text: str) -> list[tuple]:
    """The statements of a pgbench script run one by one on `conn`; the search's rows."""
    rows: list[tuple] = []
    for statement in filter(None, (line.strip() for line in text.splitlines())):
        cursor = conn.execute(statement)
        if statement.startswith("select id"):
            rows = cursor.fetchall()
    return rows


@pytest.mark.parametrize("access", ["rls", "service"])
def test_a_pgbench_request_is_the_request_arms_ask_sends(tiny_corpus_db, access):
    """The script's transaction, run statement by statement, returns exactly what arms.ask returns:
    same role, same claims (RLS as the asker), same filter, same vector, same function."""
    dsn, queries = tiny_corpus_db
    arm = Arm(access, EXACT, 10)
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        requests = loadgen.requests_for(conn, arm, rls_queries(queries))
        by_qid = {q.qid: q for q in queries}
        for request in requests[:5]:
            q = by_qid[request.qid]
            answer = arms.ask(conn, arm, arms.query_vector(q, EXACT), q.user, list(q.filter_ids))
            rows = run_script(conn, loadgen.script(request))
            assert [r[0] for r in rows] == answer.ids
            assert answer.ids  # a real answer, not two empty ones


def test_a_user_without_memberships_gets_nothing_through_a_pgbench_request(tiny_corpus_db):
    import uuid

    dsn, queries = tiny_corpus_db
    arm = Arm("rls", EXACT, 10)
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        request = loadgen.requests_for(conn, arm, rls_queries(queries))[0]
        canary = dataclasses.replace(request, claims=f'{{"role": "authenticated", "sub": "{uuid.uuid4()}"}}')
        assert run_script(conn, loadgen.script(canary)) == []


def test_loadgen_qps_matches_pgbench_own_report_at_4_and_8_clients(tiny_corpus_db):
    """The `dimbench live --check-loadgen` check: ≥ 0.9× pgbench's own tps (short runs: a test, not a
    measurement). Two-second runs on a shared 2-core machine swing by ±20 % between runs, so the check
    gets three attempts; a load generator that really lags (or miscounts) fails all three."""
    dsn, queries = tiny_corpus_db
    attempts = []
    for _ in range(3):
        checks = loadgen.check(dsn, Arm("rls", EXACT, 10), rls_queries(queries), (4, 8), seconds=2)
        assert [c.clients for c in checks] == [4, 8]
        attempts.append([c.summary() for c in checks])
        print(*attempts[-1], sep="\n")
        if all(c.ok for c in checks):
            return
    pytest.fail(f"the load generator fell below 0.9× pgbench in every attempt: {attempts}")


def test_qps_counts_completed_requests_per_second(tiny_corpus_db):
    dsn, queries = tiny_corpus_db
    with db.connect(dsn) as conn:
        requests = loadgen.requests_for(conn, Arm("rls", EXACT, 10), queries[:4])
    result = loadgen.run(dsn, requests, loadgen.Load(2, 1.5))
    assert result.outcomes()["ok"] == len(result.transactions) > 10
    assert result.qps() == pytest.approx(result.tps_reported, rel=0.3)
    assert {t.script for t in result.transactions} <= set(range(4))


def test_an_offered_rate_is_offered_and_latency_counts_from_the_schedule(tiny_corpus_db):
    dsn, queries = tiny_corpus_db
    with db.connect(dsn) as conn:
        requests = loadgen.requests_for(conn, Arm("rls", EXACT, 10), rls_queries(queries))
    result = loadgen.run(dsn, requests, loadgen.Load(2, 2, rate=30, latency_limit_ms=5000))
    assert 30 <= len(result.transactions) <= 75  # ~60 scheduled in 2 s
    assert all(t.lag_ms is not None and t.latency_ms >= t.lag_ms for t in result.ok)


def test_a_request_the_server_cancels_is_counted_never_dropped(tiny_corpus_db):
    """A search blocked past its statement_timeout aborts its pgbench client: counted as a statement
    timeout (with pgbench's own message), not silently missing."""
    dsn, queries = tiny_corpus_db
    with db.connect(dsn) as conn:
        request = loadgen.requests_for(conn, Arm("rls", EXACT, 10), rls_queries(queries))[0]
    short = dataclasses.replace(request, timeout="200ms")
    locked = threading.Event()

    def hold_lock() -> None:
        with db.connect(dsn) as conn, conn.transaction():
            conn.execute("lock table public.document_chunks in access exclusive mode")
            locked.set()
            time.sleep(2.0)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        result = loadgen.run(dsn, [short], loadgen.Load(1, 1))
    finally:
        holder.join()
    assert result.outcomes()["statement_timeout"] == 1
    assert "statement timeout" in result.aborted[0]["error"]
