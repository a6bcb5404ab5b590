"""`dimbench corpus embed --provider openai`: embed an imported corpus's texts with the openai client.

text-embedding-3-small at 1536 dims (768 = truncate + renormalize, checked on a sample against the
API's own `dimensions=768`), optionally ada-002. Batched; 429/5xx/connection errors retried here with
exponential backoff and jitter (the client's own retries are off, so the policy is ours and tested),
honouring Retry-After; every vector cached on disk by (model, dims, text hash).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dimbench.corpus import embeddings as emb_ops
from dimbench.errors import DimbenchError
from dimbench.paths import state_dir
from dimbench.realdata.cache import EmbeddingCache

MODEL = "text-embedding-3-small"
ADA = "text-embedding-ada-002"
CHECK_SAMPLE = 8


def client_from_env() -> Any:
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
        api_key=key, base_url=os.environ.get("OPENAI_BASE_URL") or None, max_retries=0, timeout=60
    )


class Embedder:
    def __init__(
        self,
        client: Any,
        cache: EmbeddingCache,
        *,
        batch_size: int = 256,
        max_attempts: int = 6,
        base_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client, self.cache = client, cache
        self.batch_size, self.max_attempts, self.base_delay, self.sleep = (
            batch_size,
            max_attempts,
            base_delay,
            sleep,
        )
        self.requests = 0
        self.retries = 0

    def _request(self, model: str, texts: list[str], dims: int | None) -> list[list[float]]:
        import openai

        retryable = (
            openai.RateLimitError,
            openai.InternalServerError,
            openai.APIConnectionError,
            openai.APITimeoutError,
        )
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.requests += 1
                extra = {"dimensions": dims} if dims else {}
                response = self.client.embeddings.create(
                    model=model, input=texts, encoding_format="float", **extra
                )
                return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
            except retryable as exc:
                if attempt == self.max_attempts:
                    status = getattr(exc, "status_code", None) or type(exc).__name__
                    raise DimbenchError(
                        f"OpenAI embeddings failed after {attempt} attempts ({status}): "
                        f"{str(exc).splitlines()[0][:200]}"
                    ) from exc
                self.retries += 1
                self.sleep(self._delay(exc, attempt))
            except openai.APIStatusError as exc:
                raise DimbenchError(
                    f"OpenAI embeddings refused the request ({exc.status_code}): "
                    f"{str(exc).splitlines()[0][:200]}"
                ) from exc
        raise AssertionError("unreachable")

    def _delay(self, exc: Exception, attempt: int) -> float:
        response = getattr(exc, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        try:
            if header is not None:
                return max(0.0, float(header))
        except ValueError:
            pass
        return self.base_delay * 2 ** (attempt - 1) * (0.5 + random.random())  # noqa: S311 (jitter, not crypto)

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


def read_texts(directory: Path) -> list[str]:
    raw = np.load(directory / "texts.bin", mmap_mode="r")
    offsets = np.load(directory / "text_offsets.npy")
    return [bytes(raw[int(offsets[i]) : int(offsets[i + 1])]).decode() for i in range(len(offsets) - 1)]


def embed_corpus(directory: Path, embedder: Embedder, *, ada: bool = False, progress: bool = True) -> dict:
    from dimbench.realdata.importer import finish

    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists() or not (directory / "texts.bin").exists():
        raise DimbenchError(f"{directory} is not an imported corpus (run `dimbench corpus import` first)")
    manifest = json.loads(manifest_path.read_text())
    texts = read_texts(directory)
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
