"""An imported corpus's record names the models its columns hold, never the synthetic study's OpenAI ones."""

from __future__ import annotations

from pathlib import Path

from dimbench.evidence.results import Results
from dimbench.report.common import embedding_labels, model_of
from dimbench.report.costs import migration_section, option_name

LABELS = {
    "1536": "local:all-MiniLM-L6-v2 (zero-padded from 384)",
    "768": "local:all-MiniLM-L6-v2 (truncated)",
}


def imported(tmp_path: Path) -> Results:
    run = {"run_id": "r", "corpus": {"counts": {"chunks": 10}, "embedding": {"labels": LABELS}}}
    return Results(tmp_path, run, [], [run])


def test_an_imported_corpus_names_the_model_of_each_column(tmp_path):
    labels = embedding_labels(imported(tmp_path))
    assert "MiniLM" in model_of("vector768", labels) and "3-small" not in model_of("vector768", labels)
    assert option_name("1536", labels) == LABELS["1536"]


def test_the_synthetic_corpus_keeps_the_openai_names(tmp_path):
    run = {"run_id": "r", "corpus": {"counts": {"chunks": 10}}}
    labels = embedding_labels(Results(tmp_path, run, [], [run]))
    assert labels == {} and "3-small" in model_of("halfvec1536", labels)
    assert option_name("ada", labels) == "ada-002 @ 1536"


def test_an_imported_corpus_is_not_priced_as_an_openai_re_embedding(tmp_path):
    text = "\n".join(migration_section(imported(tmp_path)))
    assert "Not priced" in text and "MiniLM" in text and "$" not in text


def test_an_imported_corpus_does_not_table_the_teams_three_openai_options(tmp_path):
    from dimbench.report.options_text import options_section

    text = "\n".join(options_section(imported(tmp_path), None))  # type: ignore[arg-type]
    assert "MiniLM" in text and "ada-002 @ 1536 |" not in text and "|" not in text


def test_an_imported_corpus_has_no_generator_sensitivity_section(tmp_path):
    from dimbench.report.quality_text import sensitivity_section

    assert sensitivity_section(imported(tmp_path)) == []
