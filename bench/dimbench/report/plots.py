"""The report's plots (PNG + SVG), each with title, units, legend and the run's caption."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dimbench.report.decide import RLS_ARMS
from dimbench.report.load import Results

BUCKETS = ("tiny", "small", "medium", "large")
ARMS = ("service", "rls_seed", "rls", "rls_filter")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "dimbench", "figure.dpi": 100, "font.size": 9})
    return plt


def save(fig: Any, directory: Path, name: str, caption: str) -> list[Path]:
    fig.text(0.01, 0.005, caption, fontsize=7, color="0.35", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.png", directory / f"{name}.svg"]
    fig.savefig(paths[0], metadata={"Software": None})
    fig.savefig(paths[1], metadata={"Date": None})
    _pyplot().close(fig)
    return paths


def config_points(results: Results) -> dict[tuple, dict[str, float]]:
    """Per (column type, index, build, query, iterative, access): worst-bucket recall and worst p95."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results.rows:
        if r["recall_mean"] is None or not r["latency_ms"] or r["latency_ms"].get("p95") is None:
            continue
        key = (
            r["column_type"],
            r["index"],
            json.dumps(r["build_params"], sort_keys=True),
            json.dumps(r["query_params"], sort_keys=True),
            r["iterative_scan"],
            r["access"],
        )
        groups[key].append(r)
    return {
        k: {"recall": min(r["recall_mean"] for r in v), "p95": max(r["latency_ms"]["p95"] for r in v)}
        for k, v in groups.items()
    }


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both recall (higher) and latency (lower), by recall."""
    front = []
    for recall, p95 in sorted(points, key=lambda p: (-p[0], p[1])):
        if not front or p95 < front[-1][1]:
            front.append((recall, p95))
    return sorted(front)


def plot_pareto(results: Results, out: Path) -> list[Path]:
    plt = _pyplot()
    points = config_points(results)
    column_types = sorted({k[0] for k in points})
    fig, axes = plt.subplots(1, len(column_types), figsize=(4.2 * len(column_types), 3.8), squeeze=False)
    for ax, ct in zip(axes[0], column_types, strict=True):
        for index in ("exact", "ivfflat", "hnsw"):
            for rls, style in ((False, "-"), (True, "--")):
                pts = [
                    (v["recall"], v["p95"])
                    for k, v in points.items()
                    if k[0] == ct and k[1] == index and (k[5] in RLS_ARMS) == rls
                ]
                if pts:
                    front = pareto(pts)
                    ax.plot(
                        [p[0] for p in front],
                        [p[1] for p in front],
                        style,
                        marker="o",
                        markersize=3,
                        label=f"{index} {'RLS' if rls else 'service'}",
                    )
        ax.set_yscale("log")
        ax.set_xlabel("worst-bucket recall@10")
        ax.set_ylabel("worst-bucket p95 latency (ms)")
        ax.set_title(f"Recall–latency Pareto front: {ct}")
        ax.axvline(0.95, color="0.6", linewidth=0.8)
        ax.legend(fontsize=7)
    return save(fig, out, "pareto", results.caption)


def plot_recall_by_bucket(results: Results, out: Path) -> list[Path]:
    """hnsw at its first ef_search (and ivfflat at its first probes): recall per bucket, arm and mode."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(ARMS), figsize=(16, 3.8), squeeze=False, sharey=True)
    first_query: dict[str, str] = {}
    for r in results.rows:
        first_query.setdefault(r["index"], json.dumps(r["query_params"], sort_keys=True))
    for ax, arm in zip(axes[0], ARMS, strict=True):
        series: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in results.rows:
            if (
                r["access"] == arm
                and r["index"] in ("hnsw", "ivfflat")
                and r["scope"] == "all"
                and json.dumps(r["query_params"], sort_keys=True) == first_query[r["index"]]
                and r["recall_mean"] is not None
            ):
                series[f"{r['column_type']} {r['index']} {r['iterative_scan']}"][r["bucket"]].append(
                    r["recall_mean"]
                )
        for label in sorted(series):
            xs = [b for b in BUCKETS if b in series[label]]
            ax.plot(xs, [min(series[label][b]) for b in xs], marker="o", markersize=3, label=label)
        ax.set_title(f"{arm}: recall@10 by workspace size")
        ax.set_xlabel("workspace-size bucket (share of rows the user may see)")
        ax.set_ylabel("recall@10")
        ax.axhline(0.95, color="0.6", linewidth=0.8)
        ax.legend(fontsize=5)
    return save(fig, out, "recall_by_bucket", results.caption)


