"""Garbage in is refused at the door: one line naming the file, the key and the allowed range, a non-zero
exit, and nothing measured or written first."""

from __future__ import annotations

from pathlib import Path

from dimbench.paths import repo_root
from tests.cli_helpers import assert_one_line_error, run_cli, snapshot

UNREACHABLE = "host=/nonexistent"


def tiny_grid(tmp_path: Path, old: str, new: str) -> Path:
    text = (repo_root() / "bench" / "grids" / "tiny.toml").read_text()
    assert old in text
    path = tmp_path / "grid.toml"
    path.write_text(text.replace(old, new))
    return path


def test_a_grid_k_above_the_corpuss_k_is_refused_before_anything_runs(tmp_path):
    grid = tiny_grid(tmp_path, "k = 10", "k = 20")
    result = run_cli(
        "run", "--profile", str(grid), "--dsn", UNREACHABLE, env={"DIMBENCH_RUNS": str(tmp_path / "r")}
    )
    assert_one_line_error(result, "k = 20 exceeds corpus tiny's k = 10")
    assert not (tmp_path / "r").exists()


def test_a_recall_target_that_is_not_a_number_is_refused(tmp_path):
    grid = tiny_grid(tmp_path, "recall_target = 0.95", "recall_target = nan")
    assert_one_line_error(
        run_cli("run", "--profile", str(grid), "--dsn", UNREACHABLE), "recall_target must be a finite"
    )


def test_a_run_out_under_a_file_is_one_line_and_creates_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    before = snapshot(tmp_path)
    result = run_cli("run", "--profile", "tiny", "--out", str(blocker / "run"), "--dsn", UNREACHABLE)
    assert_one_line_error(result, "is not a directory")
    assert snapshot(tmp_path) == before


def test_a_corpus_out_under_a_file_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("corpus", "generate", "--spec", "tiny", "--out", str(blocker / "corpus"))
    assert_one_line_error(result, "cannot write the corpus")


def test_corpus_load_with_a_block_size_below_one_is_refused_before_loading(tmp_path):
    for value in ("-5", "0"):
        assert_one_line_error(
            run_cli("corpus", "load", "--spec", "tiny", "--block-rows", value, "--dsn", UNREACHABLE),
            "--block-rows",
            "must be a whole number ≥ 1",
        )


def test_overhead_with_no_queries_is_refused():
    assert_one_line_error(run_cli("overhead", "--queries", "0", "--dsn", UNREACHABLE), "--queries")


def test_a_quality_tolerance_outside_zero_one_is_refused_before_anything_runs(tmp_path):
    for value, words in (
        ("0", "must be in (0, 1)"),
        ("1", "must be in (0, 1)"),
        ("-0.1", "must be in (0, 1)"),
        ("nan", "must be a finite"),
        ('"two"', "must be float"),
    ):
        grid = tiny_grid(tmp_path, "[screening]", f"[rule]\nquality_tolerance = {value}\n\n[screening]")
        result = run_cli(
            "run", "--profile", str(grid), "--dsn", UNREACHABLE, env={"DIMBENCH_RUNS": str(tmp_path / "r")}
        )
        assert_one_line_error(result, "quality_tolerance", words)
        assert not (tmp_path / "r").exists()


def test_a_column_type_whose_stored_column_the_corpus_lacks_is_refused_before_anything_runs(tmp_path):
    # tiny is generated with ada = false: it has no ada-002 vectors to load into embedding_ada
    grid = tiny_grid(
        tmp_path,
        'column_types = ["vector768", "vector1536", "halfvec1536"]',
        'column_types = ["vector768", "vector1536", "halfvec1536", "ada_halfvec1536"]',
    )
    result = run_cli(
        "run", "--profile", str(grid), "--dsn", UNREACHABLE, env={"DIMBENCH_RUNS": str(tmp_path / "r")}
    )
    assert_one_line_error(result, "column type ada_halfvec1536", "corpus tiny does not carry")
    assert not (tmp_path / "r").exists()
