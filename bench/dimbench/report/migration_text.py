"""DECISION.md's "The migration under traffic" (inside "Under live traffic"), from live.json's
`migration`: per phase what the requests saw (by outcome, blocked over 1 s, the longest stall, p95),
the backfill's throughput and its effect, the concurrent index's seconds. Only what was measured;
nothing at all when the live stage did not measure the migration; a missing number reads "—"."""

from __future__ import annotations

from typing import Any

from dimbench.evidence.text import interval

OUTCOME_ORDER = ("ok", "failed", "skipped", "serialization", "deadlock", "unsent")


def _n(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def outcomes_text(t: dict[str, Any]) -> str:
    by = t.get("by_outcome") or {}
    parts = ", ".join(f"{k} {by[k]:,}" for k in OUTCOME_ORDER if by.get(k))
    return f"{t.get('total', 0):,} requests ({parts or 'none'})"


def traffic_text(traffic: dict[str, Any]) -> str:
    """Each stream's requests in one phase: counts, blocked, longest, p95 with its interval."""
    parts = []
    for name, t in sorted(traffic.items()):
        parts.append(
            f"{name} {outcomes_text(t)}, {t.get('blocked', 0):,} blocked over 1 s, longest "
            f"{_n(t.get('longest_ms'))} ms, p95 {_n(t.get('p95_ms'), 1)} ms"
            f"{interval(t.get('p95_interval_ms'), 1)} (n {t.get('n', 0):,})"
        )
    return "; ".join(parts) or "no request started"


def phase_line(p: dict[str, Any]) -> str:
    head = f"`{p.get('phase')}` {_s(p.get('start_s'))}–{_s(p.get('end_s'))} s"
    if p.get("kind") == "migration":
        retries = p.get("retries") or 0
        waits = p.get("lock_waits") or {}
        head += f", {retries} retr{'y' if retries == 1 else 'ies'}"
        if waits.get("waits_over_1s"):
            longest = _s(waits.get("longest_s"))
            head += f", {waits['waits_over_1s']} lock waits over 1 s seen (longest {longest} s)"
    if p.get("kind") == "backfill":
        head += (
            f": {_n(p.get('rows'))} rows ({_n(p.get('rows_from_corpus'))} with the corpus's 768 vector, "
            f"{_n(p.get('rows_stand_in'))} stand-ins) in {_n(p.get('batches'))} batches, "
            f"{_n(p.get('rows_per_s'))} rows/s, {_n(p.get('remaining_null'))} chunks left without one"
        )
    if p.get("kind") == "index":
        head += f": {p.get('build', '—')} built in {_s(p.get('seconds'))} s"
    return f"  - {head}. Requests started meanwhile: {traffic_text(p.get('traffic') or {})}."


def errors_lines(streams: dict[str, Any]) -> list[str]:
    out = []
    for name, s in sorted(streams.items()):
        for error, count in sorted((s.get("errors") or {}).items()):
            out.append(f"  - {name}: {count:,} × {error}")
    return out or ["  - none"]


def effect_text(effect: dict[str, Any]) -> str:
    parts = []
    for what in ("search", "ingest"):
        r = effect.get(what) or {}
        ratio = "—" if r.get("ratio") is None else f"{r['ratio']:.2f}×{interval(r.get('interval'), 2)}"
        parts.append(f"{what} p95 during the backfill {ratio} of before it")
    return "; ".join(parts)


def stall_line(phases: list[dict[str, Any]]) -> str:
    """The migration files' windows in one line: requests blocked over 1 s and the longest stall."""
    files = [p for p in phases if p.get("kind") == "migration"]
    streams = [t for p in files for t in (p.get("traffic") or {}).values()]
    if not streams:
        return "While the files ran: no request started."
    blocked = sum(int(t.get("blocked") or 0) for t in streams)
    started = sum(int(t.get("total") or 0) for t in streams)
    longest = max((t.get("longest_ms") for t in streams if t.get("longest_ms") is not None), default=None)
    return (
        f"While the {len(files)} file{'s' if len(files) != 1 else ''} ran: {blocked:,} of {started:,} "
        f"requests blocked over 1 s, the longest stall {_n(longest)} ms."
    )


def section(live: dict[str, Any]) -> list[str]:
    """### The migration under traffic (after a blank line, ending on its last bullet); [] when it
    was not measured."""
    m = live.get("migration")
    if not m:
        return []
    s, legacy = m.get("settings") or {}, m.get("legacy") or {}
    out = [
        "",
        "### The migration under traffic",
        "",
        f"The seed's Phase 3 on a legacy database built from the corpus ({_n(legacy.get('chunks'))} chunks, "
        f"{_n(legacy.get('documents'))} documents; one `embedding vector(1536)` with its hnsw index; "
        "0001–0004 applied first), each file as `schema apply` runs it. Beside it, open loop: the legacy "
        f"app's searches ({s.get('search_rate', '—')}/s, {s.get('search_clients', '—')} clients) and "
        f"single-chunk inserts ({s.get('ingest_rate', '—')}/s) throughout, and the upgraded app's from "
        "0005's commit on (searches on `embedding_1536`, inserts with both vectors). A request belongs to "
        "the phase it started in; one slower than 1 s was blocked; every request offered is counted.",
        "",
    ]
    if m.get("status") != "done":
        out += [f"The measurement is **{m.get('status')}**: what it measured so far is shown.", ""]
    out.append(f"- {stall_line(m.get('phases') or [])}")
    out += [phase_line(p) for p in m.get("phases") or []]
    out += ["- Failed requests by error:", *errors_lines(m.get("streams") or {})]
    out.append(f"- Backfill effect: {effect_text(m.get('backfill_effect') or {})}.")
    return out
