"""The scale profile's record (DECISION.md of results/scale), and how far a choice holds as N grows."""

from __future__ import annotations

from typing import Any

from dimbench.evidence.results import Results
from dimbench.evidence.rule import (
    Decision,
)
from dimbench.evidence.text import fmt, interval
from dimbench.report.common import (
    MARKS,
    _published_choice,
    context_section,
    provenance,
    rule_section,
    runs_section,
    title_lines,
)
from dimbench.study import designs
from dimbench.vocabulary import DEFAULT_DESIGN, DESIGNS


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
    if points and all(getattr(p, "candidate", None) is None for p in points):
        return "**not measured by the scale profile** (its grid does not follow this configuration)"
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


def holds_section(decision: Decision, published: Results | None, results: Results | None = None) -> list[str]:
    """How far the choice holds, from a scale profile's results (the published one, when written);
    `results`: the record's own, to say when the two were measured on different corpora, commits or
    machines."""
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
    out += same_configuration_note(results, published)
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


def same_configuration_note(here: Results | None, there: Results | None) -> list[str]:
    """Numbers of two records for one configuration differ when their corpora, commits or machines do:
    say which each was measured on, beside the numbers (compare within one record, not across)."""
    if here is None or there is None:
        return []
    mine, theirs = provenance(here), provenance(there)
    if mine == theirs:
        return []
    return [
        f"Measured elsewhere: this record's numbers come from {mine}; the scale profile's from {theirs}. "
        "Latencies of the same configuration differ between the two records for that reason; compare "
        "sizes within the scale profile, not against this record's."
    ]


def scale_render(results: Results) -> str:
    """The record of a scale profile: the answer first, then the rule at each size, how each design's
    best holds, projections."""
    from dimbench.report import first_screen, scale

    runs = scale.sizes(results)
    first = scale.decision_at(results, runs[0][1])
    out = [
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
            *same_configuration_note(_published_results("small"), results),
            "",
        ]
    out += scale_live_section(results, runs)
    out += rule_section(first) + context_section() + runs_section(results)
    which = (
        f"{len(runs)} runs, one per corpus size ("
        + ", ".join(f"{n:,} chunks" for n, _ in runs)
        + "), each decided on its own by the same rule (see “Runs”)"
    )
    head = title_lines(results, which) + scale_answer(results, runs, first, published_small)
    return "\n".join(head + ["", first_screen.links(out), ""] + out)


def scale_live_section(results: Results, runs: list[tuple[int, str]]) -> list[str]:
    """ "Under live traffic" for the size the live stage ran on (its live.json names its corpus), judged
    against that size's own decision; [] without a live stage."""
    from dimbench.report import scale
    from dimbench.report.live_text import section

    if not results.live:
        return []
    chunks = scale.corpus_size({"corpus": results.live.get("corpus") or {}})
    run_id = next((r for n, r in runs if n == chunks), runs[-1][1])
    at = results.of_run(run_id)
    lines = section(at, scale.decision_at(results, run_id))
    return (
        [lines[0], "", f"Measured at {f'{chunks:,}' if chunks else '—'} chunks (run `{run_id}`).", *lines[1:]]
        if lines
        else []
    )


def _published_results(profile: str) -> Results | None:
    from dimbench.evidence.results import read_results
    from dimbench.paths import published_dir

    path = published_dir(profile)
    if not (path / "run.json").exists():
        return None
    try:
        return read_results(path)
    except Exception:  # an unreadable published directory: say nothing rather than guess
        return None


def scale_answer(
    results: Results, runs: list[tuple[int, str]], first: Decision, published_small: Any
) -> list[str]:
    """The scale record's first screen: the rule's choice at the largest size, at each size, and how far
    the published decision holds."""
    from dimbench.report import scale

    choices = scale.choices(results)
    largest, chosen, tied = choices[-1]
    out = ["## The answer", ""]
    if chosen is None:
        out.append(f"**At {largest:,} chunks, the largest size measured, nothing meets the rule.**")
    else:
        w = chosen.weakest
        out += [
            f"**At {largest:,} chunks, the largest size measured, the rule chooses {chosen.config.label}** "
            f"(tie set of {tied}).",
            "",
            f"- Confidence, recall: weakest cell {w['cell']} recall@10 {fmt(w['recall'])}{interval(w['ci'])} "
            f"over {w['n']} queries.",
            f"- Confidence, latency: worst p95 {fmt(chosen.worst_p95_ms, 2)}{interval(chosen.worst_p95_ci, 2)} "
            f"ms ({chosen.worst_cell}).",
        ]
    out.append(
        "- At each size: "
        + "; ".join(
            f"{n:,}: {c.config.label if c else 'nothing qualifies'} (tie set of {t})" for n, c, t in choices
        )
        + "."
    )
    live_at = scale.corpus_size({"corpus": (results.live or {}).get("corpus") or {}})
    if results.live and live_at == largest:  # the largest size's choice under its live stage
        from dimbench.report.live_text import live_line

        line = live_line(results.of_run(runs[-1][1]), scale.decision_at(results, runs[-1][1]))
        if line:
            out.append(
                line.replace("- Under live traffic:", f"- Under live traffic at {largest:,} chunks:", 1)
            )
    if published_small is not None:
        points = scale.follow(results, published_small.config)
        out.append(
            "- The published decision (`results/small/`): "
            + held_phrase(points, first.recall_target)
            + " ([details](#the-published-decision-resultssmall))."
        )
    return out


def scale_cost_lines(results: Results, runs: list[tuple[int, str]]) -> list[str]:
    """What each build and each design's install cost at each size: seconds, and the bytes it added."""
    keys: list[tuple[str, str]] = []  # (design, build key) in the order the runs did them
    for _, run_id in runs:
        for key in [(DEFAULT_DESIGN, k) for k in results.builds(run_id)] + list(results.designs(run_id)):
            if key not in keys:
                keys.append(key)

    def cell(design: str, build_key: str, run_id: str) -> str:
        entry = (
            results.builds(run_id).get(build_key)
            if not DESIGNS[design].installs
            else results.designs(run_id).get((design, build_key))
        )
        if not entry:
            return "not measured"
        added = (entry.get("index_bytes") or 0) + (
            entry.get("table_bytes") or 0 if DESIGNS[design].installs else 0
        )
        extra = []
        if entry.get("maintenance_work_mem"):
            extra.append(f"mwm {entry['maintenance_work_mem']}")
        for setting, t in designs.get(design).measured_values(entry.get("detail") or {}).items():
            extra.append(f"T = {t} at {setting}" if setting else f"T = {t}")
        return f"{fmt(entry.get('seconds'), 1)} s / {added / 1e6:,.0f} MB" + (
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
