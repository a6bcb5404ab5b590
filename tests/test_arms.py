"""The access arms and one cell's measurement, on the small fixed world: exact search is exact, and the
isolation checks fire when RLS is broken on purpose."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import numpy as np
import psycopg
import pytest
from psycopg import sql

from dimbench.database import db, seed_policy
from dimbench.study import arms
from dimbench.study.configs import Arm, Cell
from dimbench.study.grid import Build, QuerySetting
from dimbench.study.measure import Observed, StudyQuery, measurement, run_cell
from tests.world import World, chunk_table, seed_world

K = 4


@pytest.fixture
def world_dsn(new_database: Callable[[str], str]) -> str:
    from dimbench.database import schema

    dsn = new_database("arms")
    with db.connect(dsn) as conn:
        schema.apply(conn)
        seed_world(conn)
    return dsn


@pytest.fixture
def conn(world_dsn: str) -> Iterator[psycopg.Connection]:
    with db.connect(world_dsn) as connection:
        db.use_vectors(connection)
        yield connection


def make_query(world: World, user: str, scope: str, seed: int) -> StudyQuery:
    ids, workspaces, emb = chunk_table(world)
    visible = {world.ws_b} if user == "nonmember" else {world.ws_a}
    filter_ids = tuple(sorted(visible))
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(1536).astype(np.float32)
    q /= np.linalg.norm(q)
    truth_ids, truth_d = {}, {}
    for dim in (768, 1536):
        e = emb[:, :dim] / np.linalg.norm(emb[:, :dim], axis=1, keepdims=True)
        v = q[:dim] / np.linalg.norm(q[:dim])
        d = 1 - e @ v
        order = [i for i in np.argsort(d, kind="stable") if workspaces[i] in visible][:K]
        truth_ids[dim] = [ids[i] for i in order]
        truth_d[dim] = [float(d[i]) for i in order]
    return StudyQuery(
        seed,
        world.users[user],
        scope,
        "tiny",
        filter_ids,
        frozenset(visible),
        q,
        truth_ids,
        truth_d,
        {truth_ids[1536][0]: 2},
    )


@pytest.mark.parametrize("column_type", ["vector768", "vector1536", "halfvec1536"])
@pytest.mark.parametrize("access", ["service", "rls_seed", "rls_docs", "rls", "rls_filter"])
def test_exact_search_has_recall_one_in_every_arm(conn, column_type, access):
    world = World()
    queries = [make_query(world, "viewer", "all", s) for s in range(3)]
    build = Build(column_type, "exact", {})
    if access in seed_policy.VARIANTS:
        with seed_policy.seed_policy(conn, access):
            result = run_cell(conn, Arm(access, build, K), queries, warmup=1)
    else:
        result = run_cell(conn, Arm(access, build, K), queries, warmup=1)
    assert result.recalls == [1.0, 1.0, 1.0]


def test_a_measurement_line_has_every_field_of_the_contract(conn):
    world = World()
    queries = [make_query(world, "member", "workspace", s) for s in range(3)]
    build = Build("vector1536", "exact", {})
    arm = Arm("rls_filter", build, K)
    result = run_cell(conn, arm, queries, warmup=0)
    cell = Cell(build, QuerySetting({}, "off"), "rls_filter", "workspace", "tiny").fields(
        "run-1", "screening"
    )
    observed = Observed({"1": 10.0, "2": None, "4": None}, plan="Seq Scan", maintenance=False)
    row = measurement(cell, arm, queries, result, observed)
    assert {k: row[k] for k in cell} == cell
    assert row["recall_mean"] == 1.0 and row["short_share"] == 0.0 and row["ndcg10"] == 1.0
    assert row["latency_ms"]["p50"] > 0 and row["failed_queries"] == 0
    assert row["recall_ci95"][1] == 1.0 and row["recall_ci95"][0] < 1.0  # 3 queries: a wide interval
    assert row["latency_p95_ci95"][0] <= row["latency_ms"]["p95"] <= row["latency_p95_ci95"][1]


def test_a_request_cancelled_by_the_roles_statement_timeout_is_a_failed_query_with_recall_zero(world_dsn):
    from dimbench.database import db

    world = World()
    queries = [make_query(world, "viewer", "all", s) for s in range(2)]
    build = Build("vector768", "exact", {})
    with db.connect(world_dsn) as admin:
        dbname = admin.execute("select current_database()").fetchone()[0]
        per_database = sql.SQL("alter role authenticated in database {} {}")
        admin.execute(per_database.format(sql.Identifier(dbname), sql.SQL("set statement_timeout = 100")))
        try:
            with db.connect(world_dsn) as locker, db.connect(world_dsn) as conn:
                db.use_vectors(conn)
                with locker.transaction():  # the search waits on this lock until the timeout cancels it
                    locker.execute("lock table public.document_chunks in access exclusive mode")
                    result = run_cell(conn, Arm("rls", build, K), queries[:1], warmup=0)
                result_after = run_cell(conn, Arm("rls", build, K), queries[1:], warmup=0)
        finally:
            admin.execute(per_database.format(sql.Identifier(dbname), sql.SQL("reset statement_timeout")))
    (answer,) = result.answers
    assert answer.failed and answer.ids == [] and result.recalls == [0.0]
    assert answer.latency_ns >= 100e6
    cell = Cell(build, QuerySetting({}, "off"), "rls", "all", "small").fields("run-1", "screening")
    row = measurement(
        cell, Arm("rls", build, K), queries[:1], result, Observed({"1": None}, plan=None, maintenance=False)
    )
    assert row["failed_queries"] == 1 and row["recall_mean"] == 0.0
    assert result_after.recalls == [1.0] and not result_after.answers[0].failed


def test_a_request_cancelled_by_someone_else_stops_the_cell_instead_of_counting_as_a_failed_query(world_dsn):
    import threading
    import time

    world = World()
    build = Build("vector768", "exact", {})
    with db.connect(world_dsn) as locker, db.connect(world_dsn) as conn, db.connect(world_dsn) as admin:
        db.use_vectors(conn)
        pid = conn.info.backend_pid

        def cancel_once_waiting() -> None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                waiting = admin.execute(
                    "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s", (pid,)
                ).fetchone()
                if waiting and waiting[0]:
                    admin.execute("select pg_cancel_backend(%s)", (pid,))
                    return
                time.sleep(0.02)

        with locker.transaction():  # the search waits on this lock until the cancel arrives
            locker.execute("lock table public.document_chunks in access exclusive mode")
            canceller = threading.Thread(target=cancel_once_waiting)
            canceller.start()
            try:
                with pytest.raises(psycopg.errors.QueryCanceled, match="user request"):
                    run_cell(conn, Arm("rls", build, K), [make_query(world, "viewer", "all", 0)], warmup=0)
            finally:
                canceller.join()


def test_the_canary_check_fires_when_rls_is_disabled(conn):
    world = World()
    build = Build("vector768", "exact", {})
    vector = arms.query_vector(make_query(world, "viewer", "all", 0).vector_1536, build)
    arms.check_canary(conn, Arm("rls", build, K), vector, uuid.uuid4(), [world.ws_a])  # RLS on: silent
    conn.execute("alter table document_chunks disable row level security")
    with pytest.raises(arms.IsolationBreach, match="canary"):
        arms.check_canary(conn, Arm("rls", build, K), vector, uuid.uuid4(), [world.ws_a])


def test_the_canary_check_fires_when_the_arm_runs_as_a_superuser(conn):
    world = World()
    build = Build("vector1536", "exact", {})
    vector = arms.query_vector(make_query(world, "viewer", "all", 0).vector_1536, build)
    superuser = conn.execute("select current_user").fetchone()[0]
    with pytest.raises(arms.IsolationBreach, match="canary"):
        arms.check_canary(
            conn, Arm("rls_filter", build, K, role=superuser), vector, uuid.uuid4(), [world.ws_a]
        )


def test_a_foreign_row_fails_the_cell(conn):
    world = World()
    queries = [make_query(world, "nonmember", "all", 1)]
    superuser = conn.execute("select current_user").fetchone()[0]
    with pytest.raises(arms.IsolationBreach, match="isolation breach: arm rls returned"):
        run_cell(conn, Arm("rls", Build("vector768", "exact", {}), 20, role=superuser), queries, warmup=0)


def test_the_seed_policy_variant_is_swapped_back(conn):
    with seed_policy.seed_policy(conn):
        assert seed_policy.installed(conn)
    assert not seed_policy.installed(conn)
    policies = conn.execute(
        "select policyname, roles from pg_policies where tablename = 'document_chunks' and cmd = 'SELECT'"
    ).fetchall()
    assert policies == [("document_chunks_select", ["authenticated"])]


@pytest.mark.parametrize("access", ["rls_seed", "rls_docs"])
def test_the_canary_sees_nothing_under_a_policy_variant(conn, access):
    world = World()
    q = make_query(world, "viewer", "all", 0)
    with seed_policy.seed_policy(conn, access):
        arm = Arm(access, Build("vector768", "exact", {}), K)
        arms.check_canary(conn, arm, q.vector_1536[:768], uuid.uuid4(), [world.ws_a])
        answer = arms.ask(conn, arm, q.vector_1536[:768], uuid.uuid4(), None)
    assert answer.ids == []


def test_the_docs_policy_is_the_guides_subquery_form(conn):
    with seed_policy.seed_policy(conn, "rls_docs"):
        (qual,) = conn.execute(
            "select qual from pg_policies where policyname = %s", (seed_policy.DOCS_VARIANT,)
        ).fetchone()
    assert "document_id IN ( SELECT d.id" in qual and "auth.uid()" in qual
    assert not seed_policy.installed(conn)


def test_a_variant_left_by_a_killed_run_is_repaired(conn):
    seed_policy.install(conn)  # as if the run died inside the rls_seed arm
    assert seed_policy.restore(conn) is True
    assert seed_policy.restore(conn) is False
