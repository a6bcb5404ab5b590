"""The live stage as figures, from live.json: search p95 and recall@10 against the ingest rate offered
(idle at 0, then the platform's rate and its multiples) per design, and maximum ingest per design and
writer count, into one workspace and into many. Nothing when the run had no live stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dimbench.report import palette

TARGETS = ("one workspace", "many workspaces")


def rate_points(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """(offered chunks/s, p95 and its interval, recall and its interval) per search phase, idle first."""
    search = entry.get("search") or {}
    phases = []
    if search.get("idle"):
        phases.append((0.0, search["idle"]))
    for phase in [search.get("ingest"), *(search.get("rates") or [])]:
        if phase:
            phases.append((float((phase.get("ingest") or {}).get("offered_chunks_per_s") or 0.0), phase))
    out = []
    for offered, phase in sorted(phases, key=lambda p: p[0]):
        s, r = phase.get("searches") or {}, phase.get("recall") or {}
        out.append(
            {
                "offered": offered,
                "p95": s.get("p95_ms"),
                "p95_interval": s.get("p95_interval_ms"),
                "recall": r.get("recall"),
                "recall_interval": r.get("interval"),
            }
        )
    return out


def _errorbar(ax: Any, xs: list[float], ys: list[Any], intervals: list[Any], **kwargs: Any) -> None:
    keep = [(x, y, i) for x, y, i in zip(xs, ys, intervals, strict=True) if y is not None]
    if not keep:
        return
    lows = [y - i[0] if i else 0.0 for _, y, i in keep]
    highs = [i[1] - y if i else 0.0 for _, y, i in keep]
    ax.errorbar(
        [x for x, _, _ in keep], [y for _, y, _ in keep], yerr=[lows, highs], capsize=3, marker="o", **kwargs
    )


def fig_rates(live: dict[str, Any]) -> Any:
    from dimbench.report.plots import figure, finish, legend

    designs = {name: rate_points(e) for name, e in (live.get("designs") or {}).items()}
    if not any(len(points) > 1 for points in designs.values()):
        return None
    settings = live.get("settings") or {}
    fig, axes = figure(1, 2, (11.0, 4.2))
    p95_ax, recall_ax = axes[0]
    for name, points in designs.items():
        xs = [p["offered"] for p in points]
        color = palette.design(name)
        for ax, key in ((p95_ax, "p95"), (recall_ax, "recall")):
            _errorbar(
                ax,
                xs,
                [p[key] for p in points],
                [p[f"{key}_interval"] for p in points],
                color=color,
                label=name,
            )
    p95_ax.set_xlabel("ingest offered (chunks/s; 0 = idle)")
    p95_ax.set_ylabel(f"search p95 (ms; {settings.get('search_rate', '—')}/s offered, open loop)")
    recall_ax.set_xlabel("ingest offered (chunks/s; 0 = idle)")
    recall_ax.set_ylabel("recall@10 (probe, its own truth)")
    legend(p95_ax)
    return finish(
        fig,
        f"live stage · {live.get('build', '—')} · {live.get('access', '—')} · intervals: 95 % bootstrap · "
        f"p95 bound {settings.get('p95_bound', '—')}× idle",
    )


def fig_ingest(live: dict[str, Any]) -> Any:
    from dimbench.report.plots import figure, finish, legend

    designs = {name: e.get("ingest_max") or [] for name, e in (live.get("designs") or {}).items()}
    if not any(designs.values()):
        return None
    fig, axes = figure(1, 2, (11.0, 4.2))
    width = 0.8 / max(len(designs), 1)
    for ax, target in zip(axes[0], TARGETS, strict=True):
        writers = sorted(
            {r.get("writers") for runs in designs.values() for r in runs if r.get("target") == target}
        )
        for j, (name, runs) in enumerate(designs.items()):
            by = {r.get("writers"): r.get("chunks_per_s") for r in runs if r.get("target") == target}
            xs = [i + j * width for i, w in enumerate(writers) if by.get(w) is not None]
            ys = [by[w] for w in writers if by.get(w) is not None]
            ax.bar(xs, ys, width, color=palette.design(name), label=name)
        ax.set_xticks([i + width * (len(designs) - 1) / 2 for i in range(len(writers))])
        ax.set_xticklabels([f"{w} writer{'s' if w != 1 else ''}" for w in writers])
        ax.set_title(f"into {target}")
        ax.set_ylabel("chunks/s (closed loop, as fast as they go)")
    legend(axes[0][0])
    return finish(fig, f"live stage · maximum ingest · {live.get('build', '—')} · {live.get('access', '—')}")


def render(live: dict[str, Any] | None, out: Path) -> list[Path]:
    """plots/live_rates.{png,svg} and plots/live_ingest.{png,svg} from live.json (what was measured)."""
    from dimbench.report.plots import save, style

    if not live:
        return []
    written: list[Path] = []
    with style():
        for name, draw in (("live_rates", fig_rates), ("live_ingest", fig_ingest)):
            fig = draw(live)
            if fig is not None:
                written += save(fig, out, name)
    return written
