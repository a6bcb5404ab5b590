"""The decision rule, as code shared by DECISION.md and the notebook's what-if.

A configuration is (column type, index, build parameters, query parameters, iterative scan, access arm).
Rule: among configurations run under the project's RLS designs (rls, rls_filter) whose recall@10 is at
least `recall_target` in EVERY (scope, workspace-size bucket) cell the run measured for that arm, choose
the lowest worst-cell p95 latency (optionally within `latency_budget_ms`); break ties by storage (vector
column + index bytes per million chunks), then by name. The same rule over the service arm gives the
app-side-filtering baseline. rls_seed is measured to show what the seed's policy costs, but is never
chosen: it has no WITH CHECK and no `to authenticated` (see DECISION.md, defects).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dimbench.report.load import Results

RLS_ARMS = ("rls", "rls_filter", "rls_seed")
CHOOSABLE = ("rls", "rls_filter")
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
    min_recall: float | None
    worst_p95_ms: float | None
    worst_cell: str
    storage_bytes_per_million: float | None
    cells: int
    qualifies: bool
    recall_by_bucket: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Decision:
    recall_target: float
    latency_budget_ms: float | None
    candidates: list[Candidate]  # every configuration, best first
    chosen: Candidate | None
    baseline: Candidate | None  # best service-arm configuration under the same rule


def _key(row: dict[str, Any]) -> Config:
    dump = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
    return Config(
        row["column_type"],
        row["index"],
        dump(row["build_params"]),
        dump(row["query_params"]),
        row["iterative_scan"],
        row["access"],
    )


def storage_per_million(results: Results, row: dict[str, Any]) -> float | None:
    build = results.builds().get(row.get("build_key", ""))
    if not build or not build.get("rows"):
        return None
    return (build["index_bytes"] / build["rows"] + COLUMN_BYTES[row["column_type"]]) * 1e6


def candidates(results: Results, recall_target: float, latency_budget_ms: float | None) -> list[Candidate]:
    groups: dict[Config, list[dict[str, Any]]] = {}
    measured: dict[str, set[tuple[str, str]]] = {}  # access -> every (scope, bucket) the run measured
    for row in results.rows:
        groups.setdefault(_key(row), []).append(row)
        measured.setdefault(row["access"], set()).add((row["scope"], row["bucket"]))
    found = []
    for config, rows in groups.items():
        recalls = [r["recall_mean"] for r in rows]
        p95s = [(r["latency_ms"] or {}).get("p95") for r in rows]
        complete = all(v is not None for v in recalls) and all(v is not None for v in p95s)
        min_recall = min(recalls) if complete else None
        worst = max(range(len(rows)), key=lambda i: p95s[i]) if complete else 0
        worst_p95 = p95s[worst] if complete else None
        by_bucket: dict[str, float | None] = {}
        for r in rows:
            prev = by_bucket.get(r["bucket"])
            by_bucket[r["bucket"]] = r["recall_mean"] if prev is None else min(prev, r["recall_mean"])
        covered = {(r["scope"], r["bucket"]) for r in rows} == measured[config.access]
        qualifies = (
            complete
            and covered
            and min_recall is not None
            and min_recall >= recall_target
            and (latency_budget_ms is None or (worst_p95 is not None and worst_p95 <= latency_budget_ms))
        )
        found.append(
            Candidate(
                config,
                min_recall,
                worst_p95,
                f"{rows[worst]['scope']}/{rows[worst]['bucket']}",
                storage_per_million(results, rows[0]),
                len(rows),
                qualifies,
                by_bucket,
            )
        )
    return sorted(found, key=rank)


def rank(c: Candidate) -> tuple:
    return (
        not c.qualifies,
        c.worst_p95_ms if c.worst_p95_ms is not None else float("inf"),
        c.storage_bytes_per_million if c.storage_bytes_per_million is not None else float("inf"),
        c.config.label,
    )


def decide(results: Results, recall_target: float = 0.95, latency_budget_ms: float | None = None) -> Decision:
    every = candidates(results, recall_target, latency_budget_ms)
    rls = [c for c in every if c.config.access in CHOOSABLE]
    service = [c for c in every if c.config.access == "service"]
    chosen = rls[0] if rls and rls[0].qualifies else None
    baseline = service[0] if service and service[0].qualifies else None
    return Decision(recall_target, latency_budget_ms, every, chosen, baseline)


def closest(decision: Decision) -> Candidate | None:
    """When nothing qualifies: the RLS configuration with the highest worst-bucket recall."""
    rls = [c for c in decision.candidates if c.config.access in CHOOSABLE and c.min_recall is not None]
    return max(rls, key=lambda c: (c.min_recall, -(c.worst_p95_ms or 0))) if rls else None
