"""What a choice costs beyond the study: re-embedding, storage while both columns are kept, and how the
choice moves with the synthetic assumptions."""

from __future__ import annotations

from dimbench.evidence.results import Results
from dimbench.evidence.rule import (
    COLUMN_BYTES,
    Decision,
    decide,
)
from dimbench.evidence.text import fmt
from dimbench.report.common import mb

TOKENS_PER_CHUNK = 400  # assumption for the re-embedding estimate

PRICE_PER_MILLION_TOKENS = {"text-embedding-3-small": 0.02, "text-embedding-ada-002": 0.10}  # USD, list price


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
