"""The report's plots (PNG + SVG), each with title, units, legend and the run's caption.

Figures are built with matplotlib's object API on the Agg canvas, never through pyplot, so rendering
changes no global backend or style (the notebooks draw the same figures inline). Same input → same
bytes: fixed svg.hashsalt, no dates or software version in the file metadata, stable orders.

Every figure reads its colours from report/palette.py (an arm, design or column keeps its colour across
figures and profiles), puts its legend outside the data, zooms recall axes to the region the rule reads
(with the target line and the 95 % bands the rows carry), draws the rule's choice when it is given, and
draws no empty panel: a panel without data is left out, a figure without any is not drawn (None).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dimbench.evidence.results import Results
from dimbench.evidence.rule import BUCKETS, CHOOSABLE, COLUMN_BYTES, Candidate, config_of, p95
from dimbench.report import palette
from dimbench.vocabulary import ACCESS_ARMS, DEFAULT_DESIGN, cell_value

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ARMS = ACCESS_ARMS
INDEXES = ("exact", "ivfflat", "hnsw")
MODES = ("off", "relaxed_order", "strict_order")
RC = {
    "svg.hashsalt": "dimbench",
    "figure.dpi": 100,
    "font.size": 9,
    "legend.fontsize": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
}
CAPTION_SIZE = 8
QUERY_KNOB = {"hnsw": "ef_search", "ivfflat": "probes"}
RECALL_MARGIN = 0.02  # below the lowest plotted bound, so its marker is not cut by the frame


def column_order(names: set[str]) -> list[str]:
    """768 first, then 1536 at full and half precision; anything unknown last, by name."""
    known = list(COLUMN_BYTES)
    return sorted(names, key=lambda n: (known.index(n) if n in known else len(known), n))


@contextmanager
def style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(RC):
        yield


def figure(rows: int, cols: int, size: tuple[float, float]) -> tuple[Figure, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def caption(fig: Figure, text: str) -> None:
    import textwrap

    # Wrapped to the figure's width (about 6 px a character at 8 pt) rather than cut at its edge.
    width = max(40, int(fig.get_figwidth() * fig.dpi / 6.3))
    lines = [part for line in text.splitlines() for part in textwrap.wrap(line, width) or [""]]
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=CAPTION_SIZE, color="0.35", ha="left", va="bottom")


CAPTION_INCHES = 0.52  # up to three caption lines at 8 pt and a margin: legends and axes stay above them


def decision_caption(results: Results, chosen: Candidate | None) -> str:
    """The run's caption, and the decision's full label (legends name it "the decision", kept short)."""
    return results.caption + ("" if chosen is None else f"\nthe decision: {chosen.config.label}")


def finish(fig: Figure, text: str, bottom: float = 0.04, top: float = 1.0) -> Figure:
    """The caption along the bottom; `bottom` keeps a strip free above it for a figure legend."""
    caption(fig, text)
    fig.tight_layout(rect=(0, max(bottom, CAPTION_INCHES / fig.get_figheight()), 1, top))
    return fig


def save(fig: Figure, directory: Path, name: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.png", directory / f"{name}.svg"]
    with style():
        fig.savefig(paths[0], metadata={"Software": None})
        fig.savefig(paths[1], metadata={"Date": None, "Creator": None})
    return paths


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes, for notebooks (display(Image(data=png(fig))) needs no pyplot backend)."""
    import io

    buffer = io.BytesIO()
    with style():
        fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def legend(ax: Axes, **kwargs: Any) -> None:
    """The axes' legend to the right of it, outside the data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**{"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "frameon": False, **kwargs})


def figure_legend(fig: Figure, axes: Iterable[Axes], ncol: int = 3) -> float:
    """One legend for panels that share their series, below them, outside the data; returns the figure
    fraction it takes from the bottom (pass it to finish)."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if not seen:
        return 0.04
    # As many columns as the longest label lets fit across the figure (about 6.5 px a character at 9 pt).
    fits = int(fig.get_figwidth() * fig.dpi // (6.5 * max(len(label) for label in seen) + 40))
    ncol = max(1, min(ncol, len(seen), fits))
    fig.legend(
        list(seen.values()),
        list(seen),
        loc="lower center",
        bbox_to_anchor=(0.5, CAPTION_INCHES / fig.get_figheight()),
        ncol=ncol,
        frameon=False,
    )
    lines = -(-len(seen) // ncol)
    return min(0.6, (CAPTION_INCHES + 0.25 + 0.19 * lines) / fig.get_figheight())


def recall_limits(target: float, lows: Iterable[float | None]) -> tuple[float, float]:
    """The region the rule reads: from a little below the target (or below the lowest plotted value or
    interval bound, whichever is lower) to 1."""
    values = [v for v in lows if v is not None]
    low = min([target - 0.05, *(v - RECALL_MARGIN for v in values)])
    return max(0.0, low), 1.005


def mark_below(ax: Axes, recall: dict[str, tuple], color: str) -> None:
    """A line's buckets under the zoomed recall axis: a ▼ at its floor with the value, so the line is
    present (and read) without stretching the axis over a region the rule never reads."""
    floor = ax.get_ylim()[0]
    for bucket, (mean, *_bounds) in recall.items():
        if mean < floor:
            ax.plot([bucket], [floor], marker="v", color=color, markersize=7, clip_on=False, zorder=5)
            ax.annotate(
                f"{mean:.2f}",
                (bucket, floor),
                xytext=(0, 7),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color=color,
            )


REFERENCE = "reference"  # the gid of a line drawn for reading (target, ×1): it is not data


def has_data(ax: Axes) -> bool:
    return bool(ax.patches or ax.collections or [line for line in ax.lines if line.get_gid() != REFERENCE])


def target_line(ax: Axes, target: float, vertical: bool = False) -> None:
    draw = ax.axvline if vertical else ax.axhline
    draw(
        target,
        color="0.45",
        linewidth=0.9,
        linestyle="--",
        label=f"recall target {target:.2f}",
        zorder=1,
        gid=REFERENCE,
    )


def drop_empty(fig: Figure, axes: Iterable[Axes]) -> None:
    """Remove the panels nothing was drawn into (a meaningless empty axis reads as a measurement)."""
    for ax in axes:
        if not has_data(ax):
            fig.delaxes(ax)


# --- data shaping -----------------------------------------------------------------------------------


def grid_results(data: Results, chosen: Candidate | None = None) -> Results:
    """The rows the grid's figures show: the first run's screening of the shared design (the whole grid,
    one run), plus the first run's rows of the rule's choice from the stage that decided it (confirmation:
    its interval is the one the rule read, not screening's 20 queries), so that the choice is always drawn
    as judged. The report and the notebooks call this alike."""
    first = data.of_run(data.run["run_id"])
    chosen_stage = chosen.stage if chosen is not None else "screening"
    rows = [
        r
        for r in first.rows
        if (r["stage"] == "screening" and cell_value(r, "design") == DEFAULT_DESIGN)
        or (chosen is not None and config_of(r) == chosen.config and r["stage"] == chosen_stage)
    ]
    return Results(first.directory, first.run, rows)


def config_points(results: Results) -> dict[tuple, dict[str, float]]:
    """Per configuration (decide.Config): worst-cell recall and worst-cell p95, measured cells only."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results.rows:
        if r["recall_mean"] is not None and p95(r) is not None:
            groups[config_of(r)].append(r)
    return {
        k: {"recall": min(r["recall_mean"] for r in v), "p95": max(p95(r) for r in v)}
        for k, v in sorted(groups.items(), key=lambda kv: kv[0].label)
    }


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both recall (higher) and latency (lower), by recall."""
    front: list[tuple[float, float]] = []
    for recall, latency in sorted(points, key=lambda p: (-p[0], p[1])):
        if not front or latency < front[-1][1]:
            front.append((recall, latency))
    return sorted(front)


def knob(row: dict[str, Any]) -> float:
    """The swept query parameter's value (ef_search, probes); 0 for exact."""
    return float(row["query_params"].get(QUERY_KNOB.get(row["index"], ""), 0))


def strongest_setting(results: Results) -> dict[tuple, float]:
    """Per (column type, index, build): the largest ef_search/probes swept (the best recall it offers)."""
    best: dict[tuple, float] = {}
    for r in results.rows:
        key = (r["column_type"], r["index"], json.dumps(r["build_params"], sort_keys=True))
        best[key] = max(best.get(key, 0.0), knob(r))
    return best


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def worst_by_bucket(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float | None, float | None]]:
    """bucket -> (worst scope's mean recall, lowest lower and lowest upper bound of the 95 % intervals):
    the band the rule judges, as in the scale figure."""
    out: dict[str, tuple[float, float | None, float | None]] = {}
    for b in BUCKETS:
        mine = [r for r in rows if r["bucket"] == b and r["recall_mean"] is not None]
        if not mine:
            continue
        ci = [r["recall_ci95"] for r in mine if r.get("recall_ci95")]
        out[b] = (
            min(r["recall_mean"] for r in mine),
            min(c[0] for c in ci) if ci else None,
            min(c[1] for c in ci) if ci else None,
        )
    return out


def recall_line(ax: Axes, recall: dict[str, tuple], band: bool = False, **kwargs: Any) -> list[float | None]:
    """A recall line over the buckets, with its band when asked (a band per line would bury a dozen lines
    under each other's shading: the figures band the decision and the defaults only); returns every value
    plotted, for the axis."""
    xs = [b for b in BUCKETS if b in recall]
    if not xs:  # nothing measured at this setting here: no line (nor a legend entry for one)
        return []
    ax.plot(xs, [recall[b][0] for b in xs], **{"marker": "o", "markersize": 3, **kwargs})
    if not band:
        return [recall[b][0] for b in xs]
    banded = [b for b in xs if recall[b][1] is not None]
    if banded:
        ax.fill_between(
            banded,
            [recall[b][1] for b in banded],
            [recall[b][2] for b in banded],
            color=kwargs.get("color"),
            alpha=0.15,
            linewidth=0,
        )
    return [v for b in xs for v in (recall[b][0], recall[b][1])]


# --- figures ------------------------------------------------------------------------------------------

PARETO_GROUPS = (("service", ("service",)), ("RLS", CHOOSABLE), ("seed RLS", ("rls_seed",)))
PARETO_COLOR = {
    "service": palette.arm("service"),
    "RLS": palette.arm("rls"),
    "seed RLS": palette.arm("rls_seed"),
}


def fig_pareto(
    results: Results, recall_target: float = 0.95, chosen: Candidate | None = None
) -> Figure | None:
    """Per column type: the recall–p95 front per index (line style) and arm group (colour), on one recall
    range; the rule's choice a black star, pgvector's defaults an open grey diamond."""
    points = config_points(results)
    column_types = column_order({k.column_type for k in points})
    if not column_types:
        return None
    fig, axes = figure(1, len(column_types), (4.6 * len(column_types), 4.6))
    plotted: list[float] = []
    for ax, ct in zip(axes[0], column_types, strict=True):
        for index in INDEXES:
            for name, arms in PARETO_GROUPS:
                pts = [
                    (v["recall"], v["p95"])
                    for k, v in points.items()
                    if k.column_type == ct and k.index == index and k.access in arms
                ]
                if pts:
                    front = pareto(pts)
                    plotted += [p[0] for p in front]
                    ax.plot(
                        [p[0] for p in front],
                        [p[1] for p in front],
                        palette.index_line(index),
                        color=PARETO_COLOR[name],
                        marker="o",
                        markersize=3,
                        label=f"{index} · {name}",
                    )
        if chosen is not None and chosen.config.column_type == ct:
            point = points.get(chosen.config) or {"recall": chosen.min_recall, "p95": chosen.worst_p95_ms}
            if point["recall"] is not None and point["p95"] is not None:
                plotted.append(point["recall"])
                ax.plot(
                    [point["recall"]],
                    [point["p95"]],
                    "*",
                    color=palette.CHOSEN,
                    markersize=13,
                    zorder=5,
                    label="the decision",
                )
        defaults = [v for k, v in points.items() if k.column_type == ct and is_default(k)]
        if defaults:  # what building the index and changing nothing else gives
            plotted.append(defaults[0]["recall"])
            ax.plot(
                [defaults[0]["recall"]],
                [defaults[0]["p95"]],
                "D",
                mfc="none",
                color=palette.DEFAULTS,
                markersize=8,
                markeredgewidth=1.6,
                zorder=5,
                label="pgvector defaults (hnsw 16/64, ef_search 40, iterative off, RLS)",
            )
        ax.set_yscale("log")
        ax.set_xlabel("worst-cell recall@10 (over buckets and scopes)")
        ax.set_ylabel("worst-cell p95 latency (ms, log)")
        ax.set_title(f"Recall–latency Pareto front: {ct}")
        target_line(ax, recall_target, vertical=True)
    # One recall range for every panel: the region the rule reads, down to the lowest front point.
    for ax in axes[0]:
        ax.set_xlim(*recall_limits(recall_target, plotted))
    bottom = figure_legend(fig, axes[0])
    return finish(fig, decision_caption(results, chosen), bottom)


def is_default(config: Any) -> bool:
    """pgvector's defaults under RLS: the shared hnsw index built and queried as pgvector leaves it."""
    params = json.loads(config.query_params)
    return (
        config.design == DEFAULT_DESIGN
        and config.index == "hnsw"
        and json.loads(config.build_params) == {"ef_construction": 64, "m": 16}
        and config.iterative_scan == "off"
        and params.get("ef_search") == 40
        and params.get("max_scan_tuples", 20000) == 20000
        and config.access == "rls"
    )


def recall_panels(results: Results, chosen: Candidate | None) -> list[tuple[str, str]]:
    strongest = strongest_setting(results)
    have = {
        (r["access"], r["iterative_scan"])
        for r in results.rows
        if r["recall_mean"] is not None
        and knob(r)
        == strongest[(r["column_type"], r["index"], json.dumps(r["build_params"], sort_keys=True))]
    }
    if chosen is not None:
        have.add((chosen.config.access, chosen.config.iterative_scan))
    return [(a, m) for a in ARMS for m in MODES if (a, m) in have]


def fig_recall_by_bucket(
    results: Results, recall_target: float = 0.95, chosen: Candidate | None = None
) -> Figure | None:
    """A panel per (access arm, iterative mode) measured; lines: column type (colour) × index (style) at
    its strongest setting, with the band of its cells' 95 % intervals; the rule's choice in black."""
    strongest = strongest_setting(results)
    panels = recall_panels(results, chosen)
    if not panels:
        return None
    cols = min(3, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = figure(nrows, cols, (4.2 * cols, 3.0 * nrows + 1.8))
    flat = [ax for row in axes for ax in row]
    plotted: list[float | None] = []
    for ax, (arm, mode) in zip(flat, panels, strict=False):
        series: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in results.rows:
            key = (r["column_type"], r["index"], json.dumps(r["build_params"], sort_keys=True))
            if r["access"] == arm and r["iterative_scan"] == mode and knob(r) == strongest[key]:
                series[(r["column_type"], r["index"])].append(r)
        for ct, index in sorted(series, key=lambda s: (column_order({s[0]}), INDEXES.index(s[1]))):
            plotted += recall_line(
                ax,
                worst_by_bucket(series[(ct, index)]),
                color=palette.column(ct),
                linestyle=palette.index_line(index),
                marker=palette.column_marker(ct),
                markersize=6 - 1.5 * column_order(set(COLUMN_BYTES)).index(ct) if ct in COLUMN_BYTES else 3,
                markerfacecolor="none",
                label=f"{ct} {index}",
            )
        if chosen is not None and (chosen.config.access, chosen.config.iterative_scan) == (arm, mode):
            mine = [r for r in results.rows if config_of(r) == chosen.config]
            plotted += recall_line(
                ax,
                worst_by_bucket(mine),
                color=palette.CHOSEN,
                linewidth=2.4,
                zorder=4,
                band=True,
                label="the decision",
            )
        target_line(ax, recall_target)
        ax.set_title(f"{arm} · iterative {mode}")
        ax.set_xlabel("workspace-size bucket")
        ax.set_ylabel("recall@10 (worst scope)")
    limits = recall_limits(recall_target, plotted)
    for ax in flat:
        ax.set_ylim(*limits)
    drop_empty(fig, flat)
    fig.suptitle(
        "Recall@10 by workspace size, per access arm and iterative scan (screening, largest ef_search/probes;"
        f"\nthe decision as its {chosen.stage if chosen is not None else 'screening'} stage measured it,"
        " band: its 95 % intervals)"
    )
    bottom = figure_legend(fig, fig.axes)
    return finish(fig, decision_caption(results, chosen), bottom, top=0.96)


def fastest_reaching(results: Results, recall_target: float) -> dict[tuple, float]:
    """(column type, access, bucket) -> lowest p95 of any configuration reaching the target there."""
    worst: dict[tuple, dict[str, float]] = {}
    for r in results.rows:
        latency = p95(r)
        if r["recall_mean"] is None or latency is None:
            continue
        key = (config_of(r), r["bucket"])
        cell = worst.setdefault(key, {"recall": 1.0, "p95": 0.0})
        cell["recall"] = min(cell["recall"], r["recall_mean"])  # scopes combined by the worst
        cell["p95"] = max(cell["p95"], latency)
    best: dict[tuple, float] = {}
    for (config, bucket), cell in worst.items():
        if cell["recall"] >= recall_target:
            key = (config.column_type, config.access, bucket)
            best[key] = min(best.get(key, float("inf")), cell["p95"])
    return best


def fig_rls_overhead(
    results: Results, recall_target: float = 0.95, chosen: Candidate | None = None
) -> Figure | None:
    """At equal recall: the fastest RLS configuration reaching the target ÷ the fastest service one."""
    best = fastest_reaching(results, recall_target)
    arms = [a for a in ARMS if a != "service" and any(k[1] == a for k in best)]
    column_types = [
        ct
        for ct in column_order({k[0] for k in best})
        if any(best.get((ct, "service", b)) and best.get((ct, a, b)) for a in arms for b in BUCKETS)
    ]
    if not column_types:
        return None
    # one panel as wide as two: its title, axis label and the caption must fit (scale has one column type)
    fig, axes = figure(1, len(column_types), (4.6 * max(len(column_types), 2), 4.2))
    width = 0.8 / len(arms)
    for ax, ct in zip(axes[0], column_types, strict=True):
        for n, arm in enumerate(arms):
            xs, ys = [], []
            for b, bucket in enumerate(BUCKETS):
                base, value = best.get((ct, "service", bucket)), best.get((ct, arm, bucket))
                if base and value:
                    xs.append(b + (n - (len(arms) - 1) / 2) * width)
                    ys.append(value / base)
            if xs:
                ax.bar(xs, ys, width=width, label=arm, color=palette.arm(arm))
        ax.set_xticks(range(len(BUCKETS)), BUCKETS)
        ax.axhline(1.0, color="0.45", linewidth=0.8, gid=REFERENCE)
        ax.set_yscale("log")
        mark = " (the decision's)" if chosen is not None and chosen.config.column_type == ct else ""
        ax.set_title(f"RLS overhead at recall ≥ {recall_target:.2f}: {ct}{mark}")
        ax.set_xlabel("workspace-size bucket (no bar: the arm never reaches the target)")
        ax.set_ylabel("p95 ÷ service-role p95 (×, log)")
    bottom = figure_legend(fig, axes[0])
    return finish(fig, decision_caption(results, chosen), bottom)


def fig_storage(results: Results, chosen: Candidate | None = None) -> Figure | None:
    builds = sorted(
        (
            b
            for b in results.run.get("builds") or []
            if b.get("rows") and b.get("column_type") in COLUMN_BYTES
        ),
        key=lambda b: b["build_key"],
    )
    if not builds:
        return None
    fig, axes = figure(1, 2, (12, 1.4 + 0.34 * max(len(builds), 3)))
    ax, ax2 = axes[0]

    def decides(b: dict[str, Any]) -> bool:
        return chosen is not None and b["build_key"] == chosen.config.build_key

    labels = [b["build_key"] + (" (the decision)" if decides(b) else "") for b in builds]
    column = [COLUMN_BYTES[b["column_type"]] / 1e3 for b in builds]  # bytes/row × 1e6 rows → GB = B/1e3
    index = [(b.get("index_bytes") or 0) / b["rows"] / 1e3 for b in builds]
    colors = [palette.column(b["column_type"]) for b in builds]
    ax.barh(labels, column, color=colors, alpha=0.45, label="vector column (4·d+8 or 2·d+8 B/row)")
    ax.barh(labels, index, left=column, color=colors, label="index (measured)")
    ax.set_xlabel("GB (10⁹ B) per million chunks")
    ax.set_title("Storage per million chunks (end state: one vector column)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    ax2.barh(labels, [b.get("seconds") or 0.0 for b in builds], color=colors)
    ax2.set_xlabel("index build time (s)")
    ax2.set_title(f"Index build time ({builds[0]['rows']:,} rows)")
    ax2.tick_params(labelleft=False)
    for tick, b in zip(ax.get_yticklabels(), builds, strict=True):  # the decision's build in bold
        if decides(b):
            tick.set_fontweight("bold")
    return finish(fig, results.caption)


def fig_qps(results: Results, chosen: Candidate | None = None) -> Figure | None:
    """Throughput against client connections; not drawn when the run measured a single client level (a
    curve needs two points)."""
    levels = {int(c) for r in results.rows for c, v in (r["qps"] or {}).items() if v is not None}
    if len(levels) < 2:
        return None
    panels = [
        a
        for a in ARMS
        if len({int(c) for r in results.rows if r["access"] == a for c, v in (r["qps"] or {}).items() if v})
        > 1  # an arm measured at one client level has no curve: its panel would be a column of dots
    ]
    fig, axes = figure(1, len(panels), (4.4 * len(panels), 4.4))
    for ax, arm in zip(axes[0], panels, strict=True):
        curves: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        mine: dict[int, list[float]] = defaultdict(list)
        for r in results.rows:
            if r["access"] != arm:
                continue
            for clients, value in (r["qps"] or {}).items():
                if value is not None:  # null: not measured at that concurrency (not zero)
                    curves[(r["column_type"], r["index"])][int(clients)].append(value)
                    if chosen is not None and config_of(r) == chosen.config:
                        mine[int(clients)].append(value)
        for ct, index in sorted(curves, key=lambda s: (column_order({s[0]}), INDEXES.index(s[1]))):
            xs = sorted(curves[(ct, index)])
            ax.plot(
                xs,
                [median(curves[(ct, index)][x]) for x in xs],
                palette.index_line(index),
                color=palette.column(ct),
                marker="o",
                markersize=3,
                label=f"{ct} {index}",
            )
        if mine:
            xs = sorted(mine)
            ax.plot(
                xs,
                [median(mine[x]) for x in xs],
                color=palette.CHOSEN,
                linewidth=2.4,
                marker="*",
                label="the decision",
            )
        ax.set_title(f"{arm}: throughput vs client connections")
        ax.set_xlabel("client connections")
        ax.set_ylabel("queries per second (median over cells)")
    bottom = figure_legend(fig, axes[0])
    return finish(fig, decision_caption(results, chosen), bottom)


def ndcg_by_column(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """column type -> bucket -> each cell's mean nDCG@10, every column type's over the same queries:
    the first n of the cell (stage, design, arm, scope, bucket), n the fewest any column type answered
    there. The race stops cells at different counts (halfvec1536's exact after 5 queries, vector1536's
    after 20), and means over different queries had put a 0.06 gap between a column and its half-precision
    copy that the same queries do not show."""
    cells: dict[tuple, dict[str, list[float | None]]] = defaultdict(dict)
    unpaired: set[tuple] = set()  # cells where some row has only its mean: each column's whole cell counts
    for r in rows:
        key = (r["stage"], r.get("design"), r["access"], r["scope"], r["bucket"])
        scores = (r.get("per_query") or {}).get("ndcg10")
        if not scores:
            scores = [r.get("ndcg10")]
            unpaired.add(key)
        cells[key][r["column_type"]] = scores
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for key, by_column in cells.items():
        n = None if key in unpaired else min(len(v) for v in by_column.values())
        for column, scores in by_column.items():
            found = [s for s in scores[:n] if s is not None]
            if found:
                values[column][key[-1]].append(sum(found) / len(found))
    return values


def fig_ndcg(results: Results, chosen: Candidate | None = None) -> Figure | None:
    # Exact search isolates the embedding's quality from the index's recall; fall back to any index.
    exact = [r for r in results.rows if r["index"] == "exact" and r.get("ndcg10") is not None]
    values = ndcg_by_column(exact or [r for r in results.rows if r.get("ndcg10") is not None])
    if not values:
        return None
    fig, axes = figure(1, 1, (8.4, 3.8))
    ax = axes[0][0]
    markers = "osD^v"
    names = column_order(set(values))
    for n, label in enumerate(names):
        # Nudge each line sideways a little: equal values must not hide a line under another.
        offset = (n - (len(names) - 1) / 2) * 0.06
        xs = [b for b in BUCKETS if b in values[label]]
        ax.plot(
            [BUCKETS.index(b) + offset for b in xs],
            [median(values[label][b]) for b in xs],
            marker=markers[n % len(markers)],
            markerfacecolor="none" if n % 2 else palette.column(label),
            color=palette.column(label),
            label=label
            + (" (the decision's)" if chosen is not None and chosen.config.column_type == label else ""),
        )
    ax.set_xticks(range(len(BUCKETS)), BUCKETS)
    ax.set_title(f"Relevance: nDCG@10 per dimension ({'exact search' if exact else 'all indexes'})")
    ax.set_xlabel("workspace-size bucket")
    ax.set_ylabel("nDCG@10 (median over cells, same\nqueries per cell; synthetic labels)")
    legend(ax)
    return finish(fig, results.caption)


FIGURES: dict[str, Callable[..., Figure | None]] = {
    "pareto": fig_pareto,
    "recall_by_bucket": fig_recall_by_bucket,
    "rls_overhead": fig_rls_overhead,
    "storage_build": fig_storage,
    "qps": fig_qps,
    "ndcg": fig_ndcg,
}
RECALL_FIGURES = ("pareto", "recall_by_bucket", "rls_overhead")  # those that take the rule's target


def make(
    name: str, results: Results, recall_target: float = 0.95, chosen: Candidate | None = None
) -> Figure | None:
    """One of FIGURES by name, as the report draws it (the notebooks call this too)."""
    fn = FIGURES[name]
    with style():
        if name in RECALL_FIGURES:
            return fn(results, recall_target, chosen)
        return fn(results, chosen)


def render_all(
    results: Results, out: Path, recall_target: float = 0.95, chosen: Candidate | None = None
) -> list[Path]:
    written: list[Path] = []
    for name in FIGURES:
        fig = make(name, results, recall_target, chosen)
        if fig is not None:
            written += save(fig, out, name)
    return written
