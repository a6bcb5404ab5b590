"""The decision rule, as code shared by DECISION.md, the notebook's what-if and the study's confirmation.

A configuration is (design and its parameters, column type, index, build parameters, query parameters,
iterative scan, access arm): every design competes under the same rule.

Rule, exactly as implemented (per run):
1. Which measurements: the run's confirmation stage when it has one (the leading candidates of screening,
   measured again with enough queries per cell, interleaved), else its screening stage.
2. Candidates are configurations measured under one of `arms` (default: this project's RLS designs,
   `rls` and `rls_filter`). `rls_seed` is measured but never chosen by default: its policies lack WITH
   CHECK and TO authenticated.
3. A configuration qualifies only if the **lower bound** of the 95 % interval of recall@10 reaches
   `recall_target` in EVERY (scope, workspace-size bucket) cell its arm measured — a mean above the target
   with an interval below it is not a pass. A missing cell or a null recall or p95 disqualifies.
4. Its latency is the worst cell's p95 (with its bootstrap interval); with `latency_budget_ms` set, the
   p95 must be within the budget.
5. Under live traffic (when the run measured designs live, `live.json`): a configuration whose design's
   live verdict *fails* (a request failed at the grid's ingest rate, the search p95 ratio's interval lies
   wholly above the bound, freshness failed) does not qualify. A design not measured live, or whose
   verdict is open, is not disqualified: the record says so.
6. The qualifying configuration with the lowest worst-cell p95 is the best; every qualifying configuration
   whose p95 interval overlaps the best's (its lower end ≤ the best's upper end, widened by
   `tie_tolerance`) is **tied** with it — the measurements cannot tell them apart. Ties go to the smaller
   storage per million chunks, then the higher worst-cell recall, then the lower p95, then the label.

Storage per million chunks = measured index bytes per row (a design's: all its partitions' or partial
indexes, its quantized index) + the vector column's bytes per row in the end state (4·d+8 for vector,
2·d+8 for halfvec).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from dimbench.errors import DimbenchError
from dimbench.evidence.live import Verdict, judge_all
from dimbench.evidence.results import Results
from dimbench.evidence.text import interval
from dimbench.vocabulary import (
    BUCKETS,
    CHOOSABLE,
    COLUMN_BYTES,
    DEFAULT_DESIGN,
    DESIGNS,
    RLS_ARMS,
    cell_value,
)

__all__ = ["BUCKETS", "CHOOSABLE", "COLUMN_BYTES", "RLS_ARMS", "Candidate", "Config", "Decision", "decide"]
# Ties are decided by overlapping p95 intervals; a what-if may widen them by this share of the best's p95.
TIE_TOLERANCE = 0.0
# How much retrieval quality (nDCG@10, relative) a configuration may give up against the best option's
# exact search, judged on the lower bound of its paired interval in every cell: about the gap between
# two generations of OpenAI's models that the team weighs (MTEB average: ada-002 61.0, 3-small 62.3 at
# 1536, −2.1 %): a configuration may lose less than a model generation.
QUALITY_TOLERANCE = 0.02


@dataclass(frozen=True)
class Config:
    design: str
    design_params: str  # canonical JSON
    column_type: str
    index: str
    build_params: str  # canonical JSON
    query_params: str
    iterative_scan: str
    access: str

    @property
    def build_key(self) -> str:
        """The index build it searches, as run.json names its builds: "halfvec1536/hnsw(m=16,…)"."""
        args = ",".join(f"{k}={v}" for k, v in sorted(json.loads(self.build_params).items()))
        return f"{self.column_type}/{self.index}({args})"

    @property
    def label(self) -> str:
        build = ",".join(f"{k}={v}" for k, v in json.loads(self.build_params).items())
        query = ",".join(f"{k}={v}" for k, v in json.loads(self.query_params).items())
        parts = [self.column_type, f"{self.index}({build})" if build else self.index]
        if self.design != DEFAULT_DESIGN:
            args = ",".join(f"{k}={v}" for k, v in json.loads(self.design_params).items())
            parts.insert(0, f"{self.design}({args})" if args else self.design)
        if query:
            parts.append(query)
        if self.index != "exact":
            parts.append(f"iterative={self.iterative_scan}")
        parts.append(self.access)
        return " · ".join(parts)


@dataclass
class Candidate:
    config: Config
    min_recall: float | None  # worst cell's mean recall; None: some cell's recall was not measured
    worst_p95_ms: float | None
    worst_cell: str  # "scope/bucket" of the worst p95
    storage_bytes_per_million: float | None
    cells: int
    qualifies: bool
    recall_by_bucket: dict[str, float | None] = field(default_factory=dict)  # worst over scopes
    why_not: str = ""  # first reason it does not qualify ("" when it does)
    min_recall_lower: float | None = None  # lowest lower bound of a cell's recall interval
    min_recall_upper: float | None = None  # lowest upper bound: below the target, the rule cannot pass it
    worst_p95_ci: list[float] | None = None  # bootstrap interval of the worst cell's p95
    n_queries: int | None = None  # fewest queries in any of its cells
    failed_queries: int = 0  # requests cancelled by statement_timeout (counted with recall 0)
    maintenance: bool = False  # autovacuum/analyze ran on the study's tables during one of its cells
    stage: str = "screening"
    weakest: dict[str, Any] = field(default_factory=dict)  # the cell with the lowest recall lower bound
    # quality: nDCG@10's shortfall against the best option's exact search, in its worst cell (None: the
    # rows carry no quality — results from before quality was measured, or a corpus without labels)
    quality_gap: float | None = None
    quality_gap_ci: list[float] | None = None
    quality_cell: str = ""
    quality_reference: str | None = None


@dataclass
class Decision:
    recall_target: float
    latency_budget_ms: float | None
    arms: tuple[str, ...]
    tie_tolerance: float
    candidates: list[Candidate]  # every configuration of the deciding stage, every arm, best first
    chosen: Candidate | None
    baseline: Candidate | None  # best service-arm configuration under the same rule
    tied: list[Candidate] = field(default_factory=list)  # qualifying, p95 interval overlapping the best's
    stage: str = "screening"
    run_id: str | None = None
    screened: list[Candidate] = field(default_factory=list)  # the screening stage (when confirmation decides)
    # the quality tolerance the rule applied; None: the rows carry no quality, so quality was not judged
    quality_tolerance: float | None = None
    # the live verdict of each design measured under traffic; None: the run has no live stage
    live: dict[str, Verdict] | None = None

    def measured(self) -> list[Candidate]:
        """Every configuration at its best evidence: its confirmation, else its screening (a grid may
        confirm the leaders only; a candidate's stage says which)."""
        confirmed = {c.config for c in self.candidates}
        return self.candidates + [c for c in self.screened if c.config not in confirmed]

    def find(self, config: Config) -> Candidate | None:
        return next((c for c in self.measured() if c.config == config), None)

    def of_design(self, design: str, arms: Iterable[str]) -> list[Candidate]:
        """A design's configurations under `arms`: the confirmed ones, else (confirmation did not take
        the design) the screened ones — never the two mixed, so 50 screening queries cannot beat 300."""
        wanted = set(arms)

        def mine(pool: list[Candidate]) -> list[Candidate]:
            return [c for c in pool if c.config.design == design and c.config.access in wanted]

        return mine(self.candidates) or mine(self.screened)

    def designs(self) -> list[str]:
        """The designs either stage measured, in first-seen order."""
        return list(dict.fromkeys(c.config.design for c in self.candidates + self.screened))

    @property
    def tie_set(self) -> list[str]:
        return sorted(c.config.label for c in self.tied)

    @property
    def rule(self) -> str:
        text = rule_text(self.recall_target, self.latency_budget_ms, self.arms, self.tie_tolerance)
        if self.live is not None:
            text += (
                " Under live traffic: a configuration whose design fails the live stage (a failed "
                "request at the grid's ingest rate, search p95 under ingest above its bound × idle at "
                "the lower end of the ratio's interval, or a new chunk not found at once) does not "
                "qualify; a design not measured live is not disqualified."
            )
        if self.quality_tolerance is None:
            return text
        return (
            text
            + f" A configuration qualifies only if, in every cell, the lower bound of its nDCG@10's paired "
            f"shortfall against the best option's exact search (the stored embedding whose exact top-10 "
            f"scores highest there) is within **{self.quality_tolerance:.0%}**; ties go to the higher "
            "quality before the smaller storage."
        )


def rule_text(
    recall_target: float, latency_budget_ms: float | None, arms: tuple[str, ...], tie_tolerance: float
) -> str:
    budget = f", with worst-cell p95 within {latency_budget_ms:g} ms" if latency_budget_ms is not None else ""
    widened = f" (widened by {tie_tolerance:.0%} of its p95)" if tie_tolerance else ""
    return (
        f"Among configurations run under {' / '.join(f'`{a}`' for a in arms)} whose recall@10 is at least "
        f"**{recall_target:.2f} at the lower bound of its 95 % interval in every workspace-size bucket** "
        f"and every scope the run measured{budget}, choose the lowest worst-cell p95 latency; "
        f"configurations whose p95 interval overlaps the best's{widened} are tied (the measurements cannot "
        "order them), and ties go to the smaller storage (vector column + index bytes per million chunks), "
        "then the higher recall."
    )


def config_of(row: dict[str, Any]) -> Config:
    def dump(v: Any) -> str:
        return json.dumps(v, sort_keys=True)

    return Config(
        cell_value(row, "design"),
        dump(cell_value(row, "design_params")),
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
    build = results.builds(row.get("run_id")).get(row.get("build_key", ""))
    if not build or not build.get("rows") or build.get("index_bytes") is None:
        return None
    index_bytes = build["index_bytes"]
    design = cell_value(row, "design")
    layout = DESIGNS[design]
    if layout.installs:
        installed = results.designs(row.get("run_id")).get((design, row.get("build_key", "")))
        if not installed or installed.get("index_bytes") is None:
            return None
        # a design that searches the shared index adds its own structures to it; the others use only theirs
        index_bytes = installed["index_bytes"] + (build["index_bytes"] if layout.searches_shared_index else 0)
    return (index_bytes / build["rows"] + COLUMN_BYTES[row["column_type"]]) * 1e6


def quality_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The worst cell's quality shortfall (lowest lower bound of the paired nDCG@10 gap), or {} when a cell
    carries none."""
    if not rows or any(r.get("ndcg10_gap_ci95") is None for r in rows):
        return {}
    worst = min(rows, key=lambda r: (r["ndcg10_gap_ci95"][0], r["scope"], r["bucket"]))
    return {
        "quality_gap": worst["ndcg10_gap"],
        "quality_gap_ci": list(worst["ndcg10_gap_ci95"]),
        "quality_cell": f"{worst['scope']}/{worst['bucket']}",
        "quality_reference": worst.get("quality_reference"),
    }


def evaluate(
    config: Config,
    rows: list[dict[str, Any]],
    expected: set[tuple[str, str]],
    storage: float | None,
    recall_target: float,
    latency_budget_ms: float | None,
    quality_tolerance: float = QUALITY_TOLERANCE,
) -> Candidate:
    recalls = [r["recall_mean"] for r in rows]
    intervals = [r.get("recall_ci95") for r in rows]
    p95s = [p95(r) for r in rows]
    complete = None not in recalls and None not in p95s and None not in intervals
    min_recall = min(recalls) if complete else None
    lower = min(i[0] for i in intervals) if complete else None  # type: ignore[index]
    upper = min(i[1] for i in intervals) if complete else None  # type: ignore[index]
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
        why_not = "a cell's recall, interval or p95 is null (not measured)"
    elif lower < recall_target:  # type: ignore[operator]
        low = weakest_cell(rows)
        why_not = f"recall {low['recall']:.3f}{interval(low['ci'])} in {low['cell']}"
    elif latency_budget_ms is not None and worst_p95 > latency_budget_ms:  # type: ignore[operator]
        why_not = f"p95 {worst_p95:.2f} ms over the budget"
    quality = quality_of(rows) if complete else {}
    if not why_not and quality and quality["quality_gap_ci"][0] < -quality_tolerance:
        why_not = (
            f"nDCG@10 {quality['quality_gap']:+.1%} [{quality['quality_gap_ci'][0]:+.1%}, "
            f"{quality['quality_gap_ci'][1]:+.1%}] against the best option's exact search in "
            f"{quality['quality_cell']} (tolerance {quality_tolerance:.0%})"
        )
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
        min_recall_lower=lower,
        min_recall_upper=upper,
        worst_p95_ci=rows[worst].get("latency_p95_ci95") if complete else None,
        n_queries=min(r["n_queries"] for r in rows),
        failed_queries=sum(r.get("failed_queries") or 0 for r in rows),
        maintenance=any(r.get("maintenance") for r in rows),
        stage=rows[0].get("stage", "screening"),
        weakest=weakest_cell(rows) if complete else {},
        **quality,
    )


def weakest_cell(rows: list[dict[str, Any]]) -> dict[str, Any]:
    low = min(rows, key=lambda r: (r["recall_ci95"][0], r["scope"], r["bucket"]))
    return {
        "cell": f"{low['scope']}/{low['bucket']}",
        "recall": low["recall_mean"],
        "ci": low["recall_ci95"],
        "n": low["n_queries"],
    }


def candidates(
    results: Results,
    recall_target: float,
    latency_budget_ms: float | None,
    rows: list[dict[str, Any]] | None = None,
    *,
    quality_tolerance: float = QUALITY_TOLERANCE,
) -> list[Candidate]:
    groups: dict[Config, list[dict[str, Any]]] = {}
    measured: dict[str, set[tuple[str, str]]] = {}  # access -> every (scope, bucket) the run measured
    for row in results.rows if rows is None else rows:
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
            quality_tolerance,
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


def tied_with(best: Candidate, c: Candidate, tie_tolerance: float) -> bool:
    """Do the two p95 intervals overlap (the best's upper end widened by tie_tolerance)?"""
    best_hi = (best.worst_p95_ci or [best.worst_p95_ms] * 2)[1]
    c_lo = (c.worst_p95_ci or [c.worst_p95_ms] * 2)[0]
    return c_lo <= best_hi + tie_tolerance * best.worst_p95_ms  # type: ignore[operator]


def pick(
    pool: list[Candidate], tie_tolerance: float = TIE_TOLERANCE
) -> tuple[Candidate | None, list[Candidate]]:
    """The rule's choice among qualifying candidates, and the tie set it was chosen from."""
    qualifying = [c for c in pool if c.qualifies and c.worst_p95_ms is not None]
    if not qualifying:
        return None, []
    best = min(qualifying, key=lambda c: (c.worst_p95_ms, c.config.label))
    tied = [c for c in qualifying if tied_with(best, c, tie_tolerance)]
    inf = float("inf")
    chosen = min(
        tied,
        key=lambda c: (
            # quality first (the least shortfall against the best option), then storage
            -(c.quality_gap if c.quality_gap is not None else 0.0),
            c.storage_bytes_per_million if c.storage_bytes_per_million is not None else inf,
            -(c.min_recall or 0.0),
            c.worst_p95_ms,
            c.config.label,
        ),
    )
    return chosen, sorted(tied, key=rank)


def run_rows(results: Results, run_id: str | None = None) -> list[dict[str, Any]]:
    """The rows of one run (default: the directory's first run; rows without a run id belong to it)."""
    run_id = run_id if run_id is not None else results.run.get("run_id")
    return [r for r in results.rows if r.get("run_id", run_id) == run_id]


def live_of(results: Results, run_id: str | None) -> dict[str, Any] | None:
    """The directory's live.json where it measured this run's corpus (a scale directory holds one, for
    the size its live stage ran on: the other sizes were not measured live)."""
    live = results.live
    if live is None or run_id is None:
        return live
    run = next((r for r in results.runs if r.get("run_id") == run_id), None)

    def chunks(corpus: dict[str, Any] | None) -> Any:
        corpus = corpus or {}
        return (corpus.get("counts") or {}).get("chunks") or corpus.get("chunks")

    if run is None or chunks(run.get("corpus")) == chunks(live.get("corpus")):
        return live
    return None


def decide(
    results: Results,
    recall_target: float = 0.95,
    latency_budget_ms: float | None = None,
    arms: tuple[str, ...] = CHOOSABLE,
    tie_tolerance: float = TIE_TOLERANCE,
    run_id: str | None = None,
    *,
    quality_tolerance: float | None = None,
    live: Any = None,
) -> Decision:
    """`live`: a live.json's content or its verdicts (default: the directory's live.json, if any);
    `quality_tolerance`: default the run's grid [rule] (run.json identity.grid.rule), else 2 %."""
    rows = run_rows(results, run_id)
    if quality_tolerance is None:
        quality_tolerance = grid_tolerance(results, run_id)
    stage = "confirmation" if any(r.get("stage") == "confirmation" for r in rows) else "screening"
    every = candidates(
        results,
        recall_target,
        latency_budget_ms,
        [r for r in rows if r.get("stage", "screening") == stage],
        quality_tolerance=quality_tolerance,
    )
    verdicts = live_verdicts(live_of(results, run_id) if live is None else live)
    if verdicts is not None:
        every = live_gate(every, verdicts)
    chosen, tied = pick([c for c in every if c.config.access in arms], tie_tolerance)
    baseline, _ = pick([c for c in every if c.config.access == "service"], tie_tolerance)
    screened = (
        candidates(
            results,
            recall_target,
            latency_budget_ms,
            [r for r in rows if r.get("stage", "screening") == "screening"],
            quality_tolerance=quality_tolerance,
        )
        if stage == "confirmation"
        else every
    )
    if verdicts is not None and stage == "confirmation":
        screened = live_gate(screened, verdicts)
    return Decision(
        recall_target,
        latency_budget_ms,
        tuple(arms),
        tie_tolerance,
        every,
        chosen,
        baseline,
        tied,
        stage,
        run_id if run_id is not None else results.run.get("run_id"),
        screened,
        quality_tolerance if any(c.quality_gap_ci is not None for c in every) else None,
        verdicts,
    )


def grid_tolerance(results: Results, run_id: str | None = None) -> float:
    """The quality tolerance the run's grid stated ([rule], kept in run.json), else QUALITY_TOLERANCE."""
    run = next((r for r in results.runs if run_id is not None and r.get("run_id") == run_id), results.run)
    rule = ((run.get("identity") or {}).get("grid") or {}).get("rule") or {}
    value = rule.get("quality_tolerance", QUALITY_TOLERANCE) if isinstance(rule, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise DimbenchError(
            f"run.json identity.grid.rule: quality_tolerance must be in (0, 1), got {value!r}"
        )
    return float(value)


def live_verdicts(live: Any) -> dict[str, Verdict] | None:
    """Verdicts by design from a live.json's content (judged with its grid's bound) or a list of them."""
    if live is None:
        return None
    found = judge_all(live) if isinstance(live, dict) else list(live)
    return {v.design: v for v in found}


def live_gate(pool: list[Candidate], verdicts: dict[str, Verdict]) -> list[Candidate]:
    """Rule step 5: a design that fails under live traffic disqualifies each of its configurations (a
    design not measured live, or undecided, is left as it is: the record says which)."""
    out = []
    for c in pool:
        verdict = verdicts.get(c.config.design)
        if c.qualifies and verdict is not None and verdict.status == "fails":
            c = replace(c, qualifies=False, why_not=f"fails under live traffic: {'; '.join(verdict.reasons)}")
        out.append(c)
    return sorted(out, key=rank)


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


@dataclass
class Agreement:
    """The rule applied to every run of a directory, and whether the runs agree."""

    decisions: list[Decision]

    @property
    def chosen(self) -> list[str | None]:
        return [d.chosen.config.label if d.chosen else None for d in self.decisions]

    @property
    def agreed(self) -> str | None:
        """The one configuration every run chose, or None when they differ (or one chose nothing)."""
        labels = set(self.chosen)
        return labels.pop() if len(labels) == 1 else None

    @property
    def tie_set(self) -> list[str]:
        """What a reader may pick from when the runs disagree: every configuration some run chose."""
        return sorted({label for label in self.chosen if label is not None})

    def common(self) -> dict[str, str]:
        """The parts of the design every run's choice shares (column type, index, access …)."""
        configs = [d.chosen.config for d in self.decisions if d.chosen]
        if not configs or len(configs) < len(self.decisions):
            return {}
        shared = {}
        for name in ("column_type", "index", "build_params", "query_params", "iterative_scan", "access"):
            values = {getattr(c, name) for c in configs}
            if len(values) == 1:
                shared[name] = values.pop()
        return shared


def decide_runs(results: Results, **rule: Any) -> Agreement:
    return Agreement([decide(results, run_id=run["run_id"], **rule) for run in results.runs])
