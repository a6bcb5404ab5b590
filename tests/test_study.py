"""`dimbench run` end to end on the tiny profile, against the session's real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dimbench.database import db
from dimbench.study import designs, index
from dimbench.study.grid import Build
from dimbench.vocabulary import ACCESS_ARMS
from tests.cli_helpers import assert_one_line_error, run_cli

# The contract with the report and the notebooks, written out here on purpose (not imported from the
# code it checks): a field dropped by the study fails this test.
CONTRACT = {
    "run_id",
    "stage",
    "column_type",
    "index",
    "build_params",
    "query_params",
    "access",
    "iterative_scan",
    "scope",
    "bucket",
    "dim",
    "k",
    "n_queries",
    "failed_queries",
    "recall_mean",
    "recall_ci95",
    "short_share",
    "latency_ms",
    "latency_p95_ci95",
    "qps",
    "ndcg10",
    "plan",
    "maintenance",
    "build_key",
}


def run_tiny(dsn: str, out: Path, *extra: str):
    return run_cli("run", "--profile", "tiny", "--dsn", dsn, "--out", str(out), "--no-progress", *extra)


@pytest.fixture(scope="module")
def tiny_run(tiny_results: tuple[str, Path]) -> tuple[str, Path]:
    return tiny_results


def lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]


def run_of(out: Path) -> dict:
    data = json.loads((out / "run.json").read_text())
    assert data["format"] == 2 and len(data["runs"]) == 1
    return data["runs"][0]


def test_a_run_writes_run_json_and_measurements(tiny_run):
    _, out = tiny_run
    info = run_of(out)
    assert info["profile"] == "tiny" and info["finished_at"]
    assert info["server"]["postgresql"].startswith("18") and info["server"]["pgvector"] == "0.8.6"
    assert set(info["phases"]) >= {"provision", "load", "study"}
    assert {b["index"] for b in info["builds"]} == {"exact", "ivfflat", "hnsw"}
    assert all(b["index_bytes"] > 0 for b in info["builds"] if b["index"] != "exact")


def test_every_line_carries_the_contract_fields(tiny_run):
    _, out = tiny_run
    rows = lines(out)
    assert rows and all(CONTRACT <= set(row) for row in rows)


def test_every_arm_column_type_and_bucket_is_measured(tiny_run):
    _, out = tiny_run
    rows = lines(out)
    assert {r["access"] for r in rows} == set(ACCESS_ARMS)
    assert {r["column_type"] for r in rows} == {"vector768", "vector1536", "halfvec1536"}
    assert {r["iterative_scan"] for r in rows} == {"off", "relaxed_order", "strict_order"}
    assert {(r["scope"], r["bucket"]) for r in rows} >= {("all", "large"), ("workspace", "small")}


def test_every_design_of_the_grid_is_measured_under_its_arms(tiny_run):
    from dimbench.study.grid import load_grid
    from dimbench.vocabulary import POLICY_VARIANTS

    _, out = tiny_run
    rows = [r for r in lines(out) if r["stage"] == "screening"]
    for spec in load_grid("tiny").designs:
        mine = [r for r in rows if r.get("design") == spec.name]
        own_table = designs.get(spec.name).layout.own_table
        arms = {a for a in spec.access if not (own_table and a in POLICY_VARIANTS)}
        assert {r["access"] for r in mine} == arms, spec.name
        assert {r["column_type"] for r in mine} == set(spec.column_types), spec.name


def test_each_design_records_its_install_cost_and_size(tiny_run):
    _, out = tiny_run
    installed = run_of(out)["designs"]
    assert {d["design"] for d in installed} == {
        "routed",
        "probed",
        "partial",
        "bq_rerank",
        "partitioned",
        "inline",
    }
    assert all(d["seconds"] > 0 for d in installed)
    assert all(
        d["index_bytes"] > 0 for d in installed if not designs.get(d["design"]).layout.searches_shared_index
    )


def test_the_side_channel_is_measured_for_every_design(tiny_run):
    _, out = tiny_run
    side = run_of(out)["side_channel"]
    assert {e["design"] for e in side} == {
        "shared",
        "routed",
        "probed",
        "partial",
        "bq_rerank",
        "partitioned",
        "inline",
    }
    assert {e["access"] for e in side} == {"rls", "rls_filter"}
    assert all(p["p50_ms"] > 0 for e in side for p in e["passes"])
    assert len({e["cluster_rows"] for e in side}) == 1 and side[0]["cluster_rows"] > 0


def test_each_design_s_side_channel_alternates_passes_without_and_with_the_cluster(tiny_run):
    _, out = tiny_run
    side = run_of(out)["side_channel"]
    assert {e["order"] for e in side} == {"A/B/A/B/A"}  # the tiny grid's two cycles
    assert all([p["cluster"] for p in e["passes"]] == [False, True, False, True, False] for e in side)


def test_the_side_channel_cluster_is_gone_after_the_run(tiny_run):
    from dimbench.database import db
    from dimbench.study.sidechannel import MARK

    dsn, _ = tiny_run
    with db.connect(dsn) as conn:
        (left,) = conn.execute(
            "select count(*) from public.document_chunks where chunk_index >= %s", (MARK,)
        ).fetchone()
    assert left == 0


def test_the_routed_threshold_is_measured_at_each_query_setting(tiny_run):
    _, out = tiny_run
    installed = [d for d in run_of(out)["designs"] if d["design"] == "routed"]
    assert len(installed) == 3
    for d in installed:
        thresholds, calibrations = d["detail"]["thresholds"], d["detail"]["calibrations"]
        assert (
            sorted(thresholds)
            == sorted(calibrations)
            == [
                "(ef_search=100)/relaxed_order",
                "(ef_search=40)/relaxed_order",
            ]
        )
        for setting, calibration in calibrations.items():
            assert thresholds[setting] == calibration["threshold"] >= 0
            assert calibration["setting"] == setting
            assert calibration["samples"] and all(
                s["exact_ms"] > 0 and s["index_ms"] > 0 for s in calibration["samples"]
            )


def test_each_routed_cell_records_the_threshold_of_its_own_setting(tiny_run):
    from dimbench.study.grid import QuerySetting

    _, out = tiny_run
    thresholds = {
        d["build_key"]: d["detail"]["thresholds"] for d in run_of(out)["designs"] if d["design"] == "routed"
    }
    cells = [r for r in lines(out) if r["design"] == "routed"]
    assert {r["stage"] for r in cells} >= {"screening"}
    for r in cells:
        setting = QuerySetting(r["query_params"], r["iterative_scan"]).key
        assert r["settings"]["routed.threshold"] == thresholds[r["build_key"]][setting], r["stage"]


def test_each_cell_records_the_path_its_sampled_calls_took(tiny_run):
    _, out = tiny_run
    rows = lines(out)
    assert all(r["plan_audit"] and all(a["path"] for a in r["plan_audit"]) for r in rows)
    exact = {a["path"] for r in rows if r["index"] == "exact" for a in r["plan_audit"]}
    assert "vector index" not in exact
    assert any(a["path"] == "vector index" for r in rows if r["index"] == "hnsw" for a in r["plan_audit"])
    assert all(
        a["buffers"]["shared_hit"] + a["buffers"]["shared_read"] > 0 for r in rows for a in r["plan_audit"]
    )


def test_exact_search_has_recall_one_everywhere(tiny_run):
    _, out = tiny_run
    exact = [r for r in lines(out) if r["index"] == "exact"]
    assert exact and all(r["recall_mean"] == 1.0 and r["short_share"] == 0.0 for r in exact)


def test_unmeasured_concurrency_is_null_not_zero(tiny_run):
    _, out = tiny_run
    qps = [r["qps"] for r in lines(out)]
    assert all(q["1"] > 0 for q in qps)
    assert any(q["2"] is None for q in qps) and any(q["2"] and q["2"] > 0 for q in qps)


def test_raw_per_query_results_are_kept(tiny_run):
    _, out = tiny_run
    assert len(list((out / "raw").glob("*.npz"))) == 9
    assert (out / "raw" / "confirmation-order.jsonl").stat().st_size > 0


def test_the_main_command_measures_into_its_own_run_directory_and_leaves_results_alone(tiny_run_output):
    out = tiny_run_output["out"]
    info = run_of(out)
    assert out.name == info["run_id"] and out.parent.name == "tiny"
    assert info["measured_cells"] == info["planned_cells"] > 0
    before, after = tiny_run_output["published"]
    assert before == after


def test_the_run_says_where_its_decision_record_is_and_compares_with_the_published_one(tiny_run_output):
    out = tiny_run_output["out"]
    printed = tiny_run_output["stdout"]
    assert f"decision record: {out / 'DECISION.md'}" in printed
    assert (out / "DECISION.md").exists()
    assert "no published results for profile tiny to compare with" in printed


def test_every_row_names_the_run_that_produced_it(tiny_run):
    _, out = tiny_run
    run_id = run_of(out)["run_id"]
    assert {r["run_id"] for r in lines(out)} == {run_id}


def test_the_identity_covers_machine_server_code_grid_and_corpus(tiny_run):
    _, out = tiny_run
    identity = run_of(out)["identity"]
    assert set(identity) == {"machine", "server", "code", "grid", "corpus"}
    assert {"cores", "memory_bytes", "cpu_model"} <= set(identity["machine"])
    assert identity["server"]["pgvector"] == "0.8.6" and "settings_changed" in identity["server"]
    assert {"git_sha", "git_dirty"} <= set(identity["code"])
    assert identity["grid"]["digest"] and identity["corpus"]["digest"]


def test_the_loaded_tables_are_vacuumed_and_analyzed_before_measuring(tiny_run):
    dsn, out = tiny_run
    settled = run_of(out)["settled"]
    assert settled and "document_chunks" in settled[0]["vacuum_analyze"] and settled[0]["seconds"] >= 0
    with db.connect(dsn) as conn:
        row = conn.execute(
            "select vacuum_count, analyze_count from pg_stat_all_tables"
            " where relid = 'public.document_chunks'::regclass"
        ).fetchone()
    assert row[0] >= 1 and row[1] >= 1


def test_the_confirmation_stage_measures_the_leading_candidates_again(tiny_run):
    _, out = tiny_run
    info = run_of(out)
    confirmed = [r for r in lines(out) if r["stage"] == "confirmation"]
    assert info["confirmation"]["status"] == "done" and confirmed
    labels = set(info["confirmation"]["candidates"])
    assert labels
    assert all(r["access"] in ("rls", "rls_filter", "service") for r in confirmed)
    assert {r["access"] for r in confirmed} & {"rls", "rls_filter"}  # the rule chooses among these


def index_of(build_key: str) -> str:
    """The study index's name for a build key such as vector768/hnsw(ef_construction=64,m=16)."""
    column_type, rest = build_key.split("/", 1)
    kind, args = rest.rstrip(")").split("(", 1)
    params = {k: int(v) for k, v in (a.split("=") for a in args.split(",") if a)}
    return index.index_name(Build(column_type, kind, params))


