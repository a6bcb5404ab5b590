"""An imported corpus's questions made into the study's queries: each column's query vectors, exact
top-k over that column's own rows, statistics, counts per cell, and the manifest (written last).

Runs once every embedding column the corpus holds has its rows (at import when the rows carried
embeddings, else after `dimbench corpus embed`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dimbench.corpus import columns, generate, groundtruth
from dimbench.corpus.spec import BUCKETS, bucket_of
from dimbench.corpus.structure import Structure
from dimbench.errors import DimbenchError
from dimbench.realdata import asks as asks_module
from dimbench.realdata import provenance

SCOPES = ("workspace", "all")


def structure_of(directory: Path) -> Structure:
    offsets = np.load(directory / "doc_offsets.npy")
    return Structure(
        np.load(directory / "ws_documents.npy"),
        np.load(directory / "doc_workspace.npy"),
        np.load(directory / "doc_topic.npy"),
        np.load(directory / "memberships.npy"),
        0,
        doc_chunks=np.diff(offsets),
    )


def plan_of(structure: Structure, asks: asks_module.Asks) -> dict[str, np.ndarray]:
    """user, scope, workspace and size bucket of every question, on the corpus as loaded."""
    share = structure.ws_chunks / max(1, structure.n_chunks)
    by_user = structure.user_workspaces()
    buckets = []
    for user, ws in zip(asks.users.tolist(), asks.workspaces.tolist(), strict=True):
        seen = share[ws] if ws >= 0 else share[by_user[user]].sum()
        buckets.append(BUCKETS.index(bucket_of(float(seen))))
    return {
        "user": asks.users.astype(np.int64),
        "scope": (asks.workspaces < 0).astype(np.int8),
        "workspace": asks.workspaces.astype(np.int64),
        "bucket": np.asarray(buckets, dtype=np.int8),
    }


def query_vectors(directory: Path, asks: asks_module.Asks) -> dict[str, np.ndarray]:
    """Each column's query vectors: the questions' own embeddings for that column (768's derived from
    their 1536 exactly where the rows' 768 is derived)."""
    out = {}
    for name in columns.held(directory):
        if columns.derived(directory, name):
            out[name] = columns.derive(asks.vectors["1536"], "the questions' derived 768 embeddings")
        elif name in asks.vectors:
            out[name] = columns.checked(asks.vectors[name], f"the questions' {name} embeddings")
        else:
            raise DimbenchError(
                f"{directory}: the chunks have a {name} column but the questions have no {name} embeddings"
            )
    return out


def cell_counts(plan: dict[str, np.ndarray]) -> dict[str, int]:
    return {
        f"{scope}/{bucket}": int(((plan["scope"] == s) & (plan["bucket"] == b)).sum())
        for s, scope in enumerate(SCOPES)
        for b, bucket in enumerate(BUCKETS)
    }


def finish(directory: Path, manifest: dict[str, Any]) -> None:
    """queries.npz (per-column vectors, exact truth, graded labels) and the manifest's statistics."""
    spec = manifest["spec"]
    structure = structure_of(directory)
    asks = asks_module.load(directory)
    plan = plan_of(structure, asks)
    vectors = query_vectors(directory, asks)
    truth = groundtruth.exact_topk(
        spec["k"], spec["block_rows"], structure, plan, directory, vectors, progress=False
    )
    np.savez(
        directory / "queries.npz",
        **plan,
        **{f"vector_{name}": v for name, v in vectors.items()},
        source_document=asks.source_documents,
        query_id=np.asarray(asks.ids, dtype=str),
        qrel_query=asks.qrels[:, 0],
        qrel_chunk=asks.qrels[:, 1],
        qrel_grade=asks.qrels[:, 2],
        **truth,
    )
    users = int(structure.memberships[:, 1].max()) + 1
    manifest["statistics"] = groundtruth.statistics(
        structure, directory, plan, truth, seed=spec["seed"], users=users
    )
    counts = cell_counts(plan)
    wanted = (manifest.get("queries") or {}).get("asked_per_cell")
    manifest.setdefault("queries", {})["per_cell"] = counts
    if wanted:
        manifest["queries"]["fewer_than_asked"] = {c: n for c, n in counts.items() if n < wanted}
    write_manifest(directory, manifest, queries=len(asks))


def write_manifest(directory: Path, manifest: dict[str, Any], queries: int) -> None:
    """Counts of an imported corpus, then the one manifest writer."""
    structure = structure_of(directory)
    manifest["counts"] = {
        "workspaces": int(len(structure.ws_documents)),
        "users": int(structure.memberships[:, 1].max()) + 1,
        "memberships": int(len(structure.memberships)),
        "documents": int(len(structure.doc_topic)),
        "chunks": structure.n_chunks,
        "queries": queries,
    }
    manifest["embedded"] = columns.own(directory, "1536")
    provenance.refresh(manifest, directory)
    generate.write_manifest(directory, manifest)
