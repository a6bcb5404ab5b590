"""Read a generated corpus: the loader's rows and the study's queries, with deterministic UUIDs.

Documents are laid out workspace by workspace and chunks document by document, so every workspace's
chunks are one contiguous range (see structure.py). Generated corpora have a fixed number of chunks per
document; imported ones carry doc_offsets.npy (and their texts, and maybe their own 768-d embeddings).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dimbench.corpus import columns, embeddings, ids
from dimbench.corpus.spec import BUCKETS
from dimbench.corpus.structure import ROLES
from dimbench.errors import DimbenchError

MODEL_1536 = "text-embedding-3-small"  # synthetic stand-in: "3-small-like" (see embeddings.py)
MODEL_768 = "text-embedding-3-small@768"
LEGACY_IMPORT = "import-1"  # its 768 ground truth came from the 1536 column


def read_texts(directory: Path, start: int = 0, stop: int | None = None) -> list[str] | None:
    """Chunk texts start..stop of an imported corpus (texts.bin + text_offsets.npy); None if it has none."""
    path = directory / "texts.bin"
    if not path.exists():
        return None
    offsets = np.load(directory / "text_offsets.npy", mmap_mode="r")
    raw = np.load(path, mmap_mode="r")  # uint8
    stop = len(offsets) - 1 if stop is None else stop
    return [bytes(raw[int(offsets[i]) : int(offsets[i + 1])]).decode() for i in range(start, stop)]


@dataclass
class ChunkBlock:
    start: int
    ids: np.ndarray  # (n, 16) uint8 uuid bytes
    workspace_ids: np.ndarray  # (n, 16)
    document_ids: np.ndarray  # (n, 16)
    chunk_index: np.ndarray  # (n,) int
    content: list[str]
    emb_768: np.ndarray  # (n, 768) float32
    emb_1536: np.ndarray  # (n, 1536) float32
    models: tuple[str, str] = (MODEL_1536, MODEL_768)  # what the rows' model columns say made them
    emb_ada: np.ndarray | None = None  # (n, 1536) float32: ada-002's vectors, where the corpus has them


class Corpus:
    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        self.directory = directory
        self.manifest = manifest
        self.digest: str = manifest["digest"]
        self.spec: dict[str, Any] = manifest["spec"]
        self.name: str = manifest["name"]

    def _load(self, name: str) -> np.ndarray:
        return np.load(self.directory / name, mmap_mode="r")

    @cached_property
    def ws_documents(self) -> np.ndarray:
        return np.asarray(self._load("ws_documents.npy"))

    @cached_property
    def doc_workspace(self) -> np.ndarray:
        return np.asarray(self._load("doc_workspace.npy"))

    @cached_property
    def doc_topic(self) -> np.ndarray:
        return np.asarray(self._load("doc_topic.npy"))

    @cached_property
    def memberships(self) -> np.ndarray:
        return np.asarray(self._load("memberships.npy"))

    @property
    def n_chunks(self) -> int:
        return int(self.manifest["counts"]["chunks"])

    @property
    def chunks_per_document(self) -> int:
        return int(self.spec["chunks_per_document"])

    @cached_property
    def doc_offsets(self) -> np.ndarray:
        """(D + 1,) first chunk of each document, and the total at the end."""
        path = self.directory / "doc_offsets.npy"
        if path.exists():
            return np.asarray(np.load(path))
        return np.arange(len(self.doc_workspace) + 1, dtype=np.int64) * self.chunks_per_document

    def chunks_of(self, doc: int) -> range:
        return range(int(self.doc_offsets[doc]), int(self.doc_offsets[doc + 1]))

    def chunk_documents(self, index: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.doc_offsets, index, side="right") - 1

    @property
    def has_ada(self) -> bool:
        """Does the corpus carry ada-002's own vectors (loaded as the study column embedding_ada)?"""
        return columns.own(self.directory, "ada")

    @property
    def has_embeddings(self) -> bool:
        return (self.directory / "emb_1536.npy").exists()

    def uuid(self, kind: str, index: int) -> uuid.UUID:
        return ids.to_uuid(self.digest, kind, index)

    def uuids(self, kind: str, indices: np.ndarray) -> np.ndarray:
        return ids.uuid_bytes(self.digest, kind, indices)

    @cached_property
    def names(self) -> dict | None:
        """Imported corpora keep their workspace and document names."""
        import json

        path = self.directory / "names.json"
        return json.loads(path.read_text()) if path.exists() else None

    def workspace_name(self, index: int) -> str:
        if self.names:
            return self.names["workspaces"][index][:200]
        return f"{self.name} workspace {index:05d}"

    def role(self, code: int) -> str:
        return ROLES[int(code)]

    @cached_property
    def models(self) -> tuple[str, str]:
        """The labels of the 1536 and 768 columns' models: the manifest's (imported and embedded corpora
        say which provider, model and transformation made each column), else the synthetic stand-ins."""
        labels = (self.manifest.get("embedding") or {}).get("labels") or {}
        return labels.get("1536", MODEL_1536), labels.get("768", MODEL_768)

    def chunk_blocks(self, rows: int, start: int = 0) -> Iterator[ChunkBlock]:
        emb = columns.ColumnRows(self.directory, "1536")
        short = columns.ColumnRows(self.directory, "768")
        ada = columns.ColumnRows(self.directory, "ada") if self.has_ada else None
        for first in range(start, self.n_chunks, rows):
            stop = min(self.n_chunks, first + rows)
            index = np.arange(first, stop)
            doc = self.chunk_documents(index)
            position = index - self.doc_offsets[doc]
            content = read_texts(self.directory, first, stop)
            if content is None:
                topics = self.doc_topic[doc]
                content = [
                    f"[topic {t}] document {d} chunk {c}: synthetic passage"
                    for t, d, c in zip(topics.tolist(), doc.tolist(), position.tolist(), strict=True)
                ]
            yield ChunkBlock(
                first,
                self.uuids("chunk", index),
                self.uuids("workspace", self.doc_workspace[doc]),
                self.uuids("document", doc),
                position,
                content,
                short.rows(first, stop),
                emb.rows(first, stop),
                self.models,
                ada.rows(first, stop) if ada is not None else None,
            )

    def queries(self) -> dict[str, np.ndarray]:
        with np.load(self.directory / "queries.npz") as data:
            return {key: data[key] for key in data.files}

    def query_vectors(self) -> dict[str, np.ndarray]:
        """Each column's query vectors (Q, width): `vector_<column>` in queries.npz. Corpora written
        before columns had their own kept one `vector` (1536) and derived 768 from it."""
        data = self.queries()
        found = {name: data[f"vector_{name}"] for name in columns.COLUMNS if f"vector_{name}" in data}
        if found:
            return found
        if self.manifest.get("generator_version") == LEGACY_IMPORT and columns.own(self.directory, "768"):
            raise DimbenchError(
                f"{self.directory} was imported by an older dimbench that scored its own 768-d embeddings "
                "against the 1536 column's ground truth: import it again"
            )
        legacy = {"1536": data["vector"], "768": embeddings.shorten(data["vector"])}
        return legacy | ({"ada": data["vector_ada"]} if "vector_ada" in data else {})

    def describe(self) -> dict[str, Any]:
        # Imported corpora also say which of their parts were the team's and which models made them.
        extra = {key: self.manifest[key] for key in ("provenance", "embedding") if self.manifest.get(key)}
        return {
            "name": self.name,
            "digest": self.digest,
            "spec": self.spec,
            "counts": self.manifest["counts"],
            "statistics": self.manifest.get("statistics"),
            "calibration": self.manifest.get("calibration"),
            "assumptions": self.manifest.get("assumptions"),
            **extra,
        }


def bucket_name(code: int) -> str:
    return BUCKETS[int(code)]
