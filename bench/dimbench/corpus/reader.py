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

from dimbench.corpus import embeddings, ids
from dimbench.corpus.arrays import RowReader
from dimbench.corpus.spec import BUCKETS
from dimbench.corpus.structure import ROLES

MODEL_1536 = "text-embedding-3-small"  # synthetic stand-in: "3-small-like" (see embeddings.py)
MODEL_768 = "text-embedding-3-small@768"


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

    def chunk_blocks(self, rows: int, start: int = 0) -> Iterator[ChunkBlock]:
        emb = RowReader(self.directory / "emb_1536.npy")
        own_768 = (
            RowReader(self.directory / "emb_768.npy") if (self.directory / "emb_768.npy").exists() else None
        )
        for first in range(start, self.n_chunks, rows):
            stop = min(self.n_chunks, first + rows)
            index = np.arange(first, stop)
            doc = self.chunk_documents(index)
            position = index - self.doc_offsets[doc]
            block = emb.rows(first, stop)
            content = read_texts(self.directory, first, stop)
            if content is None:
                topics = self.doc_topic[doc]
                content = [
                    f"[topic {t}] document {d} chunk {c}: synthetic passage"
                    for t, d, c in zip(topics.tolist(), doc.tolist(), position.tolist(), strict=True)
                ]
            short = own_768.rows(first, stop) if own_768 is not None else embeddings.shorten(block)
            yield ChunkBlock(
                first,
                self.uuids("chunk", index),
                self.uuids("workspace", self.doc_workspace[doc]),
                self.uuids("document", doc),
                position,
                content,
                short,
                block,
            )

    def queries(self) -> dict[str, np.ndarray]:
        with np.load(self.directory / "queries.npz") as data:
            return {key: data[key] for key in data.files}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "spec": self.spec,
            "counts": self.manifest["counts"],
            "statistics": self.manifest.get("statistics"),
            "calibration": self.manifest.get("calibration"),
            "assumptions": self.manifest.get("assumptions"),
        }


def bucket_name(code: int) -> str:
    return BUCKETS[int(code)]
