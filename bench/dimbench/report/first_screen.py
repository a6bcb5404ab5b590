"""The record's first screen: what to deploy, how sure the measurements are, and where each part of the
evidence is — before any context, option list or rule. Every figure on it is a measurement of the run
(or of the published scale profile), with its interval and query count; nothing is restated by hand.

Two lines come from other parts of the study when a run holds their data, and are left out otherwise
(never invented): `quality_line` (the chosen option's quality against the best option) and `live_line`
(the ingest rate the choice holds to under live traffic). Their owners fill these two functions in.
"""

from __future__ import annotations

import json
import re

from dimbench.evidence.results import Results
from dimbench.evidence.rule import COLUMN_BYTES, Agreement, Candidate, Decision, closest
from dimbench.evidence.text import fmt, interval
from dimbench.report.apply_sql import GUC, call_sql, index_sql
from dimbench.report.common import embedding_labels, model_of
from dimbench.report.deployment_text import cic_line
from dimbench.report.deployment_text import first_screen_line as deploy_line
from dimbench.vocabulary import COLUMN_TYPES

FIRST_SCREEN_LINES = 25  # the most lines the answer may take after the title and provenance line

RLS_SHORT = {
    "rls_filter": "`rls_filter` — this project's policies (`schema/0007`) plus the app's explicit "
    "`filter_workspace_ids` in every call",
    "rls": "`rls` — this project's policies (`schema/0007`) alone; the app passes no workspace filter",
    "rls_seed": "`rls_seed` — the seed's policy form",
    "rls_docs": "`rls_docs` — Supabase's RAG-with-permissions policy form",
    "service": "`service` — service_role with an app-side workspace filter (RLS bypassed)",
}

DESIGN_SHORT = {
    "shared": "`shared` — one vector index over all chunks",
    "routed": "`routed` — exact search when the caller sees at most T rows (a per-workspace count), the "
    "vector index above",
    "probed": "`probed` — exact search when a bounded probe counts at most T visible rows, the vector "
    "index above",
    "partial": "`partial` — a partial vector index per large tenant, exact search for the rest",
    "bq_rerank": "`bq_rerank` — hnsw over binary-quantized vectors, reranked by the full vector",
    "partitioned": "`partitioned` — hash partitions by workspace, one index each",
    "inline": "`inline` — one embedding column stored in the row",
}


