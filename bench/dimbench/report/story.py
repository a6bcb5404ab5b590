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
from dimbench.report.plots import figure, finish, legend
from dimbench.report.scale import PROJECT_TO, ScalePoint, project, project_recall
from dimbench.vocabulary import BUCKETS

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
    fig, axes = figure(1, 2, (12, 6.4))
    recall_ax, latency_ax = axes[0]
    for label, c in lines.items():
        rows = rows_of(results, c, decision.run_id)
        recall = by_bucket(rows, lambda r: r["recall_mean"], min)
        latency = by_bucket(rows, p95, max)
        style = (
            {"linewidth": 2.2}
            if label == "the decision"
            else {"linestyle": ":" if "defaults" in label else "-"}
        )
        text = f"{label}: {c.config.label}"
        xs = [b for b in BUCKETS if b in recall]
        recall_ax.plot(xs, [recall[b] for b in xs], marker="o", markersize=3, label=text, **style)
        xs = [b for b in BUCKETS if b in latency]
        latency_ax.plot(xs, [latency[b] for b in xs], marker="o", markersize=3, label=text, **style)
    recall_ax.axhline(recall_target, color="0.6", linewidth=0.8)
    recall_ax.set_ylim(-0.02, 1.02)
    recall_ax.set_title("recall@10 per workspace-size bucket (worst scope)")
    recall_ax.set_xlabel("workspace-size bucket (share of all rows a user sees)")
    recall_ax.set_ylabel("recall@10")
    latency_ax.set_yscale("log")
    latency_ax.set_title("p95 latency per bucket (worst scope)")
    latency_ax.set_xlabel("workspace-size bucket")
    latency_ax.set_ylabel("p95 ms (log)")
    handles, labels = recall_ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=1, fontsize=6, bbox_to_anchor=(0.5, 0.03))
        fig.subplots_adjust(bottom=0.42, top=0.9)
    fig.suptitle(
        f"What a team would deploy, under RLS ({decision.stage} stage): pgvector's defaults, the decision "
        "and each design's best"
    )
    fig.text(0.01, 0.005, results.caption, fontsize=6, color="0.35", ha="left", va="bottom")
    return fig