def plot_rls_overhead(results: Results, out: Path) -> list[Path]:
    """p95 under each RLS arm ÷ p95 of the service arm, same build, query setting, scope and bucket."""
    plt = _pyplot()
    service = {}
    for r in results.rows:
        if r["access"] == "service" and r["latency_ms"] and r["latency_ms"].get("p95"):
            service[
                (
                    r.get("build_key"),
                    json.dumps(r["query_params"]),
                    r["iterative_scan"],
                    r["scope"],
                    r["bucket"],
                )
            ] = r["latency_ms"]["p95"]
    ratios: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results.rows:
        key = (
            r.get("build_key"),
            json.dumps(r["query_params"]),
            r["iterative_scan"],
            r["scope"],
            r["bucket"],
        )
        if r["access"] in RLS_ARMS and key in service and r["latency_ms"] and r["latency_ms"].get("p95"):
            ratios[f"{r['access']} {r['column_type']}"][r["bucket"]].append(
                r["latency_ms"]["p95"] / service[key]
            )
    fig, ax = plt.subplots(figsize=(8, 4))
    for label in sorted(ratios):
        xs = [b for b in BUCKETS if b in ratios[label]]
        ax.plot(
            xs, [sorted(ratios[label][b])[len(ratios[label][b]) // 2] for b in xs], marker="o", label=label
        )
    ax.axhline(1.0, color="0.6", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_title("RLS overhead: p95 latency ÷ service-role p95 (median over settings)")
    ax.set_xlabel("workspace-size bucket")
    ax.set_ylabel("latency ratio (×)")
    ax.legend(fontsize=6, ncol=2)
    return save(fig, out, "rls_overhead", results.caption)


def plot_storage(results: Results, out: Path) -> list[Path]:
    plt = _pyplot()
    builds = sorted((b for b in results.run.get("builds", []) if b.get("rows")), key=lambda b: b["build_key"])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [b["build_key"] for b in builds]
    table = [b["table_bytes"] / b["rows"] * 1e6 / 1e9 for b in builds]
    index = [b["index_bytes"] / b["rows"] * 1e6 / 1e9 for b in builds]
    ax.barh(labels, table, label="table (incl. TOAST)")
    ax.barh(labels, index, left=table, label="index")
    ax.set_xlabel("GB per million chunks")
    ax.set_title("Storage per million chunks")
    ax.legend(fontsize=7)
    ax2.barh(labels, [b["seconds"] for b in builds])
    ax2.set_xlabel("index build time (s)")
    ax2.set_title("Index build time")
    return save(fig, out, "storage_build", results.caption)


def plot_qps(results: Results, out: Path) -> list[Path]:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    curves: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results.rows:
        measured = {int(c): v for c, v in (r["qps"] or {}).items() if v is not None}
        if len(measured) > 1:
            for clients, value in measured.items():
                curves[f"{r['column_type']} {r['index']} {r['access']}"][clients].append(value)
    for label in sorted(curves):
        xs = sorted(curves[label])
        ax.plot(xs, [sum(curves[label][x]) / len(curves[label][x]) for x in xs], marker="o", label=label)
    ax.set_title("Throughput vs client connections (mean over buckets)")
    ax.set_xlabel("client connections")
    ax.set_ylabel("queries per second")
    ax.legend(fontsize=6, ncol=2)
    return save(fig, out, "qps", results.caption)


def plot_ndcg(results: Results, out: Path) -> list[Path]:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results.rows:
        if r["index"] == "exact" and r["access"] == "service" and r.get("ndcg10") is not None:
            values[r["column_type"]][r["bucket"]].append(r["ndcg10"])
    for label in sorted(values):
        xs = [b for b in BUCKETS if b in values[label]]
        ax.plot(xs, [sum(values[label][b]) / len(values[label][b]) for b in xs], marker="o", label=label)
    ax.set_title("Relevance: nDCG@10 of exact search per dimension")
    ax.set_xlabel("workspace-size bucket")
    ax.set_ylabel("nDCG@10 (synthetic labels)")
    ax.legend(fontsize=7)
    return save(fig, out, "ndcg", results.caption)


PLOTS: tuple[Callable[[Results, Path], list[Path]], ...] = (
    plot_pareto,
    plot_recall_by_bucket,
    plot_rls_overhead,
    plot_storage,
    plot_qps,
    plot_ndcg,
)


def render_all(results: Results, out: Path) -> list[Path]:
    written: list[Path] = []
    for plot in PLOTS:
        written += plot(results, out)
    return written
