"""`dimbench corpus embed`: embed an imported corpus's chunk and question texts into one column.

Providers (providers.py): OpenAI or an OpenAI-compatible server through the openai client (429/5xx and
connection errors retried by the client itself, honouring Retry-After), or a local sentence-transformers
model. Every vector is cached on disk by (provider and model, width, text hash) as soon as its batch
arrives, so an interrupted embed resumes from its cache. Vectors are checked finite and non-zero as they
arrive and after every transformation (normalize, zero-pad, and the derived 768's truncation).

Column 1536 (the default) with text-embedding-3-small is checked against the API's own `dimensions=768`
on a sample when the 768 column is to be derived from it by truncation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dimbench.corpus import columns
from dimbench.corpus.reader import read_texts
from dimbench.errors import DimbenchError
from dimbench.paths import state_dir
from dimbench.realdata import asks as asks_module
from dimbench.realdata import provenance, truth
from dimbench.realdata.cache import EmbeddingCache
from dimbench.realdata.providers import SHORTENABLE, Provider

MODEL = "text-embedding-3-small"
ADA = "text-embedding-ada-002"
CHECK_SAMPLE = 8


class Embedder:
    def __init__(self, provider: Provider, cache: EmbeddingCache, *, batch_size: int = 256) -> None:
        if batch_size < 1:
            raise DimbenchError(f"--batch-size must be at least 1, got {batch_size}")
        self.provider, self.cache, self.batch_size = provider, cache, batch_size

    @property
    def requests(self) -> int:
        return self.provider.requests

    @property
    def retries(self) -> int:
        return self.provider.retries

    def key(self, model: str, dims: int | None) -> str:
        """The cache's model key: the provider's, and the `dimensions` asked for (an answer to
        dimensions=768 is not the model's full-width answer)."""
        return self.provider.cache_key(model) + (f"?dimensions={dims}" if dims else "")

    def width(self, texts: list[str], model: str, dims: int | None) -> int:
        """How wide this model's vectors are: known, or from its answer for the first text (cached)."""
        known = self.provider.width(model, dims)
        if known:
            return known
        key = self.key(model, dims)
        cached = self.cache.get(key, None, texts[0])
        if cached is not None:
            return len(cached)
        (vector,) = self._fetch([texts[0]], model, dims, None)
        self.cache.put_many(key, len(vector), [(texts[0], vector)])
        return len(vector)

    def _fetch(self, texts: list[str], model: str, dims: int | None, width: int | None) -> np.ndarray:
        vectors = self.provider.embed(texts, model, dims)
        widths = {len(v) for v in vectors}
        if len(vectors) != len(texts) or len(widths) != 1 or (width is not None and widths != {width}):
            raise DimbenchError(
                f"{model} returned {len(vectors)} embeddings of {sorted(widths)} dims for {len(texts)} texts"
                + (f" (expected {width} dims)" if width else "")
            )
        try:
            array = np.asarray(vectors, dtype=np.float64)
        except (TypeError, ValueError):
            raise DimbenchError(f"{model} returned embeddings that are not lists of numbers") from None
        return columns.checked(array, f"{model}'s embeddings").astype(np.float32)

    def embed(
        self, texts: list[str], model: str, dims: int | None = None, progress: bool = False
    ) -> np.ndarray:
        """(n, width) float32 as the model returned them (cached first, then fetched batch by batch)."""
        from tqdm import tqdm

        if not texts:
            return np.zeros((0, dims or 1), dtype=np.float32)
        unique = list(dict.fromkeys(texts))  # a question asked in both scopes is one text
        if len(unique) < len(texts):
            vectors = self.embed(unique, model, dims, progress)
            where = {text: i for i, text in enumerate(unique)}
            return vectors[[where[t] for t in texts]]
        width = self.width(texts, model, dims)
        key = self.key(model, dims)
        out = np.zeros((len(texts), width), dtype=np.float32)
        missing = []
        for i, text in enumerate(texts):
            cached = self.cache.get(key, width, text)
            if cached is None:
                missing.append(i)
            else:
                out[i] = cached
        with tqdm(total=len(missing), desc=f"embed {model}", unit="text", disable=not progress) as bar:
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start : start + self.batch_size]
                array = self._fetch([texts[i] for i in batch], model, dims, width)
                out[batch] = array
                self.cache.put_many(key, width, [(texts[i], array[j]) for j, i in enumerate(batch)])
                bar.update(len(batch))
        return columns.checked(out, f"{model}'s embeddings")


