"""An imported corpus's questions, labels and memberships: the team's where given, synthesized (and said
to be) where not; never a stored chunk vector asked for itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dimbench.corpus.generate import verify
from dimbench.corpus.reader import Corpus
from dimbench.database import db
from dimbench.realdata.importer import import_file
from dimbench.study.inputs import study_queries
from tests.conftest import loaded_and_settled
from tests.test_realdata import rows, unit, write_jsonl


def with_ids(records: list[dict]) -> list[dict]:
    return [{**r, "id": f"c{i}"} for i, r in enumerate(records)]


def imported(tmp_path: Path, records: list[dict] | None = None, **options) -> Corpus:
    path = write_jsonl(tmp_path / "chunks.jsonl", records or with_ids(rows()))
    directory = import_file(path, tmp_path / "corpus", **options)
    return Corpus(directory, verify(directory))


def test_held_out_questions_are_neither_loaded_nor_in_any_ground_truth(tmp_path):
    records = with_ids(rows())
    corpus = imported(tmp_path, records)
    asked = json.loads((corpus.directory / "asks.json").read_text())
    stored = {t for block in corpus.chunk_blocks(1000) for t in block.content}
    assert asked["texts"] and not set(asked["texts"]) & stored
    assert corpus.manifest["counts"]["chunks"] == len(records) - len(set(asked["texts"]))


def test_no_question_vector_is_a_stored_chunk_vector(tmp_path):
    corpus = imported(tmp_path)
    questions = corpus.query_vectors()["1536"]
    stored = np.load(corpus.directory / "emb_1536.npy")
    assert (questions @ stored.T).max() < 0.999  # a stored vector asked for itself scores 1.0


def test_each_cell_gets_at_most_the_asked_count_and_the_manifest_names_the_short_cells(tmp_path):
    corpus = imported(tmp_path, queries_per_bucket=2)
    per_cell = corpus.manifest["queries"]["per_cell"]
    assert max(per_cell.values()) == 2
    assert corpus.manifest["queries"]["fewer_than_asked"] == {c: n for c, n in per_cell.items() if n < 2}
    assert corpus.manifest["queries"]["fewer_than_asked"]  # three workspaces cannot fill every bucket


def test_synthesized_memberships_put_users_in_one_to_three_workspaces_with_every_role(tmp_path):
    corpus = imported(tmp_path, rows(n_workspaces=12, docs=1, chunks=2))
    members = corpus.memberships
    per_user = np.bincount(members[:, 1])
    assert set(per_user.tolist()) <= {1, 2, 3} and per_user.max() > 1
    assert set(members[:, 2].tolist()) == {0, 1, 2, 3}
    assert corpus.manifest["provenance"]["memberships"]["from"] == "synthesized"
    assert corpus.manifest["provenance"]["queries"]["from"] == "synthesized"


def test_a_members_file_is_what_workspace_members_holds(tmp_path, new_database):
    members = [
        {"user": "ana", "workspace": "tenant 0", "role": "owner"},
        {"user": "ana", "workspace": "tenant 1", "role": "viewer"},
        {"user": "bo", "workspace": "tenant 1", "role": "owner"},
        {"user": "bo", "workspace": "tenant 2", "role": "admin"},
        {"user": "cy", "workspace": "tenant 2", "role": "member"},
    ]
    corpus = imported(tmp_path, members_file=write_jsonl(tmp_path / "members.jsonl", members))
    dsn, _ = loaded_and_settled(new_database("members"), corpus)
    with db.connect(dsn) as conn:
        held = conn.execute(
            "select w.name, m.role from workspace_members m join workspaces w on w.id = m.workspace_id"
        ).fetchall()
    assert sorted(held) == sorted((m["workspace"], m["role"]) for m in members)
    assert corpus.manifest["provenance"]["memberships"] == {"from": "team", "file": "members.jsonl"}
    assert corpus.manifest["counts"]["users"] == 3


def test_a_query_file_s_questions_are_the_study_queries_graded_by_the_qrels(tmp_path):
    members = [
        {"user": "ana", "workspace": "tenant 0", "role": "owner"},
        {"user": "ana", "workspace": "tenant 1", "role": "member"},
        {"user": "bo", "workspace": "tenant 2", "role": "owner"},
    ]
    questions = [
        {"id": "q1", "text": "one", "user": "ana", "embedding_1536": unit(91, 1536)},
        {"id": "q2", "text": "two", "workspace": "tenant 2", "embedding_1536": unit(92, 1536)},
    ]
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tc0\t2\nq1\tc7\t1\nq2\tc30\t0\n")
    corpus = imported(
        tmp_path,
        members_file=write_jsonl(tmp_path / "members.jsonl", members),
        queries=write_jsonl(tmp_path / "questions.jsonl", questions),
        qrels=tmp_path / "qrels.tsv",
    )
    q1, q2 = study_queries(corpus)
    assert (q1.scope, q2.scope) == ("all", "workspace")
    assert len(q1.filter_ids) == 2 and len(q2.filter_ids) == 1
    np.testing.assert_allclose(q1.vectors[1536], questions[0]["embedding_1536"], atol=1e-6)
    assert sorted(q1.relevance.values()) == [1, 2] and list(q2.relevance.values()) == [0]
    assert corpus.manifest["counts"]["chunks"] == len(rows())  # nothing held out
    assert corpus.manifest["provenance"]["relevance"] == {"from": "team", "file": "qrels.tsv"}


def test_loaded_rows_name_the_models_that_made_each_column(tmp_path, new_database):
    corpus = imported(tmp_path, models={"1536": "text-embedding-ada-002"})
    dsn, _ = loaded_and_settled(new_database("labels"), corpus)
    with db.connect(dsn) as conn:
        labels = conn.execute(
            "select distinct embedding_1536_model, embedding_768_model from document_chunks"
        ).fetchall()
    assert labels == [("text-embedding-ada-002", "text-embedding-ada-002 (truncate to 768 + renormalize)")]
    assert corpus.manifest["provenance"]["embeddings"] == {"1536": "team", "768": "derived"}


def test_a_corpus_imported_before_columns_had_their_own_truth_is_refused_when_its_768_is_its_own(tmp_path):
    from dimbench.errors import DimbenchError

    records = [{**r, "embedding_768": unit(i, 768)} for i, r in enumerate(with_ids(rows()))]
    corpus = imported(tmp_path, records)
    data = corpus.queries()
    np.savez(
        corpus.directory / "queries.npz",
        **{k: v for k, v in data.items() if not k.startswith("vector_")},
        vector=data["vector_1536"],
    )  # the old layout: one 1536 query vector
    corpus.manifest["generator_version"] = "import-1"
    with pytest.raises(DimbenchError, match="import it again"):
        corpus.query_vectors()