def test_screening_leaves_each_columns_last_build_standing_even_where_partial_rides_on_it(tiny_run):
    # partial (which must not see the shared index) is measured before the build, not after it: the
    # index then stands for confirmation instead of being dropped and built again
    _, out = tiny_run
    info = run_of(out)
    last: dict[str, str] = {}
    for b in info["builds"]:
        last[b["column_type"]] = b["build_key"]
    standing = set(info["confirmation"]["standing"])
    assert "vector768/hnsw(ef_construction=64,m=16)" == last["vector768"]
    assert {index_of(key) for key in last.values() if "/exact" not in key} <= standing


def test_screening_builds_indexes_concurrently_as_a_migration_would(tiny_run):
    _, out = tiny_run
    built = [b for b in run_of(out)["builds"] if b["index"] != "exact"]
    assert built and all(b["concurrently"] is True for b in built)


def test_confirmation_reuses_an_index_that_stood_when_it_began_instead_of_building_it(tiny_run):
    _, out = tiny_run
    info = run_of(out)
    standing, confirmed = set(info["confirmation"]["standing"]), info["confirmation"]["builds"]
    assert confirmed and all(set(b) >= {"build_key", "reused"} for b in confirmed)
    stood = [b["reused"] for b in confirmed if index_of(b["build_key"]) in standing]
    assert stood and all(stood)  # every round that searches it comes before any round that drops it
    first = {}  # a build's first round: a later one may need it again after a round dropped it
    for b in confirmed:
        first.setdefault(b["build_key"], b["reused"])
    assert not any(reused for key, reused in first.items() if index_of(key) not in standing)


