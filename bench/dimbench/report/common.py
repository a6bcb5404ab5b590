"""Small pieces every part of the record writes with: sizes, tables, the run and model lines, a verdict."""

from __future__ import annotations

from typing import Any

from dimbench.evidence.results import Results
from dimbench.evidence.rule import (
    BUCKETS,
    Candidate,
    Decision,
    decide,
)
from dimbench.evidence.text import fmt, interval
from dimbench.vocabulary import COLUMN_EMBEDDING


def mb(value: float | None) -> str:
    return "—" if value is None else f"{value / 1e6:,.0f} MB"


def table(
    rows: list[Candidate], chosen: Candidate | None = None, tied: list[Candidate] | None = None
) -> list[str]:
    head = [
        "| configuration | "
        + " | ".join(f"recall {b}" for b in BUCKETS)
        + " | weakest cell: recall [95 % interval] (queries) | worst p95 ms [95 % interval] | worst cell "
        "| storage / 1M chunks | failed | meets rule |",
        "|---" * (len(BUCKETS) + 7) + "|",
    ]
    body = []
    for c in rows:
        recalls = " | ".join(fmt(c.recall_by_bucket.get(b)) for b in BUCKETS)
        w = c.weakest
        weakest = f"{w['cell']}: {fmt(w['recall'])}{interval(w['ci'])} ({w['n']})" if w else "—"
        verdict = (
            "**chosen**"
            if c is chosen
            else "yes, tied"
            if tied and c in tied
            else "yes"
            if c.qualifies
            else f"no: {c.why_not}"
        )
        flag = " ⚑" if c.maintenance else ""
        body.append(
            f"| {c.config.label}{flag} | {recalls} | {weakest} | {fmt(c.worst_p95_ms, 2)}"
            f"{interval(c.worst_p95_ci, 2)} | {c.worst_cell} | {mb(c.storage_bytes_per_million)} | "
            f"{c.failed_queries} | {verdict} |"
        )
    return head + body


def embedding_labels(results: Any) -> dict[str, str]:
    """The models an imported corpus's columns hold ("1536" / "768" -> label), from its manifest as the
    run recorded it; {} for the generator's corpora (whose columns stand for 3-small and ada-002)."""
    corpus = (getattr(results, "run", None) or {}).get("corpus") or {}
    return dict((corpus.get("embedding") or {}).get("labels") or {})


def labels_text(labels: dict[str, str]) -> str:
    """An imported corpus's columns and the models in them, in one phrase."""
    return "; ".join(f"{dim}: {label}" for dim, label in sorted(labels.items()))


def published_record(profile: str) -> Any:
    """results/<profile> of the checkout as Results, if published (a broken published directory is that
    record's problem, not the one reading it: None)."""
    from dimbench.evidence.results import read_results
    from dimbench.paths import published_dir

    path = published_dir(profile)
    if not (path / "run.json").exists():
        return None
    try:
        return read_results(path)
    except Exception:
        return None


def model_of(column_type: str, labels: dict[str, str] | None = None) -> str:
    dim = "768" if column_type == "vector768" else "1536"
    if labels and dim in labels:  # an imported corpus: the model that made the column, not OpenAI's
        return f"**{labels[dim]}** in the {dim}-dimension column (this corpus's own embeddings)"
    if COLUMN_EMBEDDING.get(column_type) == "ada":
        return "**text-embedding-ada-002 at 1536 dimensions** (the RAG side's model as it is; it cannot be shortened)"
    if column_type == "vector768":
        return "**text-embedding-3-small at 768 dimensions** (the API's `dimensions = 768`, or truncate + L2-renormalize a 1536-d vector)"
    return "**text-embedding-3-small at 1536 dimensions** (ada-002 has the same shape and cost here but scores lower on MTEB, 61.0 vs 62.3, and cannot be shortened)"


def run_line(run: dict[str, Any]) -> str:
    machine = run.get("machine") or {}
    dirty = " (uncommitted changes)" if run.get("git_dirty") else ""
    return (
        f"`{run.get('run_id', '?')}`: git {str(run.get('git_sha'))[:12]}{dirty}; {machine.get('cores', '?')} cores, "
        f"{machine.get('cpu_model') or 'cpu ?'}, {(machine.get('memory_bytes') or 0) / 1e9:.0f} GB; "
        f"started {run.get('started_at', '?')}, finished {run.get('finished_at') or 'not recorded'}"
    )


def meets(c: Candidate, recall_target: float) -> str:
    """yes | undecided: … (its interval straddles the target) | no: …"""
    from dimbench.report import scale

    if c.qualifies:
        return "yes"
    if scale.verdict(c, recall_target) == "undecided":
        return f"undecided: {c.why_not} (at least {c.n_queries} queries a cell)"
    return f"no: {c.why_not}"


MARKS = {"meets": "", "fails": " ✗", "undecided": " ?", "not measured": ""}


