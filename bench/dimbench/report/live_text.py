"""DECISION.md's "Under live traffic": what the live stage (live.json beside the run) measured per design,
and the first screen's one line. Reads only what was measured; nothing at all when the run has no live
stage. Every number carries its count or interval; a missing one reads "—" (not measured)."""

from __future__ import annotations

from typing import Any

from dimbench.evidence.live import failed_requests, holds_to, judge
from dimbench.evidence.results import Results
from dimbench.evidence.rule import Decision
from dimbench.evidence.text import fmt, interval
from dimbench.report.migration_text import section as migration_section


def _ms(summary: dict[str, Any] | None) -> str:
    """A latency summary's p95 with its interval and count."""
    s = summary or {}
    return f"{fmt(s.get('p95_ms'), 2)}{interval(s.get('p95_interval_ms'), 2)} ms (n {s.get('n', 0)})"


def _recall(summary: dict[str, Any] | None) -> str:
    s = summary or {}
    return f"{fmt(s.get('recall'))}{interval(s.get('interval'))} (n {s.get('n', 0)})"


def _ratio(entry: dict[str, Any]) -> str:
    r = (entry.get("search") or {}).get("p95_ratio") or {}
    if r.get("ratio") is None:
        return "—"
    return f"{r['ratio']:.2f}×{interval(r.get('interval'), 2)}"


def ingest_line(entry: dict[str, Any]) -> str:
    """Maximum ingest by writer count, into one workspace and into many."""
    parts = []
    for target in ("one workspace", "many workspaces"):
        runs = [r for r in entry.get("ingest_max") or [] if r.get("target") == target]
        if runs:
            each = ", ".join(
                f"{r.get('writers')} writer{'s' if r.get('writers') != 1 else ''} "
                f"{fmt(r.get('chunks_per_s'), 0)} ({r.get('chunks', 0):,} chunks in "
                f"{fmt(r.get('seconds'), 1)} s)"
                for r in runs
            )
            parts.append(f"{target}: {each}")
    return "; ".join(parts) or "not measured"


def failures_line(entry: dict[str, Any]) -> str:
    failed = failed_requests(entry)
    return ", ".join(f"{k} {v}" for k, v in sorted(failed.items())) or "none"


def replacement_lines(entry: dict[str, Any]) -> list[str]:
    rep = entry.get("replacement")
    if not rep:
        return ["  - Replacement and VACUUM: not measured."]
    out = [
        f"  - Replacement: {rep.get('replaced_chunks', 0):,} of one tenant's {rep.get('tenant_chunks', 0):,} "
        f"chunks replaced (share asked {rep.get('replace_share')}):"
    ]
    for phase in rep.get("phases") or []:
        took = []
        if phase.get("seconds") is not None:
            took.append(f"replacing took {fmt(phase['seconds'], 1)} s")
        if phase.get("vacuum_s") is not None:
            took.append(f"VACUUM {fmt(phase['vacuum_s'], 1)} s")
        if phase.get("reindex_s"):
            took.append("REINDEX " + ", ".join(f"{k} {fmt(v, 1)} s" for k, v in phase["reindex_s"].items()))
        out.append(
            f"    - {phase.get('phase')}: p95 {_ms(phase.get('searches'))}, recall@10 "
            f"{_recall(phase.get('recall'))}, dead rows {phase.get('dead_rows', '—')}"
            + (f" ({'; '.join(took)})" if took else "")
        )
    if rep.get("reindex") is False:
        out.append("    - REINDEX CONCURRENTLY + VACUUM: not measured (the grid's `reindex = false`).")
    return out


