"""The write-path verdict: does a design qualify for a live platform? Pure functions over one design's
entry of `live.json` (what `dimbench live` measured); no database, no files.

A design qualifies only if, with the grid's ingest rate (per 100k chunks) and churn offered:
  - no request failed — searches (pgbench: failed, aborted, skipped as too late, unsent after an abort),
    writes (statement or lock timeouts, deadlocks, serialization failures, errors) and probes alike;
  - the ingest ran at the offered rate (a design that cannot absorb it has not been judged at it);
  - search p95 under ingest stays within `bound` × idle, judged on the ratio's interval: its upper end
    within the bound passes, its lower end beyond the bound fails, an interval across the bound is
    *undecided* (measure longer);
  - freshness holds: every search that started after an insert committed found the new chunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_BOUND = 1.5
RATE_SHARE = 0.9  # the ingest must reach this share of the offered rate to count as run "at" it


def p95_ratio(
    idle_ms: Sequence[float], busy_ms: Sequence[float], *, resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """p95(busy) / p95(idle) with a 95 % bootstrap interval (each sample resampled on its own);
    deterministic. None when either sample is empty."""
    if len(idle_ms) == 0 or len(busy_ms) == 0:
        return {"ratio": None, "interval": None, "n_idle": len(idle_ms), "n_busy": len(busy_ms)}
    idle, busy = np.asarray(idle_ms, dtype=np.float64), np.asarray(busy_ms, dtype=np.float64)
    rng = np.random.default_rng(seed)
    a = np.percentile(idle[rng.integers(0, len(idle), size=(resamples, len(idle)))], 95, axis=1)
    b = np.percentile(busy[rng.integers(0, len(busy), size=(resamples, len(busy)))], 95, axis=1)
    ratios = b / np.maximum(a, 1e-9)
    lo, hi = np.quantile(ratios, [0.025, 0.975])
    ratio = float(np.percentile(busy, 95) / max(float(np.percentile(idle, 95)), 1e-9))
    return {"ratio": ratio, "interval": [float(lo), float(hi)], "n_idle": len(idle), "n_busy": len(busy)}


@dataclass
class Verdict:
    design: str
    status: str  # qualifies | fails | undecided | not measured
    reasons: list[str] = field(default_factory=list)

    @property
    def qualifies(self) -> bool:
        return self.status == "qualifies"

    def summary(self) -> str:
        why = "; ".join(self.reasons) if self.reasons else "every condition met"
        return f"{self.design}: {self.status} ({why})"


OK_OUTCOMES = ("ok",)


ABOVE_RATE = "search.rates"  # the phases above the platform's rate: judged on their own (holds_to)


def failed_requests(entry: Mapping[str, Any], *, above_rate: bool = False) -> dict[str, int]:
    """Every failed request of every phase, by phase and kind (an empty dict: none failed). The phases
    above the platform's rate are left out unless `above_rate`: the rule judges the platform's rate."""
    out: dict[str, int] = {}
    for phase, outcomes in _outcomes(entry):
        if phase.startswith(ABOVE_RATE) and not above_rate:
            continue
        for kind, n in outcomes.items():
            if kind not in OK_OUTCOMES and n:
                out[f"{phase}.{kind}"] = out.get(f"{phase}.{kind}", 0) + int(n)
    return out


def _outcomes(entry: Mapping[str, Any]) -> list[tuple[str, Mapping[str, int]]]:
    found: list[tuple[str, Mapping[str, int]]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                if key == "outcomes" and isinstance(inner, Mapping):
                    found.append((path or "design", inner))
                else:
                    walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for i, inner in enumerate(value):
                walk(inner, f"{path}[{i}]")

    walk(entry, "")
    return found


def judge(entry: Mapping[str, Any] | None, design: str, bound: float = DEFAULT_BOUND) -> Verdict:
    """The verdict on one design's live entry (None or without its search phases: not measured)."""
    if not entry or not entry.get("search") or not entry["search"].get("ingest"):
        return Verdict(design, "not measured", ["no search-under-ingest phase"])
    fails: list[str] = []
    open_questions: list[str] = []
    failed = failed_requests(entry)
    if failed:
        fails.append("requests failed: " + ", ".join(f"{k} {v}" for k, v in sorted(failed.items())))
    ingest = entry["search"]["ingest"].get("ingest") or {}
    offered, achieved = ingest.get("offered_chunks_per_s"), ingest.get("chunks_per_s")
    if offered and (achieved is None or achieved < RATE_SHARE * offered):
        fails.append(f"ingest reached {achieved or 0:g} of {offered:g} chunks/s offered")
    ratio = entry["search"].get("p95_ratio") or {}
    interval = ratio.get("interval")
    if interval is None:
        open_questions.append("no p95 ratio (a phase completed no search)")
    else:
        said = f"p95 under ingest {ratio['ratio']:.2f}× idle [{interval[0]:.2f}, {interval[1]:.2f}]"
        if interval[0] > bound:
            fails.append(f"{said} > {bound:g}×")
        elif interval[1] > bound:
            open_questions.append(f"{said} straddles {bound:g}×")
    fresh = entry.get("freshness") or {}
    if not fresh.get("probes"):
        open_questions.append("freshness not measured")
    elif fresh.get("found") != fresh.get("probes"):
        fails.append(f"freshness: {fresh.get('found')} of {fresh.get('probes')} new chunks found at once")
    if fails:
        return Verdict(design, "fails", fails + open_questions)
    if open_questions:
        return Verdict(design, "undecided", open_questions)
    return Verdict(design, "qualifies", [])


