"""Metrics derived from raw per-query results. Pure functions: no database, no files."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Distances from the server (float4 arithmetic) and from numpy (float32) differ in the last bits;
# a returned row whose distance ties the k-th true distance within this slack counts as correct.
TIE_EPSILON = 1e-5


def recall_at_k(
    returned_ids: Sequence,
    returned_distances: Sequence[float],
    true_ids: Sequence,
    true_distances: Sequence[float],
    k: int,
    epsilon: float = TIE_EPSILON,
) -> float:
    """Share of the true top-k found, where any row as close as the k-th true row counts (ties).

    `true_ids` may hold fewer than k rows when the user can see fewer than k; the denominator is then
    what exists. Duplicated returned ids count once.
    """
    n_true = min(len(true_ids), k)
    if n_true == 0:
        return 1.0
    threshold = float(true_distances[n_true - 1]) + epsilon
    wanted = set(true_ids[:n_true])
    seen = set()
    hits = 0
    for rid, dist in zip(returned_ids[:k], returned_distances[:k], strict=True):
        if rid in seen:
            continue
        seen.add(rid)
        if rid in wanted or float(dist) <= threshold:
            hits += 1
    return min(hits, n_true) / n_true


def percentiles(values_ms: Sequence[float], qs: Sequence[int] = (50, 95, 99)) -> dict[str, float | None]:
    """{"p50": …, "p95": …, "p99": …} with linear interpolation; None for an empty sample."""
    if len(values_ms) == 0:
        return {f"p{q}": None for q in qs}
    arr = np.asarray(values_ms, dtype=np.float64)
    return {f"p{q}": float(np.percentile(arr, q)) for q in qs}


Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def recall_interval(values: Sequence[float], z: float = Z95) -> list[float] | None:
    """95 % interval of a mean recall: the Wilson score interval over the n queries.

    Every per-query recall lies in [0, 1], so its variance is at most mu(1 - mu): the Wilson interval,
    which assumes exactly that variance, is conservative for recall and — unlike a bootstrap — does not
    collapse to a point when every query in a small sample is perfect (20 perfect queries: [0.84, 1]).
    """
    n = len(values)
    if n == 0:
        return None
    p = float(np.clip(np.mean(np.asarray(values, dtype=np.float64)), 0.0, 1.0))
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def decided(interval: Sequence[float] | None, target: float, half_width: float) -> bool:
    """Is this recall interval enough to judge the cell against the target?

    Yes when the interval lies wholly on one side of the target, or is narrower than ±half_width.
    """
    if interval is None:
        return False
    lo, hi = interval
    return lo >= target or hi < target or (hi - lo) / 2 <= half_width


def percentile_ci(
    values_ms: Sequence[float], q: float = 95, *, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> list[float] | None:
    """Percentile-bootstrap interval of the q-th percentile (e.g. of p95 latency); deterministic."""
    if len(values_ms) == 0:
        return None
    arr = np.asarray(values_ms, dtype=np.float64)
    rng = np.random.default_rng(seed)
    stats = np.percentile(arr[rng.integers(0, len(arr), size=(resamples, len(arr)))], q, axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def dcg(grades: Sequence[int], k: int) -> float:
    g = np.asarray(grades[:k], dtype=np.float64)
    if g.size == 0:
        return 0.0
    discounts = np.log2(np.arange(2, g.size + 2))
    return float(((2.0**g - 1.0) / discounts).sum())


def ndcg_at_k(returned_grades: Sequence[int], ideal_grades: Sequence[int], k: int = 10) -> float | None:
    """nDCG@k: DCG of what came back over DCG of the best possible order of the labelled rows.

    None when there is nothing relevant to find (the ratio is undefined, not zero).
    """
    ideal = dcg(sorted(ideal_grades, reverse=True), k)
    if ideal == 0.0:
        return None
    return dcg(returned_grades, k) / ideal


def short_share(returned_counts: Sequence[int], expected_counts: Sequence[int]) -> float | None:
    """Share of queries that returned fewer rows than they should (min(k, visible rows))."""
    if len(returned_counts) == 0:
        return None
    short = sum(1 for got, want in zip(returned_counts, expected_counts, strict=True) if got < want)
    return short / len(returned_counts)


def mean_ci(
    values: Sequence[float], *, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> list[float] | None:
    """Percentile-bootstrap interval of a mean over queries (nDCG, answer recall); deterministic."""
    if len(values) == 0:
        return None
    arr = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), size=(resamples, len(arr)))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def paired_relative_gap(
    values: Sequence[float],
    reference: Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, list[float]] | None:
    """(mean(values) − mean(reference)) / mean(reference) over the same queries, with a paired bootstrap
    interval (each resample takes the same queries from both): how much a configuration's quality falls
    short of the reference's, as a share of it. None without pairs or with a reference of zero."""
    v = np.asarray(values, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if v.size == 0 or v.size != r.size or r.mean() <= 0:
        return None
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, v.size, size=(resamples, v.size))
    ref_means = r[picks].mean(axis=1)
    gaps = np.where(
        ref_means > 0, (v[picks].mean(axis=1) - ref_means) / np.where(ref_means > 0, ref_means, 1), 0
    )
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(gaps, [alpha, 1.0 - alpha])
    return float((v.mean() - r.mean()) / r.mean()), [float(lo), float(hi)]
