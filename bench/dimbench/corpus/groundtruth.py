"""Exact top-k per query among the rows its user may see (numpy, blocked), and corpus statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dimbench.corpus import embeddings
from dimbench.corpus.arrays import RowReader
from dimbench.corpus.spec import Spec
from dimbench.corpus.structure import Structure


def visibility(structure: Structure, plan: dict[str, np.ndarray]) -> np.ndarray:
    """(Q, W) bool: which workspaces each query may search (its workspace, or all of its user's)."""
    by_user = structure.user_workspaces()
    mask = np.zeros((len(plan["user"]), len(structure.ws_documents)), dtype=bool)
    for i, (user, ws) in enumerate(zip(plan["user"], plan["workspace"], strict=True)):
        mask[i, [int(ws)] if ws >= 0 else by_user[int(user)]] = True
    return mask


class TopK:
    """Running top-k (smallest distance) per query over blocks of candidates."""

    def __init__(self, n_queries: int, k: int) -> None:
        self.k = k
        self.ids = np.full((n_queries, 0), -1, dtype=np.int64)
        self.dist = np.zeros((n_queries, 0), dtype=np.float32)

    def push(self, dist: np.ndarray, first_id: int) -> None:
        ids = np.broadcast_to(np.arange(first_id, first_id + dist.shape[1]), dist.shape)
        all_d = np.concatenate([self.dist, dist], axis=1)
        all_i = np.concatenate([self.ids, ids], axis=1)
        # Stable order (distance, then id) so ties resolve the same way every time.
        order = np.lexsort((all_i, all_d), axis=1)[:, : self.k]
        self.dist = np.take_along_axis(all_d, order, axis=1)
        self.ids = np.take_along_axis(all_i, order, axis=1)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(Q, k) ids (-1 where fewer rows were visible) and distances (inf there)."""
        ids, dist = self.ids.copy(), self.dist.copy()
        dist[ids < 0] = np.inf
        dist[~np.isfinite(dist)] = np.inf
        ids[~np.isfinite(dist)] = -1
        if ids.shape[1] < self.k:
            pad = self.k - ids.shape[1]
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            dist = np.pad(dist, ((0, 0), (0, pad)), constant_values=np.inf)
        return ids, dist


def exact_topk(
    spec: Spec,
    structure: Structure,
    emb: np.ndarray,
    ada: np.ndarray | None,
    plan: dict[str, np.ndarray],
    vectors: np.ndarray,
    ada_vectors: np.ndarray | None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """truth_<dim>_ids / truth_<dim>_dist for 768, 1536 (and ada): cosine distance = 1 - dot."""
    from tqdm import tqdm

    visible = visibility(structure, plan)
    chunk_ws = np.repeat(np.arange(len(structure.ws_documents)), structure.ws_chunks)
    q768 = embeddings.shorten(vectors)
    tops = {"768": TopK(len(vectors), spec.k), "1536": TopK(len(vectors), spec.k)}
    if ada is not None:
        tops["ada"] = TopK(len(vectors), spec.k)
    n = len(emb)
    with tqdm(total=n, desc="ground truth", unit="chunk", disable=not progress) as bar:
        for start in range(0, n, spec.block_rows):
            stop = min(n, start + spec.block_rows)
            block = emb.rows(start, stop)
            hidden = ~visible[:, chunk_ws[start:stop]]
            for name, q, b in (("1536", vectors, block), ("768", q768, embeddings.shorten(block))):
                d = (1.0 - q @ b.T).astype(np.float32)
                d[hidden] = np.inf
                tops[name].push(d, start)
            if ada is not None and ada_vectors is not None:
                d = (1.0 - ada_vectors @ ada.rows(start, stop).T).astype(np.float32)
                d[hidden] = np.inf
                tops["ada"].push(d, start)
            bar.update(stop - start)
    out: dict[str, np.ndarray] = {}
    for name, top in tops.items():
        ids, dist = top.result()
        out[f"truth_{name}_ids"], out[f"truth_{name}_dist"] = ids, dist
    return out


def pairwise_cosine(sample: np.ndarray) -> dict[str, float]:
    sims = sample @ sample.T
    upper = sims[np.triu_indices(len(sample), k=1)]
    return {
        "mean": float(upper.mean()),
        "std": float(upper.std()),
        **{f"p{q}": float(np.percentile(upper, q)) for q in (1, 50, 99)},
    }


def statistics(
    spec: Spec,
    structure: Structure,
    directory: Path,
    plan: dict[str, np.ndarray],
    truth: dict[str, np.ndarray],
) -> dict[str, Any]:
    emb = RowReader(directory / "emb_1536.npy")
    rng = np.random.default_rng([spec.seed, 7])
    rows = np.sort(rng.choice(len(emb), size=min(1500, len(emb)), replace=False))
    sample = emb.take(rows)
    emb.close()
    cosine = {"1536": pairwise_cosine(sample), "768": pairwise_cosine(embeddings.shorten(sample))}
    if spec.ada:
        ada = RowReader(directory / "emb_ada.npy")
        cosine["ada"] = pairwise_cosine(ada.take(rows))
        ada.close()
    overlap = [
        len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, int((b >= 0).sum()))
        for a, b in zip(truth["truth_768_ids"], truth["truth_1536_ids"], strict=True)
    ]
    shares = structure.ws_chunks / structure.n_chunks
    from dimbench.corpus.spec import BUCKETS, bucket_of

    per_bucket = {b: 0 for b in BUCKETS}
    for s in shares:
        per_bucket[bucket_of(float(s))] += 1
    queries = {}
    for scope_i, scope in enumerate(("workspace", "all")):
        for bucket_i, bucket in enumerate(BUCKETS):
            queries[f"{scope}/{bucket}"] = int(
                ((plan["scope"] == scope_i) & (plan["bucket"] == bucket_i)).sum()
            )
    return {
        "pairwise_cosine": cosine,
        "top10_overlap_768_vs_1536": float(np.mean(overlap)) if overlap else None,
        "workspace_share": {
            "largest": float(shares.max()),
            "median": float(np.median(shares)),
            "smallest": float(shares.min()),
        },
        "workspaces_per_bucket": per_bucket,
        "queries_per_scope_bucket": queries,
        "memberships_per_user": float(len(structure.memberships) / spec.users),
    }