def judge_rate(phase: Mapping[str, Any], bound: float = DEFAULT_BOUND) -> Verdict:
    """One search-under-ingest phase (the platform's rate or a multiple of it) judged as the rule judges
    the platform's: its own requests, offered rate, p95 ratio to idle and freshness."""
    multiple = (phase.get("ingest") or {}).get("rate_multiple", 1.0)
    entry = {
        "search": {"ingest": phase, "p95_ratio": phase.get("p95_ratio")},
        "freshness": phase.get("freshness"),
    }
    return judge(entry, f"{multiple:g}×", bound)


def holds_to(entry: Mapping[str, Any] | None, bound: float = DEFAULT_BOUND) -> dict[str, Any] | None:
    """The highest multiple of the platform's ingest rate up to which every measured rate qualifies
    (`multiple` None: not even the platform's own rate), the rate above it that did not and why."""
    search = (entry or {}).get("search") or {}
    if not search.get("ingest"):
        return None
    base = {**search["ingest"], "p95_ratio": search.get("p95_ratio"), "freshness": entry.get("freshness")}
    phases = sorted(
        [base, *(search.get("rates") or [])], key=lambda p: (p.get("ingest") or {}).get("rate_multiple", 1.0)
    )
    held: dict[str, Any] = {"multiple": None, "chunks_per_s": None, "next": None, "measured": []}
    for phase in phases:
        ingest = phase.get("ingest") or {}
        verdict = judge_rate(phase, bound)
        held["measured"].append(ingest.get("rate_multiple", 1.0))
        if verdict.status != "qualifies":
            if held["next"] is None:
                held["next"] = {"multiple": ingest.get("rate_multiple", 1.0), "verdict": verdict.summary()}
            continue
        if held["next"] is None:
            held["multiple"], held["chunks_per_s"] = (
                ingest.get("rate_multiple", 1.0),
                ingest.get("offered_chunks_per_s"),
            )
    return held


def judge_all(live: Mapping[str, Any], bound: float | None = None) -> list[Verdict]:
    """Every design of a live.json, with the bound its grid stated (or `bound`)."""
    stated = (live.get("settings") or {}).get("p95_bound", DEFAULT_BOUND)
    return [judge(entry, name, bound or stated) for name, entry in (live.get("designs") or {}).items()]
