"""Real data: import validated JSONL/Parquet into a corpus; embed it through the real openai client
against a local OpenAI-compatible server (127.0.0.1), including 429 and 500 answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dimbench.corpus.generate import verify
from dimbench.corpus.load import load_corpus
from dimbench.corpus.reader import Corpus, read_texts
from dimbench.database import db, schema
from dimbench.errors import DimbenchError
from dimbench.realdata import embed, providers
from dimbench.realdata.cache import EmbeddingCache
from dimbench.realdata.importer import import_file
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.fake_openai import FakeOpenAI, vector_for


def unit(seed: int, dim: int) -> list[float]:
    v = np.random.default_rng(seed).standard_normal(dim)
    return (v / np.linalg.norm(v)).tolist()


def rows(n_workspaces: int = 3, docs: int = 2, chunks: int = 3, with_embeddings: bool = True) -> list[dict]:
    out = []
    for w in range(n_workspaces):
        for d in range(docs * (w + 1)):
            for c in range(chunks):
                row = {"workspace": f"tenant {w}", "document": f"w{w}-doc{d}", "text": f"text {w}/{d}/{c}"}
                if with_embeddings:
                    row["embedding_1536"] = unit(w * 1000 + d * 10 + c, 1536)
                out.append(row)
    return out


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_jsonl_import_becomes_a_loadable_corpus(tmp_path, new_database):
    records = rows()
    directory = import_file(write_jsonl(tmp_path / "chunks.jsonl", records), tmp_path / "corpus")
    corpus = Corpus(directory, verify(directory))
    assert corpus.manifest["embedded"] and corpus.manifest["counts"]["queries"] > 0
    dsn = new_database("import")
    with db.connect(dsn) as conn:
        schema.apply(conn)
        db.use_vectors(conn)
        load_corpus(conn, corpus, progress=False)
        texts = [r[0] for r in conn.execute("select content from document_chunks").fetchall()]
        names = {r[0] for r in conn.execute("select name from workspaces").fetchall()}
    asked = set(json.loads((directory / "asks.json").read_text())["texts"])
    assert len(texts) == corpus.manifest["counts"]["chunks"]
    assert set(texts) | asked == {r["text"] for r in records} and not set(texts) & asked
    assert names == {"tenant 0", "tenant 1", "tenant 2"}


def test_imported_embeddings_and_documents_stay_together(tmp_path):
    records = rows()
    directory = import_file(write_jsonl(tmp_path / "chunks.jsonl", records), tmp_path / "corpus")
    corpus = Corpus(directory, verify(directory))
    by_text = {r["text"]: r["embedding_1536"] for r in records}
    block = next(corpus.chunk_blocks(1000))
    for text, vector in zip(block.content, block.emb_1536, strict=True):
        np.testing.assert_allclose(vector, by_text[text], rtol=1e-5, atol=1e-6)


def test_a_parquet_import_matches_the_jsonl_one(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = rows()
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "chunks.parquet")
    a = import_file(tmp_path / "chunks.parquet", tmp_path / "from-parquet")
    b = import_file(write_jsonl(tmp_path / "chunks.jsonl", records), tmp_path / "from-jsonl")
    assert np.array_equal(np.load(a / "emb_1536.npy"), np.load(b / "emb_1536.npy"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r[3].update(embedding_1536=r[3]["embedding_1536"][:-1]),
            ":4: embedding_1536 has 1535 dimensions",
        ),
        (lambda r: r[5]["embedding_1536"].__setitem__(0, float("nan")), ":6: embedding_1536 has NaN"),
        (lambda r: r[2].update(embedding_1536=[0.0] * 1536), ":3: embedding_1536 is a zero vector"),
        (lambda r: r[1].pop("text"), ":2: text must be a non-empty string"),
        (lambda r: r[4].update(colour="red"), ":5: unknown field 'colour'"),
        (
            lambda r: r[7].update(workspace="tenant 2"),
            ":8: document 'w1-doc0' already belongs to workspace 'tenant 1'",
        ),
        (lambda r: r[6].pop("embedding_1536"), ":7: embedding_1536 is present on some rows and missing"),
        (
            lambda r: r[0].update(embedding_768=["x"] * 768),
            ":1: embedding_768 has a value that is not a number",
        ),
    ],
)
def test_bad_rows_are_one_line_naming_the_line_and_nothing_is_written(tmp_path, change, message):
    records = rows()
    change(records)
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in records))
    out = tmp_path / "corpus"
    assert_one_line_error(run_cli("corpus", "import", str(path), "--out", str(out)), message)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.jsonl"]


def test_malformed_json_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(rows()[0]) + "\n{oops\n")
    assert_one_line_error(run_cli("corpus", "import", str(path), "--out", str(tmp_path / "c")), "bad.jsonl:2")


# --- embedding through the real openai client -------------------------------------------------------


@pytest.fixture
def server(monkeypatch):
    with FakeOpenAI() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        yield fake


@pytest.fixture
def imported(tmp_path) -> Path:
    return import_file(
        write_jsonl(tmp_path / "texts.jsonl", rows(with_embeddings=False)), tmp_path / "corpus"
    )


def embedder(tmp_path: Path, max_retries: int = providers.MAX_RETRIES, **options) -> embed.Embedder:
    provider = providers.openai_provider(max_retries=max_retries)
    return embed.Embedder(provider, EmbeddingCache(tmp_path / "cache.sqlite"), **options)


def test_texts_are_embedded_batched_and_768_is_the_truncated_1536(server, imported, tmp_path):
    e = embedder(tmp_path, batch_size=10)
    result = embed.embed_corpus(imported, e, progress=False)
    texts = read_texts(imported)
    asked = json.loads((imported / "asks.json").read_text())["texts"]
    full = np.load(imported / "emb_1536.npy")
    np.testing.assert_allclose(full[0], vector_for("text-embedding-3-small", texts[0]), atol=1e-6)
    batches = [r for r in server.requests if "dimensions" not in r]
    distinct = len(set(texts) | set(asked))  # chunks and questions; the first text alone tells the width
    assert len(batches) == 1 + -(-(distinct - 1) // 10) and all(len(r["input"]) <= 10 for r in batches)
    assert result["matryoshka_cosine"] > 0.999
    corpus = Corpus(imported, verify(imported))
    assert corpus.manifest["embedded"] and corpus.manifest["counts"]["queries"] > 0


def test_a_429_is_retried(server, imported, tmp_path):
    server.failures = [429, 429]
    result = embed.embed_corpus(imported, embedder(tmp_path), progress=False)
    assert result["retries"] == 2
    assert result["requests"] == len(server.requests)


def test_a_429_waits_as_long_as_retry_after_says(server, imported, tmp_path):
    # The client's own backoff starts at 0.5 s; a wait of ≥ 1.5 s can only come from the header.
    server.failures, server.retry_after = [429], "1.5"
    result = embed.embed_corpus(imported, embedder(tmp_path), progress=False)
    assert result["retries"] == 1
    assert server.times[1] - server.times[0] >= 1.5


def test_a_500_is_retried(server, imported, tmp_path):
    server.failures = [500]
    result = embed.embed_corpus(imported, embedder(tmp_path), progress=False)
    assert result["retries"] == 1


def test_a_permanent_500_is_one_line_and_nothing_is_written(server, imported, tmp_path):
    server.failures = [500] * 10
    before = sorted(p.name for p in imported.iterdir())
    with pytest.raises(DimbenchError, match="failed after 3 attempts"):
        embed.embed_corpus(imported, embedder(tmp_path, max_retries=2), progress=False)
    assert sorted(p.name for p in imported.iterdir()) == before


def test_a_missing_key_is_one_line(imported, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert_one_line_error(run_cli("corpus", "embed", "--corpus", str(imported)), "OPENAI_API_KEY is not set")


def test_the_cache_spares_every_request_the_second_time(server, imported, tmp_path):
    embed.embed_corpus(imported, embedder(tmp_path), progress=False)
    server.requests.clear()
    e = embedder(tmp_path)
    embed.embed_corpus(imported, e, progress=False)
    assert server.requests == [] and e.requests == 0


def test_a_corrupted_cache_entry_is_fetched_again(server, imported, tmp_path):
    embed.embed_corpus(imported, embedder(tmp_path), progress=False)
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    cache.db.execute("update embeddings set vector = zeroblob(length(vector)) where rowid = 1")
    cache.db.commit()
    cache.close()
    server.requests.clear()
    e = embedder(tmp_path)
    embed.embed_corpus(imported, e, progress=False)
    assert e.cache.corrupted == 1 and len(server.requests) == 1


def test_a_server_whose_768_is_not_the_truncated_1536_is_refused(server, imported, tmp_path):
    server.break_matryoshka = True
    with pytest.raises(DimbenchError, match="differ from truncated"):
        embed.embed_corpus(imported, embedder(tmp_path), progress=False)
    assert not (imported / "emb_1536.npy").exists()


def test_embed_through_the_cli(server, imported):
    result = run_cli(
        "corpus",
        "embed",
        "--corpus",
        str(imported),
        "--no-progress",
        env={"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": server.base_url},
    )
    assert result.returncode == 0, result.stderr
    assert "768 = truncated 1536" in result.stdout
