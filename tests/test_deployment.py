"""The post-decision stage (study/deployment.py): CIC timed on the loaded table, sizes that add up."""

from __future__ import annotations

import json

from dimbench.database import db
from dimbench.evidence.rule import Config
from dimbench.study import deployment, index

CONFIG = Config(
    "shared",
    "{}",
    "vector768",
    "hnsw",
    json.dumps({"ef_construction": 16, "m": 8}),
    json.dumps({"ef_search": 40}),
    "relaxed_order",
    "rls",
)


def test_no_choice_is_recorded_as_not_measured():
    out = deployment.measure("unused", db.Target(dsn="x"), None, {}, {}, 10)
    assert out == {"status": "not measured: no choice", "cic": None, "sizing": None, "cold_warm": None}


def test_cic_records_seconds_and_a_valid_index_it_then_drops(tiny_corpus_db):
    dsn, _ = tiny_corpus_db
    build = deployment.build_of(CONFIG)
    with db.connect(dsn) as conn:
        index.build(conn, build)  # the standing study index
        try:
            cic = deployment.concurrent_build(
                conn, build, {"builds": [{"build_key": build.key, "seconds": 1.5}]}
            )
            names = {r[0] for r in conn.execute("select relname from pg_class where relkind = 'i'")}
        finally:
            index.drop_study_indexes(conn)
    assert cic["seconds"] > 0 and cic["valid"] and cic["plain_seconds"] == 1.5
    assert cic["beside_standing_index"]
    assert index.index_name(build) + deployment.CIC_SUFFIX not in names


def test_the_studys_own_concurrent_build_is_the_cic_measurement_when_it_stands(tiny_corpus_db):
    dsn, _ = tiny_corpus_db
    build = deployment.build_of(CONFIG)
    with db.connect(dsn) as conn:
        built = index.build(conn, build)  # screening builds concurrently: that build is the measurement
        try:
            info = {"builds": [{"build_key": build.key, "seconds": built.seconds, "concurrently": True}]}
            cic = deployment.concurrent_build(conn, build, info)
            names = {r[0] for r in conn.execute("select relname from pg_class where relkind = 'i'")}
        finally:
            index.drop_study_indexes(conn)
    assert built.concurrently is True
    assert cic["seconds"] == built.seconds and cic["source"]
    assert index.index_name(build) + deployment.CIC_SUFFIX not in names  # nothing built twice


def test_sizing_sums_match_pg_total_relation_size(tiny_corpus_db):
    dsn, _ = tiny_corpus_db
    build = deployment.build_of(CONFIG)
    with db.connect(dsn) as conn:
        index.build(conn, build)
        try:
            sizing = deployment.sizes(conn, build, {})
            total = conn.execute("select pg_total_relation_size('public.document_chunks')").fetchone()[0]
        finally:
            index.drop_study_indexes(conn)
    parts = sizing["heap_bytes"] + sizing["toast_bytes"] + sum(i["bytes"] for i in sizing["indexes"])
    assert parts == sizing["total_bytes"] == total
    assert [i["role"] for i in sizing["indexes"]].count("chosen") == 1
    assert sizing["one_column_table"]["bytes_per_million"] is None


def _record(directory, deployment_key=None):
    from dimbench.evidence.results import read_results
    from dimbench.evidence.rule import decide
    from dimbench.report.decision_record import render
    from tests.results_fixture import write_results

    path = write_results(directory)
    if deployment_key is not None:
        data = json.loads((path / "run.json").read_text())
        data["runs"][0]["deployment"] = deployment_key
        (path / "run.json").write_text(json.dumps(data))
    results = read_results(path)
    return render(results, decide(results))


def test_a_run_without_deployment_renders_not_measured(tmp_path):
    text = _record(tmp_path / "old")
    sizing = text.split("## Sizing: what to provision", 1)[1]
    assert "Cold vs warm p95 (the first queries after a restart): not measured in this run" in sizing
    assert "`create index concurrently` build time: not measured in this run." in text


def test_a_measured_cic_time_reaches_the_sql_section(tmp_path):
    cic = {
        "seconds": 12.34,
        "plain_seconds": 9.0,
        "beside_standing_index": True,
        "maintenance_work_mem": "64MB",
    }
    text = _record(tmp_path / "new", {"status": "measured", "cic": cic, "sizing": None, "cold_warm": None})
    applied = text.split("## The SQL to apply", 1)[1].split("## The decision", 1)[0]
    assert "took **12.3 s** here" in applied and "plain `create index`: 9.0 s" in applied


def test_cold_and_warm_run_as_authenticated_and_count_every_request(tmp_path):
    """A private embedded server (the stage restarts it), the tiny corpus loaded."""
    from collections import defaultdict

    from dimbench.corpus.cache import ensure_corpus
    from dimbench.paths import datasets_dir
    from tests.conftest import loaded_and_settled

    target = db.resolve_target(None, tmp_path / "pgdata")
    dsn = db.ensure_server(target)
    try:
        corpus = ensure_corpus(datasets_dir() / "tiny.toml", progress=False, log=lambda *_: None)
        _, queries = loaded_and_settled(dsn, corpus)
        groups = defaultdict(list)
        for q in queries:
            groups[(q.scope, q.bucket)].append(q)
        config = Config(*CONFIG.__dict__.values())
        out = deployment.measure(dsn, target, config, {}, dict(groups), 10, drop_os_cache=False)
    finally:
        db.EmbeddedServer(target.pgdata).stop()
    cw = out["cold_warm"]
    planned = sum(min(len(qs), deployment.SAMPLE) for (scope, _), qs in groups.items() if scope == "all")
    assert cw["role_in_request"] == "authenticated"
    assert cw["cold"]["requests"] == cw["warm"]["requests"] == planned
    assert cw["cold"]["bytes_read"] > cw["warm"]["bytes_read"]
