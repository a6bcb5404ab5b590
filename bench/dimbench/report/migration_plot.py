"""The migration as a timeline: p95 per one-second bin of each traffic stream against seconds since
traffic began, the phases (each migration file, the backfill, the concurrent index) shaded and named,
the 1 s line above which a request counts as blocked. From live.json's `migration`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STREAM_STYLE = {"legacy_search": "-", "search": "-", "legacy_ingest": ":", "ingest": ":"}


def render(live: dict[str, Any], out: Path) -> list[Path]:
    """plots/migration.{png,svg} when the live stage measured the migration; nothing otherwise."""
    from dimbench.report.plots import figure, finish, legend, save, style

    m = live.get("migration") or {}
    timeline = m.get("timeline") or {}
    streams = timeline.get("streams") or {}
    if not streams:
        return []
    bin_s = float(timeline.get("bin_s") or 1.0)
    with style():
        fig, axes = figure(1, 1, (9.0, 4.4))
        ax = axes[0][0]
        for name, s in sorted(streams.items()):
            xs = [(i + 0.5) * bin_s for i, v in enumerate(s.get("p95_ms") or []) if v is not None]
            ys = [v for v in s.get("p95_ms") or [] if v is not None]
            if ys:
                ax.plot(xs, ys, STREAM_STYLE.get(name, "-."), marker=".", linewidth=1.2, label=f"{name} p95")
        ax.set_yscale("log")
        ax.axhline(1000, color="0.3", linewidth=0.8, linestyle="--", label="blocked (1 s)")
        for i, p in enumerate(m.get("phases") or []):
            start, end = p.get("start_s"), p.get("window_end_s", p.get("end_s"))
            if start is None or end is None:
                continue
            ax.axvspan(start, end, color="0.85" if i % 2 else "0.93", linewidth=0, zorder=0)
            label = str(p.get("phase", "")).split("_")[0]
            ax.annotate(
                label,
                (start, 1),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=7,
                va="top",
                ha="left",
                color="0.35",
            )
        ax.set_xlabel("seconds since traffic began (phases shaded; a request is placed where it started)")
        ax.set_ylabel("p95 latency per second (ms, log)")
        legend(ax)
        finish(fig, "the migration under traffic · live.json migration · open loop, every request counted")
    return save(fig, out, "migration")
