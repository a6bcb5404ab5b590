"""What each option retrieves, in the record: per (scope, bucket), every stored embedding's exact-search
nDCG@10 (the model's own quality, no index involved) and the chosen configuration's measured nDCG@10 and
answer recall@10 with intervals, beside its paired shortfall against the best option."""

from __future__ import annotations

from typing import Any

import numpy as np

from dimbench.evidence.results import Results
from dimbench.evidence.rule import Decision, closest, config_of
from dimbench.evidence.text import fmt, interval

OPTIONS = {  # stored embedding -> the model and dimension it stands for in the synthetic corpus
    "768": "text-embedding-3-small @ 768 (the 1536's Matryoshka prefix)",
    "1536": "text-embedding-3-small @ 1536",
    "ada": "text-embedding-ada-002 @ 1536 (its own synthetic model)",
}


def exact_by_cell(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """cell -> option -> mean exact nDCG@10 over the most queries any row of the cell was asked."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        cell = f"{r['scope']}/{r['bucket']}"
        if "per_query" in r and len(r["per_query"].get("qid", [])) > len(best.get(cell, {}).get("qid", [])):
            best[cell] = r["per_query"]
    out: dict[str, dict[str, float]] = {}
    for cell, per_query in best.items():
        out[cell] = {
            key.removeprefix("exact_ndcg10_"): float(np.mean([v for v in values if v is not None]))
            for key, values in per_query.items()
            if key.startswith("exact_ndcg10_") and any(v is not None for v in values)
        }
    return out


def quality_lines(results: Results, decision: Decision) -> list[str]:
    shown = decision.chosen or closest(decision)
    if decision.quality_tolerance is None or shown is None:
        return []
    rows = [r for r in results.rows if r.get("run_id") == decision.run_id]
    exact = exact_by_cell(rows)
    if not exact:
        return []
    options = sorted({o for by in exact.values() for o in by}, key=list(OPTIONS).index)
    mine = [r for r in rows if r.get("stage") == decision.stage and config_of(r) == shown.config]
    by_cell = {f"{r['scope']}/{r['bucket']}": r for r in mine}
    out = [
        "## Quality: what each option retrieves",
        "",
        "nDCG@10 against the corpus's graded labels. The option columns are exact search on each stored "
        "embedding (the model's own quality, no index); the last columns are the chosen configuration as "
        "measured, with its paired shortfall against the best option on the same queries (the rule allows "
        f"{decision.quality_tolerance:.0%} at the interval's lower bound). The labels and the models' gap are "
        "the generator's (synthetic): see the assumptions below.",
        "",
        "| cell | "
        + " | ".join(OPTIONS[o] for o in options)
        + f" | {'chosen' if decision.chosen else 'closest'}: nDCG@10 | answer recall@10 | shortfall |",
        "|---|" + "---|" * (len(options) + 3),
    ]
    for cell in sorted(exact):
        r = by_cell.get(cell)
        measured = (
            f"{fmt(r.get('ndcg10'))}{interval(r.get('ndcg10_ci95'))} | "
            f"{fmt(r.get('answer_recall10'))}{interval(r.get('answer_recall10_ci95'))} | "
            + (
                f"{r['ndcg10_gap']:+.1%} [{r['ndcg10_gap_ci95'][0]:+.1%}, {r['ndcg10_gap_ci95'][1]:+.1%}]"
                if r.get("ndcg10_gap_ci95")
                else "—"
            )
            if r
            else "not measured | | "
        )
        out.append(f"| {cell} | " + " | ".join(fmt(exact[cell].get(o)) for o in options) + f" | {measured} |")
    return [*out, ""]
