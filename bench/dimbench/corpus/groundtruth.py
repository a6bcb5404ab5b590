"""Exact top-k per query among the rows its user may see (numpy, by workspace), and corpus statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dimbench.corpus import columns
from dimbench.corpus.arrays import RowReader
from dimbench.corpus.structure import Structure


def visibility(structure: Structure, plan: dict[str, np.ndarray]) -> np.ndarray:
    """(Q, W) bool: which workspaces each query may search (its workspace, or all of its user's)."""
    by_user = structure.user_workspaces()
    mask = np.zeros((len(plan["user"]), len(structure.ws_documents)), dtype=bool)
    for i, (user, ws) in enumerate(zip(plan["user"], plan["workspace"], strict=True)):
        mask[i, [int(ws)] if ws >= 0 else by_user[int(user)]] = True
    return mask


SLACK = 32  # candidates beyond k a block keeps: exact unless more than this many tie at the k-th distance


class TopK:
    """Running top-k (smallest distance) per query over blocks of candidates."""

    def __init__(self, n_queries: int, k: int) -> None:
        self.k = k
        # k places per query from the start, empty (id -1, distance inf) until candidates fill them
        self.ids = np.full((n_queries, k), -1, dtype=np.int64)
        self.dist = np.full((n_queries, k), np.inf, dtype=np.float32)

    def push(self, dist: np.ndarray, first_id: int, rows: np.ndarray | None = None) -> None:
        """Candidates first_id, first_id + 1, … at `dist` (one row per query: all of them, or those of
        `rows` in that order)."""
        ids = np.broadcast_to(np.arange(first_id, first_id + dist.shape[1]), dist.shape)
        mine = slice(None) if rows is None else rows
        keep = self.k + SLACK
        if dist.shape[1] > keep:
            # Only a block's nearest can enter the top k: a linear-time partition to k + SLACK of them
            # before the sort (the slack keeps ties at the boundary for the stable order below).
            part = np.argpartition(dist, keep - 1, axis=1)[:, :keep]
            dist = np.take_along_axis(dist, part, axis=1)
            ids = np.take_along_axis(ids, part, axis=1)
        all_d = np.concatenate([self.dist[mine], dist], axis=1)
        all_i = np.concatenate([self.ids[mine], ids], axis=1)
        # Stable order (distance, then id) so ties resolve the same way every time.
        order = np.lexsort((all_i, all_d), axis=1)[:, : self.k]
        self.dist[mine] = np.take_along_axis(all_d, order, axis=1)
        self.ids[mine] = np.take_along_axis(all_i, order, axis=1)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(Q, k) ids (-1 where fewer rows were visible) and distances (inf there)."""
        ids, dist = self.ids.copy(), self.dist.copy()
        dist[ids < 0] = np.inf
        dist[~np.isfinite(dist)] = np.inf
        ids[~np.isfinite(dist)] = -1
        return ids, dist


def exact_topk(
    k: int,
    block_rows: int,
    structure: Structure,
    plan: dict[str, np.ndarray],
    directory: Path,
    queries: dict[str, np.ndarray],
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """truth_<column>_ids / truth_<column>_dist for each column in `queries` (its query vectors), each
    searched over that column's own rows (columns.py): cosine distance = 1 - dot."""
    from tqdm import tqdm

    visible = visibility(structure, plan)
    sources = {name: columns.source_file(directory, name) for name in queries}
    readers = {file: RowReader(Path(directory) / file) for file in set(sources.values())}
    tops = {name: TopK(len(q), k) for name, q in queries.items()}
    starts, sizes = structure.ws_start, structure.ws_chunks
    try:
        with tqdm(total=structure.n_chunks, desc="ground truth", unit="chunk", disable=not progress) as bar:
            # Workspace by workspace (its chunks are contiguous), each against only the queries that may
            # see it: a query sees a few workspaces, so this is a fraction of every query against every
            # row with the hidden ones masked after (55 % of small's corpus generation before).
            for ws, askers in enumerate(visible.T):
                rows = np.flatnonzero(askers)
                first, end = int(starts[ws]), int(starts[ws] + sizes[ws])
                for start in range(first, end, block_rows) if rows.size else ():
                    stop = min(end, start + block_rows)
                    raw = {file: reader.rows(start, stop) for file, reader in readers.items()}
                    for name, q in queries.items():
                        block = raw[sources[name]]
                        if columns.derived(directory, name):
                            block = columns.derive(block)
                        tops[name].push((1.0 - q[rows] @ block.T).astype(np.float32), start, rows)
                bar.update(end - first)
    finally:
        for reader in readers.values():
            reader.close()
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
    structure: Structure,
    directory: Path,
    plan: dict[str, np.ndarray],
    truth: dict[str, np.ndarray],
    *,
    seed: int,
    users: int,
) -> dict[str, Any]:
    """Pairwise cosines of each column's own rows, how far 768's and 1536's exact answers agree, tenancy."""
    rng = np.random.default_rng([seed, 7])
    rows = np.sort(rng.choice(structure.n_chunks, size=min(1500, structure.n_chunks), replace=False))
    cosine = {}
    for name in columns.held(directory):
        column = columns.ColumnRows(directory, name)
        cosine[name] = pairwise_cosine(column.take(rows))
        column.close()
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
        "memberships_per_user": float(len(structure.memberships) / users),
    }
