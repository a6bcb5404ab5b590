"""`dimbench corpus embed --provider openai`: embed an imported corpus's texts with the openai client.

text-embedding-3-small at 1536 dims (768 = truncate + renormalize, checked on a sample against the
API's own `dimensions=768`), optionally ada-002. Batched; 429/5xx/connection errors are retried by the
openai client itself (`max_retries`: exponential backoff with jitter, honouring Retry-After), which tells
us how many retries each call took; every vector cached on disk by (model, dims, text hash).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from dimbench.corpus import embeddings as emb_ops
from dimbench.corpus.reader import read_texts
from dimbench.errors import DimbenchError
from dimbench.paths import state_dir
from dimbench.realdata.cache import EmbeddingCache

MODEL = "text-embedding-3-small"
ADA = "text-embedding-ada-002"
CHECK_SAMPLE = 8


MAX_RETRIES = 5


def client_from_env(max_retries: int = MAX_RETRIES) -> Any:
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        raise DimbenchError(
            "OPENAI_API_KEY is not set: export your OpenAI API key to embed with --provider openai"
        )
    try:
        import openai
    except ImportError as exc:
        raise DimbenchError(
            "embedding with OpenAI needs the openai package: pip install 'dimbench[openai]'"
        ) from exc
    return openai.OpenAI(
        api_key=key, base_url=os.environ.get("OPENAI_BASE_URL") or None, max_retries=max_retries, timeout=60
    )


class Embedder:
    def __init__(
        self, client: Any, cache: EmbeddingCache, *, batch_size: int = 256, max_retries: int | None = None
    ) -> None:
        self.client = client if max_retries is None else client.with_options(max_retries=max_retries)
        self.cache, self.batch_size = cache, batch_size
        self.requests = 0  # HTTP requests sent, retries included
        self.retries = 0

    def _request(self, model: str, texts: list[str], dims: int | None) -> list[list[float]]:
        import openai

        extra = {"dimensions": dims} if dims else {}
        try:
            raw = self.client.embeddings.with_raw_response.create(
                model=model, input=texts, encoding_format="float", **extra
            )
        except openai.APIStatusError as exc:
            attempts = 1 + self.client.max_retries if _retryable(exc) else 1
            self.requests += attempts
            verb = f"failed after {attempts} attempts" if attempts > 1 else "refused the request"
            raise DimbenchError(
                f"OpenAI embeddings {verb} ({exc.status_code}): {str(exc).splitlines()[0][:200]}"
            ) from exc
        except openai.APIConnectionError as exc:  # includes timeouts; the client retried them too
            self.requests += 1 + self.client.max_retries
            raise DimbenchError(
                f"OpenAI embeddings failed after {1 + self.client.max_retries} attempts "
                f"({type(exc).__name__}): {str(exc).splitlines()[0][:200]}"
            ) from exc
        self.requests += 1 + raw.retries_taken
        self.retries += raw.retries_taken
        response = raw.parse()
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

    def embed(
        self, texts: list[str], model: str, dims: int | None = None, progress: bool = False
    ) -> np.ndarray:
        from tqdm import tqdm

        width = dims or 1536
        out = np.zeros((len(texts), width), dtype=np.float32)
        missing = []
        for i, text in enumerate(texts):
            cached = self.cache.get(model, width, text)
            if cached is None:
                missing.append(i)
            else:
                out[i] = cached
        with tqdm(total=len(missing), desc=f"embed {model}", unit="text", disable=not progress) as bar:
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start : start + self.batch_size]
                vectors = self._request(model, [texts[i] for i in batch], dims)
                if len(vectors) != len(batch) or any(len(v) != width for v in vectors):
                    raise DimbenchError(
                        f"OpenAI returned {len(vectors)} embeddings of the wrong shape for {model}"
                    )
                array = np.asarray(vectors, dtype=np.float32)
                out[batch] = array
                self.cache.put_many(model, width, [(texts[i], array[j]) for j, i in enumerate(batch)])
                bar.update(len(batch))
        return out


def _retryable(exc: Exception) -> bool:
    """What the client retries: 408, 409, 429 and 5xx (after its own retries, the last such error)."""
    status = getattr(exc, "status_code", 0)
    return status in (408, 409, 429) or status >= 500


def check_matryoshka(embedder: Embedder, texts: list[str], full: np.ndarray) -> float:
    """The API's dimensions=768 must equal our truncate + renormalize of its 1536 (cosine > 0.999)."""
    sample = list(range(min(CHECK_SAMPLE, len(texts))))
    asked = emb_ops.normalize(embedder.embed([texts[i] for i in sample], MODEL, 768))
    derived = emb_ops.shorten(full[sample])
    cosine = float(np.min(np.sum(asked * derived, axis=1)))
    if cosine < 0.999:
        raise DimbenchError(
            f"the API's 768-d embeddings differ from truncated 1536-d ones (cosine {cosine:.4f}): "
            "the 768 column cannot be derived; refusing to write it"
        )
    return cosine


def embed_corpus(directory: Path, embedder: Embedder, *, ada: bool = False, progress: bool = True) -> dict:
    from dimbench.realdata.importer import finish

    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists() or not (directory / "texts.bin").exists():
        raise DimbenchError(f"{directory} is not an imported corpus (run `dimbench corpus import` first)")
    manifest = json.loads(manifest_path.read_text())
    texts = read_texts(directory) or []
    full = emb_ops.normalize(embedder.embed(texts, MODEL, None, progress))
    cosine = check_matryoshka(embedder, texts, full)
    ada_vectors = emb_ops.normalize(embedder.embed(texts, ADA, None, progress)) if ada else None
    # Everything fetched: only now touch the corpus directory.
    np.save(directory / "emb_1536.npy", full)
    (directory / "emb_768.npy").unlink(missing_ok=True)
    if ada_vectors is not None:
        np.save(directory / "emb_ada.npy", ada_vectors)
    manifest["embedding"] = {
        "provider": "openai",
        "model": MODEL,
        "ada": ada,
        "matryoshka_check_min_cosine": cosine,
    }
    finish(directory, manifest)
    return {
        "texts": len(texts),
        "requests": embedder.requests,
        "retries": embedder.retries,
        "cache_corrupted": embedder.cache.corrupted,
        "matryoshka_cosine": cosine,
    }


def default_cache() -> EmbeddingCache:
    return EmbeddingCache(state_dir() / "embed-cache" / "embeddings.sqlite")