def holds_line(entry: dict[str, Any], bound: float) -> str:
    """Up to which multiple of the platform's ingest rate the design still qualifies, and what broke
    above it (or that only the platform's own rate was measured)."""
    held = holds_to(entry, bound)
    if held is None:
        return "not measured"
    if held["multiple"] is None:  # failed or undecided already at the platform's rate
        said = held["next"]["verdict"].split(": ", 1)[1]
        return f"at no measured rate: at {held['next']['multiple']:g}× {said}"
    top = f"{held['multiple']:g}× the platform's rate ({fmt(held['chunks_per_s'], 0)} chunks/s offered)"
    if held["next"] is not None:
        return f"up to {top}; at {held['next']['multiple']:g}×: {held['next']['verdict'].split(': ', 1)[1]}"
    measured = ", ".join(f"{m:g}×" for m in held["measured"])
    return f"up to {top}, the highest measured (measured at {measured})"


def rate_lines(entry: dict[str, Any]) -> list[str]:
    """The search phases above the platform's rate: p95, its ratio to idle, recall, what failed."""
    out = []
    for phase in (entry.get("search") or {}).get("rates") or []:
        ingest = phase.get("ingest") or {}
        failed = failed_requests({"phase": phase})
        ratio, fresh = phase.get("p95_ratio") or {}, phase.get("freshness") or {}
        offered = fmt(ingest.get("offered_chunks_per_s"), 0)
        out.append(
            f"    - {ingest.get('rate_multiple', 1.0):g}×: ingest offered {offered} chunks/s, reached "
            f"{fmt(ingest.get('chunks_per_s'), 0)}; p95 {_ms(phase.get('searches'))}, "
            f"{fmt(ratio.get('ratio'), 2)}×{interval(ratio.get('interval'), 2)} idle; recall@10 "
            f"{_recall(phase.get('recall'))}; freshness {fresh.get('found', '—')} of "
            f"{fresh.get('probes', '—')}; failed "
            + (", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(failed.items())) or "none")
        )
    return out


def count_lines(entry: dict[str, Any]) -> list[str]:
    """A design's own state checked after the writes (routed's counts), when it keeps any."""
    check = entry.get("count_check")
    if not check:
        return []
    exact = (
        "no call takes a path its exact count would not"
        if check.get("miscounted") == 0
        else ("calls into those workspaces near the threshold can take the other path")
    )
    return [
        f"  - Counts after every write: {check.get('miscounted', '—')} of {check.get('workspaces', '—')} "
        f"workspaces counted wrong (largest error {check.get('largest_error_rows', '—')} rows: {exact}), "
        f"{check.get('unfolded_deltas', '—')} deltas not yet folded."
    ]


def design_lines(name: str, entry: dict[str, Any], bound: float) -> list[str]:
    search = entry.get("search") or {}
    idle, busy = search.get("idle") or {}, search.get("ingest") or {}
    ingest = busy.get("ingest") or {}
    fresh = entry.get("freshness") or {}
    book = entry.get("runbook") or {}
    verdict = judge(entry, name, bound)
    return [
        f"- **{name}** — {verdict.summary().split(': ', 1)[1]}",
        f"  - Ingest, maximum chunks/s: {ingest_line(entry)}.",
        f"  - Search p95 idle {_ms(idle.get('searches'))}, under ingest {_ms(busy.get('searches'))} "
        f"(ingest offered {fmt(ingest.get('offered_chunks_per_s'), 0)} chunks/s, reached "
        f"{fmt(ingest.get('chunks_per_s'), 0)}): ratio {_ratio(entry)}, bound {bound:g}×.",
        f"  - Recall@10 idle {_recall(idle.get('recall'))}, under ingest {_recall(busy.get('recall'))}.",
        f"  - Qualifies {holds_line(entry, bound)}.",
        *rate_lines(entry),
        f"  - Freshness: {fresh.get('found', '—')} of {fresh.get('probes', '—')} new chunks found by the "
        f"first search after their commit{interval(fresh.get('interval'))}.",
        f"  - Runbook: recall@10 {_recall(book.get('over_all_queries'))} over "
        f"{len(book.get('steps') or [])} steps, each against its own truth.",
        *replacement_lines(entry),
        *count_lines(entry),
        f"  - Failed requests by kind: {failures_line(entry)}.",
    ]


def section(results: Results, decision: Decision) -> list[str]:
    """## Under live traffic; [] when the run has no live stage."""
    live = results.live
    if not live:
        return []
    settings = live.get("settings") or {}
    bound = float(settings.get("p95_bound") or 1.5)

    def said(table: dict[str, Any], key: str) -> Any:
        return "—" if table.get(key) is None else table[key]

    out = [
        "## Under live traffic",
        "",
        f"Each design on a copy of the corpus ({said(live, 'build')}, {said(live, 'query_setting')}, "
        f"`{said(live, 'access')}`): searches offered at {said(settings, 'search_rate')}/s beside writers "
        f"offering the grid's ingest rate of {said(settings, 'ingest_rate')} chunks/s per 100k chunks "
        f"(churn {said(settings, 'churn')}), {said(settings, 'seconds')} s per phase, after one unjudged "
        "phase of the same searches (a copy starts with cold buffers). A design that fails "
        "here does not qualify (rule step 5).",
        "",
    ]
    if live.get("status") != "done":
        out += [f"The live stage is **{said(live, 'status')}**: what it measured so far is shown.", ""]
    designs = live.get("designs") or {}
    for name, entry in designs.items():
        out += design_lines(name, entry, bound)
    unmeasured = sorted(set(decision.designs()) - set(designs))
    skipped = live.get("not_measured") or {}
    if unmeasured:
        out.append(
            "- Not measured live (not disqualified): "
            + ", ".join(f"{d}" + (f" ({skipped[d]})" if d in skipped else "") for d in unmeasured)
            + "."
        )
    check = live.get("corpus_check") or {}
    if "unchanged" in check:
        said = "unchanged" if check["unchanged"] else "CHANGED"
        out.append(f"- The measured corpus was {said} after the live stage (row count and checksum).")
    out.append(
        "- Figures: `plots/live_rates` (search p95 and recall@10 against the ingest rate offered), "
        "`plots/live_ingest` (maximum ingest per design and writer count)"
        + (", `plots/migration` (the migration's timeline)." if live.get("migration") else ".")
    )
    out += migration_section(live)  # [live.migration]'s subsection; nothing when not measured
    return [*out, ""]


def live_line(results: Results, decision: Decision) -> str | None:
    """The first screen's line: the chosen design at the grid's ingest rate; without a live stage, that
    the write path was not measured (a read-only decision says so); None when nothing was chosen."""
    live, c = results.live, decision.chosen
    if c is None:
        return None
    if not live:
        return (
            "- Under live traffic: **not measured** (this run had no live stage): the choice is judged on "
            "a database nobody wrote to; `dimbench live` measures ingest, churn and freshness per design."
        )
    entry = (live.get("designs") or {}).get(c.config.design)
    stated = (live.get("settings") or {}).get("ingest_rate")
    rate = f"{stated:g}" if isinstance(stated, (int, float)) else "—"
    if not entry:
        return f"- Under live traffic: {c.config.design} was not measured live (see Under live traffic)."
    verdict = (decision.live or {}).get(c.config.design) or judge(entry, c.config.design)
    bound = float((live.get("settings") or {}).get("p95_bound") or 1.5)
    if verdict.status == "qualifies":
        above = (entry.get("search") or {}).get("rates")
        return (
            f"- Under live traffic: holds at the grid's ingest rate of {rate} chunks/s per 100k: "
            f"p95 ratio {_ratio(entry)}" + (f"; it holds {holds_line(entry, bound)}." if above else ".")
        )
    return (
        f"- Under live traffic: {verdict.status} at the grid's ingest rate of {rate} chunks/s per 100k: "
        f"p95 ratio {_ratio(entry)} ({'; '.join(verdict.reasons)})."
    )
