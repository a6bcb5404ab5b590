"""The record's first table: the team's three options side by side — what each retrieves (exact-search
nDCG@10 per bucket), the best measured index configuration for its column types, storage, migration —
before any index parameter; and the first screen's one-line quality summary."""

from __future__ import annotations

from typing import Any

import numpy as np

from dimbench import stats
from dimbench.evidence.results import Results
from dimbench.evidence.rule import BUCKETS, Candidate, Decision, closest
from dimbench.evidence.text import fmt, interval
from dimbench.report.common import embedding_labels, labels_text, mb
from dimbench.report.costs import OPTION_COLUMNS, migration_cell, option_name

# option -> the column types that store it, as (column type, what is measured on it)
ROWS = (
    ("ada", "ada_vector1536"),
    ("ada", "ada_halfvec1536"),
    ("1536", "vector1536"),
    ("1536", "halfvec1536"),
    ("768", "vector768"),
)


def exact_per_query(results: Results, decision: Decision) -> dict[str, dict[str, list[float]]]:
    """cell -> option -> each query's exact-search nDCG@10, from the cell's row with the most queries."""
    best: dict[str, dict[str, Any]] = {}
    for r in results.rows:
        if r.get("run_id", decision.run_id) != decision.run_id or "per_query" not in r:
            continue
        cell = f"{r['scope']}/{r['bucket']}"
        if len(r["per_query"].get("qid", [])) > len(best.get(cell, {}).get("qid", [])):
            best[cell] = r["per_query"]
    return {
        cell: {
            key.removeprefix("exact_ndcg10_"): [float(v) for v in values if v is not None]
            for key, values in per_query.items()
            if key.startswith("exact_ndcg10_") and any(v is not None for v in values)
        }
        for cell, per_query in best.items()
    }


def worst_by_bucket(exact: dict[str, dict[str, list[float]]], option: str) -> dict[str, tuple[float, list]]:
    """bucket -> (mean, interval) of the option's exact nDCG@10 in its lowest-scoring scope there."""
    out: dict[str, tuple[float, list]] = {}
    for cell, by in exact.items():
        values = by.get(option)
        if not values:
            continue
        bucket, mean = cell.split("/")[1], float(np.mean(values))
        if bucket not in out or mean < out[bucket][0]:
            out[bucket] = (mean, stats.mean_ci(values) or [])
    return out


def best_configuration(decision: Decision, column_type: str) -> Candidate | None:
    """The rule's best measured configuration on a column type under the choosable arms: the first
    qualifying one in the rule's order, else the one closest to the recall target (not the fastest
    failure)."""
    pool = [
        c
        for c in decision.measured()
        if c.config.column_type == column_type and c.config.access in decision.arms
    ]
    qualifying = [c for c in pool if c.qualifies]
    if qualifying:
        return qualifying[0]  # measured() keeps the rule's order: qualifying first, by p95
    inf = float("inf")
    near = [c for c in pool if c.min_recall_lower is not None]
    return min(near, key=lambda c: (-c.min_recall_lower, c.worst_p95_ms or inf, c.config.label), default=None)


def options_section(results: Results, decision: Decision) -> list[str]:
    labels = embedding_labels(results)
    if labels:  # an imported corpus: one model's columns, not the team's three OpenAI options
        return [
            "## The options compared",
            "",
            "This corpus holds its own embeddings ("
            + labels_text(labels)
            + "), so its columns are not the team's three options (ada-002 @ 1536, 3-small @ 1536, "
            "3-small @ 768): the dimension is compared in the synthetic record; this run answers tenancy "
            "(pgvector's defaults per bucket, T, each design's best) on real text.",
            "",
        ]
    exact = exact_per_query(results, decision)
    if not exact:
        return []
    present = {o for by in exact.values() for o in by}
    head = (
        "| option | column | "
        + " | ".join(f"exact nDCG@10 {b}" for b in BUCKETS)
        + " | best index configuration | worst-cell recall [lower bound] | worst p95 ms [95 % interval] | storage / 1M | migration |"
    )
    out = [
        "## The options compared",
        "",
        "The team's three real options before any index parameter. *Exact nDCG@10* is exact search on each "
        "option's own stored embedding against the corpus's graded labels (the model's quality, no index), "
        "in each bucket's lower-scoring scope, with its bootstrap interval over queries; the labels and the "
        "models' gap are the generator's (synthetic, calibrated: see the sensitivity table). Index recall "
        "and p95 are the rule's best measured configuration on that column type.",
        "",
        head,
        "|---|---|" + "---|" * len(BUCKETS) + "---|---|---|---|---|",
    ]
    measured_ada = [ct for o, ct in ROWS if o == "ada" and best_configuration(decision, ct) is not None]
    for option, column_type in ROWS:
        if option == "ada" and column_type not in (measured_ada or ["ada_vector1536"]):
            continue  # one ada row when the run indexed none of its column types
        by_bucket = worst_by_bucket(exact, option)
        quality = " | ".join(
            f"{fmt(by_bucket[b][0])}{interval(by_bucket[b][1])}" if b in by_bucket else "not measured"
            for b in BUCKETS
        )
        c = best_configuration(decision, column_type)
        if option == "ada" and c is None:
            # ada-002's own column was not indexed in this run: no numbers borrowed from 3-small's.
            index = "**not measured**: this run indexed no ada-002 column; its index recall on its own geometry is unknown"
            recall = p95 = "not measured"
            storage = "as `vector1536`"
        else:
            if c is None:
                index, recall, p95, storage = "not measured", "—", "—", "—"
            else:
                index = c.config.label + ("" if c.qualifies else f" (does not meet the rule: {c.why_not})")
                recall = f"{fmt(c.min_recall)} [{fmt(c.min_recall_lower)}]"
                p95 = f"{fmt(c.worst_p95_ms, 2)}{interval(c.worst_p95_ci, 2)}"
                storage = mb(c.storage_bytes_per_million)
        if option not in present:
            quality = " | ".join("not measured (the corpus has no such column)" for _ in BUCKETS)
        out.append(
            f"| {option_name(option, embedding_labels(results))} | `{column_type}` | {quality} | {index} | {recall} | {p95} | {storage} "
            f"| {migration_cell(results, option)} |"
        )
    return [*out, "", *_measured_note(present, bool(measured_ada)), ""]


