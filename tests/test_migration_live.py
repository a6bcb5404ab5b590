"""The migration under traffic (live.json's `migration`): the legacy upgrade 0005–0012 applied while the
legacy and the upgraded app send searches and inserts, the embedding_768 backfill, the concurrent
index. Seconds-long phases on the tiny corpus (live-tiny): these check what is measured and where it
lands, not how fast this machine is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from psycopg import sql

from dimbench.database import db, schema
from dimbench.report import migration_plot, migration_text
from dimbench.study import live, live_migration
from dimbench.study import live_migration_legacy as legacy_db
from dimbench.study.configs import Build
from tests.cli_helpers import assert_one_line_error, run_cli

PHASE3 = [m.name for m in schema.load_migrations() if "0005" <= m.name[:4] <= "0011"]
HNSW = Build("vector768", "hnsw", {"m": 16, "ef_construction": 64})
TINY = {
    "enabled": True,
    "seconds": 1.0,
    "settle_s": 0.2,
    "search_rate": 10.0,
    "search_clients": 1,
    "ingest_rate": 5.0,
    "ingest_clients": 1,
    "batch_rows": 300,
    "backfill_max_rows": 0,
}


# live-tiny with this section: the migration is measured only here (every other live-tiny run is spared it)
MIGRATION_SECTION = """
[live.migration]             # the legacy upgrade, backfill and concurrent index under traffic (tiny)
seconds = 2
settle_s = 0.5
search_rate = 20
search_clients = 2
ingest_rate = 10
ingest_clients = 1
batch_rows = 200
backfill_max_rows = 0        # no cap: the tiny corpus is backfilled whole
"""


def migration_grid(directory: Path, old: str = "", new: str = "") -> Path:
    """live-tiny's grid with MIGRATION_SECTION, as profile live-migration (`old` replaced by `new`)."""
    text = live.load_grid("live-tiny").source.read_text() + MIGRATION_SECTION
    path = directory / "live-migration.toml"
    path.write_text(text.replace('profile = "live-tiny"', 'profile = "live-migration"').replace(old, new))
    return path


