"""The tenant side channel in the record: the table of passes and the verdict, in words."""

from __future__ import annotations

from typing import Any

from dimbench.evidence.side_channel import chance, leaks, moved_by, p50_floor
from dimbench.evidence.text import fmt, interval


def side_channel_lines(run: dict[str, Any]) -> list[str]:
    """The tenant side channel's table (of `run`: Results.side_channel_run): each design's p50 and short
    share over its passes without and with a foreign tenant's cluster, judged by whether every pass with
    it lies beyond every pass without."""
    side: list[dict[str, Any]] = run.get("side_channel") or []
    if not side:
        return []
    arms_measured = ", ".join(f"`{a}`" for a in sorted({e["access"] for e in side}))
    asked = run.get("side_channel_designs")
    which = (
        "every design of the grid (`--side-channel all`)"
        if asked == "all"
        else f"the decision's designs ({', '.join(asked)}) beside shared; `--side-channel all` measures every design"
        if isinstance(asked, list)
        else "as listed"
    )
    cycled = [e for e in side if chance(e) is not None]
    out = [
        "",
        "### The tenant side channel",
        "",
        f"Measured in run `{run.get('run_id', '?')}`: {which}; arms {arms_measured}.",
        "",
        f"Per arm, the users who see the fewest rows ({side[0]['without']['n_queries']} queries: under `rls` "
        "the users of the smallest bucket over all their workspaces, under `rls_filter` one workspace of "
        f"the smallest bucket), without and with a foreign tenant's dense cluster ({side[0]['cluster_rows']} "
        "chunks, near-duplicates of those very queries, in a workspace none of them may see), "
        + (
            f"in passes {cycled[0]['order']} (A without, B with the cluster; one design after the other, "
            "each installed once for all its passes and taking the cluster's insert and delete as "
            "production takes a tenant's writes — partial, which must not see the shared index, installed "
            "pass by pass). A design **leaks** when every pass with the "
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