def slug(heading: str) -> str:
    """The anchor GitHub gives a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def links(lines: list[str]) -> str:
    """One line linking every `## ` section of the record."""
    headings = [line[3:] for line in lines if line.startswith("## ")]
    return "Sections: " + " · ".join(f"[{h}](#{slug(h)})" for h in headings) + "."


def threshold(results: Results, decision: Decision, c: Candidate) -> int | None:
    """The chosen design's measured value (routed's/probed's T) at the chosen query setting, from the
    run that decided."""
    from dimbench.report import designs as d

    run = results.of_run(decision.run_id) if decision.run_id else results
    return d.threshold_of(run, c)


def quality_line(results: Results, decision: Decision) -> str | None:
    """Hook (issue 27): the chosen option's nDCG@10 beside the best option's; None without quality data."""
    from dimbench.report.options_text import quality_line as line

    if decision.quality_tolerance is None:  # no row carries nDCG: the corpus has no relevance labels
        return (
            "- Quality: **not judged** — the corpus carries no relevance labels, so the rule fell back to "
            "index recall alone (recall@10 against each column's own exact top-10, not the model's quality)."
        )
    found = line(results, decision)
    return f"- {found}" if found else None


def live_line(results: Results, decision: Decision) -> str | None:
    """Hook (issue 23): "ingest rate it holds to", one line (or that the write path was not measured)."""
    from dimbench.report.live_text import live_line as line

    return line(results, decision)


def size_line(decision: Decision, scale_results: Results | None, chunks: int | None) -> str:
    """How far the choice holds, from the scale profile when it measured the choice; else the one size."""
    from dimbench.report import scale
    from dimbench.report.scale_record import held_phrase

    here = f"measured at {chunks:,} chunks only" if chunks else "measured at one corpus size only"
    c = decision.chosen
    if c is None or scale_results is None or not scale.sizes(scale_results):
        return f"- Size it holds to: {here} (no scale profile measured it)."
    points = scale.follow(scale_results, c.config)
    if all(p.candidate is None for p in points):
        return f"- Size it holds to: {here} (the published scale profile did not measure it)."
    return (
        f"- Size it holds to: {held_phrase(points, decision.recall_target)} in the scale profile "
        f"(`results/scale/`, its own corpora: see [How far the choice holds](#how-far-the-choice-holds))."
    )


# What a run's choice is made of, as a reader names it (a split decision says which parts the runs share).
PARTS = (
    ("column_type", "column type"),
    ("index", "index"),
    ("build_params", "build"),
    ("design", "design"),
    ("query_params", "query settings"),
    ("iterative_scan", "iterative scan"),
    ("access", "RLS design"),
)


def across_runs_line(agreement: Agreement) -> str:
    """When the runs chose differently: what every choice shares and where they part."""
    configs = [d.chosen.config for d in agreement.decisions if d.chosen]
    values = {name: sorted({getattr(c, name) for c in configs}) for name, _ in PARTS}
    same = [f"{word} {values[name][0]}" for name, word in PARTS if len(values[name]) == 1]
    differ = [f"{word} ({' / '.join(values[name])})" for name, word in PARTS if len(values[name]) > 1]
    none = len(agreement.decisions) - len(configs)
    return (
        f"- Across the {len(agreement.decisions)} runs: every choice shares "
        f"{', '.join(same) or 'nothing'}; they differ in {', '.join(differ) or 'nothing'}"
        + (f"; {none} run(s) chose nothing" if none else "")
        + " — each run's choice met the rule in its own run ([Stability across runs](#stability-across-runs))."
    )


def answer_section(
    results: Results,
    decision: Decision,
    agreement: Agreement | None,
    scale_results: Results | None,
    chunks: int | None,
) -> list[str]:
    """`## The answer`: the first screen, without its links line (the record adds it once it knows its
    sections)."""
    c = decision.chosen
    out = ["## The answer", ""]
    if c is None:
        near = closest(decision)
        out.append(
            f"**Nothing measured meets the rule** (recall@10 ≥ {decision.recall_target} at the lower bound "
            f"in every bucket under {' / '.join(decision.arms)}): do not standardize on these settings."
        )
        if near is not None:
            out.append(
                f"- Closest: {near.config.label} — worst-cell recall {fmt(near.min_recall)} ({near.why_not})."
            )
        out += [line for line in [quality_line(results, decision)] if line]
        return out
    config = c.config
    split = agreement is not None and len(agreement.decisions) > 1 and agreement.agreed is None
    query = json.loads(config.query_params)
    build = json.loads(config.build_params)
    t = threshold(results, decision, c)
    settings = [f"{GUC.get(k, k)} = {v}" for k, v in query.items()]
    if config.index != "exact":
        settings.append(f"{config.index}.iterative_scan = {config.iterative_scan}")
    design = DESIGN_SHORT.get(config.design, f"`{config.design}`")
    if t is not None:
        design += f"; **T = {t:,} visible rows** (measured at this query setting)"
    w = c.weakest
    tie = (
        f"the runs chose differently: the decision is the tie set {', '.join(agreement.tie_set)}"
        if split and agreement is not None
        else f"{len(decision.tied)} qualifying configuration(s) whose p95 interval overlaps the best's "
        "(the measurements cannot order them; any meets the rule)"
    )
    out += [
        f"**{'Run 1 chose' if split else 'Deploy'}: {config.label}.**",
        "",
        *([across_runs_line(agreement)] if split and agreement is not None else []),
        f"- Model and dimension: {model_of(config.column_type, embedding_labels(results))}.",
        f"- Column type: `{COLUMN_TYPES[config.column_type][0]}({COLUMN_TYPES[config.column_type][1]})` "
        f"(`{config.column_type}`, {COLUMN_BYTES[config.column_type]:,} bytes per vector).",
        f"- Index: `{config.index}`"
        + (f" built with {', '.join(f'{k} = {v}' for k, v in build.items())}" if build else "")
        + f"; queried with {', '.join(settings) or 'no settings (exact search)'}.",
        f"- Design: {design}.",
        f"- RLS design: {RLS_SHORT.get(config.access, config.access)}.",
        size_line(decision, scale_results, chunks),
        *[
            line
            for line in (quality_line(results, decision), live_line(results, decision), deploy_line(results))
            if line
        ],
        f"- Confidence, recall: weakest cell {w['cell']} recall@10 {fmt(w['recall'])}{interval(w['ci'])} "
        f"over {w['n']} queries ({decision.stage} stage, at least {c.n_queries} queries in every cell).",
        f"- Confidence, latency: worst p95 {fmt(c.worst_p95_ms, 2)}{interval(c.worst_p95_ci, 2)} ms "
        f"({c.worst_cell}); {c.failed_queries} failed requests.",
        f"- Confidence, ties: {tie}.",
        "- The SQL that deploys it, complete: [The SQL to apply](#the-sql-to-apply).",
    ]
    return out


def sql_section(results: Results, decision: Decision) -> list[str]:
    """`## The SQL to apply`: the index, the design with its measured value, the settings, the call."""
    c = decision.chosen
    if c is None:
        return []
    t = threshold(results, decision, c)
    return [
        "## The SQL to apply",
        "",
        "On the harmonized schema (`schema/`), once the chosen column is backfilled: the index, the "
        "design's structures and search function"
        + (f" with T = {t:,} substituted" if t is not None else "")
        + ", then the query settings (last: `create or replace function` resets a function's settings).",
        "",
        "```sql",
        *index_sql(c, t),
        "```",
        "",
        cic_line(results),
        "",
        "How apps call it (PostgREST rpc, as the signed-in user):",
        "",
        "```sql",
        call_sql(c),
        "```",
        "",
    ]
