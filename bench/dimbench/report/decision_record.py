"""DECISION.md: generated from the measurements, deterministic (same inputs → byte-identical file).

No clock is read: the only times are those in run.json. Lists are sorted, floats formatted with fixed
digits, JSON dumped with sorted keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dimbench.files import write_atomic
from dimbench.report.decide import (
    BUCKETS,
    COLUMN_BYTES,
    Agreement,
    Candidate,
    Decision,
    closest,
    decide,
    decide_runs,
    under_service,
)
from dimbench.report.load import Results
from dimbench.report.text import fmt, interval
from dimbench.study.designs import module as design_module
from dimbench.study.designs import routed
from dimbench.study.sidechannel import chance, leaks, moved_by, p50_floor
from dimbench.vocabulary import QUERY_GUC

TOKENS_PER_CHUNK = 400  # assumption for the re-embedding estimate
PRICE_PER_MILLION_TOKENS = {"text-embedding-3-small": 0.02, "text-embedding-ada-002": 0.10}  # USD, list price
COLUMN_SQL = {
    "vector768": ("embedding_768", "extensions.vector_cosine_ops"),
    "vector1536": ("embedding_1536", "extensions.vector_cosine_ops"),
    "halfvec1536": ("(embedding_1536::extensions.halfvec(1536))", "extensions.halfvec_cosine_ops"),
}
GUC = QUERY_GUC  # query argument -> the setting it is
SIGNATURE = "public.match_document_chunks(extensions.vector, integer, uuid[], integer, boolean)"
RLS_DESIGN = {
    "rls_filter": "this project's policies (`schema/0007`: one policy per command, `to authenticated`, `with check` on writes, `(select auth.uid())` via the membership helper) **plus** the app's explicit `filter_workspace_ids` in every search call — RLS stays the guarantee, the filter lets the planner use the `workspace_id` btree for small tenants",
    "rls": "this project's policies (`schema/0007`) alone; the app passes no workspace filter and RLS narrows the search",
    "rls_seed": "the seed's policy form (unwrapped `auth.uid()`, `FOR ALL`, no `WITH CHECK`)",
    "rls_docs": "Supabase's RAG-with-permissions policy form (membership through a `document_id in (select …)` subquery)",
    "service": "service_role with an app-side workspace filter (RLS bypassed)",
}


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


def design_source(design: str) -> str:
    """Where a design's module sits in the checkout (read from the module, so a move cannot stale it)."""
    return "bench/" + design_module(design).__name__.replace(".", "/") + ".py"


def index_sql(c: Candidate) -> list[str]:
    if c.config.design != "shared":
        return [
            f"-- design `{c.config.design}`: its structures and search function are"
            f" {design_source(c.config.design)} (install() is the migration; its"
            " match_document_chunks replaces public's)",
            *_shared_index_sql(c),
        ]
    return _shared_index_sql(c)


def _shared_index_sql(c: Candidate) -> list[str]:
    build = json.loads(c.config.build_params)
    query = json.loads(c.config.query_params)
    column, opclass = COLUMN_SQL[c.config.column_type]
    lines = []
    if c.config.index == "exact":
        lines.append(
            "-- no vector index: the workspace_id btree (document_chunks_document_idx) serves the search"
        )
    else:
        with_ = ", ".join(f"{k} = {v}" for k, v in build.items())
        lines += [
            f"create index concurrently if not exists document_chunks_{c.config.column_type}_{c.config.index}_idx",
            f"  on public.document_chunks using {c.config.index} ({column} {opclass})"
            + (f" with ({with_});" if with_ else ";"),
        ]
    settings = [f"{GUC[k]} = {v}" for k, v in query.items() if k in GUC]
    if c.config.index != "exact":
        settings.append(f"{c.config.index}.iterative_scan = '{c.config.iterative_scan}'")
    if settings:
        lines.append(
            "-- query settings scoped to the search function (not to every statement the role runs):"
        )
        lines += [f"alter function {SIGNATURE} set {s};" for s in settings]
        lines.append("-- or, for every request PostgREST makes as a signed-in user:")
        lines += [f"-- alter role authenticated set {s};" for s in settings]
    return lines


def call_sql(c: Candidate) -> str:
    dim = 768 if c.config.column_type == "vector768" else 1536
    half = ", half_precision => true" if c.config.column_type.startswith("halfvec") else ""
    filt = (
        "filter_workspace_ids => :the_users_workspace_ids, "
        if c.config.access in ("rls_filter", "service")
        else ""
    )
    return f"select * from public.match_document_chunks(:query_embedding, 10, {filt}embedding_dim => {dim}{half});"


def model_of(column_type: str) -> str:
    if column_type == "vector768":
        return "**text-embedding-3-small at 768 dimensions** (the API's `dimensions = 768`, or truncate + L2-renormalize a 1536-d vector)"
    return "**text-embedding-3-small at 1536 dimensions** (ada-002 has the same shape and cost here but scores lower on MTEB, 61.0 vs 62.3, and cannot be shortened)"


def run_line(run: dict[str, Any]) -> str:
    machine = run.get("machine") or {}
    dirty = " (uncommitted changes)" if run.get("git_dirty") else ""
    return (
        f"`{run.get('run_id', '?')}`: git {str(run.get('git_sha'))[:12]}{dirty}; {machine.get('cores', '?')} cores, "
        f"{machine.get('cpu_model') or 'cpu ?'}, {(machine.get('memory_bytes') or 0) / 2**30:.0f} GiB; "
        f"started {run.get('started_at', '?')}, finished {run.get('finished_at') or 'not recorded'}"
    )


