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
