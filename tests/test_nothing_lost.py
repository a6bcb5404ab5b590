"""Nothing a user types deletes their files: dimbench removes or replaces only what it made and can prove
it made (its marker), and a refused command leaves every file exactly as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dimbench import files
from dimbench.paths import repo_root
from tests.cli_helpers import assert_one_line_error, run_cli, snapshot


def published_results() -> dict[str, str]:
    return snapshot(repo_root() / "results")


@pytest.fixture
def users_dir(tmp_path: Path) -> Path:
    """A directory of the user's own, holding a file they care about."""
    directory = tmp_path / "mydir"
    directory.mkdir()
    (directory / "keep").write_text("x\n")
    return directory


# --- publish -------------------------------------------------------------------------------------


def test_publish_to_a_directory_it_did_not_make_is_refused_and_the_directory_kept(tiny_results, users_dir):
    _, run_dir = tiny_results
    before = snapshot(users_dir)
    assert_one_line_error(run_cli("publish", str(run_dir), "--to", str(users_dir)), "not created by dimbench")
    assert snapshot(users_dir) == before


def test_publish_to_a_file_is_refused_and_the_file_kept(tiny_results, tmp_path):
    _, run_dir = tiny_results
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")
    assert_one_line_error(run_cli("publish", str(run_dir), "--to", str(target)), "not a directory")
    assert target.read_text() == "mine\n"


def test_publish_replaces_a_directory_it_published_before(tiny_results, tmp_path):
    _, run_dir = tiny_results
    dest = tmp_path / "published"
    assert run_cli("publish", str(run_dir), "--to", str(dest)).returncode == 0
    assert files.kind_of(dest) == "published"
    (dest / "stale").write_text("left by an older publish\n")
    again = run_cli("publish", str(run_dir), "--to", str(dest))
    assert again.returncode == 0, again.stderr
    assert not (dest / "stale").exists() and (dest / "DECISION.md").is_file()


@pytest.mark.parametrize("profile", ["", "x/../../notebooks", "../../escape", ".."])
def test_a_run_whose_profile_is_not_a_plain_name_cannot_be_published_anywhere(
    tiny_results, tmp_path, profile
):
    _, run_dir = tiny_results
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    run_json = json.loads((copy / "run.json").read_text())
    run_json["profile"] = profile
    for run in run_json["runs"]:
        run["profile"] = profile
    (copy / "run.json").write_text(json.dumps(run_json))
    before, notebooks = published_results(), snapshot(repo_root() / "notebooks")
    assert_one_line_error(run_cli("publish", str(copy)), "profile must be a plain name")
    assert published_results() == before and snapshot(repo_root() / "notebooks") == notebooks


# --- run -----------------------------------------------------------------------------------------


def test_run_never_writes_inside_results_even_with_fresh():
    before = published_results()
    out = repo_root() / "results" / "scale"
    result = run_cli("run", "--profile", "tiny", "--out", str(out), "--fresh", "--dsn", "host=/nonexistent")
    line = assert_one_line_error(result, "only `dimbench publish` writes")
    assert "--fresh" not in line
    assert published_results() == before


def test_run_with_runs_dir_inside_results_is_refused():
    before = published_results()
    result = run_cli(
        "run",
        "--profile",
        "tiny",
        "--dsn",
        "host=/nonexistent",
        env={"DIMBENCH_RUNS": str(repo_root() / "results")},
    )
    assert_one_line_error(result, "only `dimbench publish` writes")
    assert published_results() == before


def test_run_fresh_into_a_directory_it_did_not_make_is_refused_and_the_directory_kept(users_dir):
    (users_dir / "run.json").write_text('{"format": 2, "profile": "mine", "runs": []}\n')
    before = snapshot(users_dir)
    result = run_cli(
        "run", "--profile", "tiny", "--out", str(users_dir), "--fresh", "--dsn", "host=/nonexistent"
    )
    assert_one_line_error(result, "not created by dimbench")
    assert snapshot(users_dir) == before


def test_a_grid_profile_that_climbs_out_of_runs_is_refused_before_anything_is_written(tmp_path):
    grid = (repo_root() / "bench" / "grids" / "tiny.toml").read_text()
    path = tmp_path / "grids" / "escape.toml"
    path.parent.mkdir()
    path.write_text(grid.replace('profile = "tiny"', 'profile = "../../escape"'))
    result = run_cli(
        "run",
        "--profile",
        str(path),
        "--dsn",
        "host=/nonexistent",
        env={"DIMBENCH_RUNS": str(tmp_path / "a" / "b")},
    )
    assert_one_line_error(result, "profile must be a plain name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grids"]


