"""dimbench corpus public: the real corpus's builder is deterministic and its files pass corpus import."""

from __future__ import annotations

import json

from dimbench.realdata import public_corpus
from dimbench.realdata.importer import import_file

# Two small installed packages keep this cheap (no stdlib walk, no model).
PACKAGES = ("psycopg", "tqdm")  # both runtime dependencies: installed wherever dimbench is


def test_builder_writes_the_same_chunks_twice(tmp_path):
    first = public_corpus.build(tmp_path / "a", PACKAGES, stdlib=False)
    second = public_corpus.build(tmp_path / "b", PACKAGES, stdlib=False)
    assert first["chunks"] > 100
    assert first["chunks_sha256"] == second["chunks_sha256"]
    for name in ("chunks.jsonl", "queries.jsonl", "qrels.tsv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_questions_are_held_out_of_the_searchable_rows(tmp_path):
    public_corpus.build(tmp_path, PACKAGES, stdlib=False)
    texts = {json.loads(line)["text"] for line in (tmp_path / "chunks.jsonl").open()}
    questions = [json.loads(line)["text"] for line in (tmp_path / "queries.jsonl").open()]
    assert questions and not texts.intersection(questions)


def test_provenance_names_each_owners_version_and_license(tmp_path):
    made = public_corpus.build(tmp_path, PACKAGES, stdlib=False)
    assert set(made["owners"]) == set(PACKAGES)
    assert all(o["source"].split()[-1][0].isdigit() and o["license"] for o in made["owners"].values())


def test_built_files_pass_corpus_import(tmp_path):
    public_corpus.build(tmp_path / "src", PACKAGES, stdlib=False)
    src = tmp_path / "src"
    out = import_file(
        src / "chunks.jsonl", tmp_path / "corpus", queries=src / "queries.jsonl", qrels=src / "qrels.tsv"
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["workspaces"] == len(PACKAGES)
    assert manifest["counts"]["queries"] > 0
