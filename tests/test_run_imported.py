"""`dimbench run --corpus DIR`: the study on an imported corpus, identified by that corpus."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from tests.test_realdata import rows, write_jsonl
from tests.test_realdata_truth import two_model_rows


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory, new_database):
    """The tiny grid run on the two-models corpus (unrelated 768 and 1536 embeddings)."""
    tmp = tmp_path_factory.mktemp("imported-run")
    chunks = write_jsonl(tmp / "chunks.jsonl", two_model_rows())
    imported = run_cli(
        "corpus", "import", str(chunks), "--out", str(tmp / "corpus"), "--queries-per-bucket", "6"
    )
    assert imported.returncode == 0, imported.stderr
    out = tmp / "run"
    result = run_cli(
        "run",
        "--profile",
        "tiny",
        "--corpus",
        str(tmp / "corpus"),
        "--dsn",
        new_database("imported"),
        "--out",
        str(out),
        "--no-progress",
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr
    return tmp / "corpus", out, result.stdout


@pytest.mark.slow
def test_a_run_on_an_imported_corpus_is_identified_by_its_digest_and_provenance(imported_run):
    corpus, out, stdout = imported_run
    manifest = json.loads((corpus / "manifest.json").read_text())
    (run,) = json.loads((out / "run.json").read_text())["runs"]
    assert run["identity"]["corpus"] == {
        "name": "chunks",
        "digest": manifest["digest"],
        "generator_version": "import-2",
    }
    assert run["corpus"]["provenance"]["queries"]["from"] == "synthesized"
    assert "no published run to compare" in stdout


@pytest.mark.slow
def test_exact_search_on_the_imported_768_column_is_exact_in_the_run(imported_run):
    _, out, _ = imported_run
    lines = [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]
    exact = [r for r in lines if r["index"] == "exact" and r["column_type"] in ("vector768", "vector1536")]
    assert exact and {r["recall_mean"] for r in exact} == {1.0}


def test_a_corpus_not_embedded_yet_is_refused_in_one_line(tmp_path):
    chunks = write_jsonl(tmp_path / "texts.jsonl", rows(with_embeddings=False))
    assert run_cli("corpus", "import", str(chunks), "--out", str(tmp_path / "corpus")).returncode == 0
    result = run_cli("run", "--profile", "tiny", "--corpus", str(tmp_path / "corpus"))
    assert_one_line_error(result, "has no embeddings yet")


def test_a_scale_profile_with_one_corpus_is_refused_in_one_line(tmp_path):
    chunks = write_jsonl(tmp_path / "chunks.jsonl", rows())
    assert run_cli("corpus", "import", str(chunks), "--out", str(tmp_path / "corpus")).returncode == 0
    result = run_cli("run", "--profile", "scale", "--corpus", str(tmp_path / "corpus"))
    assert_one_line_error(result, "is a scale grid")