def test_no_configuration_the_race_dropped_comes_back_and_no_build_wholly_dropped_is_built_again(tiny_run):
    _, out = tiny_run
    info = run_of(out)
    dropped = set(info["race"]["dropped"])
    assert dropped  # tiny races (2 rounds): something was dropped, or this test checks nothing
    assert not dropped & set(info["confirmation"]["candidates"])
    screened = [r for r in lines(out) if r["stage"] == "screening"]
    alive_builds = {r["build_key"] for r in screened if label_of(r) not in dropped}
    assert {b["build_key"] for b in info["confirmation"]["builds"]} <= alive_builds


def label_of(row: dict) -> str:
    from dimbench.evidence.rule import config_of

    return config_of(row).label


def test_the_side_channel_runs_once_the_decision_is_known_and_says_which_designs_it_measured(tiny_run):
    _, out = tiny_run
    info = run_of(out)
    assert info["confirmation"]["status"] == "done" and info["side_channel_designs"] == "all"


def test_the_confirmation_pass_interleaves_candidates_query_by_query(tiny_run):
    _, out = tiny_run
    order = [json.loads(line) for line in (out / "raw" / "confirmation-order.jsonl").read_text().splitlines()]
    by_cell: dict[tuple[int, str], list[dict]] = {}
    for entry in order:
        by_cell.setdefault((entry["round"], entry["cell"]), []).append(entry)
    shared = [entries for entries in by_cell.values() if len({e["candidate"] for e in entries}) >= 2]
    assert shared  # cells that several candidates measure together
    for entries in shared:
        members = {e["candidate"] for e in entries}
        blocks = [entries[i : i + len(members)] for i in range(0, len(entries), len(members))]
        for block in blocks:  # one query, every candidate once, then the next query
            assert len({e["qid"] for e in block}) == 1
            assert {e["candidate"] for e in block} == members
        assert len({b[0]["qid"] for b in blocks}) == len(blocks)
        assert len({b[0]["candidate"] for b in blocks}) > 1  # who goes first rotates


