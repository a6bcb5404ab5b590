"""The access arms and one cell's measurement, on the small fixed world: exact search is exact, and the
isolation checks fire when RLS is broken on purpose."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import numpy as np
import psycopg
import pytest

from dimbench import arms, db, seed_policy
from dimbench.grid import Build, QuerySetting
from dimbench.measure import MEASUREMENT_FIELDS, StudyQuery, measurement, run_cell
from tests.world import World, chunk_table, seed_world

K = 4


@pytest.fixture
def world_dsn(new_database: Callable[[str], str]) -> str:
    from dimbench import schema

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
@pytest.mark.parametrize("access", ["service", "rls_seed", "rls", "rls_filter"])
def test_exact_search_has_recall_one_in_every_arm(conn, column_type, access):
    world = World()
    queries = [make_query(world, "viewer", "all", s) for s in range(3)]
    build = Build(column_type, "exact", {})
    if access == "rls_seed":
        with seed_policy.seed_policy(conn):
            result = run_cell(conn, build, access, queries, K, warmup=1)
    else:
        result = run_cell(conn, build, access, queries, K, warmup=1)
    assert result.recalls == [1.0, 1.0, 1.0]


def test_a_measurement_line_has_every_field_of_the_contract(conn):
    world = World()
    queries = [make_query(world, "member", "workspace", s) for s in range(3)]
    build = Build("vector1536", "exact", {})
    result = run_cell(conn, build, "rls_filter", queries, K, warmup=0)
    row = measurement(
        build,
        QuerySetting({}, "off"),
        "rls_filter",
        "workspace",
        "tiny",
        K,
        queries,
        result,
        "Seq Scan",
        {"1": 10.0, "2": None, "4": None},
    )
    assert set(row) >= MEASUREMENT_FIELDS
    assert row["recall_mean"] == 1.0 and row["short_share"] == 0.0 and row["ndcg10"] == 1.0
    assert row["latency_ms"]["p50"] > 0


def test_the_canary_check_fires_when_rls_is_disabled(conn):
    world = World()
    build = Build("vector768", "exact", {})
    vector = arms.query_vector(make_query(world, "viewer", "all", 0).vector_1536, build)
    arms.check_canary(conn, "rls", build, vector, uuid.uuid4(), [world.ws_a], K)  # RLS on: silent
    conn.execute("alter table document_chunks disable row level security")
    with pytest.raises(arms.IsolationBreach, match="canary"):
        arms.check_canary(conn, "rls", build, vector, uuid.uuid4(), [world.ws_a], K)


def test_the_canary_check_fires_when_the_arm_runs_as_a_superuser(conn):
    world = World()
    build = Build("vector1536", "exact", {})
    vector = arms.query_vector(make_query(world, "viewer", "all", 0).vector_1536, build)
    superuser = conn.execute("select current_user").fetchone()[0]
    with pytest.raises(arms.IsolationBreach, match="canary"):
        arms.check_canary(conn, "rls_filter", build, vector, uuid.uuid4(), [world.ws_a], K, role=superuser)


def test_a_foreign_row_fails_the_cell(conn):
    world = World()
    queries = [make_query(world, "nonmember", "all", 1)]
    superuser = conn.execute("select current_user").fetchone()[0]
    with pytest.raises(arms.IsolationBreach, match="isolation breach: arm rls returned"):
        run_cell(conn, Build("vector768", "exact", {}), "rls", queries, 20, warmup=0, role=superuser)


def test_the_seed_policy_variant_is_swapped_back(conn):
    with seed_policy.seed_policy(conn):
        assert seed_policy.installed(conn)
    assert not seed_policy.installed(conn)
    policies = conn.execute(
        "select policyname, roles from pg_policies where tablename = 'document_chunks' and cmd = 'SELECT'"
    ).fetchall()
    assert policies == [("document_chunks_select", ["authenticated"])]


def test_a_variant_left_by_a_killed_run_is_repaired(conn):
    seed_policy.install(conn)  # as if the run died inside the rls_seed arm
    assert seed_policy.restore(conn) is True
    assert seed_policy.restore(conn) is False
