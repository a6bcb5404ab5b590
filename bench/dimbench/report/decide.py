"""The decision rule, as code shared by DECISION.md and the notebook's what-if.

A configuration is (column type, index, build parameters, query parameters, iterative scan, access arm).

Rule, exactly as implemented:
1. Candidates are configurations measured under one of `arms` (default: this project's RLS designs,
   `rls` and `rls_filter`). `rls_seed` is an RLS arm too and is measured, but it is not choosable by
   default: its policies lack WITH CHECK and TO authenticated, so recommending it would ship the seed's
   defects (pass `arms=RLS_ARMS` to include it in a what-if).
2. Scopes are combined by taking the worst: a configuration qualifies only if recall@10 ≥ `recall_target`
   in EVERY (scope, workspace-size bucket) cell the run measured for its arm — one workspace and all of
   the user's workspaces are both production requests, so the weaker one decides. A cell the arm
   measured but the configuration lacks, or whose recall or p95 is null (not measured), disqualifies.
3. Its latency is the worst cell's p95; with `latency_budget_ms` set, that must be within the budget.
4. Among qualifying configurations the lowest worst-cell p95 wins. Every configuration within
   `tie_tolerance` (default 10 %) of that fastest p95 counts as tied — p95 noise between runs is of that
   order — and ties go to the smaller storage per million chunks, then the higher worst-cell recall, then
   the lower p95, then the label (stable).

Storage per million chunks = measured index bytes per row + the vector column's bytes per row in the
end state (4·d+8 for vector, 2·d+8 for halfvec). The measured table bytes are not used for ranking: during
the study the table holds both embedding columns, so its size is the same for every configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from dimbench.report.load import Results

RLS_ARMS = ("rls", "rls_filter", "rls_seed")
CHOOSABLE = ("rls", "rls_filter")
# p95 within 10 % of the fastest is a tie: run-to-run noise of a p95 on a shared machine is of that order.
TIE_TOLERANCE = 0.10
BUCKETS = ("tiny", "small", "medium", "large")
# Bytes per row of the vector column in the end state (one column; halfvec stored as a halfvec column).
COLUMN_BYTES = {"vector768": 4 * 768 + 8, "vector1536": 4 * 1536 + 8, "halfvec1536": 2 * 1536 + 8}


@dataclass(frozen=True)
class Config:
    column_type: str
    index: str
    build_params: str  # canonical JSON
    query_params: str
    iterative_scan: str
    access: str

    @property
    def label(self) -> str:
        build = ",".join(f"{k}={v}" for k, v in json.loads(self.build_params).items())
        query = ",".join(f"{k}={v}" for k, v in json.loads(self.query_params).items())
        parts = [self.column_type, f"{self.index}({build})" if build else self.index]
        if query:
            parts.append(query)
        if self.index != "exact":
            parts.append(f"iterative={self.iterative_scan}")
        parts.append(self.access)
        return " · ".join(parts)


@dataclass
class Candidate:
    config: Config
    min_recall: float | None  # None: some cell's recall was not measured
    worst_p95_ms: float | None
    worst_cell: str  # "scope/bucket" of the worst p95
    storage_bytes_per_million: float | None
    cells: int
    qualifies: bool
    recall_by_bucket: dict[str, float | None] = field(default_factory=dict)  # worst over scopes
    why_not: str = ""  # first reason it does not qualify ("" when it does)


@dataclass
class Decision:
    recall_target: float
    latency_budget_ms: float | None
    arms: tuple[str, ...]
    tie_tolerance: float
    candidates: list[Candidate]  # every configuration of every arm, best first
    chosen: Candidate | None
    baseline: Candidate | None  # best service-arm configuration under the same rule

    @property
    def rule(self) -> str:
        return rule_text(self.recall_target, self.latency_budget_ms, self.arms, self.tie_tolerance)


def rule_text(
    recall_target: float, latency_budget_ms: float | None, arms: tuple[str, ...], tie_tolerance: float
) -> str:
    budget = f", with worst-cell p95 within {latency_budget_ms:g} ms" if latency_budget_ms is not None else ""
    return (
        f"Among configurations run under {' / '.join(f'`{a}`' for a in arms)} whose recall@10 is at least "
        f"**{recall_target:.2f} in every workspace-size bucket** and every scope the run measured{budget}, "
        f"choose the lowest worst-cell p95 latency; configurations within {tie_tolerance:.0%} of that p95 "
        "count as tied, and ties go to the smaller storage (vector column + index bytes per million chunks), "
        "then the higher recall."
    )


def config_of(row: dict[str, Any]) -> Config:
    def dump(v: Any) -> str:
        return json.dumps(v, sort_keys=True)

    return Config(
        row["column_type"],
        row["index"],
        dump(row["build_params"]),
        dump(row["query_params"]),
        row["iterative_scan"],
        row["access"],
    )


def p95(row: dict[str, Any]) -> float | None:
    return (row.get("latency_ms") or {}).get("p95")


def storage_per_million(results: Results, row: dict[str, Any]) -> float | None:
    build = results.builds().get(row.get("build_key", ""))
    if not build or not build.get("rows") or build.get("index_bytes") is None:
        return None
    return (build["index_bytes"] / build["rows"] + COLUMN_BYTES[row["column_type"]]) * 1e6


def evaluate(
    config: Config,
    rows: list[dict[str, Any]],
    expected: set[tuple[str, str]],
    storage: float | None,
    recall_target: float,
    latency_budget_ms: float | None,
) -> Candidate:
    recalls = [r["recall_mean"] for r in rows]
    p95s = [p95(r) for r in rows]
    complete = None not in recalls and None not in p95s
    min_recall = min(recalls) if complete else None
    worst = (
        max(range(len(rows)), key=lambda i: (p95s[i], rows[i]["scope"], rows[i]["bucket"])) if complete else 0
    )
    worst_p95 = p95s[worst] if complete else None
    by_bucket: dict[str, float | None] = {}
    for r in sorted(rows, key=lambda r: (r["bucket"], r["scope"])):
        prev, now = by_bucket.get(r["bucket"], 1.0), r["recall_mean"]
        by_bucket[r["bucket"]] = None if prev is None or now is None else min(prev, now)
    missing = sorted(expected - {(r["scope"], r["bucket"]) for r in rows})
    why_not = ""
    if missing:
        why_not = f"not measured in {missing[0][0]}/{missing[0][1]}"
    elif not complete:
        why_not = "a cell's recall or p95 is null (not measured)"
    elif min_recall < recall_target:  # type: ignore[operator]
        low = min((r for r in rows), key=lambda r: r["recall_mean"])
        why_not = f"recall {low['recall_mean']:.3f} in {low['scope']}/{low['bucket']}"
    elif latency_budget_ms is not None and worst_p95 > latency_budget_ms:  # type: ignore[operator]
        why_not = f"p95 {worst_p95:.2f} ms over the budget"
    return Candidate(
        config,
        min_recall,
        worst_p95,
        f"{rows[worst]['scope']}/{rows[worst]['bucket']}",
        storage,
        len(rows),
        not why_not,
        by_bucket,
        why_not,
    )


def candidates(results: Results, recall_target: float, latency_budget_ms: float | None) -> list[Candidate]:
    groups: dict[Config, list[dict[str, Any]]] = {}
    measured: dict[str, set[tuple[str, str]]] = {}  # access -> every (scope, bucket) the run measured
    for row in results.rows:
        groups.setdefault(config_of(row), []).append(row)
        measured.setdefault(row["access"], set()).add((row["scope"], row["bucket"]))
    found = [
        evaluate(
            config,
            rows,
            measured[config.access],
            storage_per_million(results, rows[0]),
            recall_target,
            latency_budget_ms,
        )
        for config, rows in groups.items()
    ]
    return sorted(found, key=rank)


def rank(c: Candidate) -> tuple:
    """Table order: qualifying first, then by worst-cell p95, storage, label (stable for DECISION.md)."""
    inf = float("inf")
    return (
        not c.qualifies,
        c.worst_p95_ms if c.worst_p95_ms is not None else inf,
        c.storage_bytes_per_million if c.storage_bytes_per_million is not None else inf,
        c.config.label,
    )


def pick(pool: list[Candidate], tie_tolerance: float = TIE_TOLERANCE) -> Candidate | None:
    """The rule's choice among qualifying candidates: fastest, with near-ties settled by storage, recall."""
    qualifying = [c for c in pool if c.qualifies and c.worst_p95_ms is not None]
    if not qualifying:
        return None
    fastest = min(c.worst_p95_ms for c in qualifying)  # type: ignore[type-var]
    tied = [c for c in qualifying if c.worst_p95_ms <= fastest * (1 + tie_tolerance)]  # type: ignore[operator]
    inf = float("inf")
    return min(
        tied,
        key=lambda c: (
            c.storage_bytes_per_million if c.storage_bytes_per_million is not None else inf,
            -(c.min_recall or 0.0),
            c.worst_p95_ms,
            c.config.label,
        ),
    )


def decide(
    results: Results,
    recall_target: float = 0.95,
    latency_budget_ms: float | None = None,
    arms: tuple[str, ...] = CHOOSABLE,
    tie_tolerance: float = TIE_TOLERANCE,
) -> Decision:
    every = candidates(results, recall_target, latency_budget_ms)
    chosen = pick([c for c in every if c.config.access in arms], tie_tolerance)
    baseline = pick([c for c in every if c.config.access == "service"], tie_tolerance)
    return Decision(recall_target, latency_budget_ms, tuple(arms), tie_tolerance, every, chosen, baseline)


def closest(decision: Decision) -> Candidate | None:
    """When nothing qualifies: the candidate-arm configuration with the highest worst-cell recall."""
    pool = [c for c in decision.candidates if c.config.access in decision.arms and c.min_recall is not None]
    if not pool:
        return None
    inf = float("inf")
    return min(pool, key=lambda c: (-c.min_recall, c.worst_p95_ms if c.worst_p95_ms is not None else inf))


def under_service(decision: Decision, candidate: Candidate) -> Candidate | None:
    """The same index, build and query settings run as service_role with the app's explicit filter."""
    twin = replace(candidate.config, access="service")
    return next((c for c in decision.candidates if c.config == twin), None)