def fit(vectors: np.ndarray, column: str, model: str) -> np.ndarray:
    """Unit rows of the column's width: a narrower model's zero-padded (every cosine kept exactly), a
    wider one's refused (truncation keeps no distance unless the model was trained for it)."""
    want, width = columns.WIDTHS[column], vectors.shape[1]
    if width > want:
        raise DimbenchError(
            f"{model} returns {width}-d vectors; column {column} holds {want}: pass --dimensions {want} "
            "if the model supports it, or embed another column"
        )
    unit = columns.unit(vectors, f"{model}'s embeddings")
    if width < want:
        unit = columns.checked(np.pad(unit, ((0, 0), (0, want - width))), f"{model}'s zero-padded embeddings")
    return unit


def check_matryoshka(embedder: Embedder, texts: list[str], full: np.ndarray) -> float:
    """The API's dimensions=768 must equal our truncate + renormalize of its 1536 (cosine > 0.999)."""
    sample = list(range(min(CHECK_SAMPLE, len(texts))))
    asked = columns.unit(embedder.embed([texts[i] for i in sample], MODEL, 768), "dimensions=768")
    derived = columns.derive(full[sample])
    cosine = float(np.min(np.sum(asked * derived, axis=1)))
    if cosine < 0.999:
        raise DimbenchError(
            f"the API's 768-d embeddings differ from truncated 1536-d ones (cosine {cosine:.4f}): "
            "the 768 column cannot be derived; refusing to write it"
        )
    return cosine


def embed_corpus(
    directory: Path,
    embedder: Embedder,
    *,
    model: str = MODEL,
    dims: int | None = None,
    column: str = "1536",
    ada: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Embed the chunks' and questions' texts into `column` (and ada-002 into `ada` if asked); the
    corpus directory is touched only once every vector is fetched and checked."""
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists() or not (directory / "texts.bin").exists():
        raise DimbenchError(f"{directory} is not an imported corpus (run `dimbench corpus import` first)")
    if column not in columns.COLUMNS:
        raise DimbenchError(f"--column {column}: no such column (use 1536, 768 or ada)")
    manifest = json.loads(manifest_path.read_text())
    asked = asks_module.load(directory)
    missing = [qid for qid, text in zip(asked.ids, asked.texts, strict=True) if text is None]
    if missing:
        raise DimbenchError(f"question {missing[0]!r} has no text to embed (give it text, or its embeddings)")
    chunk_texts = read_texts(directory) or []
    texts = chunk_texts + [str(t) for t in asked.texts]
    passes = [(column, model, dims)] + ([("ada", ADA, None)] if ada else [])
    results: dict[str, np.ndarray] = {}
    entries: dict[str, dict[str, Any]] = {}
    cosine = None
    for name, which, asked_dims in passes:
        raw = embedder.embed(texts, which, asked_dims, progress)
        results[name] = fit(raw, name, which)
        entries[name] = provenance.embedded_column(
            embedder.provider.name, which, embedder.provider.base_url, asked_dims, raw.shape[1], name
        )
    will_derive = column == "1536" and not columns.own(directory, "768")
    if will_derive and embedder.provider.name == "openai" and model in SHORTENABLE and not dims:
        cosine = check_matryoshka(embedder, texts, results["1536"])
    elif will_derive:
        columns.derive(results["1536"], f"the 768 column derived from {model}'s embeddings")
    # Everything fetched and checked: only now touch the corpus directory.
    n = len(chunk_texts)
    for name, vectors in results.items():
        np.save(directory / columns.FILES[name], vectors[:n])
        np.save(directory / columns.QUERY_FILES[name], vectors[n:])
    embedding = manifest.setdefault("embedding", {})
    embedding.setdefault("columns", {}).update(entries)
    embedding["ada"] = ada or columns.own(directory, "ada")
    if cosine is not None:
        embedding["matryoshka_check_min_cosine"] = cosine
    if columns.own(directory, "1536"):
        truth.finish(directory, manifest)
    else:
        truth.write_manifest(directory, manifest, queries=len(asked))
    return {
        "texts": len(texts),
        "questions": len(asked),
        "requests": embedder.requests,
        "retries": embedder.retries,
        "cache_corrupted": embedder.cache.corrupted,
        "matryoshka_cosine": cosine,
        "columns": {name: provenance.label(e) for name, e in entries.items()},
    }


def default_cache() -> EmbeddingCache:
    return EmbeddingCache(state_dir() / "embed-cache" / "embeddings.sqlite")
