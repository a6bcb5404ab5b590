"""The race as a figure: configurations still in it against the screening queries spent, by design and
arm (one line each), from the snapshots screening recorded after every judged round."""

from __future__ import annotations

from pathlib import Path

from dimbench.evidence.results import Results


def render(results: Results, out: Path) -> list[Path]:
    """plots/race.{png,svg} when the run raced (rounds ≥ 2); nothing otherwise."""
    from dimbench.report.plots import figure, finish, save, style

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
            ax.step(xs, ys, where="post", label=group, linewidth=1.2)
        ax.set_xlabel("screening queries spent so far")
        ax.set_ylabel("configurations still in the race")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
        finish(fig, f"{results.caption} · dropped only on an interval that excludes them (evidence/race.py)")
    return save(fig, out, "race")
