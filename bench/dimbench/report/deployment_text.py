"""What deploying the choice cost, as the run measured it (run.json "deployment", study/deployment.py):
the CIC build time, the sizes of document_chunks as loaded, and p95 cold after a restart vs warm.
A run without the key (older runs) renders "not measured"."""

from __future__ import annotations

from typing import Any

from dimbench.evidence.results import Results
from dimbench.evidence.text import fmt, interval
from dimbench.report.common import mb

NOT_MEASURED = "not measured in this run"


def deployment_of(results: Results) -> dict[str, Any] | None:
    found = results.run.get("deployment")
    return found if isinstance(found, dict) else None


def _why(part: dict[str, Any] | None) -> str:
    return NOT_MEASURED if part is None else str(part.get("status") or NOT_MEASURED)


def cic_line(results: Results) -> str:
    """One line for the SQL section: how long `create index concurrently` took here."""
    cic = (deployment_of(results) or {}).get("cic")
    if not cic or cic.get("seconds") is None:
        return f"`create index concurrently` build time: {_why(cic)}."
    plain = cic.get("plain_seconds")
    built = next(
        (b for b in results.run.get("builds") or [] if b.get("build_key") == cic.get("build_key")), {}
    )
    if built.get("concurrently") and not cic.get("source"):  # the study's build was concurrent too
        return (
            f"`create index concurrently` of this index took **{fmt(cic['seconds'], 1)} s** here on the "
            f"loaded table, and {fmt(built.get('seconds'), 1)} s when the study built it the same way "
            f"(maintenance_work_mem {cic.get('maintenance_work_mem')})."
        )
    if cic.get("source"):  # the study built it concurrently itself: no plain build to compare
        return (
            f"`create index concurrently` of this index took **{fmt(cic['seconds'], 1)} s** here on the "
            f"loaded table ({cic['source']}; maintenance_work_mem {cic.get('maintenance_work_mem')})."
        )
    return (
        f"`create index concurrently` of this index took **{fmt(cic['seconds'], 1)} s** here on the loaded "
        f"table (plain `create index`: {fmt(plain, 1) if plain is not None else 'not recorded'} s; "
        f"{'beside the standing study index' if cic.get('beside_standing_index') else 'alone'}, "
        f"maintenance_work_mem {cic.get('maintenance_work_mem')})."
    )


def _pass(p: dict[str, Any]) -> str:
    w = p["worst"]
    return f"{fmt(w['p95_ms'], 2)}{interval(w.get('p95_ci95'), 2)} ms ({w['cell']})"


def first_screen_line(results: Results) -> str | None:
    """'Deploying it' on the first screen; None when the run measured nothing of it."""
    d = deployment_of(results)
    if not d or d.get("status") != "measured":
        return None
    parts = []
    cic = d.get("cic") or {}
    if cic.get("seconds") is not None:
        parts.append(f"CIC build {fmt(cic['seconds'], 1)} s")
    size = (d.get("sizing") or {}).get("per_million") or {}
    if size.get("deployed") is not None:
        parts.append(f"table + its indexes {mb(size['deployed'])} per million chunks (both columns)")
    cw = d.get("cold_warm") or {}
    if cw.get("status") == "measured":
        parts.append(f"worst p95 cold after a restart {_pass(cw['cold'])} vs warm {_pass(cw['warm'])}")
    return (
        ("- Deploying it: " + "; ".join(parts) + " ([Sizing](#sizing-what-to-provision)).") if parts else None
    )


def sizing_lines(results: Results) -> list[str]:
    """The measured part of "Sizing: what to provision"."""
    d = deployment_of(results)
    sizing = (d or {}).get("sizing")
    cw = (d or {}).get("cold_warm")
    if not d or not sizing or sizing.get("status") != "measured":
        why = _why(d) if d and d.get("status") != "measured" else _why(sizing)
        return [
            f"- Measured sizes of the chosen configuration (heap, TOAST, each index): {why}.",
            f"- Cold vs warm p95 (the first queries after a restart): {why if d and not cw else _why(cw)}.",
            "",
        ]
    pm, n = sizing["per_million"], sizing["rows"]
    out = [
        f"- Measured after the decision, on `{d.get('config')}` ({n:,} rows, both embedding columns): heap "
        f"{mb(pm['heap'])}, TOAST {mb(pm['toast'])}, the chosen index {mb(pm['chosen_index'])}, every index "
        f"{mb(pm['indexes'])}, total (`pg_total_relation_size`) {mb(pm['total'])}; deployed (heap + TOAST "
        f"+ the schema's indexes + the chosen one) **{mb(pm['deployed'])}** per million chunks.",
    ]
    one = sizing.get("one_column_table") or {}
    out.append(
        f"- Once the other column is dropped: {mb(one.get('bytes_per_million'))} per million chunks "
        f"({one.get('source')})."
        if one.get("bytes_per_million") is not None
        else f"- Once the other column is dropped: {one.get('source') or NOT_MEASURED} (the estimate above)."
    )
    out += compute_size_lines(pm.get("chosen_index"), one.get("bytes_per_million"))
    if not cw or cw.get("status") != "measured":
        out.append(f"- Cold vs warm p95 (the first queries after a restart): {_why(cw)}.")
    else:
        cold, warm = cw["cold"], cw["warm"]
        out += [
            f"- **Cold vs warm** ({cw['sample_per_cell']} queries per cell, as `{cw['role_in_request']}`, "
            f"shared_buffers {cw['shared_buffers']}; OS page cache {cw['os_page_cache']}): worst p95 cold "
            f"{_pass(cold)}, warm {_pass(warm)}; {cold['requests']} requests each pass, "
            f"{cold['failed'] + warm['failed']} failed. Read into shared_buffers: cold "
            f"{mb(cold['bytes_read'])}, warm {mb(warm['bytes_read'])} (the working set this sample "
            "needed, beyond what the restart left).",
            "- Per cell, p95 cold → warm: "
            + "; ".join(
                f"{cell} {fmt(cold['cells'][cell]['p95_ms'], 2)} → {fmt(warm['cells'][cell]['p95_ms'], 2)} ms"
                for cell in sorted(cold["cells"])
            )
            + ".",
        ]
    out.append("")
    return out


def compute_size_lines(index_per_million: float | None, table_per_million: float | None) -> list[str]:
    """What to provision on Supabase: the chosen index plus the one-column table, both measured, cached."""
    from dimbench.report.supabase_sizes import CACHE_SHARE, SOURCE, smallest_fitting

    if index_per_million is None or table_per_million is None:
        return [
            "- Supabase compute size: not derived (the chosen index or the one-column table was not "
            "measured)."
        ]
    per_million = index_per_million + table_per_million
    sizes = "; ".join(
        f"{n:,} chunks ({mb(per_million * n / 1e6)}) → **{smallest_fitting(per_million * n / 1e6)}**"
        for n in (100_000, 1_000_000, 10_000_000)
    )
    return [
        f"- **Supabase compute size** (the chosen index + the one-column table, {mb(per_million)} per "
        f"million chunks, both measured, kept cached; assumed: shared_buffers and the OS page cache hold "
        f"{CACHE_SHARE:.0%} of an instance's memory; sizes from {SOURCE}): {sizes}. The cold pass below "
        "shows what a p95 pays while that cache is still filling."
    ]