def header(results: Results) -> list[str]:
    runs = results.runs
    which = (
        f"one run, {run_line(runs[0])}"
        if len(runs) == 1
        else f"{len(runs)} runs of the same grid and corpus, each decided on its own (see “Stability across runs”)"
    )
    out = [
        f"# Decision record: embedding dimension, index and RLS design ({results.profile})",
        "",
        f"_Generated by `dimbench report` from `run.json` and `measurements.jsonl` ({results.caption}). "
        f"Measured in {which}. Do not edit by hand: rerun the report._",
        "",
    ]
    if len(runs) > 1:
        out += ["Runs:", "", *[f"- {run_line(r)}" for r in runs], ""]
    return out + [
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


def table_section(decision: Decision) -> list[str]:
    def best(pool: list[Candidate], arms: tuple[str, ...], n: int) -> list[Candidate]:
        return [c for c in pool if c.config.access in arms][:n]

    run = f"run `{decision.run_id}`"
    if decision.stage == "confirmation":
        confirmed = decision.candidates
        seed = best(decision.screened, ("rls_seed",), 2)
        return [
            "## The table",
            "",
            f"Confirmation stage of {run}: the {len(confirmed)} leading configurations of screening "
            f"(of {len(decision.screened)} screened), measured again, interleaved (recall per bucket is "
            "the worst over scopes):",
            "",
            *table(confirmed, decision.chosen, decision.tied),
            "",
            "The seed's policy form, best two at screening (never chosen; few queries per cell):",
            "",
            *table(seed),
            "",
        ]
    n_rls = sum(c.config.access in decision.arms for c in decision.candidates)
    first = [decision.chosen] if decision.chosen else []
    return [
        "## The table",
        "",
        f"Screening stage of {run} (no confirmation stage was measured): the ten best of {n_rls} "
        f"configurations under {' / '.join(decision.arms)} by the rule, then the best two under the seed's "
        "policy and the best three as service_role (recall is the worst over scopes):",
        "",
        *table(
            first
            + [c for c in best(decision.candidates, decision.arms, 10) if c is not decision.chosen][
                : 10 - len(first)
            ]
            + best(decision.candidates, ("rls_seed",), 2)
            + best(decision.candidates, ("service",), 3),
            decision.chosen,
            decision.tied,
        ),
        "",
    ]


def stability_section(agreement: Agreement) -> list[str]:
    if len(agreement.decisions) < 2:
        return []
    out = [
        "## Stability across runs",
        "",
        "Each run built its indexes afresh and was decided on its own by the rule above.",
        "",
        "| run | decision | worst p95 ms [95 % interval] | weakest cell: recall [95 % interval] (queries) | tie set size |",
        "|---|---|---|---|---|",
    ]
    for d in agreement.decisions:
        c = d.chosen
        if c is None:
            out.append(f"| `{d.run_id}` | nothing qualifies | — | — | 0 |")
            continue
        w = c.weakest
        out.append(
            f"| `{d.run_id}` | {c.config.label} | {fmt(c.worst_p95_ms, 2)}{interval(c.worst_p95_ci, 2)} | "
            f"{w['cell']}: {fmt(w['recall'])}{interval(w['ci'])} ({w['n']}) | {len(d.tied)} |"
        )
    out.append("")
    if agreement.agreed:
        out += [f"**All {len(agreement.decisions)} runs choose {agreement.agreed}.**", ""]
    else:
        common = agreement.common()
        shared = ", ".join(f"{k} = {v}" for k, v in common.items()) or "nothing"
        out += [
            f"**The runs do not agree on one configuration**: the decision is the tie set "
            f"{', '.join(agreement.tie_set) or '(empty)'}. Every run's choice shares: {shared}.",
            "",
        ]
    return out


def decision_section(decision: Decision, agreement: Agreement | None = None) -> list[str]:
    out = ["## The decision", ""]
    split = agreement is not None and len(agreement.decisions) > 1 and agreement.agreed is None
    chosen = decision.chosen
    if chosen is None:
        near = closest(decision)
        out += [
            f"**No configuration is confirmed to reach recall@10 {decision.recall_target:.2f} (at the lower bound "
            f"of its interval) in every bucket under "
            f"{' / '.join(decision.arms)}.** Do not standardize on these settings; widen the sweep (higher "
            "ef_search / probes, iterative scans, the explicit workspace filter).",
            "",
        ]
        if near:
            out += [
                f"The closest is {near.config.label}: worst-cell recall {fmt(near.min_recall)} "
                f"({near.why_not}; {near.n_queries} queries in its smallest cell), worst p95 "
                f"{fmt(near.worst_p95_ms, 2)}{interval(near.worst_p95_ci, 2)} ms ({near.worst_cell}).",
                "",
            ]
        return out
    c = chosen.config
    query = json.loads(c.query_params)
    settings = ", ".join(
        [f"{GUC.get(k, k)} = {v}" for k, v in query.items()]
        + ([f"{c.index}.iterative_scan = {c.iterative_scan}"] if c.index != "exact" else [])
    )
    others = [t for t in decision.tied if t is not chosen]
    tie_note = (
        [
            f"The measurements cannot separate it from {len(others)} other qualifying configuration(s) "
            "whose p95 interval overlaps the best's: "
            + "; ".join(
                f"{t.config.label} ({fmt(t.worst_p95_ms, 2)}{interval(t.worst_p95_ci, 2)} ms)" for t in others
            )
            + ". The rule settles the tie by storage, then recall; any of them meets the rule.",
            "",
        ]
        if others
        else []
    )
    w = chosen.weakest
    if split:
        assert agreement is not None
        out += [
            f"**No single winner: the runs chose differently.** The decision is the tie set "
            f"{', '.join(agreement.tie_set)}; any member meets the rule in the run that chose it. "
            f"The first run's choice, as one member of that set:",
            "",
        ]
    out += [
        f"**{'Run 1 chose' if split else 'Standardize on'} {chosen.config.label}.**",
        "",
        *tie_note,
        f"- Model and dimension: {model_of(c.column_type)}.",
        f"- Column type: `{c.column_type}` ({COLUMN_BYTES[c.column_type]} bytes per vector).",
        f"- Index: `{c.index}`"
        + (
            f" with {', '.join(f'{k} = {v}' for k, v in json.loads(c.build_params).items())}"
            if c.build_params != "{}"
            else ""
        )
        + ".",
        f"- Query settings: {settings or 'none (exact search)'}.",
        f"- RLS design: {RLS_DESIGN[c.access]}.",
        f"- Measured ({decision.stage} stage, run `{decision.run_id}`): weakest cell {w['cell']} recall@10 "
        f"{fmt(w['recall'])}{interval(w['ci'])} over {w['n']} queries (at least {chosen.n_queries} queries in "
        f"every cell), worst p95 {fmt(chosen.worst_p95_ms, 2)}{interval(chosen.worst_p95_ci, 2)} ms "
        f"({chosen.worst_cell}); {chosen.failed_queries} failed requests; storage "
        f"{mb(chosen.storage_bytes_per_million)} per million chunks.",
    ]
    twin = under_service(decision, chosen)
    if twin is not None and twin is not chosen:
        ratio = chosen.worst_p95_ms / twin.worst_p95_ms if chosen.worst_p95_ms and twin.worst_p95_ms else None
        out.append(
            f"- The same index and settings as service_role with the app's filter: worst-cell recall "
            f"{fmt(twin.min_recall)} (lower bound {fmt(twin.min_recall_lower)}), worst p95 "
            f"{fmt(twin.worst_p95_ms, 2)}{interval(twin.worst_p95_ci, 2)} ms ({twin.worst_cell}): worst-cell p95 "
            f"under RLS ÷ as service_role = ×{fmt(ratio, 2)}."
        )
    if decision.baseline:
        b = decision.baseline
        out.append(
            f"- The best service-role configuration by the same rule ({b.config.label}) reaches "
            f"{fmt(b.min_recall)} (lower bound {fmt(b.min_recall_lower)}) at "
            f"{fmt(b.worst_p95_ms, 2)}{interval(b.worst_p95_ci, 2)} ms."
        )
    out += ["", "Recommended index and settings:", "", "```sql", *index_sql(chosen), "```", ""]
    out += [
        "How apps call it (PostgREST rpc, as the signed-in user):",
        "",
        "```sql",
        call_sql(chosen),
        "```",
        "",
    ]
    return out


def consequences_section(results: Results, decision: Decision) -> list[str]:
    out = ["## Consequences", ""]
    chosen = decision.chosen
    if chosen is not None:
        out += [
            f"- **Storage of the decision**: {mb(chosen.storage_bytes_per_million)} per million chunks "
            f"(vector column {mb(COLUMN_BYTES[chosen.config.column_type] * 1e6)} + index); for comparison the "
            f"1536-d column alone, without any index, is {mb(COLUMN_BYTES['vector1536'] * 1e6)}.",
        ]
    out += ["- Measured per build (the table holds both embedding columns during the study):"]
    for b in sorted(results.run.get("builds") or [], key=lambda b: b["build_key"]):
        if b.get("rows") and b.get("index_bytes") is not None and b.get("table_bytes") is not None:
            out.append(
                f"  - `{b['build_key']}`: index {mb(b['index_bytes'] / b['rows'] * 1e6)} + table "
                f"{mb(b['table_bytes'] / b['rows'] * 1e6)} per million chunks; built in "
                f"{fmt(b.get('seconds'), 1)} s for {b['rows']:,} rows (maintenance_work_mem "
                f"{b.get('maintenance_work_mem', '?')}, parallel workers {b.get('max_parallel_maintenance_workers', '?')})."
            )
    cost = TOKENS_PER_CHUNK * PRICE_PER_MILLION_TOKENS["text-embedding-3-small"]
    out += [
        f"- **Re-embedding**: ada-002 vectors cannot be shortened (not a Matryoshka model), so every "
        f"existing chunk is re-embedded with 3-small whichever dimension wins: about {TOKENS_PER_CHUNK} "
        f"tokens × ${PRICE_PER_MILLION_TOKENS['text-embedding-3-small']:.2f}/1M tokens ≈ ${cost:.0f} per million "
        "chunks (assumed token count and list price). One 1536-d call yields both columns (768 = truncate + "
        "renormalize).",
        "- **Migration steps**:",
        "  1. apply `schema/` (0005–0011 upgrade the legacy RAG tables in place: default workspace, "
        "`embedding` → `embedding_1536`, `embedding_768` queued for backfill via a partial index, keys including "
        "`workspace_id` attached from concurrently built indexes);",
        "  2. backfill the chosen column in batches (re-embed with 3-small);",
        "  3. build the recommended index `concurrently` once the backfill is done (building before loading is slower "
        "and gives a worse graph), with `maintenance_work_mem` large enough to hold it;",
        "  4. set the query settings above, switch the apps' `embedding_dim` / filter, verify recall on a sample;",
        "  5. drop the unused embedding column and its indexes.",
        "- **Storage during transition**: both vectors cannot be stored in the row (6152 + 3080 bytes > "
        "8160); `embedding_768` is PLAIN, `embedding_1536` EXTERNAL (out of line), which also makes "
        "1536-d scans that read the heap slower than they will be once it is the only column.",
        "",
    ]
    return out


def sensitivity(results: Results, decision: Decision) -> list[str]:
    """How the decision moves with the overlap assumption, if the measurements carry more than one value."""
    values = sorted(
        {r.get("matryoshka_tail_share") for r in results.rows if r.get("matryoshka_tail_share") is not None}
    )
    if len(values) < 2:
        return [
            "- How the decision moves with that assumption is **not measured**: this run measured one value of it. "
            "Recall here is against each dimension's own exact ground truth, so the assumption moves relevance "
            "(nDCG@10) rather than the recall/latency ranking; rerun with another `matryoshka_tail_share` in the "
            "corpus spec, or on real embeddings, to see the quality gap move.",
        ]
    out = ["- The decision per measured value of `matryoshka_tail_share`:"]
    for value in values:
        subset = Results(
            results.directory,
            results.run,
            [r for r in results.rows if r.get("matryoshka_tail_share") == value],
        )
        d = decide(subset, decision.recall_target, decision.latency_budget_ms, decision.arms)
        out.append(f"  - {value}: {d.chosen.config.label if d.chosen else 'nothing qualifies'}")
    return out


def assumptions_section(results: Results, decision: Decision) -> list[str]:
    run = results.run
    corpus = run.get("corpus") or {}
    stats = corpus.get("statistics") or {}
    assumptions = corpus.get("assumptions") or {}
    counts = corpus.get("counts") or {}
    server, machine = run.get("server") or {}, run.get("machine") or {}
    named = ", ".join(
        f"`{k}` = {json.dumps(v, sort_keys=True)}" for k, v in sorted(assumptions.items()) if k != "note"
    )
    overlap = stats.get("top10_overlap_768_vs_1536")
    calibration = corpus.get("calibration")
    return [
        "## Measured vs assumed",
        "",
        f"- **Measured** here: recall, latency, QPS, plans, build time and sizes on PostgreSQL "
        f"{server.get('postgresql', '?')} + pgvector {server.get('pgvector', '?')}, {machine.get('cores', '?')} "
        f"cores; corpus `{corpus.get('name', '?')}` of {counts.get('chunks', '?')} chunks in "
        f"{counts.get('workspaces', '?')} workspaces, {counts.get('users', '?')} users, {counts.get('queries', '?')} queries.",
        "- **Synthetic assumptions**: the embeddings are generated (latent topic structure, Matryoshka energy "
        "profile), not real OpenAI vectors; relevance labels are synthetic, so nDCG@10 compares dimensions "
        "only under the generator's model. Named assumptions recorded by the run: "
        f"{named or 'none recorded'}.",
        "- The 768-vs-1536 disagreement: exact top-10 overlap between the two dimensions "
        + (f"{fmt(overlap)} (corpus statistics)" if overlap is not None else "not recorded in run.json")
        + ". No public figure exists for 3-small at 768 (MTEB: ada-002 61.0, 3-small 62.3 at 1536).",
        *sensitivity(results, decision),
        "- **Calibration** (how realistic the corpus is for unfiltered hnsw; real OpenAI embeddings reach "
        "≈ 0.95–0.99 at default settings): "
        + (json.dumps(calibration, sort_keys=True) if calibration else "not measured in this run")
        + ".",
        "",
    ]


def defects_section() -> list[str]:
    return [
        "## Defects found in the seed",
        "",
        "- Its composite index `(workspace_id, embedding_768) using ivfflat` **cannot be built**: ivfflat "
        "and hnsw index exactly one vector column. Alternatives: the explicit `workspace_id` filter so the "
        "planner can use the btree for small tenants (measured as `rls_filter`), pgvector 0.8 iterative scans, "
        "partial vector indexes per large tenant, or partitioning `document_chunks` by workspace.",
        "- Policies were `FOR ALL` with only `USING`, no `WITH CHECK`: PostgreSQL then reuses the read test for "
        "writes, so every member, a viewer included, may insert, update and delete anything in their workspaces; "
        "and without `TO authenticated` they are evaluated for anon too. Alternative: one policy per command, "
        "`to authenticated`, role-aware `with check` on writes (`schema/0007`).",
        "- `auth.uid()` unwrapped: re-evaluated per row (the `rls_seed` arm measures what that costs). "
        "Alternative: `(select auth.uid())`, evaluated once per statement.",
        "- `get_user_workspace_ids()` was `SECURITY DEFINER` without a fixed `search_path` (search-path "
        "hijacking) in an exposed schema. Alternative: the definer helper `private.workspace_ids()` in a "
        "non-exposed schema with `set search_path = ''`, reading `workspace_members` itself (one source of truth: "
        "no trigger-maintained copy to go stale under `session_replication_role = replica`), executable by "
        "`authenticated` only.",
        "- `workspace_members` had no RLS (anyone could add themselves to any workspace), no unique "
        "(workspace_id, user_id) and no index on user_id. Alternative: RLS with owner/admin-only writes, the "
        "unique key, and an index on user_id for the policy lookup.",
        "",
    ]


MARKS = {"meets": "", "fails": " ✗", "undecided": " ?", "not measured": ""}


def at_size(point: Any, recall_target: float) -> str:
    """One size of a followed configuration: the verdict and the numbers it rests on."""
    from dimbench.report import scale

    c = point.candidate
    word = scale.verdict(c, recall_target)
    if c is None:
        return word
    weak = c.weakest
    if weak:  # the interval the verdict rests on, over that cell's own queries
        recall = (
            f"weakest cell {weak['cell']}: recall {fmt(weak['recall'])}{interval(weak['ci'])} "
            f"over {weak['n']} queries, at least {c.n_queries} in every cell"
        )
    else:
        recall = f"worst recall {fmt(c.min_recall)}, at least {c.n_queries} queries in every cell"
    return f"{word} ({recall}; worst p95 {fmt(c.worst_p95_ms, 2)} ms)"


def held_phrase(points: list[Any], recall_target: float) -> str:
    """How far a followed configuration holds, never more sure than its intervals: a size where a recall
    interval straddles the target is neither a pass nor a failure."""
    from dimbench.report import scale

    held = scale.holds_up_to(points)
    unrefuted = scale.not_failed_up_to(points, recall_target)
    straddle = "its recall interval straddles the target there; more queries per cell would settle it"
    if held and unrefuted and unrefuted > held:
        return f"**holds up to {held:,} chunks**, not shown to fail up to {unrefuted:,} ({straddle})"
    if held:
        return f"**holds up to {held:,} chunks**"
    if unrefuted:
        return f"**neither shown to hold nor to fail up to {unrefuted:,} chunks** ({straddle})"
    return "**fails at the smallest size**"


def projection_lines(points: list[Any], recall_target: float) -> list[str]:
    """The 10M projection of a followed configuration, labelled, and what it implies for the target."""
    from dimbench.report import scale

    p95, recall = scale.projected_p95(points), scale.projected_recall(points)
    if p95 is None and recall is None:
        return []
    parts = [f"worst p95 ≈ {fmt(p95, 1)} ms"] if p95 is not None else []
    parts += [f"worst-bucket recall ≈ {fmt(recall)}"] if recall is not None else []
    line = (
        f"Projection (not a measurement): {' and '.join(parts)} at 10M chunks (straight lines through the "
        "measured sizes against log N; the recall is the means', with no interval)."
    )
    if recall is not None and recall < recall_target:
        line += (
            f" That recall is below the {recall_target} target: measure again before that size, with a wider "
            "ef_search or a lower T in hand."
        )
    return [line]


def holds_section(decision: Decision, published: Results | None) -> list[str]:
    """How far the choice holds, from a scale profile's results (the published one, when written)."""
    from dimbench.report import scale

    if decision.chosen is None or published is None or not scale.sizes(published):
        return []
    points = scale.follow(published, decision.chosen.config)
    out = ["## How far the choice holds", ""]
    if all(p.candidate is None for p in points):
        return out + [
            f"The published scale profile (`results/scale/`) did not measure {decision.chosen.config.label}; "
            "see its DECISION.md for the designs it followed.",
            "",
        ]
    target = decision.recall_target
    out.append(
        "In the published scale profile (`results/scale/`, same rule): "
        + held_phrase(points, target)
        + "; "
        + "; ".join(f"{p.chunks:,}: {at_size(p, target)}" for p in points)
        + "."
    )
    out += projection_lines(points, target)
    largest, chosen, tied = scale.choices(published)[-1]
    if chosen is not None and chosen.config == decision.chosen.config:
        out.append(
            f"At {largest:,} chunks, the largest size measured, the rule chooses this same configuration (tie set "
            f"of {tied}): no other design measured takes over up to there; beyond it only the projection speaks."
        )
    elif chosen is not None:
        out.append(
            f"At {largest:,} chunks the rule chooses {chosen.config.label} (worst recall {fmt(chosen.min_recall)}, "
            f"worst p95 {fmt(chosen.worst_p95_ms, 2)} ms; tie set of {tied})."
        )
    elif chosen is None:
        out.append(f"At {largest:,} chunks nothing the scale grid measured meets the rule.")
    return [*out, ""]


def scale_render(results: Results) -> str:
    """The record of a scale profile: the rule at each size, how each design's best holds, projections."""
    from dimbench.report import scale

    runs = scale.sizes(results)
    first = scale.decision_at(results, runs[0][1])
    out = header(results) + rule_section(first)
    out += [
        "## The rule at each size",
        "",
        "| chunks | run | the rule's choice | tie set | worst-cell recall | worst p95 ms [CI] |",
        "|---|---|---|---|---|---|",
    ]
    for (chunks, chosen, tied), (_, run_id) in zip(scale.choices(results), runs, strict=True):
        out.append(
            f"| {chunks:,} | `{run_id}` | {chosen.config.label if chosen else 'nothing qualifies'} | {tied} "
            f"| {fmt(chosen.min_recall) if chosen else ''} "
            f"| {fmt(chosen.worst_p95_ms, 2) + interval(chosen.worst_p95_ci, 2) if chosen else ''} |"
        )
    out += [
        "",
        "## Each design's best at the smallest size, followed",
        "",
        "Recall is the worst bucket's mean, p95 the worst cell's, each over the queries a cell in brackets "
        "(a confirmed configuration's confirmation, else its screening). "
        "**10M is a projection** (least squares through log p95, and through the recall means, against "
        "log N), not a measurement.",
        "",
        "| line | configuration | "
        + " | ".join(f"{n:,}: recall / p95 ms" for n, _ in runs)
        + " | holds up to | 10M (projection): recall / p95 ms |",
        "|---|---|" + "---|" * len(runs) + "---|---|",
    ]
    for label, c in scale.followed(first, runs[0][0]).items():
        points = scale.follow(results, c.config)
        held = scale.holds_up_to(points)
        unrefuted = scale.not_failed_up_to(points, first.recall_target)
        cells = " | ".join(
            f"{fmt(p.candidate.min_recall)} / {fmt(p.candidate.worst_p95_ms, 2)} ({p.candidate.n_queries} q)"
            + MARKS[scale.verdict(p.candidate, first.recall_target)]
            if p.candidate
            else "not measured"
            for p in points
        )
        p95, recall = scale.projected_p95(points), scale.projected_recall(points)
        holds = f"{held:,}" if held else "none"
        if unrefuted and unrefuted != held:
            holds += f" (? to {unrefuted:,})"
        out.append(
            f"| {label} | {c.config.label} | {cells} | {holds} "
            f"| {fmt(recall) if recall is not None else '—'} / {fmt(p95, 1) if p95 is not None else '—'} |"
        )
    out += [
        "",
        "✗: fails the rule at that size (a recall interval entirely below the target, or failed requests); "
        "?: undecided — its weakest recall interval straddles the target, so neither a pass nor a failure "
        "(more queries per cell would settle it); see the run's own record for the cells.",
        "",
    ]
    out += scale_cost_lines(results, runs)
    published_small = _published_choice("small")
    if published_small is not None:
        points = scale.follow(results, published_small.config)
        last = scale.choices(results)[-1]
        out += [
            "## The published decision (`results/small/`)",
            "",
            f"{published_small.config.label}: "
            + held_phrase(points, first.recall_target)
            + "; "
            + "; ".join(f"{p.chunks:,}: {at_size(p, first.recall_target)}" for p in points)
            + (
                ""
                if all(p.candidate is not None for p in points)
                else " (not measured at every size: see the scale grid's trims)"
            )
            + f". At the largest size the rule chooses {last[1].config.label if last[1] else 'nothing'}.",
            *projection_lines(points, first.recall_target),
            "",
        ]
    return "\n".join(out)


def scale_cost_lines(results: Results, runs: list[tuple[int, str]]) -> list[str]:
    """What each build and each design's install cost at each size: seconds, and the bytes it added."""
    keys: list[tuple[str, str]] = []  # (design, build key) in the order the runs did them
    for _, run_id in runs:
        for key in [("shared", k) for k in results.builds(run_id)] + list(results.designs(run_id)):
            if key not in keys:
                keys.append(key)

    def cell(design: str, build_key: str, run_id: str) -> str:
        entry = (
            results.builds(run_id).get(build_key)
            if design == "shared"
            else results.designs(run_id).get((design, build_key))
        )
        if not entry:
            return "not measured"
        added = (entry.get("index_bytes") or 0) + (0 if design == "shared" else entry.get("table_bytes") or 0)
        extra = []
        if entry.get("maintenance_work_mem"):
            extra.append(f"mwm {entry['maintenance_work_mem']}")
        for setting, t in routed.thresholds(entry.get("detail") or {}).items():
            extra.append(f"T = {t} at {setting}" if setting else f"T = {t}")
        return f"{fmt(entry.get('seconds'), 1)} s / {added / 2**20:,.0f} MB" + (
            f" ({', '.join(extra)})" if extra else ""
        )

    out = [
        "## Build cost and storage at each size",
        "",
        "Seconds to build the index (`shared`) or install the design on top of it, and the bytes that added "
        "(index; plus tables for designs that copy rows: partitions, the inline column), measured by each run "
        "on this machine. `routed` reuses the shared index: its cost is a count table and the measured T.",
        "",
        "| design | build | " + " | ".join(f"{n:,}: s / MB" for n, _ in runs) + " |",
        "|---|---|" + "---|" * len(runs),
    ]
    for design, build_key in keys:
        out.append(
            f"| {design} | {build_key} | " + " | ".join(cell(design, build_key, r) for _, r in runs) + " |"
        )
    return [*out, ""]


def _published_choice(profile: str) -> Candidate | None:
    from dimbench.paths import published_dir
    from dimbench.report.load import read_results

    path = published_dir(profile)
    if not (path / "run.json").exists():
        return None
    try:
        return decide(read_results(path)).chosen
    except Exception:  # an unreadable published directory: say nothing rather than guess
        return None


def render(
    results: Results,
    decision: Decision,
    agreement: Agreement | None = None,
    scale_results: Results | None = None,
) -> str:
    """The record; `scale_results`: a scale profile's results to say how far the choice holds."""
    from dimbench.report import scale

    if scale.sizes(results):
        return scale_render(results)
    agreement = agreement or Agreement([decision])
    out = (
        header(results)
        + rule_section(decision)
        + stability_section(agreement)
        + table_section(decision)
        + decision_section(decision, agreement)
        + holds_section(decision, scale_results)
        + designs_section(results, decision)
        + consequences_section(results, decision)
        + assumptions_section(results, decision)
        + defects_section()
    )
    return "\n".join(out)


def side_channel_lines(side: list[dict[str, Any]]) -> list[str]:
    """The tenant side channel's table: each design's p50 and short share over its passes without and
    with a foreign tenant's cluster, judged by whether every pass with it lies beyond every pass without."""
    if not side:
        return []
    arms_measured = ", ".join(f"`{a}`" for a in sorted({e["access"] for e in side}))
    cycled = [e for e in side if chance(e) is not None]
    out = [
        "",
        "### The tenant side channel",
        "",
        f"Arms this run measured: {arms_measured}.",
        "",
        f"Per arm, the users who see the fewest rows ({side[0]['without']['n_queries']} queries: under `rls` "
        "the users of the smallest bucket over all their workspaces, under `rls_filter` one workspace of "
        f"the smallest bucket), without and with a foreign tenant's dense cluster ({side[0]['cluster_rows']} "
        "chunks, near-duplicates of those very queries, in a workspace none of them may see), "
        + (
            f"in passes {cycled[0]['order']} (A without, B with the cluster; one design after the other, "
            "the design installed afresh for every pass). A design **leaks** when every pass with the "
            "cluster lies beyond every pass without it, on the same side, in p50 or in short-result share: "
            f"with no effect at all that happens by chance with probability {chance(cycled[0]):.3f} per "
            "entry (a rank test over the passes). The ratio is the median p50 with over the median p50 "
            "without."
            if cycled
            else "in fewer than two passes with the cluster: *not judged* (one pass against its "
            "neighbours cannot tell a move from the machine's drift between passes; repeated single "
            "A/B/A runs did not flag the same designs twice)."
        ),
        "",
        "| design | build | arm | passes | p50 ms without: median [range] | p50 ms with: median [range] "
        "| ratio | short share without → with | recall without → with | leaks |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in side:
        b, a = e["without"], e["with"]
        verdict = leaks(e)
        out.append(
            f"| {e['design']} | {e['build_key']} | {e['access']} | {e.get('order', 'A/A/B')} "
            f"| {fmt(b['p50_ms'], 2)}{interval(b.get('p50_range'), 2)} "
            f"| {fmt(a['p50_ms'], 2)}{interval(a.get('p50_range'), 2)} | ×{fmt(e.get('p50_ratio'), 2)} "
            f"| {fmt(b['short_share'], 2)} → {fmt(a['short_share'], 2)} "
            f"| {fmt(b['recall_mean'])} → {fmt(a['recall_mean'])} "
            f"| {'**yes**' if verdict else 'no' if verdict is False else 'not judged'} |"
        )
    return [*out, "", *side_channel_verdict(side)]


def side_channel_verdict(side: list[dict[str, Any]]) -> list[str]:
    """Which designs leak, in words, and what a "no" can claim: no move beyond the spread of the passes
    without the cluster (a move inside it cannot separate)."""
    verdicts = [(e, leaks(e)) for e in side]
    if all(v is None for _, v in verdicts):
        return ["**Which designs leak**: not judged in this run (fewer than two passes with the cluster)."]

    def what(e: dict[str, Any]) -> str:
        moved = moved_by(e) or []
        ratio = e.get("p50_ratio")
        parts = []
        if "p50" in moved:
            parts.append(
                f"p50 ×{fmt(ratio, 2)}" + (", faster with the cluster" if ratio and ratio < 1 else "")
            )
        if "short share" in moved:
            parts.append(f"short share {e['short_share_change']:+.2f}")
        return f"{e['design']} under `{e['access']}` ({'; '.join(parts)})"

    leaking = [what(e) for e, v in verdicts if v]
    judged = [e for e, v in verdicts if v is not None]
    by_chance = sum(chance(e) or 0.0 for e in judged)
    clean = sorted({e["design"] for e, _ in verdicts} - {e["design"] for e, v in verdicts if v is not False})
    moved_short = [e for e in judged if "short share" in (moved_by(e) or [])]
    text = (
        f"**Which designs leak** (this run, one cluster, {side[0]['without']['n_queries']} queries a pass): "
        + ("; ".join(leaking) if leaking else "none")
        + f" — with no effect at all, about {by_chance:.1f} of these {len(judged)} entries would separate by "
        "chance, so "
        + (
            "a lone flag is not evidence on its own (it would be if the same entry separated again in an "
            "independent run). "
            if 0 < len(leaking) <= max(1, round(by_chance))
            else "the flags stand beyond chance. "
            if leaking
            else "none is what no effect looks like. "
        )
        + (
            "No design's short-result share moved with the cluster in every cycle. "
            if not moved_short
            else f"Short-result share moved for {', '.join(sorted({e['design'] for e in moved_short}))}. "
        )
    )
    if clean:

        def floor_of(design: str) -> str:
            floors = [f for e in side if e["design"] == design and (f := p50_floor(e)) is not None]
            return f" (±{max(floors):.0%})" if floors else ""

        text += (
            "Not moved under any arm: "
            + ", ".join(f"{d}{floor_of(d)}" for d in clean)
            + " — a “no” bounds a leak, it does not rule one out: a p50 move inside the spread of the "
            "passes without (in brackets, around their median) could not separate."
        )
    return [text]


def meets(c: Candidate, recall_target: float) -> str:
    """yes | undecided: … (its interval straddles the target) | no: …"""
    from dimbench.report import scale

    if c.qualifies:
        return "yes"
    if scale.verdict(c, recall_target) == "undecided":
        return f"undecided: {c.why_not} (at least {c.n_queries} queries a cell)"
    return f"no: {c.why_not}"


def designs_section(results: Results, decision: Decision) -> list[str]:
    """The designs side by side, the paths their calls took, planner regret, the scan budget."""
    from dimbench.report import designs as d

    bests = d.best_per_design(results, decision)
    if len(bests) < 2:
        return []
    out = [
        "## The designs side by side",
        "",
        f"Each design's best configuration under {' / '.join(f'`{a}`' for a in decision.arms)} by the same rule "
        f"({decision.stage} stage). Storage counts the whole layout (all partitions, all partial indexes, the "
        "quantized index) plus the vector column, per million chunks; install = building the design's "
        "structures on this corpus.",
        "",
        "| design | best configuration | meets the rule | worst-cell recall [95 % CI] | worst p95 ms [CI] "
        "| storage / 1M | install s | T (routed) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in bests:
        c = b.best
        assert c is not None
        ci = (
            interval([c.min_recall_lower, c.min_recall_upper]).strip()
            if c.min_recall_lower is not None and c.min_recall_upper is not None
            else ""
        )
        out.append(
            f"| {b.design} | {c.config.label} | {meets(c, decision.recall_target)} "
            f"| {fmt(c.min_recall)} {ci} | {fmt(c.worst_p95_ms, 2)}{interval(c.worst_p95_ci, 2)} "
            f"| {mb(b.storage_bytes_per_million)} | {fmt(b.install_seconds, 1)} "
            f"| {b.threshold if b.threshold is not None else ''} |"
        )
    out.append("")
    for cal in d.routed_calibrations(results):
        calibration = cal.get("calibration") or {}
        samples = calibration.get("samples") or []
        if samples:
            out.append(
                f"- routed on {cal['build_key']}: T = **{cal.get('threshold')}** visible rows, the threshold "
                f"that routed {len(samples)} measured queries (both paths, {calibration.get('repeats')} "
                f"repeats each, arm `{calibration.get('access')}`, at {calibration.get('setting')}) fastest in "
                "total while the queries it sends down the index keep a mean recall@10 of at least "
                f"{calibration.get('recall_target')}."
            )
    rows = [r for r in results.rows if r.get("stage") == "screening"]
    shares = d.path_share(rows)
    if shares:
        out += [
            "",
            "### Which path served the calls",
            "",
            "Two real calls per screening cell, explained from inside the search function "
            "(auto_explain: ANALYZE, BUFFERS, nested statements), as the arm's user:",
            "",
            "| design | arm | paths (sampled calls) |",
            "|---|---|---|",
        ]
        for (design, access), counts in sorted(shares.items()):
            paths = ", ".join(f"{p}: {n}" for p, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
            out.append(f"| {design} | {access} | {paths} |")
    regrets = d.regret(rows)
    out += [
        "",
        "### Planner regret",
        "",
        f"{len(regrets)} screening cell(s) took a path while another path measured in the same run (same "
        f"column type, arm, scope and bucket) was at least as accurate and at most {d.REGRET_SPEED:.0%} of "
        "its p50.",
    ]
    shared_regret = [r for r in regrets if r["design"] == "shared"]
    if shared_regret:
        out += [
            f" Of those, {len(shared_regret)} are the planner's own choice (the shared design); the worst "
            "ten by lost time:",
            "",
            "| cell | configuration | path | recall | p50 ms | better: configuration | path | recall | p50 ms |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        worst = sorted(shared_regret, key=lambda r: r["better_p50_ms"] - r["p50_ms"])[:10]
        for r in worst:
            out.append(
                f"| {r['cell']} | {r['config']} | {r['path']} | {fmt(r['recall'])} | {fmt(r['p50_ms'], 2)} "
                f"| {r['better_config']} | {r['better_path']} | {fmt(r['better_recall'])} "
                f"| {fmt(r['better_p50_ms'], 2)} |"
            )
    out += side_channel_lines(results.run.get("side_channel") or [])
    budget = d.scan_budget(rows)
    budgets = sorted({b["max_scan_tuples"] for b in budget})
    if len(budgets) > 1:
        out += [
            "",
            "### The scan budget (hnsw.max_scan_tuples)",
            "",
            "Worst share of queries per bucket that came back with fewer rows than the user could see, with "
            "iterative scan on (where the budget is what stops the scan), shared design:",
            "",
            "| column type | arm | iterative | max_scan_tuples | " + " | ".join(BUCKETS) + " |",
            "|---|---|---|---|" + "---|" * len(BUCKETS),
        ]
        for b in budget:
            if b["design"] != "shared" or b["access"] not in ("rls", "rls_filter"):
                continue
            cells = " | ".join(fmt(b["short_share_by_bucket"].get(x), 2) for x in BUCKETS)
            out.append(
                f"| {b['column_type']} | {b['access']} | {b['iterative_scan']} | {b['max_scan_tuples']} | {cells} |"
            )
    return [*out, ""]


def write(results: Results, path: Path, **rule: Any) -> Path:
    """DECISION.md; a record other than a scale profile's also says how far its choice holds in the
    checkout's published results/scale."""
    from dimbench.report import scale

    agreement = decide_runs(results, **rule)
    published = None if scale.sizes(results) else scale.published_scale()
    write_atomic(path, render(results, agreement.decisions[0], agreement, published))
    return path
