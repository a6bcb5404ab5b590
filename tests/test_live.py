"""`dimbench live`: each design under the platform's writes, on a copy of the corpus that `dimbench run`
measures — which is never written. Seconds-long phases on the tiny corpus (live-tiny): these check what
is measured and where it lands, not how fast this machine is."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import psycopg
import pytest
from psycopg import sql

from dimbench.database import db
from dimbench.study import designs, live
from dimbench.study.configs import Build
from dimbench.study.live_ingest import Author, LockWatch, NewChunks, Writers, authors, run_writers
from dimbench.study.live_spec import DocSizes
from dimbench.study.live_truth import LiveRows
from tests.cli_helpers import ctrl_c_default, run_cli

HNSW = Build("vector768", "hnsw", {"m": 16, "ef_construction": 64})


def copies(dsn: str) -> list[str]:
    with db.connect(live.admin_dsn(dsn)) as admin:
        return live.leftover_copies(admin)


@pytest.fixture(scope="module")
def live_run(new_database, tmp_path_factory):
    """One `dimbench live --designs probed` on a database of its own, after a killed run (simulated: a
    copy left behind)."""
    dsn = new_database("live")
    with db.connect(live.admin_dsn(dsn)) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(f"{live.COPY_PREFIX}killed_0")))
    out = tmp_path_factory.mktemp("live") / "out"
    result = run_cli(
        "live",
        "--profile",
        "live-tiny",
        "--designs",
        "probed",
        "--dsn",
        dsn,
        "--out",
        str(out),
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    return {
        "dsn": dsn,
        "out": out,
        "stdout": result.stdout,
        "live": json.loads((out / "live.json").read_text()),
    }


def test_every_phase_lands_in_live_json_with_its_count_and_interval(live_run):
    entry = live_run["live"]["designs"]["probed"]
    assert live_run["live"]["status"] == "done" and entry["status"] == "done"
    for phase in ("idle", "ingest"):
        searches = entry["search"][phase]["searches"]
        assert searches["n"] > 0 and searches["p95_ms"] is not None and len(searches["p95_interval_ms"]) == 2
        assert set(searches["outcomes"]) >= {"ok", "statement_timeout", "skipped", "failed", "unsent"}
        assert entry["search"][phase]["recall"]["n"] > 0 and entry["search"][phase]["recall"]["interval"]
        assert "waits_over_1s" in entry["search"][phase]["locks"]
    beside = entry["search"]["ingest"]["ingest"]  # what ran beside the searches
    assert beside["offered_chunks_per_s"] == pytest.approx(4000 * 2000 / 100_000) and beside["chunks"] > 0
    assert len(entry["search"]["p95_ratio"]["interval"]) == 2
    assert entry["freshness"]["probes"] == 4 and entry["freshness"]["interval"]
    assert [s["step"] for s in entry["runbook"]["steps"]] == [1, 2, 3]
    assert all(s["n"] == 6 and s["interval"] and s["live_rows"] > 0 for s in entry["runbook"]["steps"])
    assert entry["runbook"]["recall_mean_over_steps"] is not None
    phases = entry["replacement"]["phases"]
    assert [p["phase"] for p in phases] == [
        "before",
        "after replacement",
        "after vacuum",
        "after reindex concurrently + vacuum",
    ]
    assert phases[2]["vacuum_s"] >= 0 and phases[3]["reindex_s"] and phases[3]["vacuum_s"] >= 0
    assert entry["replacement"]["replaced_chunks"] >= 0.3 * entry["replacement"]["tenant_chunks"]
    assert [(r["target"], r["writers"]) for r in entry["ingest_max"]] == [
        ("one workspace", 1),
        ("one workspace", 2),
        ("many workspaces", 1),
        ("many workspaces", 2),
    ]
    assert all(r["chunks_per_s"] is not None and "outcomes" in r for r in entry["ingest_max"])
    assert entry["verdict"]["status"] in ("qualifies", "fails", "undecided")
    assert f"live: probed: {entry['verdict']['status']}" in live_run["stdout"]


def test_the_corpus_dimbench_run_measures_is_never_written(live_run):
    check = live_run["live"]["corpus_check"]
    assert check["unchanged"] is True and check["before"] == check["after"]
    with db.connect(live_run["dsn"]) as conn:
        assert live.checksum(conn) == check["before"]
        assert check["before"]["chunks"] == 2000  # tiny, as generated: none of the live writes
    assert live_run["live"]["designs"]["probed"]["runbook"]["steps"][-1]["live_rows"] > 2000


def test_a_copy_a_killed_run_left_behind_is_dropped_in_one_line(live_run):
    said = [line for line in live_run["stdout"].splitlines() if line.startswith("dropped ")]
    assert said == [
        f"dropped {live.COPY_PREFIX}killed_0: a live copy a killed run left behind (the corpus "
        "itself was never written)"
    ]
    assert copies(live_run["dsn"]) == []


def dbname(dsn: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])


def test_the_checksum_sees_one_changed_vector(tiny_corpus_db):
    dsn, _ = tiny_corpus_db
    with db.connect(live.admin_dsn(dsn)) as admin:
        copy = live.make_copy(admin, dbname(dsn), "test")
    try:
        with db.connect(db.with_dbname(dsn, copy)) as conn:
            before = live.checksum(conn)
            conn.execute(
                "update public.document_chunks set embedding_768 = (select embedding_768 from"
                " public.document_chunks order by id desc limit 1)"
                " where id = (select id from public.document_chunks order by id limit 1)"
            )
            after = live.checksum(conn)
        assert after["chunks"] == before["chunks"] and after["chunks_md5"] != before["chunks_md5"]
    finally:
        with db.connect(live.admin_dsn(dsn)) as admin:
            live.drop_copy(admin, copy)


def test_ctrl_c_keeps_what_was_measured_and_leaves_the_corpus_as_it_was(new_database, tmp_path):
    dsn = new_database("live_interrupted")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "dimbench.cli",
        "live",
        "--profile",
        "live-tiny",
        "--designs",
        "routed",
        "--dsn",
        dsn,
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_default
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            path = out / "live.json"
            if path.exists():
                try:
                    entry = json.loads(path.read_text())["designs"].get("routed", {})
                except json.JSONDecodeError:
                    entry = {}
                if "idle" in entry.get("search", {}):
                    break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "interrupted" in stderr
    measured = json.loads((out / "live.json").read_text())
    assert measured["status"] == "interrupted", (measured.get("error"), stderr)
    assert measured["designs"]["routed"]["search"]["idle"]["searches"]["n"] > 0  # kept
    assert measured["corpus_check"]["unchanged"] is True
    assert copies(dsn) == []


def test_live_rows_judge_each_step_by_the_rows_live_then(tiny_corpus_db):
    dsn, _ = tiny_corpus_db
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        rows = LiveRows(conn, HNSW)
        ws, doc, vector = conn.execute(
            "select workspace_id, document_id, embedding_768 from public.document_chunks order by id limit 1"
        ).fetchone()
    target = np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype=np.float32)
    ids, _ = rows.truth(target, [ws], 10)
    assert len(rows) == 2000 and len(ids) == 10
    gone = rows.delete_document(ws, doc)
    assert gone > 0 and len(rows) == 2000 - gone
    after, _ = rows.truth(target, [ws], 10)
    assert not set(after) & {i for i in ids[:1]}  # the deleted chunk is no longer the answer
    new = uuid.uuid4()
    rows.add(NewChunks([new], np.zeros((1, 1536), np.float32) + 1, target[None, :], ws, uuid.uuid4()))
    assert rows.truth(target, [ws], 10)[0][0] == new
    assert rows.truth(target, [uuid.uuid4()], 10) == ([], [])  # nothing the asker may not see


def writers_beside_each_other(dsn: str) -> dict:
    """Two writers into one workspace, each document one transaction held open ~1.5 s while its
    embeddings arrive (paced): the lock waits seen."""
    with db.connect(dsn) as conn:
        members = authors(conn)
    ws, users = next(iter(members.items()))
    plan = Writers(
        dsn, [[Author(ws, users[0])], [Author(ws, users[-1])]], 3.0, 10, DocSizes(((1.0, 30, 30),)), rate=40.0
    )
    with LockWatch(dsn, every=0.05) as locks:
        result = run_writers(plan)
    assert result.chunks > 0 and result.outcomes()["ok"] == len(result.logs)
    return locks.describe()


@pytest.mark.parametrize("design", ["routed", "probed"])
def test_writers_of_one_workspace_do_not_wait_for_each_other(tiny_corpus_db, design):
    # routed's count was one row per workspace updated by every insert: its writers took turns on it.
    dsn, _ = tiny_corpus_db
    source = dbname(dsn)
    with db.connect(live.admin_dsn(dsn)) as admin:
        copy = live.make_copy(admin, source, design)
    try:
        copy_dsn = db.with_dbname(dsn, copy)
        with db.connect(copy_dsn) as conn:
            designs.get(design).install(conn, HNSW, {"threshold": 100})
        seen = writers_beside_each_other(copy_dsn)
        # a sampler may catch a millisecond's wait (a relation extension): a writer held up is not that
        assert seen["waits_over_1s"] == 0 and (seen["longest_s"] or 0) < 0.5, seen
    finally:
        with db.connect(live.admin_dsn(dsn)) as admin:
            live.drop_copy(admin, copy)
