"""What a choice costs beyond the study: re-embedding per option (chunks, tokens, list price, time),
storage while both models are kept, the index build measured here, and the consequences of the choice."""

from __future__ import annotations

from typing import Any

from dimbench.evidence.results import Results
from dimbench.evidence.rule import COLUMN_BYTES, Decision
from dimbench.evidence.text import fmt
from dimbench.report.common import embedding_labels, labels_text, mb
from dimbench.study.migration import DEFAULTS, parse_migration

OPTION_MODEL = {
    "ada": "text-embedding-ada-002",
    "1536": "text-embedding-3-small",
    "768": "text-embedding-3-small",
}
OPTION_COLUMNS = {
    "ada": ("ada_vector1536", "ada_halfvec1536"),
    "1536": ("vector1536", "halfvec1536"),
    "768": ("vector768",),
}
# What standardizing on an option re-embeds and retires (the RAG side holds ada-002@1536, the extractor
# 3-small@768; a 768 cannot be lengthened, ada-002 cannot be shortened).
REEMBEDS = {
    "ada": "the extractor's chunks, with ada-002",
    "1536": "every chunk, with 3-small at 1536 (the extractor's 768s cannot be lengthened)",
    "768": "the RAG side's chunks, with 3-small at `dimensions = 768`",
}
RETIRES = {"ada": ("vector768",), "1536": ("vector1536", "vector768"), "768": ("vector1536",)}
ALL_CHUNKS = {"1536": True, "ada": False, "768": False}  # does the figure cover the corpus exactly


def migration_inputs(results: Results) -> tuple[dict[str, Any], str]:
    """The run's grid [migration] section (prices with their date, assumptions), else the defaults."""
    grid = ((results.run.get("identity") or {}).get("grid")) or {}
    raw = grid.get("migration") if isinstance(grid, dict) else None
    if raw is None:
        return dict(DEFAULTS), "dimbench's defaults (study/migration.py; the run's grid has no [migration])"
    return parse_migration(raw, "run.json identity.grid"), "the run's grid [migration]"


def hnsw_build(results: Results, column_type: str) -> dict[str, Any] | None:
    """The run's first hnsw build of a column type (its size and `create index` time), or None."""
    builds = sorted(results.run.get("builds") or [], key=lambda b: b["build_key"])
    return next(
        (
            b
            for b in builds
            if b.get("column_type") == column_type and b.get("index") == "hnsw" and b.get("rows")
        ),
        None,
    )


def kept_bytes_per_million(results: Results, column_type: str) -> float | None:
    """A column and its hnsw index per million chunks, measured (None: no hnsw build of it)."""
    build = hnsw_build(results, column_type)
    if build is None or build.get("index_bytes") is None:
        return None
    return (COLUMN_BYTES[column_type] + build["index_bytes"] / build["rows"]) * 1e6


def migration(results: Results, option: str) -> dict[str, Any]:
    """Re-embedding figures for standardizing on `option`, from the corpus's own counts."""
    inputs, _ = migration_inputs(results)
    counts = (results.run.get("corpus") or {}).get("counts") or {}
    chunks = counts.get("chunks")
    tokens_known = counts.get("tokens")
    tokens = (
        tokens_known
        if tokens_known is not None
        else (chunks * inputs["tokens_per_chunk"] if chunks is not None else None)
    )
    model = OPTION_MODEL[option]
    price = inputs["prices"].get(model)
    cost = tokens / 1e6 * price["usd_per_million_tokens"] if tokens is not None and price else None
    retired = [kept_bytes_per_million(results, ct) for ct in RETIRES[option]]
    build = next((b for ct in OPTION_COLUMNS[option] if (b := hnsw_build(results, ct))), None)
    return {
        "model": model,
        "chunks": chunks,
        "tokens": tokens,
        "tokens_assumed": tokens_known is None,
        "price": price,
        "cost_usd": cost,
        "minutes": tokens / inputs["tokens_per_minute"] if tokens is not None else None,
        "extra_bytes_per_million": None if None in retired else sum(retired),  # type: ignore[arg-type]
        "build": build,
    }


def migration_cell(results: Results, option: str) -> str:
    """One table cell: what standardizing on the option costs to re-embed."""
    m = migration(results, option)
    if m["cost_usd"] is None:
        return "not known (the corpus has no chunk count)"
    bound = "" if ALL_CHUNKS[option] else "≤ "
    return f"{bound}${m['cost_usd']:,.2f}, {bound}{m['minutes']:,.1f} min to re-embed"