@pytest.fixture(scope="module")
def live_run(new_database, tmp_path_factory):
    """One `dimbench live --profile <live-tiny + [live.migration]> --designs probed`,
    after a killed run (simulated: a legacy database left behind)."""
    dsn = new_database("miglive")
    leftover = f"{legacy_db.MIGRATION_PREFIX}killed_0"
    with db.connect(live.admin_dsn(dsn)) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(leftover)))
    out = tmp_path_factory.mktemp("miglive") / "out"
    result = run_cli(
        "live",
        "--profile",
        str(migration_grid(out.parent)),
        "--designs",
        "probed",
        "--dsn",
        dsn,
        "--out",
        str(out),
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    with db.connect(live.admin_dsn(dsn)) as admin:
        left = legacy_db.leftovers(admin)
    return {"live": json.loads((out / "live.json").read_text()), "stdout": result.stdout, "left": left}


def test_every_phase3_file_is_timed_and_every_request_counted_by_outcome(live_run):
    migration = live_run["live"]["migration"]
    assert migration["status"] == "done"
    phases = {p["phase"]: p for p in migration["phases"]}
    for name in PHASE3:
        p = phases[name]
        assert 0 <= p["start_s"] <= p["end_s"] <= p["window_end_s"], p
        assert p["retries"] >= 0
    for stream in ("legacy_search", "legacy_ingest", "search", "ingest"):
        s = migration["streams"][stream]
        assert s["total"] == sum(s["by_outcome"].values()) > 0, s
    # the legacy app's requests break at 0005's rename: failed, with the server's reason, never dropped
    legacy = migration["streams"]["legacy_search"]
    sent_for = phases["0012_least_privilege.sql"]["window_end_s"]  # the legacy app ran until then
    assert legacy["total"] >= 0.7 * legacy["rate"] * sent_for, (legacy["total"], sent_for)
    assert legacy["by_outcome"]["failed"] > 0
    assert any("embedding" in error for error in legacy["errors"]), legacy["errors"]


def test_the_backfill_fills_every_chunks_768_vector_and_reports_rows_per_s(live_run):
    migration = live_run["live"]["migration"]
    backfill = next(p for p in migration["phases"] if p["phase"] == "backfill")
    assert backfill["rows"] > 0 and backfill["rows_per_s"] > 0
    assert backfill["remaining_null"] == 0
    assert migration["chunks_after"]["embedding_768_null"] == 0
    assert backfill["rows_from_corpus"] == migration["legacy"]["chunks"]


def test_the_concurrent_index_is_timed_and_the_timeline_has_every_stream(live_run):
    migration = live_run["live"]["migration"]
    cic = next(p for p in migration["phases"] if p["kind"] == "index")
    assert cic["seconds"] > 0
    timeline = migration["timeline"]
    assert set(timeline["streams"]) == {"legacy_search", "legacy_ingest", "search", "ingest"}
    assert all(len(s["p95_ms"]) == timeline["bins"] for s in timeline["streams"].values())


def test_the_study_corpus_is_unchanged_and_no_legacy_database_is_left(live_run):
    check = live_run["live"]["corpus_check"]
    assert check["unchanged"] is True
    assert live_run["left"] == []
    assert f"dropped {legacy_db.MIGRATION_PREFIX}killed_0" in live_run["stdout"]


def test_a_bad_migration_value_is_one_line_before_anything_runs(tmp_path):
    bad = migration_grid(tmp_path, "batch_rows = 200", "batch_rows = -3")
    result = run_cli("live", "--profile", str(bad), "--dsn", "postgresql://nobody@127.0.0.1:1/none")
    assert_one_line_error(result, "[live] migration", "batch_rows")


def test_a_misspelt_migration_key_is_one_line(tmp_path):
    bad = migration_grid(tmp_path, "batch_rows = 200", "batch_size = 200")
    result = run_cli("live", "--profile", str(bad), "--dsn", "postgresql://nobody@127.0.0.1:1/none")
    assert_one_line_error(result, "unknown key batch_size")


HAND_MADE = {
    "status": "done",
    "settings": TINY,
    "legacy": {"chunks": 2000, "documents": 200},
    "phases": [
        {
            "phase": "before migration",
            "kind": "traffic",
            "start_s": 0.0,
            "end_s": 1.0,
            "window_end_s": 1.0,
            "traffic": {
                "legacy_search": {
                    "total": 10,
                    "by_outcome": {"ok": 10},
                    "errors": {},
                    "n": 10,
                    "p95_ms": 3.2,
                    "p95_interval_ms": [2.0, 4.0],
                    "blocked": 0,
                    "longest_ms": 4.1,
                }
            },
        },
        {
            "phase": "0005_legacy_upgrade.sql",
            "kind": "migration",
            "start_s": 1.0,
            "end_s": 1.4,
            "window_end_s": 2.0,
            "retries": 1,
            "lock_waits": {"waits_over_1s": 2, "longest_s": 1.6},
            "traffic": {
                "legacy_search": {
                    "total": 7,
                    "by_outcome": {"ok": 3, "failed": 2, "unsent": 2},
                    "errors": {'column "embedding" does not exist': 2},
                    "n": 3,
                    "p95_ms": 1650.0,
                    "p95_interval_ms": None,
                    "blocked": 2,
                    "longest_ms": 1702.5,
                }
            },
        },
        {
            "phase": "backfill",
            "kind": "backfill",
            "start_s": 3.0,
            "end_s": 4.0,
            "window_end_s": 4.0,
            "rows": 2010,
            "rows_from_corpus": 2000,
            "rows_stand_in": 10,
            "batches": 7,
            "rows_per_s": 2010.0,
            "remaining_null": 0,
            "traffic": {},
        },
        {
            "phase": "create index concurrently",
            "kind": "index",
            "start_s": 4.0,
            "end_s": 6.5,
            "window_end_s": 7.0,
            "seconds": 2.5,
            "build": "vector768/hnsw(ef_construction=64,m=16)",
            "traffic": {},
        },
    ],
    "streams": {
        "legacy_search": {
            "total": 17,
            "by_outcome": {"ok": 13, "failed": 2, "unsent": 2},
            "errors": {'column "embedding" does not exist': 2},
        }
    },
    "backfill_effect": {"search": {"ratio": 1.3, "interval": [0.9, 1.8]}},
    "timeline": {
        "bin_s": 1.0,
        "bins": 7,
        "streams": {
            "legacy_search": {
                "requests": [5, 5, 7, 0, 0, 0, 0],
                "not_ok": [0, 0, 4, 0, 0, 0, 0],
                "p95_ms": [3.0, 3.2, 1650.0, None, None, None, None],
            },
            "search": {
                "requests": [0, 0, 3, 5, 5, 5, 5],
                "not_ok": [0] * 7,
                "p95_ms": [None, None, 4.0, 4.4, 5.0, 6.1, 4.2],
            },
        },
    },
}


def test_the_record_section_renders_a_hand_made_migration():
    text = "\n".join(migration_text.section({"migration": HAND_MADE}))
    assert "### The migration under traffic" in text
    assert "0005_legacy_upgrade.sql" in text and "1 retry" in text
    assert "2 blocked over 1 s" in text and "1,702" in text  # the longest stall, in ms
    assert 'column "embedding" does not exist' in text
    assert "2,010 rows" in text and "2,010 rows/s" in text
    assert "built in 2.50 s" in text  # the concurrent index
    assert migration_text.section({}) == []


def test_the_migration_timeline_is_drawn(tmp_path):
    written = migration_plot.render({"migration": HAND_MADE}, tmp_path)
    assert sorted(p.name for p in written) == ["migration.png", "migration.svg"]
    assert all(p.stat().st_size > 0 for p in written)
    assert migration_plot.render({}, tmp_path / "none") == []


def test_a_direct_measurement_on_the_tiny_corpus(tiny_corpus_db):
    """live_migration.measure on its own, as the live stage calls it (no designs before it)."""
    dsn, _ = tiny_corpus_db

    class Plan:
        class spec:  # noqa: N801 - the plan's spec, as live.plan_grid builds it
            migration = TINY

        build = HNSW

    record: dict = {}
    live_migration.measure(Plan, dsn, record, lambda: None)
    migration = record["migration"]
    assert migration["status"] == "done"
    assert [p["phase"] for p in migration["phases"] if p["kind"] == "migration"][: len(PHASE3)] == PHASE3


def test_the_record_sums_the_files_blocked_requests_and_names_the_longest_stall():
    line = migration_text.stall_line(HAND_MADE["phases"])
    assert line == "While the 1 file ran: 2 of 7 requests blocked over 1 s, the longest stall 1,702 ms."
