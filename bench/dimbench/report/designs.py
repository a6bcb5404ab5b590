"""The designs side by side, the paths the queries took, planner regret and the scan budget: derived
from the measurements (never written back), read by DECISION.md, the plots and the notebooks.

Planner regret: a cell whose calls took one path (say btree + sort) while another cell of the same run
— same column type, arm, scope and bucket — took a different path and was at least as accurate
(recall mean not lower) and clearly faster (p50 at most REGRET_SPEED of this cell's). "Clearly" keeps
run-to-run noise out: at 20 queries a cell's p50 moves by a few per cent between runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dimbench.evidence.results import Results
from dimbench.evidence.rule import Candidate, Decision
from dimbench.study import designs
from dimbench.study.configs import QuerySetting
from dimbench.vocabulary import BUCKETS, CHOOSABLE, DEFAULT_DESIGN, DESIGNS, cell_value

REGRET_SPEED = 0.8  # the other path's p50 at most 80 % of this cell's


def designs_in(rows: list[dict[str, Any]]) -> list[str]:
    """The designs the results hold, in the vocabulary's order (read from the results, not assumed)."""
    found = {cell_value(r, "design") for r in rows}
    return [d for d in DESIGNS if d in found]


@dataclass
class DesignBest:
    design: str
    best: Candidate | None  # the rule's best qualifying candidate of the design, else its closest
    qualifies: bool
    install_seconds: float | None  # building its structures (the shared index's build for shared/routed)
    storage_bytes_per_million: float | None
    threshold: int | None  # routed only: T, measured


def best_per_design(results: Results, decision: Decision) -> list[DesignBest]:
    out = []
    for design in designs_in(results.rows):
        mine = decision.of_design(design, decision.arms)
        if not mine:
            continue
        qualifying = [c for c in mine if c.qualifies]
        best = min(qualifying or mine, key=_order)
        out.append(
            DesignBest(
                design,
                best,
                bool(qualifying),
                install_seconds(results, best),
                best.storage_bytes_per_million,
                threshold_of(results, best),
            )
        )
    return out


def _order(c: Candidate) -> tuple:
    inf = float("inf")
    return (
        -(c.min_recall_lower or 0.0) if not c.qualifies else 0.0,
        c.worst_p95_ms if c.worst_p95_ms is not None else inf,
        c.config.label,
    )


def install_seconds(results: Results, c: Candidate) -> float | None:
    key = c.config.build_key
    build = results.builds().get(key) or {}
    layout = DESIGNS[c.config.design]
    if not layout.installs:
        return build.get("seconds")
    installed = results.designs().get((c.config.design, key)) or {}
    if installed.get("seconds") is None:
        return None
    # a design that searches the shared index adds its own structures to that index's build
    extra = (build.get("seconds") or 0.0) if layout.searches_shared_index else 0.0
    return round(float(installed["seconds"]) + extra, 3)


def threshold_of(results: Results, c: Candidate) -> int | None:
    """A design's measured value (routed's T) at the candidate's own query setting (None: it has none)."""
    installed = results.designs().get((c.config.design, c.config.build_key)) or {}
    setting = QuerySetting(json.loads(c.config.query_params), c.config.iterative_scan)
    return designs.get(c.config.design).measured_at(installed.get("detail") or {}, setting.key)


def calibrations(results: Results) -> list[dict[str, Any]]:
    """Every calibration of a measured value (routed's T) the run made: its build, setting, value and the
    samples it came from (one per install and query setting; one per install in results written before)."""
    out = []
    for (design, key), d in sorted(results.designs().items()):
        if designs.get(design).MEASURED is None:
            continue
        detail = d.get("detail") or {}
        per_setting = detail.get("calibrations")
        if per_setting is None:
            per_setting = {"": detail.get("calibration") or {}}
        for setting, calibration in per_setting.items():
            out.append(
                {
                    "build_key": key,
                    "setting": calibration.get("setting") or setting,
                    "threshold": calibration.get("threshold", detail.get("threshold")),
                    "calibration": calibration,
                }
            )
    return out


def p50(row: dict[str, Any]) -> float | None:
    return (row.get("latency_ms") or {}).get("p50")


