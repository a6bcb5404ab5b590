"""Corpus specs (datasets/<name>.toml): parsed and validated into a frozen dataclass, one-line errors."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dimbench.errors import DimbenchError
from dimbench.paths import plain_name, spec_path
from dimbench.tomlcheck import in_range, no_unknown, read_toml, typed

BUCKETS = ("tiny", "small", "medium", "large")
# A bucket is the share of all rows a query may see: tiny < 0.1% ≤ small < 1% ≤ medium < 10% ≤ large.
BUCKET_EDGES = (0.001, 0.01, 0.10)


@dataclass(frozen=True)
class Spec:
    name: str
    seed: int
    chunks: int  # total chunks (approximate: rounded to whole documents per workspace)
    workspaces: int
    zipf_exponent: float  # workspace sizes ∝ 1 / rank^exponent: a few huge, many tiny
    users: int
    max_memberships: int  # each user belongs to 1..max workspaces
    chunks_per_document: int
    topics: int
    latent_dim: int  # intrinsic dimension of the topic structure (real embeddings: low)
    topic_spread: float  # how far documents stray from their topic (latent units)
    chunk_spread: float  # how far chunks stray from their document
    noise: float  # isotropic noise in the full 1536 dims (what no model explains)
    matryoshka_decay: float  # energy of dim j ∝ (1 + j/256)^-decay: early dims carry more
    matryoshka_tail_share: float  # THE 768-vs-1536 assumption: signal share only dims 768.. carry
    ada: bool  # also generate an independent anisotropic "ada-like" 1536-d embedding
    # ada's distance from 3-small: the isotropic noise of ada's own embedding (chunks and questions), in
    # the same units as `noise`; more noise, lower exact nDCG@10 than 3-small's (calibrated in small.toml)
    ada_noise: float
    queries_per_bucket: int  # per scope and size bucket
    query_spread: float  # how far a question strays from the chunk it is about
    query_topic_share: float  # how much of a question is about its topic rather than its document
    k: int
    block_rows: int  # generation block: bounds memory whatever the corpus size

    @property
    def digest(self) -> str:
        fields = asdict(self)
        if not self.ada:  # ada's parameters change nothing without ada: a corpus's identity keeps them out
            fields = {k: v for k, v in fields.items() if k not in ADA_ONLY}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


ADA_ONLY = ("ada_noise",)


FIELDS: dict[str, tuple[type, Any]] = {  # key -> (type, default or None if required)
    "seed": (int, None),
    "chunks": (int, None),
    "workspaces": (int, None),
    "zipf_exponent": (float, 1.0),
    "users": (int, None),
    "max_memberships": (int, 3),
    "chunks_per_document": (int, 10),
    "topics": (int, None),
    "latent_dim": (int, 48),
    "topic_spread": (float, 0.55),
    "chunk_spread": (float, 0.45),
    "noise": (float, 0.25),
    "matryoshka_decay": (float, 0.6),
    "matryoshka_tail_share": (float, 0.15),
    "ada": (bool, False),
    "ada_noise": (float, 0.45),  # calibrated: see datasets/small.toml
    "queries_per_bucket": (int, 20),
    "query_spread": (float, 0.5),
    "query_topic_share": (float, 0.5),
    "k": (int, 10),
    "block_rows": (int, 8192),
}
MAX_INT = 2**32 - 1  # seeds and counts: numpy's generators take any, but no corpus needs more
# A float beyond these is a typo, not an experiment (embeddings are unit vectors; spreads are latent units).
MAX_FLOAT = {"zipf_exponent": 10.0, "noise": 100.0, "ada_noise": 100.0, "matryoshka_decay": 100.0}
POSITIVE = {
    "chunks",
    "workspaces",
    "users",
    "max_memberships",
    "chunks_per_document",
    "topics",
    "latent_dim",
    "queries_per_bucket",
    "k",
    "block_rows",
}


def load_spec(path: str | Path) -> Spec:
    """A spec file, or the name of a spec shipped with dimbench (`smoke`, `datasets/smoke.toml`)."""
    path = spec_path(path)
    name = plain_name(path.stem, "a corpus spec's file name", str(path))
    return parse_spec(read_toml(path, "corpus spec"), name, str(path))


def parse_spec(raw: dict[str, Any], name: str, where: str = "spec") -> Spec:
    corpus = raw.get("corpus")
    no_unknown(raw, {"corpus", "description"}, where)
    if not isinstance(corpus, dict):
        raise DimbenchError(f"{where}: missing table [corpus]")
    if "dims" in corpus:
        # Every corpus carries both embeddings (768 is the 1536's renormalized prefix); which columns are
        # measured is the grid's column_types. A key that changed nothing would be a lie: refuse it.
        raise DimbenchError(
            f"{where}: corpus.dims is not supported: every corpus has both 768 and 1536 dims; "
            "choose the measured columns with the grid's column_types"
        )
    no_unknown(corpus, FIELDS, where, "corpus.")
    values: dict[str, Any] = {}
    for key, (kind, default) in FIELDS.items():
        value = typed(corpus, key, kind, default, where, "corpus.")
        if key in POSITIVE and value <= 0:
            raise DimbenchError(f"{where}: corpus.{key} must be a positive integer, got {value}")
        if kind is int and not 0 <= value <= MAX_INT:
            raise DimbenchError(f"{where}: corpus.{key} must be in [0, {MAX_INT}], got {value}")
        if kind is float:
            in_range(value, 0, MAX_FLOAT.get(key, 1e6), where, f"corpus.{key}")
        values[key] = value
    spec = Spec(name=name, **values)
    _check_consistency(spec, where)
    return spec


def _check_consistency(spec: Spec, where: str) -> None:
    if spec.workspaces > spec.chunks // spec.chunks_per_document:
        raise DimbenchError(
            f"{where}: corpus.workspaces ({spec.workspaces}) needs at least one document each: at most "
            f"{spec.chunks // spec.chunks_per_document} for {spec.chunks} chunks"
        )
    if spec.users < spec.workspaces:
        raise DimbenchError(
            f"{where}: corpus.users ({spec.users}) must be ≥ corpus.workspaces (one owner each)"
        )
    if spec.max_memberships > spec.workspaces:
        raise DimbenchError(f"{where}: corpus.max_memberships exceeds corpus.workspaces")
    if not 0 <= spec.matryoshka_tail_share < 1:
        raise DimbenchError(
            f"{where}: corpus.matryoshka_tail_share must be in [0, 1), got {spec.matryoshka_tail_share}"
        )
    if not 0 <= spec.query_topic_share <= 1:
        raise DimbenchError(
            f"{where}: corpus.query_topic_share must be in [0, 1], got {spec.query_topic_share}"
        )
    if spec.k > spec.chunks:
        raise DimbenchError(f"{where}: corpus.k ({spec.k}) exceeds corpus.chunks ({spec.chunks})")
    if spec.k > 100:
        raise DimbenchError(f"{where}: corpus.k must be ≤ 100 (hnsw.ef_search caps what one scan returns)")


def bucket_of(share: float) -> str:
    for edge, name in zip(BUCKET_EDGES, BUCKETS, strict=False):
        if share < edge:
            return name
    return "large"
