"""The report's plots (PNG + SVG), each with title, units, legend and the run's caption.

Figures are built with matplotlib's object API on the Agg canvas, never through pyplot, so rendering
changes no global backend or style (the notebooks draw the same figures inline). Same input → same
bytes: fixed svg.hashsalt, no dates or software version in the file metadata, stable orders.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dimbench.evidence.results import Results
from dimbench.evidence.rule import BUCKETS, CHOOSABLE, COLUMN_BYTES, config_of, p95

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ARMS = ("service", "rls_seed", "rls", "rls_filter")
INDEXES = ("exact", "ivfflat", "hnsw")
MODES = ("off", "relaxed_order", "strict_order")
RC = {"svg.hashsalt": "dimbench", "figure.dpi": 100, "font.size": 8, "legend.fontsize": 6}
QUERY_KNOB = {"hnsw": "ef_search", "ivfflat": "probes"}


def column_order(names: set[str]) -> list[str]:
    """768 first, then 1536 at full and half precision; anything unknown last, by name."""
    known = list(COLUMN_BYTES)
    return sorted(names, key=lambda n: (known.index(n) if n in known else len(known), n)) or ["(none)"]


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


def finish(fig: Figure, caption: str) -> Figure:
    fig.text(0.01, 0.005, caption, fontsize=6, color="0.35", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
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
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)
    else:
        ax.text(0.5, 0.5, "not measured in this run", ha="center", va="center", transform=ax.transAxes)


# --- data shaping -----------------------------------------------------------------------------------


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


# --- figures ------------------------------------------------------------------------------------------


def fig_pareto(results: Results, recall_target: float = 0.95) -> Figure:
    points = config_points(results)
    column_types = column_order({k.column_type for k in points})
    fig, axes = figure(1, len(column_types), (4.2 * len(column_types), 3.8))
    groups = (("service", ("service",), "-"), ("RLS", CHOOSABLE, "--"), ("seed RLS", ("rls_seed",), ":"))
    for ax, ct in zip(axes[0], column_types, strict=True):
        for index in INDEXES:
            for name, arms, line in groups:
                pts = [
                    (v["recall"], v["p95"])
                    for k, v in points.items()
                    if k.column_type == ct and k.index == index and k.access in arms
                ]
                if pts:
                    front = pareto(pts)
                    ax.plot(
                        [p[0] for p in front],
                        [p[1] for p in front],
                        line,
                        marker="o",
                        markersize=3,
                        label=f"{index} · {name}",
                    )
        ax.set_yscale("log")
        ax.set_xlabel("worst-cell recall@10 (over buckets and scopes)")
        ax.set_ylabel("worst-cell p95 latency (ms, log)")
        ax.set_title(f"Recall–latency Pareto front: {ct}")
        ax.axvline(recall_target, color="0.6", linewidth=0.8)
        legend(ax, ncol=1)
    return finish(fig, results.caption)


def fig_recall_by_bucket(results: Results, recall_target: float = 0.95) -> Figure:
    """Rows: access arms; columns: iterative mode; lines: column type × index at its strongest setting."""
    strongest = strongest_setting(results)
    fig, axes = figure(len(ARMS), len(MODES), (12, 11))
    for i, arm in enumerate(ARMS):
        for j, mode in enumerate(MODES):
            ax = axes[i][j]
            series: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
            for r in results.rows:
                key = (r["column_type"], r["index"], json.dumps(r["build_params"], sort_keys=True))
                if (
                    r["access"] == arm
                    and r["iterative_scan"] == mode
                    and r["recall_mean"] is not None
                    and knob(r) == strongest[key]
                ):
                    series[f"{r['column_type']} {r['index']}"][r["bucket"]].append(r["recall_mean"])
            for label in sorted(series):
                xs = [b for b in BUCKETS if b in series[label]]
                ax.plot(xs, [min(series[label][b]) for b in xs], marker="o", markersize=3, label=label)
            ax.set_ylim(-0.02, 1.02)
            ax.axhline(recall_target, color="0.6", linewidth=0.8)
            ax.set_title(f"{arm} · iterative {mode}")
            ax.set_xlabel("workspace-size bucket")
            ax.set_ylabel("recall@10 (worst scope)")
            legend(ax, loc="lower right")
    fig.suptitle("Recall@10 by workspace size, per access arm and iterative scan (largest ef_search/probes)")
    return finish(fig, results.caption)


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


def fig_rls_overhead(results: Results, recall_target: float = 0.95) -> Figure:
    """At equal recall: the fastest RLS configuration reaching the target ÷ the fastest service one."""
    best = fastest_reaching(results, recall_target)
    column_types = column_order({k[0] for k in best})
    fig, axes = figure(1, len(column_types), (4.2 * len(column_types), 3.6))
    arms = [a for a in ARMS if a != "service"]
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
                ax.bar(xs, ys, width=width, label=arm)
        ax.set_xticks(range(len(BUCKETS)), BUCKETS)
        ax.axhline(1.0, color="0.6", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_title(f"RLS overhead at recall ≥ {recall_target:.2f}: {ct}")
        ax.set_xlabel("workspace-size bucket (no bar: the arm never reaches the target)")
        ax.set_ylabel("p95 ÷ service-role p95 (×, log)")
        legend(ax)
    return finish(fig, results.caption)


def fig_storage(results: Results) -> Figure:
    builds = sorted(
        (
            b
            for b in results.run.get("builds") or []
            if b.get("rows") and b.get("column_type") in COLUMN_BYTES
        ),
        key=lambda b: b["build_key"],
    )
    fig, axes = figure(1, 2, (11, 0.9 + 0.32 * max(len(builds), 3)))
    ax, ax2 = axes[0]
    labels = [b["build_key"] for b in builds]
    column = [COLUMN_BYTES[b["column_type"]] / 1e3 for b in builds]  # bytes/row × 1e6 rows → GB = B/1e3
    index = [(b.get("index_bytes") or 0) / b["rows"] / 1e3 for b in builds]
    ax.barh(labels, column, label="vector column (4·d+8 or 2·d+8 B/row)")
    ax.barh(labels, index, left=column, label="index (measured)")
    ax.set_xlabel("GB per million chunks")
    ax.set_title("Storage per million chunks (end state: one vector column)")
    legend(ax)
    ax2.barh(labels, [b.get("seconds") or 0.0 for b in builds])
    ax2.set_xlabel("index build time (s)")
    ax2.set_title(f"Index build time ({builds[0]['rows']:,} rows)" if builds else "Index build time")
    ax2.tick_params(labelleft=False)
    return finish(fig, results.caption)


def fig_qps(results: Results) -> Figure:
    fig, axes = figure(1, len(ARMS), (16, 3.8))
    for ax, arm in zip(axes[0], ARMS, strict=True):
        curves: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in results.rows:
            if r["access"] != arm:
                continue
            for clients, value in (r["qps"] or {}).items():
                if value is not None:  # null: not measured at that concurrency (not zero)
                    curves[f"{r['column_type']} {r['index']}"][int(clients)].append(value)
        for label in sorted(curves):
            xs = sorted(curves[label])
            ax.plot(xs, [median(curves[label][x]) for x in xs], marker="o", markersize=3, label=label)
        ax.set_title(f"{arm}: throughput vs client connections")
        ax.set_xlabel("client connections")
        ax.set_ylabel("queries per second (median over cells)")
        legend(ax)
    return finish(fig, results.caption)


def fig_ndcg(results: Results) -> Figure:
    fig, axes = figure(1, 1, (7, 3.8))
    ax = axes[0][0]
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    # Exact search isolates the embedding's quality from the index's recall; fall back to any index.
    exact = [r for r in results.rows if r["index"] == "exact" and r.get("ndcg10") is not None]
    for r in exact or [r for r in results.rows if r.get("ndcg10") is not None]:
        values[r["column_type"]][r["bucket"]].append(r["ndcg10"])
    for label in sorted(values):
        xs = [b for b in BUCKETS if b in values[label]]
        ax.plot(xs, [median(values[label][b]) for b in xs], marker="o", label=label)
    ax.set_title(f"Relevance: nDCG@10 per dimension ({'exact search' if exact else 'all indexes'})")
    ax.set_xlabel("workspace-size bucket")
    ax.set_ylabel("nDCG@10 (synthetic relevance labels)")
    legend(ax)
    return finish(fig, results.caption)


FIGURES: dict[str, Callable[[Results], Figure]] = {
    "pareto": fig_pareto,
    "recall_by_bucket": fig_recall_by_bucket,
    "rls_overhead": fig_rls_overhead,
    "storage_build": fig_storage,
    "qps": fig_qps,
    "ndcg": fig_ndcg,
}


def render_all(results: Results, out: Path) -> list[Path]:
    written: list[Path] = []
    for name, make in FIGURES.items():
        with style():
            fig = make(results)
        written += save(fig, out, name)
    return written