def regret(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cells that took a path another measured path beat (see the module's docstring)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("plan") and p50(r) is not None and r.get("recall_mean") is not None:
            groups.setdefault((r["column_type"], r["access"], r["scope"], r["bucket"]), []).append(r)
    found = []
    for (column_type, access, scope, bucket), cells in sorted(groups.items()):
        for r in cells:
            better = [
                o
                for o in cells
                if o["plan"] != r["plan"]
                and o["recall_mean"] >= r["recall_mean"]
                and p50(o) <= REGRET_SPEED * p50(r)  # type: ignore[operator]
            ]
            if not better:
                continue
            o = min(better, key=lambda o: p50(o))  # type: ignore[arg-type, return-value]
            found.append(
                {
                    "cell": f"{column_type} · {access} · {scope}/{bucket}",
                    "design": cell_value(r, "design"),
                    "config": label_of(r),
                    "path": r["plan"],
                    "recall": r["recall_mean"],
                    "p50_ms": p50(r),
                    "better_config": label_of(o),
                    "better_path": o["plan"],
                    "better_recall": o["recall_mean"],
                    "better_p50_ms": p50(o),
                }
            )
    return found


def label_of(row: dict[str, Any]) -> str:
    from dimbench.evidence.rule import config_of

    return config_of(row).label


def path_share(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    """(design, access) -> path -> sampled calls that took it."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for r in rows:
        for a in r.get("plan_audit") or []:
            if a.get("path"):
                counts = out.setdefault((cell_value(r, "design"), r["access"]), {})
                counts[a["path"]] = counts.get(a["path"], 0) + 1
    return out


def scan_budget(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Short results by hnsw.max_scan_tuples, where iterative scan was on: the share of queries that
    returned fewer rows than the user could see (with iterative scan on, the budget is what stops a scan
    early; `null` budget = the default, 20000)."""
    table: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        if r["index"] != "hnsw" or r["iterative_scan"] == "off" or r.get("short_share") is None:
            continue
        budget = r["query_params"].get("max_scan_tuples", 20000)
        key = (cell_value(r, "design"), r["column_type"], r["access"], r["iterative_scan"], budget)
        table.setdefault(key, []).append(r)
    out = []
    for (design, column_type, access, mode, budget), cells in sorted(
        table.items(), key=lambda kv: str(kv[0])
    ):
        by_bucket = {}
        for b in BUCKETS:
            mine = [c for c in cells if c["bucket"] == b]
            if mine:
                by_bucket[b] = max(c["short_share"] for c in mine)
        out.append(
            {
                "design": design,
                "column_type": column_type,
                "access": access,
                "iterative_scan": mode,
                "max_scan_tuples": budget,
                "short_share_by_bucket": by_bucket,
            }
        )
    return out


def deployable(decision: Decision) -> dict[str, Candidate]:
    """What a team would deploy: pgvector's defaults (shared hnsw, ef_search 40, iterative off, RLS) on the
    decision's column type, the decision, and each design's best — the figures' and the record's lines."""
    out: dict[str, Candidate] = {}
    defaults = [
        c
        for c in decision.measured()
        if c.config.design == DEFAULT_DESIGN
        and c.config.index == "hnsw"
        and c.config.iterative_scan == "off"
        and json.loads(c.config.query_params).get("ef_search") == 40
        and c.config.access in ("rls", "rls_filter")
    ]
    # under RLS alone where measured; a corpus asked only per workspace has the filtered arm alone
    defaults = [c for c in defaults if c.config.access == "rls"] or defaults
    if defaults:  # on the decision's column: what building its index and changing nothing else gives
        chosen = decision.chosen.config.column_type if decision.chosen is not None else None
        same = [c for c in defaults if c.config.column_type == chosen]
        out["pgvector defaults"] = min(same or defaults, key=_order)
    if decision.chosen is not None:
        out["the decision"] = decision.chosen
    for design in decision.designs():
        mine = decision.of_design(design, CHOOSABLE)
        if not mine:
            continue
        qualifying = [c for c in mine if c.qualifies]
        out[f"best {design}"] = min(qualifying or mine, key=_order)
    return out