def test_a_rerun_resumes_and_measures_nothing_again(tiny_run):
    dsn, out = tiny_run
    before = (out / "measurements.jsonl").read_bytes()
    result = run_tiny(dsn, out)
    assert result.returncode == 0, result.stderr
    assert (out / "measurements.jsonl").read_bytes() == before


def test_resume_refuses_a_run_directory_of_another_identity(tiny_run, tmp_path):
    import shutil

    dsn, out = tiny_run
    other = tmp_path / "other"
    shutil.copytree(out, other)
    data = json.loads((other / "run.json").read_text())
    data["runs"][0]["identity"]["server"]["pgvector"] = "0.7.0"
    data["runs"][0]["identity_digest"] = "0" * 16
    (other / "run.json").write_text(json.dumps(data))
    before = (other / "measurements.jsonl").read_bytes()
    assert_one_line_error(run_tiny(dsn, other), "another identity", "server.pgvector: 0.7.0 → 0.8.6")
    assert (other / "measurements.jsonl").read_bytes() == before


def test_publish_writes_the_runs_and_their_report(tiny_run, tmp_path):
    _, out = tiny_run
    dest = tmp_path / "published" / "tiny"
    done = run_cli("publish", str(out), "--to", str(dest))
    assert done.returncode == 0, done.stderr
    assert run_of(dest)["run_id"] == run_of(out)["run_id"]
    assert (dest / "measurements.jsonl").read_text().count("\n") == len(lines(out))
    assert (dest / "DECISION.md").exists() and not (dest / "raw").exists()


def test_publish_refuses_an_interrupted_run(tiny_run, tmp_path):
    import shutil

    _, out = tiny_run
    broken = tmp_path / "interrupted"
    shutil.copytree(out, broken)
    data = json.loads((broken / "run.json").read_text())
    data["runs"][0]["finished_at"] = None
    (broken / "run.json").write_text(json.dumps(data))
    dest = tmp_path / "published"
    assert_one_line_error(
        run_cli("publish", str(broken), "--to", str(dest)), "cannot publish", "did not finish"
    )
    assert not dest.exists()


