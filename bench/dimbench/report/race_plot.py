"""The race as a figure: configurations still in it against the screening queries spent, by design and
arm (one line each), from the snapshots screening recorded after every judged round."""

from __future__ import annotations

from pathlib import Path

from dimbench.evidence.results import Results

ARM_LINE = {"rls": "-", "rls_filter": "--", "service": ":", "rls_seed": (0, (5, 1, 1, 1)), "rls_docs": "-."}


def render(results: Results, out: Path) -> list[Path]:
    """plots/race.{png,svg} when the run raced (rounds ≥ 2); nothing otherwise."""
    from matplotlib.ticker import MaxNLocator

    from dimbench.report import palette
    from dimbench.report.plots import figure, finish, legend, save, style

    race = results.run.get("race") or {}
    snapshots = race.get("alive") or []
    if int(race.get("rounds") or 1) < 2 or not snapshots:
        return []
    groups = sorted({g for s in snapshots for g in s["alive"]})
    with style():
        fig, axes = figure(1, 1, (8.5, 4.2))
        ax = axes[0][0]
        for group in groups:
            xs = [s["queries"] for s in snapshots]
            ys = [s["alive"].get(group, 0) for s in snapshots]
            design, _, arm = group.partition("/")  # "design/arm": the design's colour, the arm's line
            ax.step(
                xs,
                ys,
                where="post",
                label=group,
                linewidth=1.4,
                color=palette.design(design),
                linestyle=ARM_LINE.get(arm, "-."),
            )
        ax.set_xlabel("screening queries spent so far")
        ax.set_ylabel("configurations still in the race")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count: no 0.25 of a configuration
        legend(ax)
        finish(fig, f"{results.caption} · dropped only on an interval that excludes them (evidence/race.py)")
    return save(fig, out, "race")