def _measured_note(present: set[str], ada_indexed: bool) -> list[str]:
    notes = (
        [
            "- ada-002's index recall and latency are its own column's (`embedding_ada`, its own vectors, "
            "query vectors and exact ground truth), never 3-small's."
        ]
        if ada_indexed
        else [
            "- ada-002 shares `vector1536`'s storage and index shape; its index recall and latency on its own "
            "vectors are **not measured** in this run (only its exact search is scored) — the 3-small numbers "
            "are never borrowed for it."
        ]
    )
    if "ada" not in present:
        notes.append(
            "- This corpus has no ada-002 embedding (`ada = false` in its spec): ada-002's quality is not measured."
        )
    return notes


def quality_line(results: Results, decision: Decision) -> str | None:
    """The first screen's line: the chosen option's nDCG@10 beside the best option's, worst cell."""
    shown = decision.chosen or closest(decision)
    if shown is None or shown.quality_gap_ci is None or not shown.quality_cell:
        return None
    row = next(
        (
            r
            for r in _measured(results, decision, shown)
            if f"{r['scope']}/{r['bucket']}" == shown.quality_cell
        ),
        None,
    )
    reference = shown.quality_reference
    ref_values = _reference_values(row or {}, reference)
    if row is None or not ref_values:
        return None
    mine = OPTIONS_OF.get(shown.config.column_type, "?")
    return (
        f"**Quality** ({'chosen' if decision.chosen else 'closest'}: {option_name(mine, embedding_labels(results))}, `{shown.config.column_type}`): "
        f"nDCG@10 {fmt(row.get('ndcg10'))}{interval(row.get('ndcg10_ci95'))} in its worst cell {shown.quality_cell}, "
        f"beside the best option's ({option_name(reference, embedding_labels(results))}, exact search) "
        f"{fmt(float(np.mean(ref_values)))}{interval(stats.mean_ci(ref_values))}: shortfall "
        f"{shown.quality_gap:+.1%} [{shown.quality_gap_ci[0]:+.1%}, {shown.quality_gap_ci[1]:+.1%}] "
        f"(tolerance {decision.quality_tolerance:.0%} at the lower bound)."
        + _per_bucket(results, decision, shown)
    )


def _per_bucket(results: Results, decision: Decision, shown: Candidate) -> str:
    """Each bucket's worst scope (lowest shortfall lower bound): nDCG@10 as measured beside the best
    option's exact search on the same queries, and the paired shortfall."""
    parts = []
    measured = [r for r in _measured(results, decision, shown) if r.get("ndcg10_gap_ci95") is not None]
    for bucket in BUCKETS:
        rows = [r for r in measured if r["bucket"] == bucket]
        if not rows:
            continue
        r = min(rows, key=lambda r: (r["ndcg10_gap_ci95"][0], r["scope"]))
        ref = _reference_values(r, shown.quality_reference)
        if not ref:
            continue
        lo, hi = r["ndcg10_gap_ci95"]
        parts.append(
            f"{bucket} ({r['scope']}) {fmt(r.get('ndcg10'))}{interval(r.get('ndcg10_ci95'))} vs "
            f"{fmt(float(np.mean(ref)))}{interval(stats.mean_ci(ref))}, {r['ndcg10_gap']:+.1%} [{lo:+.1%}, {hi:+.1%}]"
        )
    return (
        f" Per bucket (worst scope; measured vs the best option's exact, shortfall): {'; '.join(parts)}."
        if parts
        else ""
    )


OPTIONS_OF = {ct: o for o, cts in OPTION_COLUMNS.items() for ct in cts}


def _measured(results: Results, decision: Decision, candidate: Candidate) -> list[dict[str, Any]]:
    """The candidate's rows in the run and stage that decided."""
    return [
        r
        for r in results.rows
        if r.get("run_id", decision.run_id) == decision.run_id
        and r.get("stage") == decision.stage
        and _is(r, candidate)
    ]


def _reference_values(row: dict[str, Any], reference: str | None) -> list[float]:
    """The best option's exact-search nDCG@10 on the same queries the row's shortfall was paired on."""
    values = row.get("per_query", {}).get(f"exact_ndcg10_{reference}", [])
    return [float(v) for v in values if v is not None]


def _is(row: dict[str, Any], candidate: Candidate) -> bool:
    from dimbench.evidence.rule import config_of

    return config_of(row) == candidate.config


def first_screen(results: Results, decision: Decision) -> list[str]:
    line = quality_line(results, decision)
    return [line, ""] if line else []