def fig_side_channel(results: Results) -> Figure:
    """One row per design and arm: every pass's p50 over the median of the passes without the cluster —
    grey the passes without, coloured the passes with it (red where every one lies beyond every grey one:
    a leak); and the share of short results without and with the cluster."""
    from dimbench.evidence.side_channel import leaks

    side = results.run.get("side_channel") or []
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
    ratio_ax.set_yticks(rows, names, fontsize=7)
    ratio_ax.set_xlabel(
        "each pass's p50 ÷ the median p50 of the passes without the cluster\n"
        "open grey: without · filled: with the cluster (red: every one beyond every grey one, a leak)",
        fontsize=8,
    )
    ratio_ax.set_title("latency moved by another tenant's data", fontsize=9)
    lost = any((e["with"]["short_share"] or 0) or (e["without"]["short_share"] or 0) for e in side)
    for y, e in zip(rows, side, strict=True):
        before, during = e["without"]["short_share"] or 0.0, e["with"]["short_share"] or 0.0
        short_ax.plot([before, during], [y, y], color="0.6", linewidth=1)
        short_ax.plot(
            [before], [y], "o", color="tab:blue", markersize=4, label="without" if y == rows[0] else None
        )
        short_ax.plot(
            [during],
            [y],
            "o",
            color="tab:orange",
            markersize=4,
            label="with the cluster" if y == rows[0] else None,
        )
    short_ax.set_yticks(rows, [""] * len(rows))
    short_ax.set_xlim(-0.02, 1.02)
    short_ax.set_xlabel("share of queries returning fewer rows than the user may see")
    short_ax.set_title(
        "results lost to another tenant's data" + ("" if lost else ": none (all 0.00)"),
        fontsize=9,
    )
    if side:
        legend(short_ax, loc="lower right")
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
    fig, axes = figure(1, 2, (12, 7.5))
    recall_ax, latency_ax = axes[0]

    def value(v: float | None) -> float:
        return math.nan if v is None else v

    for i, (label, points) in enumerate(sorted(series.items())):
        color = f"C{i % 10}"
        width = 2.2 if label.startswith("the rule's choice") else 1.2  # the line the record decides on
        # Spread the lines a little sideways (a few % of N on the log axis) so their bars stay apart.
        ns = [p.chunks * (1 + 0.04 * (i - (len(series) - 1) / 2)) for p in points]
        recalls = [value(p.recall) for p in points]
        below = [r - value(p.lower) for r, p in zip(recalls, points, strict=True)]
        above = [value(p.upper) - r for r, p in zip(recalls, points, strict=True)]
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
            label=label,
        )
        latency_ax.plot(
            ns, [value(p.p95) for p in points], marker="o", markersize=3, color=color, linewidth=width
        )
        last = points[-1]
        projected = project([(p.chunks, p.p95) for p in points if p.p95 is not None])
        if projected is not None and last.p95 is not None:
            latency_ax.plot(
                [ns[-1], PROJECT_TO], [last.p95, projected], linestyle="--", color=color, linewidth=0.8
            )
        projected = project_recall([(p.chunks, p.recall) for p in points if p.recall is not None])
        if projected is not None and last.recall is not None:
            recall_ax.plot(
                [ns[-1], PROJECT_TO], [last.recall, projected], linestyle="--", color=color, linewidth=0.8
            )
    lowest = min(
        (v for points in series.values() for p in points for v in (p.recall, p.lower) if v is not None),
        default=0.0,
    )
    # The target must stay readable: start the axis just below the lowest line or bar, not at 0.
    recall_ax.set_ylim(max(0.0, math.floor(lowest * 20) / 20 - 0.05), 1.01)
    for ax in (recall_ax, latency_ax):
        ax.set_xscale("log")
        ax.set_xlabel("chunks in the corpus (log)")
        if series:
            ax.axvline(PROJECT_TO, color="0.7", linewidth=0.6)
            ax.text(
                PROJECT_TO,
                ax.get_ylim()[1],
                "10M: projection (dashed), not measured",
                fontsize=5,
                ha="right",
                va="top",
                color="0.3",
            )
    recall_ax.axhline(recall_target, color="0.6", linewidth=0.8)
    recall_ax.set_ylabel("worst-bucket recall@10 (bar: the rule's band, 95 %)")
    recall_ax.set_title("recall against corpus size")
    latency_ax.set_yscale("log")
    latency_ax.set_ylabel("worst-cell p95 ms (log)")
    latency_ax.set_title("p95 against corpus size")
    handles, labels = recall_ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=1, fontsize=6, bbox_to_anchor=(0.5, 0.03))
    fig.subplots_adjust(bottom=0.3, top=0.86, wspace=0.25)
    fig.suptitle(
        "pgvector's defaults, the rule's choice and each design's best at the smallest corpus, followed to "
        "larger ones\n(each size's confirmation where it confirmed the configuration, else its screening)\n"
        "a bar spans the lowest lower and the lowest upper bound of any cell's 95 % recall interval: "
        "the rule passes a size only when the bar's bottom clears the target"
    )
    fig.text(0.01, 0.005, results.caption, fontsize=6, color="0.35", ha="left", va="bottom")
    return fig


def render_all(results: Results, out: Any) -> list[Any]:
    """deployable always; side_channel when the run measured it; scale when the runs differ in size."""
    from dimbench.report.plots import save, style

    written = []
    figures = {"deployable": fig_deployable}
    if results.run.get("side_channel"):
        figures["side_channel"] = fig_side_channel
    if scale_series(results):
        figures["scale"] = fig_scale
    for name, make in figures.items():
        with style():
            fig = make(results)
        written += save(fig, out, name)
    return written
