"""What the requests saw, from the streams' records: per phase (requests by outcome, blocked over 1 s,
the longest stall, p95 with its interval) and a timeline of one-second bins. A request belongs to the
phase (or bin) in which it started; `null` where nothing was measured."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from dimbench.stats import percentile_ci
from dimbench.study.live_migration_traffic import Sent

BLOCKED_MS = 1000.0  # a request slower than this was blocked (the "lock waits over 1 s")


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def outcomes(sent: Iterable[Sent]) -> dict[str, Any]:
    """Requests by outcome (every one offered: `total` is their sum) and the failures by error."""
    sent = list(sent)
    counts = Counter(s.outcome for s in sent)
    errors = Counter(s.error for s in sent if s.error)
    by = {k: counts.get(k, 0) for k in ("ok", "failed", "skipped", "serialization", "deadlock", "unsent")}
    return {"total": len(sent), "by_outcome": by, "errors": dict(sorted(errors.items()))}


def latency(sent: Iterable[Sent]) -> dict[str, Any]:
    """p95 of the completed requests with its bootstrap interval, blocked (> 1 s) and the longest."""
    return latency_of([s.latency_ms for s in sent if s.outcome == "ok" and s.latency_ms is not None])


def latency_of(ms: Sequence[float]) -> dict[str, Any]:
    if not ms:
        return {"n": 0, "p95_ms": None, "p95_interval_ms": None, "blocked": 0, "longest_ms": None}
    interval = percentile_ci(ms, 95)
    return {
        "n": len(ms),
        "p95_ms": _round(float(np.percentile(ms, 95))),
        "p95_interval_ms": None if interval is None else [_round(v) for v in interval],
        "blocked": sum(v > BLOCKED_MS for v in ms),
        "longest_ms": _round(max(ms)),
    }


def window(sent: Sequence[Sent], start: float, end: float) -> list[Sent]:
    return [s for s in sent if start <= s.start < end]


def phase_traffic(streams: dict[str, Sequence[Sent]], start: float, end: float) -> dict[str, Any]:
    """Each stream in [start, end): its outcomes and latency summary."""
    out = {}
    for name, sent in streams.items():
        inside = window(sent, start, end)
        if inside:
            out[name] = {**outcomes(inside), **latency(inside)}
    return out


def ratio(busy: Sequence[float], idle: Sequence[float], resamples: int = 2000) -> dict[str, Any]:
    """p95(busy) / p95(idle) with a percentile-bootstrap interval (each side resampled on its own)."""
    if len(busy) < 2 or len(idle) < 2:
        return {"ratio": None, "interval": None}
    rng = np.random.default_rng(0)
    b, i = np.asarray(busy), np.asarray(idle)
    boot_b = np.percentile(b[rng.integers(0, len(b), (resamples, len(b)))], 95, axis=1)
    boot_i = np.percentile(i[rng.integers(0, len(i), (resamples, len(i)))], 95, axis=1)
    lo, hi = np.quantile(boot_b / boot_i, [0.025, 0.975])
    return {
        "ratio": _round(np.percentile(b, 95) / np.percentile(i, 95), 3),
        "interval": [_round(lo, 3), _round(hi, 3)],
    }


def completed_ms(sent: Sequence[Sent], start: float, end: float) -> list[float]:
    return [s.latency_ms for s in window(sent, start, end) if s.outcome == "ok" and s.latency_ms is not None]


def timeline(streams: dict[str, Sequence[Sent]], t0: float, t1: float, bin_s: float = 1.0) -> dict[str, Any]:
    """Per stream and one-second bin from t0: requests started, not ok, p95 of the completed (null: none)."""
    bins = max(1, int(np.ceil((t1 - t0) / bin_s)))
    out: dict[str, Any] = {"bin_s": bin_s, "bins": bins, "streams": {}}
    for name, sent in streams.items():
        n, bad, p95 = [0] * bins, [0] * bins, [None] * bins
        done: list[list[float]] = [[] for _ in range(bins)]
        for s in sent:
            b = int((s.start - t0) // bin_s)
            if 0 <= b < bins:
                n[b] += 1
                if s.outcome == "ok" and s.latency_ms is not None:
                    done[b].append(s.latency_ms)
                else:
                    bad[b] += 1
        p95 = [_round(float(np.percentile(d, 95))) if d else None for d in done]
        out["streams"][name] = {"requests": n, "not_ok": bad, "p95_ms": p95}
    return out