def title_lines(results: Results, which: str | None = None) -> list[str]:
    """The title and the provenance line; `which`: how the runs relate, when not one grid repeated."""
    runs = results.runs
    if which is None:
        which = (
            f"one run, {run_line(runs[0])}"
            if len(runs) == 1
            else f"{len(runs)} runs of the same grid and corpus, each decided on its own (see “Stability across runs”)"
        )
    return [
        f"# Decision record: embedding dimension, index and RLS design ({results.profile})",
        "",
        f"_Generated by `dimbench report` from `run.json` and `measurements.jsonl` ({results.caption}). "
        f"Measured in {which}. Do not edit by hand: rerun the report._",
        "",
    ]


def runs_section(results: Results) -> list[str]:
    """## Runs: each run's commit, machine and times (only when there are several)."""
    if len(results.runs) < 2:
        return []
    return ["## Runs", "", *[f"- {run_line(r)}" for r in results.runs], ""]


def context_section() -> list[str]:
    return [
        "## Context",
        "",
        "A RAG platform (text-embedding-ada-002, 1536 dims) and the Mivaa PDF extractor (text-embedding-3-small "
        "at 768 dims) share one Supabase database and merge onto one harmonized schema in which every row "
        "belongs to a workspace and Row Level Security, keyed on `auth.uid()` from the JWT, isolates "
        "workspaces (seed: `db-schema-analysis-mivaa-integration.md`). One embedding model and dimension "
        "must be standardized, with an index and an RLS design that keep search correct for *every* "
        "tenant, from a 10-chunk workspace to one holding a fifth of all rows. pgvector applies RLS and "
        "WHERE filters *after* an approximate index scan, so small tenants are where designs fail.",
        "",
        "## Options",
        "",
        "- **Column**: `vector(768)` (3-small shortened), `vector(1536)` (3-small or ada-002), "
        "`halfvec(1536)` (1536 dims at half precision, an expression index over `embedding_1536`).",
        "- **Index**: none (exact scan, or the `workspace_id` btree), `ivfflat` (lists; probes swept), "
        "`hnsw` (m, ef_construction; ef_search swept); pgvector 0.8 iterative scans off / relaxed / strict.",
        "- **Access**: `service` (service_role, app-side `workspace_id = any(…)` filter, RLS bypassed); "
        "`rls_seed` (the seed's policy: unwrapped `auth.uid()`, IN-subquery); `rls` (this project's "
        "policies alone); `rls_filter` (the policies plus the explicit filter in the query). Every RLS arm "
        "runs as `authenticated` with the JWT claims set per request, as PostgREST does.",
        "",
    ]


def provenance(results: Results) -> str:
    """Which corpus, commit and machine each run of a results directory measured on (one phrase)."""
    parts = []
    for r in results.runs:
        corpus = r.get("corpus") or {}
        machine = r.get("machine") or {}
        parts.append(
            f"corpus `{corpus.get('name', '?')}` at git {str(r.get('git_sha'))[:7]}"
            f"{' (uncommitted changes)' if r.get('git_dirty') else ''} on {machine.get('cores', '?')} cores "
            f"{machine.get('cpu_model') or 'cpu ?'}, {(machine.get('memory_bytes') or 0) / 1e9:.0f} GB"
        )
    unique = list(dict.fromkeys(parts))
    return "; ".join(unique)


def rule_section(decision: Decision) -> list[str]:
    return [
        "## The rule",
        "",
        decision.rule,
        "",
        "- Buckets: the share of all rows a user may see (tiny < 0.1 %, small < 1 %, medium < 10 %, large ≥ 10 %).",
        "- Scopes (one workspace; all of the user's workspaces) are combined by the worst: both are production "
        "requests. A cell that was not measured (`null`) disqualifies; it never counts as 0 or as a pass.",
        "- Two stages: **screening** measures the whole grid with a few queries per cell; **confirmation** "
        "measures the leading candidates again, interleaved query by query on one connection (so machine "
        "drift hits all alike), adding batches until each cell's recall interval is decided against the "
        "target or the corpus's query pool is used up. The rule is applied to the confirmation stage.",
        "- Recall intervals are Wilson score intervals over the cell's queries (conservative: a per-query "
        "recall in [0, 1] has variance at most μ(1−μ)); p95 intervals are percentile-bootstrap intervals. "
        "Every figure below carries its interval and its query count.",
        "- Latency is the p95 of the worst (scope, bucket) cell, client-side, per request transaction, under "
        "the API role's `statement_timeout`; a request it cancels counts as failed, with recall 0 (column "
        "“failed”). ⚑ marks a configuration with a cell during which autovacuum/analyze ran on the study's "
        "tables.",
        "- Storage = measured index bytes + the vector column's bytes (4·d+8, halfvec 2·d+8) per row, × 10⁶.",
        "- `rls_seed` is measured to show what the seed's policy costs but is never chosen: it has no "
        "`WITH CHECK` and no `TO authenticated`. The same rule over `service` gives the baseline RLS is compared with.",
        "",
    ]


def _published_choice(profile: str) -> Candidate | None:
    from dimbench.evidence.results import read_results
    from dimbench.paths import published_dir

    path = published_dir(profile)
    if not (path / "run.json").exists():
        return None
    try:
        return decide(read_results(path)).chosen
    except Exception:  # an unreadable published directory: say nothing rather than guess
        return None
