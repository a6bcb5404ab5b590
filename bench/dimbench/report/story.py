"""The figures that tell the study's story: what a team would deploy, per design; the side channel; the
curve against corpus size. Same conventions as plots.py (object API, deterministic files).

- deployable: recall@10 and p95 per workspace-size bucket for pgvector's defaults, the decision and each
  design's best, from the deciding stage — where the tiny-tenant collapse and each fix show.
- side_channel: per design, p50 and short-result share with ÷ without a foreign tenant's cluster.
- scale: worst-bucket recall (with the band the rule judges) and worst p95 against corpus size per design,
  with the straight-line projection to 10M chunks drawn dashed and labelled as a projection.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from dimbench.evidence.results import Results
from dimbench.evidence.rule import Candidate, config_of, decide, p95
from dimbench.report import palette
from dimbench.report.plots import (
    CAPTION_SIZE,
    caption,
    figure,
    finish,
    legend,
    mark_below,
    recall_limits,
    recall_line,
    target_line,
    worst_by_bucket,
)
from dimbench.report.scale import PROJECT_TO, ScalePoint, project, project_recall
from dimbench.vocabulary import BUCKETS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# authenticated's statement_timeout (schema/0001_supabase_shim.sql: '8s'): a request past it is cancelled,
# so a projected p95 beyond it is a query that would fail, not a slow one.
STATEMENT_TIMEOUT_MS = 8000.0


def line_style(label: str) -> dict[str, Any]:
    """A story line's look from its role: the decision black and thick, pgvector's defaults grey and
    dotted, a design's best in its design's colour (report/palette.py)."""
    if label.startswith(("the decision", "the rule's choice")):
        return {"color": palette.CHOSEN, "linewidth": 2.6, "zorder": 4}
    if label.startswith("pgvector defaults"):
        return {"color": palette.DEFAULTS, "linestyle": ":", "linewidth": 1.6, "zorder": 3}
    if label.startswith("best "):
        name = label.removeprefix("best ").split(":")[0].strip()
        return {"color": palette.design(name), "linewidth": 1.3}
    return {"color": palette.UNKNOWN, "linewidth": 1.0}


def rows_of(results: Results, c: Candidate, run_id: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in results.rows
        if config_of(r) == c.config
        and r.get("stage", "screening") == c.stage
        and (run_id is None or r.get("run_id") == run_id)
    ]


def by_bucket(rows: list[dict[str, Any]], value: Any, worst: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for b in BUCKETS:
        values = [value(r) for r in rows if r["bucket"] == b and value(r) is not None]
        if values:
            out[b] = worst(values)
    return out


def fig_deployable(results: Results, recall_target: float = 0.95) -> Figure:
    from dimbench.report.designs import deployable

    decision = decide(results)
    lines = deployable(decision)
    fig, axes = figure(1, 2, (13, 7.0))
    recall_ax, latency_ax = axes[0]
    plotted: list[float | None] = []
    below: list[tuple[dict[str, tuple], str]] = []
    for label, c in lines.items():
        rows = rows_of(results, c, decision.run_id)
        latency = by_bucket(rows, p95, max)
        style = line_style(label)
        text = f"{label}: {c.config.label}"
        banded = label == "the decision"
        recall = worst_by_bucket(rows)
        drawn = recall_line(recall_ax, recall, band=banded, label=text, **style)
        if label == "pgvector defaults":  # far below the rule's region: marked at the floor, not zoomed to
            below.append((recall, style["color"]))
        else:
            plotted += drawn
        xs = [b for b in BUCKETS if b in latency]
        latency_ax.plot(xs, [latency[b] for b in xs], marker="o", markersize=3, label=text, **style)
    target_line(recall_ax, decision.recall_target)
    recall_ax.set_ylim(*recall_limits(decision.recall_target, plotted))
    for recall, color in below:
        mark_below(recall_ax, recall, color)
    recall_ax.set_title(
        "recall@10 per workspace-size bucket (worst scope)\n"
        "band: the decision's 95 % intervals · ▼ a bucket below the axis, with its recall"
    )
    recall_ax.set_xlabel("workspace-size bucket (share of all rows a user sees)")
    recall_ax.set_ylabel("recall@10")
    latency_ax.set_yscale("log")
    latency_ax.set_title("p95 latency per bucket (worst scope)")
    latency_ax.set_xlabel("workspace-size bucket")
    latency_ax.set_ylabel("p95 ms (log)")
    handles, labels = recall_ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=1, bbox_to_anchor=(0.5, 0.04), frameon=False)
    fig.subplots_adjust(bottom=0.12 + 0.034 * len(labels), top=0.9, wspace=0.22)
    fig.suptitle(
        f"What a team would deploy, under RLS ({decision.stage} stage): pgvector's defaults, the decision "
        "and each design's best"
    )
    caption(fig, results.caption)
    return fig


def fig_side_channel(results: Results) -> Figure:
    """One row per design and arm: every pass's p50 over the median of the passes without the cluster —
    grey the passes without, coloured the passes with it (red where every one lies beyond every grey one:
    a leak); and the share of short results without and with the cluster."""
    from dimbench.evidence.side_channel import leaks

    side = results.side_channel_run.get("side_channel") or []
    fig, axes = figure(1, 2, (11, 1.9 + 0.32 * max(len(side), 2)))
    ratio_ax, short_ax = axes[0]
    rows = list(range(len(side)))[::-1]  # the first entry on top
    names = [f"{e['design']} · {e['access']} · {e['build_key'].split('/')[0]}" for e in side]
    for y, e in zip(rows, side, strict=True):
        verdict = leaks(e)
        base = e["without"]["p50_ms"] or 1.0
        passes = e.get("passes") or [{**e["without"], "cluster": False}, {**e["with"], "cluster": True}]
        color = "tab:red" if verdict else "tab:blue" if verdict is False else "0.55"
        without = [p["p50_ms"] / base for p in passes if not p["cluster"]]
        with_ = [p["p50_ms"] / base for p in passes if p["cluster"]]
        ratio_ax.plot(without, [y] * len(without), "o", mfc="none", color="0.5", markersize=5)
        ratio_ax.plot(with_, [y] * len(with_), "o", color=color, markersize=5)
    ratio_ax.axvline(1.0, color="0.3", linewidth=0.8)
    ratio_ax.set_yticks(rows, names, fontsize=9)
    ratio_ax.set_xlabel(
        "each pass's p50 ÷ the median p50 of the passes\nwithout the cluster · open grey: without ·\n"
        "filled: with it (red: every one beyond every grey one, a leak)",
        fontsize=9,
    )
    ratio_ax.set_title("latency moved by another tenant's data")
    lost = any((e["with"]["short_share"] or 0) or (e["without"]["short_share"] or 0) for e in side)
    # Same encoding as the left panel: open grey without the cluster, filled (the verdict's colour) with it.
    for y, e in zip(rows, side, strict=True):
        before, during = e["without"]["short_share"] or 0.0, e["with"]["short_share"] or 0.0
        verdict = leaks(e)
        color = "tab:red" if verdict else "tab:blue" if verdict is False else "0.55"
        short_ax.plot([before, during], [y, y], color="0.6", linewidth=1)
        short_ax.plot(
            [before],
            [y],
            "o",
            mfc="none",
            color=palette.WITHOUT,
            markersize=5,
            label="without the cluster" if y == rows[0] else None,
        )
        short_ax.plot(
            [during], [y], "o", color=color, markersize=5, label="with the cluster" if y == rows[0] else None
        )
    short_ax.set_yticks(rows, [""] * len(rows))
    short_ax.set_xlim(-0.02, 1.02)
    short_ax.set_xlabel("share of queries returning fewer rows\nthan the user may see")
    short_ax.set_title("results lost to another tenant's data" + ("" if lost else ": none (all 0.00)"))
    if side:
        legend(short_ax)
    else:
        ratio_ax.text(
            0.5, 0.5, "not measured in this run", ha="center", va="center", transform=ratio_ax.transAxes
        )
    fig.suptitle("The tenant side channel: a foreign tenant's dense cluster at the smallest tenants' queries")
    return finish(fig, results.caption)


def scale_series(results: Results) -> dict[str, list[ScalePoint]]:
    """label -> a point per size, for the lines the scale record follows (its confirmation where a size
    confirmed the configuration, else its screening: the record's own numbers)."""
    from dimbench.report import scale

    sizes = scale.sizes(results)
    if not sizes:
        return {}
    first = scale.decision_at(results, sizes[0][1])
    out: dict[str, list[ScalePoint]] = {}
    for label, c in scale.followed(first, sizes[0][0]).items():
        out[f"{label}: {c.config.label}"] = [
            ScalePoint(p.chunks, None, None, None, None)
            if p.candidate is None
            else ScalePoint(
                p.chunks,
                p.candidate.min_recall,
                p.candidate.worst_p95_ms,
                p.candidate.min_recall_lower,
                p.candidate.min_recall_upper,
            )
            for p in scale.follow(results, c.config)
        ]
    return out


def fig_scale(results: Results, recall_target: float = 0.95) -> Figure:
    series = scale_series(results)
    fig, axes = figure(1, 2, (13, 8.0))
    recall_ax, latency_ax = axes[0]

    def value(v: float | None) -> float:
        return math.nan if v is None else v

    def clip(v: float) -> float:
        return v if math.isnan(v) else max(0.0, v)

    highest = 0.0  # the largest measured or projected p95: the timeout line is drawn once it is reached
    for i, (label, points) in enumerate(sorted(series.items())):
        style = line_style(label)
        color, width = style["color"], style["linewidth"]
        # Spread the lines a little sideways (a few % of N on the log axis) so their bars stay apart.
        ns = [p.chunks * (1 + 0.04 * (i - (len(series) - 1) / 2)) for p in points]
        recalls = [value(p.recall) for p in points]
        # The worst cell's mean and the weakest interval can come from different cells: a bar never
        # reaches past the mean the wrong way (clipped at 0), NaN stays NaN (nothing measured).
        below = [clip(r - value(p.lower)) for r, p in zip(recalls, points, strict=True)]
        above = [clip(value(p.upper) - r) for r, p in zip(recalls, points, strict=True)]
        recall_ax.errorbar(
            ns,
            recalls,
            yerr=[below, above],
            marker="o",
            markersize=3,
            capsize=2,
            elinewidth=0.7,
            color=color,
            linewidth=width,
            linestyle=style.get("linestyle", "-"),
            label=label,
        )
        latency_ax.plot(
            ns,
            [value(p.p95) for p in points],
            marker="o",
            markersize=3,
            color=color,
            linewidth=width,
            linestyle=style.get("linestyle", "-"),
        )
        highest = max([highest, *(p.p95 for p in points if p.p95 is not None)])
        last = points[-1]
        projected = project([(p.chunks, p.p95) for p in points if p.p95 is not None])
        if projected is not None and last.p95 is not None:
            highest = max(highest, projected)
            latency_ax.plot(
                [ns[-1], PROJECT_TO], [last.p95, projected], linestyle="--", color=color, linewidth=0.8
            )
        projected = project_recall([(p.chunks, p.recall) for p in points if p.recall is not None])
        if projected is not None and last.recall is not None:
            recall_ax.plot(
                [ns[-1], PROJECT_TO], [last.recall, projected], linestyle="--", color=color, linewidth=0.8
            )
    # The region the rule reads, down to the lowest measured line or bar (projections may run lower:
    # they are cut at the frame rather than squeezing the measurements into a few pixels).
    # pgvector's defaults fail far below it: marked at the floor with their recall (▼), not zoomed to.
    defaults = {label for label in series if label.startswith("pgvector defaults")}
    measured = [
        v
        for label, points in series.items()
        if label not in defaults
        for p in points
        for v in (p.recall, p.lower)
    ]
    recall_ax.set_ylim(*recall_limits(recall_target, measured))
    for label in defaults:
        i = sorted(series).index(label)
        spread = 1 + 0.04 * (i - (len(series) - 1) / 2)
        marks = {p.chunks * spread: (p.recall,) for p in series[label] if p.recall is not None}
        mark_below(recall_ax, marks, line_style(label)["color"])
    for ax in (recall_ax, latency_ax):
        ax.set_xscale("log")
        ax.set_xlabel("chunks in the corpus (log)\nright of the last measured size: a projection (dashed)")
        if series:
            ax.axvline(PROJECT_TO, color="0.7", linewidth=0.6)
    latency_ax.set_yscale("log")
    if highest >= STATEMENT_TIMEOUT_MS:
        latency_ax.axhline(STATEMENT_TIMEOUT_MS, color="tab:red", linewidth=1.0)
        latency_ax.text(
            latency_ax.get_xlim()[0],
            STATEMENT_TIMEOUT_MS,
            " statement_timeout 8 s: cancelled above",
            color="tab:red",
            fontsize=CAPTION_SIZE + 1,
            ha="left",
            va="bottom",
        )
    target_line(recall_ax, recall_target)
    recall_ax.set_ylabel("worst-bucket recall@10 (bar: the rule's band, 95 %; ▼ below the axis)")
    recall_ax.set_title("recall against corpus size")
    latency_ax.set_yscale("log")
    latency_ax.set_ylabel("worst-cell p95 ms (log)")
    latency_ax.set_title("p95 against corpus size")
    handles, labels = recall_ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=1, bbox_to_anchor=(0.5, 0.04), frameon=False)
    fig.subplots_adjust(bottom=0.12 + 0.03 * len(labels), top=0.8, wspace=0.25)
    fig.suptitle(
        "pgvector's defaults, the rule's choice and each design's best at the smallest corpus, followed to "
        "larger ones\n(each size's confirmation where it confirmed the configuration, else its screening)\n"
        "a bar spans the lowest lower and the lowest upper bound of any cell's 95 % recall interval: "
        "the rule passes a size only when the bar's bottom clears the target"
    )
    caption(fig, results.caption)
    return fig


def render_all(results: Results, out: Any) -> list[Any]:
    """deployable always; side_channel when the run measured it; scale when the runs differ in size."""
    from dimbench.report.plots import save, style

    written = []
    figures = {"deployable": fig_deployable}
    if results.side_channel_run.get("side_channel"):
        figures["side_channel"] = fig_side_channel
    if scale_series(results):
        figures["scale"] = fig_scale
    for name, make in figures.items():
        with style():
            fig = make(results)
        written += save(fig, out, name)
    return written