def migration_section(results: Results) -> list[str]:
    """## Migration, per option: the re-embedding, the storage while both are kept, the build measured."""
    inputs, origin = migration_inputs(results)
    labels = embedding_labels(results)
    if labels:  # an imported corpus: its columns are its own model's, not the synthetic 3-small / ada-002
        return [
            "## Migration, per option",
            "",
            "Not priced: this corpus's columns hold its own embeddings ("
            + labels_text(labels)
            + "), not the synthetic study's 3-small / ada-002; the re-embedding costs are the synthetic "
            "record's.",
            "",
        ]
    counts = (results.run.get("corpus") or {}).get("counts") or {}
    if counts.get("chunks") is None:
        return []
    tokens_note = (
        "tokens as the corpus counts them"
        if counts.get("tokens") is not None
        else f"tokens **assumed**: {inputs['tokens_per_chunk']} per chunk × {counts['chunks']:,} chunks (the corpus does not count them)"
    )
    prices = "; ".join(
        f"{model} ${p['usd_per_million_tokens']:.2f} / 1M tokens (list price as of {p['as_of']})"
        for model, p in sorted(inputs["prices"].items())
    )
    out = [
        "## Migration, per option",
        "",
        f"From the corpus's own counts ({counts['chunks']:,} chunks); {tokens_note}. Prices: {prices} — "
        f"{inputs.get('price_source', 'source not named')}; throughput **assumed** {inputs['tokens_per_minute']:,} "
        f"tokens per minute. Inputs from {origin}. The corpus does not record which app a chunk came from, "
        "so where only one app's chunks are re-embedded the figure is for all of them: an upper bound (≤), "
        "to scale by that app's share.",
        "",
        "| standardize on | re-embeds | tokens | API cost | time | extra storage while both are kept / 1M chunks | hnsw build measured here |",
        "|---|---|---|---|---|---|---|",
    ]
    for option in ("ada", "1536", "768"):
        m = migration(results, option)
        bound = "" if ALL_CHUNKS[option] else "≤ "
        b = m["build"]
        build = (
            f"{fmt(b.get('seconds'), 1)} s for {b['rows']:,} rows (`{b['build_key']}`, `create index{' concurrently' if b.get('concurrently') else ''}`)"
            if b
            else "not measured"
        )
        retired = " + ".join(f"`{ct}` + its hnsw" for ct in RETIRES[option])
        out.append(
            f"| {option_name(option)} | {REEMBEDS[option]} | {bound}{m['tokens']:,}{' (assumed)' if m['tokens_assumed'] else ''} "
            f"| {bound}${m['cost_usd']:,.2f} | {bound}{m['minutes']:,.1f} min | {mb(m['extra_bytes_per_million'])} ({retired}) | {build} |"
            if m["cost_usd"] is not None
            else f"| {option_name(option)} | {REEMBEDS[option]} | — | no list price for {m['model']} | — | {mb(m['extra_bytes_per_million'])} | {build} |"
        )
    dual = [kept_bytes_per_million(results, ct) for ct in ("vector1536", "vector768")]
    out += [
        "",
        f"- **Dual support** (keep both models, re-embed nothing): both columns and both indexes for good, "
        f"{mb(None if None in dual else sum(dual))} per million chunks (`vector1536` + `vector768`, each with "  # type: ignore[arg-type]
        "its hnsw, measured), and every question embedded by both models.",
        build_method_line(results),
        "",
    ]
    return out


def build_method_line(results: Results) -> str:
    """How the builds above were made: concurrently (what a live migration runs) or plain."""
    built = [b for b in results.run.get("builds") or [] if b.get("index") not in (None, "exact")]
    if built and all(b.get("concurrently") for b in built):
        return (
            "- The builds above are `create index concurrently` (what a live migration runs: two table "
            "scans and a validation pass, no write lock) on a quiet server after the load; under write "
            "traffic they also wait for running transactions, which is not measured here."
        )
    return (
        "- The builds above are plain `create index` on a quiet server after the load; `create index "
        "concurrently` (what a live migration uses) scans the table twice and waits for running "
        "transactions: its time is **not measured** here."
    )


def option_name(option: str, labels: dict[str, str] | None = None) -> str:
    """An option's short name: the synthetic corpus's model, or an imported corpus's own (labels)."""
    if labels and option in labels:
        return labels[option]
    return {"ada": "ada-002 @ 1536", "1536": "3-small @ 1536", "768": "3-small @ 768"}[option]


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
    inputs, _ = migration_inputs(results)
    small = inputs["prices"].get("text-embedding-3-small")
    per_million = inputs["tokens_per_chunk"] * small["usd_per_million_tokens"] if small else None
    out += [
        f"- **Re-embedding**: ada-002 vectors cannot be shortened (not a Matryoshka model), so the RAG "
        f"side's chunks are re-embedded whichever 3-small dimension wins: about {inputs['tokens_per_chunk']} "
        f"tokens (assumed) × the list price ≈ ${fmt(per_million, 0)} per million chunks with 3-small "
        "(figures per option in 'Migration, per option'). One 1536-d call yields both columns (768 = "
        "truncate + renormalize).",
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
