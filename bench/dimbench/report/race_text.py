"""How screening raced, in the record: the rounds, who was alive after each, and why each dropped
design's configurations went — every drop with the interval that excluded it (evidence/race.py)."""

from __future__ import annotations

from typing import Any

from dimbench.evidence.results import Results
from dimbench.evidence.text import fmt


def race_lines(results: Results) -> list[str]:
    race = results.run.get("race") or {}
    if not race or int(race.get("rounds") or 1) < 2:
        return []
    dropped: list[dict[str, Any]] = list((race.get("dropped") or {}).values())
    out = [
        "## How screening raced",
        "",
        f"Screening asked each cell's queries in {race['rounds']} rounds. Between rounds a configuration "
        "left the race only when an interval excluded it — a cell's recall interval wholly below the target "
        "(its upper bound under it: the rule can never pass it), or its worst cell's p95 interval wholly "
        "above that of the fastest configuration that could still be chosen (it can no longer tie; "
        "never on fewer than 5 queries) — never on a mean. A policy variant (`rls_seed`, `rls_docs`: never "
        "chosen, measured to show what that policy costs where the rule may choose) also leaves with its twin, "
        "the same configuration under `rls`. Dropped configurations keep the queries they were "
        f"asked; {len(dropped)} left the race, and confirmation takes none of them.",
        "",
    ]
    alive = race.get("alive") or []
    if alive:
        last = alive[-1]
        out += [
            f"After the last judged round {sum(last['alive'].values())} configurations were still in the race "
            f"(queries asked in screening by then: {last['queries']:,}).",
            "",
        ]
    by_design: dict[str, list[dict[str, Any]]] = {}
    for d in dropped:
        by_design.setdefault(d["design"], []).append(d)
    if not by_design:
        return out
    out += [
        "| design | dropped for recall | for quality | for latency | with its `rls` twin | the closest call: configuration, cell, interval (reference), round, queries |",
        "|---|---|---|---|---|---|",
    ]
    for design, drops in sorted(by_design.items()):
        counts = {
            why: sum(d["why"] == why for d in drops) for why in ("recall", "quality", "latency", "twin")
        }
        own = [d for d in drops if d["why"] != "twin"]  # a twin's drop is its twin's interval, not its own
        if not own:
            out.append(f"| {design} | 0 | 0 | 0 | {counts['twin']} | — |")
            continue
        # the closest call: the interval that came nearest the line it had to cross
        closest = max(
            own,
            key=lambda d: -(d["interval"][0] - d["reference"][1]) if d["reference"] else d["interval"][1],
        )
        ref = (
            f" vs the best's {fmt(closest['reference'][0], 2)}–{fmt(closest['reference'][1], 2)} ms"
            if closest["reference"]
            else ""
        )
        unit = " ms" if closest["why"] == "latency" else ""
        out.append(
            f"| {design} | {counts['recall']} | {counts['quality']} | {counts['latency']} | {counts['twin']} | "
            f"{closest['label']}: "
            f"{closest['cell']} {fmt(closest['interval'][0], 3)}–{fmt(closest['interval'][1], 3)}{unit}{ref}, "
            f"round {closest['round']}, {closest['queries']} queries |"
        )
    return [*out, ""]