def test_publish_refuses_a_run_with_cells_missing(tiny_run, tmp_path):
    import shutil

    _, out = tiny_run
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    rows = (partial / "measurements.jsonl").read_text().splitlines()
    dropped = next(i for i, line in enumerate(rows) if '"stage": "screening"' in line)
    (partial / "measurements.jsonl").write_text("\n".join(rows[:dropped] + rows[dropped + 1 :]) + "\n")
    assert_one_line_error(
        run_cli("publish", str(partial), "--to", str(tmp_path / "p")), "cannot publish", "planned cells"
    )


def test_a_run_whose_rls_lets_everyone_read_fails_loudly(tiny_run, tmp_path):
    # An extra policy that opens every chunk to every signed-in user: RLS is off for reads. (Switching RLS
    # off itself no longer reaches the measurement: the run's `schema apply` switches it back on.)
    dsn, _ = tiny_run
    with db.connect(dsn) as conn:
        conn.execute(
            "create policy test_leak on public.document_chunks for select to authenticated using (true)"
        )
    try:
        result = run_tiny(dsn, tmp_path / "broken")
    finally:
        with db.connect(dsn) as conn:
            conn.execute("drop policy test_leak on public.document_chunks")
    assert_one_line_error(result, "isolation breach", "canary")


def test_an_unknown_profile_is_one_line():
    assert_one_line_error(run_cli("run", "--profile", "huge"), "unknown profile 'huge'")


def test_an_unwritable_results_directory_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert_one_line_error(
        run_cli("run", "--profile", "tiny", "--out", str(blocker / "results")), "cannot write results"
    )


def test_python_dash_m_dimbench_is_the_quick_start_command():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "dimbench", "run", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "--profile" in done.stdout


def test_stability_repeats_the_study_on_fresh_builds_and_says_whether_the_decisions_agree(tiny_run, tmp_path):
    dsn, _ = tiny_run
    runs = tmp_path / "runs"
    done = run_cli(
        "stability",
        "--profile",
        "tiny",
        "--runs",
        "2",
        "--dsn",
        dsn,
        "--no-progress",
        env={"DIMBENCH_RUNS": str(runs)},
    )
    assert done.returncode == 0, done.stderr
    directories = sorted(p for p in (runs / "tiny").iterdir() if p.is_dir())
    assert len(directories) == 2 and len({run_of(d)["run_id"] for d in directories}) == 2
    assert all(run_of(d)["builds"] for d in directories)  # each run built its own indexes
    (summary_path,) = (runs / "tiny").glob("stability-*.json")
    summary = json.loads(summary_path.read_text())
    assert [r["run_id"] for r in summary["runs"]] == [run_of(d)["run_id"] for d in directories]
    assert isinstance(summary["decision_agrees"], bool)
    assert "dimbench publish " + " ".join(str(d) for d in directories) in done.stdout


def test_stability_needs_at_least_two_runs():
    assert_one_line_error(
        run_cli("stability", "--profile", "tiny", "--runs", "1"), "--runs must be at least 2"
    )


def test_the_side_channel_measures_a_design_once_though_the_grid_lists_it_on_two_columns():
    """small lists routed on halfvec1536 and on ada_halfvec1536: one verdict, on its first column."""
    from dimbench.study.grid import load_grid
    from dimbench.study.session import Session
    from dimbench.study.sidechannel import entrants

    session = Session(Path("/nonexistent"), "small", {"run_id": "r", "designs": []})
    routed = [e for e in entrants(load_grid("small"), session, only={"routed"}) if e.design == "routed"]
    assert [e.build.column_type for e in routed] == ["halfvec1536"]


def test_the_side_channel_by_default_measures_only_the_decided_designs_beside_shared():
    from dimbench.study.grid import load_grid
    from dimbench.study.session import Session
    from dimbench.study.sidechannel import entrants

    session = Session(Path("/nonexistent"), "tiny", {"run_id": "r", "designs": []})
    chosen = entrants(load_grid("tiny"), session, only={"routed"})
    assert {e.design for e in chosen} == {"shared", "routed"}
    assert {e.design for e in entrants(load_grid("tiny"), session)} >= {
        "shared",
        "routed",
        "partial",
        "inline",
    }