# --- corpora -------------------------------------------------------------------------------------


def test_corpus_generate_force_never_deletes_a_directory_it_did_not_make(users_dir):
    before = snapshot(users_dir)
    result = run_cli("corpus", "generate", "--spec", "tiny", "--out", str(users_dir), "--force")
    assert_one_line_error(result, "not created by dimbench")
    assert snapshot(users_dir) == before


def test_a_foreign_directory_given_as_a_corpus_is_not_called_a_corrupted_cache(users_dir):
    result = run_cli("corpus", "generate", "--spec", "tiny", "--out", str(users_dir))
    line = assert_one_line_error(result, "is not a dimbench corpus")
    assert "--force" not in line


def test_a_corpus_directory_that_does_not_exist_is_called_missing(tmp_path):
    result = run_cli("corpus", "load", "--corpus", str(tmp_path / "nowhere"), "--dsn", "host=/nonexistent")
    assert_one_line_error(result, "no corpus at")


def test_corpus_generate_force_regenerates_a_corpus_it_made(tmp_path):
    out = tmp_path / "corpus"
    assert run_cli("corpus", "generate", "--spec", "tiny", "--out", str(out)).returncode == 0
    assert files.kind_of(out) == "corpus"
    (out / "ws_documents.npy").write_bytes(b"damaged")
    again = run_cli("corpus", "generate", "--spec", "tiny", "--out", str(out), "--force")
    assert again.returncode == 0, again.stderr
    assert (out / "ws_documents.npy").read_bytes() != b"damaged"


def test_a_killed_generates_temporary_folder_is_cleared_by_the_next_generate(tmp_path):
    out = tmp_path / "corpus"
    stale = tmp_path / ".corpus.tmp-999999999-abcd"  # a pid no process has
    stale.mkdir()
    files.mark(stale, "staging")
    (stale / "emb_1536.npy").write_bytes(b"\0" * 1024)
    mine = tmp_path / ".corpus.tmp-999999999-mine"  # the same name, but not marked: not ours
    mine.mkdir()
    assert run_cli("corpus", "generate", "--spec", "tiny", "--out", str(out)).returncode == 0
    assert not stale.exists() and mine.is_dir()


def test_a_manifest_that_does_not_list_a_file_is_a_corrupted_corpus(tmp_path):
    out = tmp_path / "corpus"
    assert run_cli("corpus", "generate", "--spec", "tiny", "--out", str(out)).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["files"]["queries.npz"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert_one_line_error(
        run_cli("corpus", "generate", "--spec", "tiny", "--out", str(out)), "queries.npz has no checksum"
    )


# --- report --------------------------------------------------------------------------------------


def test_a_report_that_fails_half_way_leaves_the_previous_report_exactly_as_it_was(
    tiny_results, tmp_path, monkeypatch
):
    from dimbench.report import render, story

    _, run_dir = tiny_results
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "plots" / "qps.png").write_bytes(b"the previous report's figure")
    before = snapshot(copy)

    def fails(*args, **kwargs):
        raise RuntimeError("a figure failed after the grid's plots were drawn")

    monkeypatch.setattr(story, "render_all", fails)
    with pytest.raises(RuntimeError):
        render(copy)
    assert snapshot(copy) == before


def test_report_refuses_to_replace_a_plots_folder_it_did_not_write(tiny_results, tmp_path):
    _, run_dir = tiny_results
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "plots" / files.MARKER).unlink()
    (copy / "plots" / "my-chart.png").write_bytes(b"mine")
    before = snapshot(copy)
    assert_one_line_error(run_cli("report", "--results", str(copy)), "not created by dimbench")
    assert snapshot(copy) == before


# --- stability -----------------------------------------------------------------------------------


def test_stabilitys_summary_goes_beside_the_runs_of_the_grids_profile_whatever_file_named_it(
    tmp_path, monkeypatch
):
    from dimbench.study.stability import summary_directory

    path = tmp_path / "my.toml"
    path.write_text((repo_root() / "bench" / "grids" / "tiny.toml").read_text())
    monkeypatch.setenv("DIMBENCH_RUNS", str(tmp_path / "runs"))
    assert summary_directory(str(path)) == tmp_path / "runs" / "tiny"
