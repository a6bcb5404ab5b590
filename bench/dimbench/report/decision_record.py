"""DECISION.md: generated from the measurements, deterministic (same inputs → byte-identical file).

No clock is read: the only times are those in run.json. Lists are sorted, floats formatted with fixed
digits, JSON dumped with sorted keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dimbench.evidence.results import Results
from dimbench.evidence.rule import (
    BUCKETS,
    COLUMN_BYTES,
    Agreement,
    Candidate,
    Decision,
    closest,
    decide_runs,
    under_service,
)
from dimbench.evidence.text import fmt, interval
from dimbench.files import write_atomic
from dimbench.report.apply_sql import GUC
from dimbench.report.common import (
    context_section,
    embedding_labels,
    labels_text,
    mb,
    meets,
    model_of,
    rule_section,
    runs_section,
    table,
    title_lines,
)
from dimbench.report.costs import consequences_section, migration_section
from dimbench.report.live_text import section as live_section
from dimbench.report.options_text import options_section
from dimbench.report.quality_text import quality_lines, sensitivity, sensitivity_section
from dimbench.report.race_text import race_lines
from dimbench.report.real_record import PROFILE, published_real, real_section
from dimbench.report.scale_record import holds_section, scale_render
from dimbench.report.side_channel_text import side_channel_lines

RLS_DESIGN = {
    "rls_filter": "this project's policies (`schema/0007`: one policy per command, `to authenticated`, `with check` on writes, `(select auth.uid())` via the membership helper) **plus** the app's explicit `filter_workspace_ids` in every search call — RLS stays the guarantee, the filter lets the planner use the `workspace_id` btree for small tenants",
    "rls": "this project's policies (`schema/0007`) alone; the app passes no workspace filter and RLS narrows the search",
    "rls_seed": "the seed's policy form (unwrapped `auth.uid()`, `FOR ALL`, no `WITH CHECK`)",
    "rls_docs": "Supabase's RAG-with-permissions policy form (membership through a `document_id in (select …)` subquery)",
    "service": "service_role with an app-side workspace filter (RLS bypassed)",
}


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


def decision_section(
    decision: Decision, agreement: Agreement | None = None, labels: dict[str, str] | None = None
) -> list[str]:
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
        f"- Model and dimension: {model_of(c.column_type, labels)}.",
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
    return [*out, "", "The SQL that applies it: [The SQL to apply](#the-sql-to-apply).", ""]


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
        (
            "- **Imported inputs**: real chunks embedded by "
            + labels_text(embedding_labels(results))
            + "; which parts were the team's and which the tool made up: the corpus provenance. Named "
            f"assumptions recorded by the run: {named or 'none recorded'}."
            if embedding_labels(results)
            else "- **Synthetic assumptions**: the embeddings are generated (latent topic structure, Matryoshka "
            "energy profile), not real OpenAI vectors; relevance labels are synthetic, so nDCG@10 compares "
            "dimensions only under the generator's model. Named assumptions recorded by the run: "
            f"{named or 'none recorded'}."
        ),
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


def render(
    results: Results,
    decision: Decision,
    agreement: Agreement | None = None,
    scale_results: Results | None = None,
    real_results: Results | None = None,
) -> str:
    """The record; `scale_results`: a scale profile's results to say how far the choice holds;
    `real_results`: the published real-corpus run, for "On real data".

    The answer comes first (what to deploy, how sure, where the evidence is), then the SQL, then the
    evidence; context, options and the rule's fine print follow it."""
    from dimbench.report import first_screen, scale, sizing

    if scale.sizes(results):
        return scale_render(results)
    agreement = agreement or Agreement([decision])
    chunks = ((results.run.get("corpus") or {}).get("counts") or {}).get("chunks")
    body = (
        first_screen.sql_section(results, decision)
        + decision_section(decision, agreement, embedding_labels(results))
        + options_section(results, decision)
        + holds_section(decision, scale_results, results)
        + real_section(results, decision, real_results)
        + live_section(results, decision)
        + quality_lines(results, decision)
        + sensitivity_section(results)
        + migration_section(results)
        + table_section(decision)
        + rule_section(decision)
        + stability_section(agreement)
        + designs_section(results, decision)
        + race_lines(results)
        + consequences_section(results, decision)
        + sizing.sizing_section(results, decision)
        + assumptions_section(results, decision)
        + context_section()
        + defects_section()
        + runs_section(results)
    )
    answer = first_screen.answer_section(results, decision, agreement, scale_results, chunks)
    out = title_lines(results) + answer + ["", first_screen.links(body), ""] + body
    return "\n".join(out)


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
    for cal in d.calibrations(results):
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
        audited = max((len(r.get("plan_audit") or []) for r in rows), default=0)
        out += [
            "",
            "### Which path served the calls",
            "",
            f"{'One real call' if audited == 1 else f'{audited} real calls'} per screening cell, explained "
            "from inside the search function "
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
    out += side_channel_lines(results.side_channel_run)
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
    # "On real data" in the synthetic records only (not in real's own, nor scale's)
    real = None if scale.sizes(results) or results.run.get("profile") == PROFILE else published_real()
    write_atomic(path, render(results, agreement.decisions[0], agreement, published, real))
    return path
