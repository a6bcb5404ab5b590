"""What to provision per option: heap + TOAST + indexes per million chunks, from what the run recorded,
the table once the other embedding column is gone, and the RAM that implies under a named assumption.

Sources, in run.json: each build's `index_bytes` and `table_bytes` (pg_table_size of document_chunks:
heap + TOAST + free-space and visibility maps, both embedding columns stored); and, in runs that
record it, the settle step's `sizes` (after VACUUM (ANALYZE): heap, TOAST and index bytes of
document_chunks, and each embedding column's mean stored bytes). MB = 10⁶ bytes, as everywhere in the
record. A figure a run did not record is said to be "not measured in this run", never filled in.
"""

from __future__ import annotations

from typing import Any

from dimbench.evidence.results import Results
from dimbench.evidence.rule import COLUMN_BYTES, Decision
from dimbench.report.common import mb
from dimbench.report.deployment_text import sizing_lines
from dimbench.vocabulary import COLUMN_SOURCE

# the stored column each option keeps, and the one dropped once it is the only embedding
KEPT = {"vector768": "embedding_768", "vector1536": "embedding_1536", "halfvec1536": "embedding_1536"}
OTHER = {"embedding_768": "embedding_1536", "embedding_1536": "embedding_768"}
STORED_BYTES = {"embedding_768": COLUMN_BYTES["vector768"], "embedding_1536": COLUMN_BYTES["vector1536"]}


def settled_sizes(results: Results) -> dict[str, Any] | None:
    """The settle step's sizes of the deciding run (None: this run did not record them)."""
    for settled in results.run.get("settled") or []:
        if isinstance(settled, dict) and settled.get("sizes"):
            return settled["sizes"]
    return None


def per_million(value: float | None, rows: int | None) -> float | None:
    return None if value is None or not rows else value / rows * 1e6


def option_rows(results: Results) -> list[dict[str, Any]]:
    """Per measured vector build (not exact): its index, the table as measured (both columns), and the
    table less the other column's stored bytes per row (an estimate: per-row TOAST overhead not counted)."""
    out = []
    for b in sorted(results.run.get("builds") or [], key=lambda b: b["build_key"]):
        rows = b.get("rows")
        if b.get("index") == "exact" or not rows or b.get("index_bytes") is None:
            continue
        table = per_million(b.get("table_bytes"), rows)
        column = KEPT.get(b["column_type"], COLUMN_SOURCE.get(b["column_type"], ("?",))[0])
        dropped = OTHER.get(column)
        sizes = settled_sizes(results) or {}
        measured_column = (sizes.get("column_bytes") or {}).get(dropped) if dropped else None
        column_bytes = measured_column if measured_column is not None else STORED_BYTES.get(dropped or "")
        after = None if table is None or column_bytes is None else table - column_bytes * 1e6
        index = per_million(b["index_bytes"], rows)
        out.append(
            {
                "build_key": b["build_key"],
                "column_type": b["column_type"],
                "index": index,
                "table": table,
                "dropped": dropped,
                "dropped_measured": measured_column is not None,
                "table_after": after,
                "ram": None if after is None or index is None else after + index,
            }
        )
    return out


def sizing_section(results: Results, decision: Decision) -> list[str]:
    rows = option_rows(results)
    if not rows:
        return []
    sizes = settled_sizes(results)
    settings = ((results.run.get("server") or {}).get("settings_changed") or {}).get("shared_buffers")
    chosen = decision.chosen
    out = [
        "## Sizing: what to provision",
        "",
        "Per million chunks, from this run's own measurements (MB = 10⁶ bytes). “Table” is "
        "`pg_table_size(document_chunks)` as the study held it — heap + TOAST with **both** embedding "
        "columns"
        + (
            " and the study's own ada-002 column (`embedding_ada`, not part of the harmonized schema)"
            if (results.run.get("corpus") or {}).get("spec", {}).get("ada")
            else ""
        )
        + "; “once one column is dropped” takes the other column's stored bytes per row off it "
        + (
            "(its mean `pg_column_size` after VACUUM, measured)"
            if sizes and sizes.get("column_bytes")
            else "(4·d+8 bytes per vector; an estimate — per-row TOAST overhead is not counted)"
        )
        + ", and needs a table rewrite (`VACUUM FULL` or `pg_repack`) before the space is returned.",
        "",
        "| build | index | table, both columns | drops | table, once one column is dropped | RAM: index + that table |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        mark = " ← chosen" if chosen is not None and r["build_key"] == chosen.config.build_key else ""
        out.append(
            f"| `{r['build_key']}`{mark} | {mb(r['index'])} | {mb(r['table'])} | `{r['dropped'] or '—'}` "
            f"| {mb(r['table_after'])} | {mb(r['ram'])} |"
        )
    out.append("")
    if sizes:
        heap, toast, indexes = (sizes.get(k) for k in ("heap_bytes", "toast_bytes", "indexes_bytes"))
        n = sizes.get("rows")
        out.append(
            f"- After the load's VACUUM (ANALYZE), before any vector index: heap {mb(per_million(heap, n))}, "
            f"TOAST {mb(per_million(toast, n))}, indexes {mb(per_million(indexes, n))} per million chunks "
            f"({n:,} rows)."
            if n
            else "- Heap / TOAST split: not measured in this run."
        )
    else:
        out.append(
            "- Heap / TOAST split and each column's stored bytes: **not measured in this run** (runs "
            "record them at the settle step from this version on)."
        )
    out += [
        "- **RAM to provision** (assumption: the hot vector index and the heap pages a p95 query touches "
        "stay in shared_buffers or the OS page cache): at most the index plus the table once one column "
        "is dropped, per million chunks, as above — the whole table cached is the upper bound; the "
        "working set a p95 needs is what the first queries after a server restart read, against "
        f"warm ones: below). The study measured warm, with shared_buffers = {_setting_mb(settings)}.",
        *sizing_lines(results),
    ]
    return out


def _setting_mb(value: str | None) -> str:
    """A memory setting as the server reports it (e.g. '2621448kB') in MB = 10⁶ bytes."""
    units = {"kB": 1024, "MB": 1024**2, "GB": 1024**3}
    for unit, factor in units.items():
        if value and value.endswith(unit) and value[: -len(unit)].isdigit():
            return mb(int(value[: -len(unit)]) * factor)
    return value or "not recorded"
