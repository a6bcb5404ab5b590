"""The live stage's figures (report/live_plots.py): drawn from what live.json holds, nothing without it."""

from __future__ import annotations

from dimbench.report import live_plots


def phase(offered: float | None, p95: float, recall: float) -> dict:
    out = {
        "searches": {"p95_ms": p95, "p95_interval_ms": [p95 * 0.9, p95 * 1.2], "n": 80},
        "recall": {"recall": recall, "interval": [recall - 0.02, min(1.0, recall + 0.01)], "n": 20},
    }
    if offered is not None:
        out["ingest"] = {"offered_chunks_per_s": offered, "chunks_per_s": offered * 0.99}
    return out


LIVE = {
    "build": "halfvec1536·hnsw(m=16,ef_construction=64)",
    "access": "rls",
    "settings": {"search_rate": 40, "p95_bound": 1.5},
    "designs": {
        "shared": {
            "search": {
                "idle": phase(None, 5.0, 0.99),
                "ingest": phase(100, 6.0, 0.98),
                "rates": [phase(400, 9.0, 0.97)],
            },
            "ingest_max": [
                {"target": t, "writers": w, "chunks_per_s": 300.0 * w}
                for t in live_plots.TARGETS
                for w in (1, 2, 4)
            ],
        },
        "routed": {
            "search": {"idle": phase(None, 4.0, 0.99), "ingest": phase(100, 4.5, 0.99)},
            "ingest_max": [{"target": "one workspace", "writers": 1, "chunks_per_s": 250.0}],
        },
    },
}


def test_the_rate_points_run_from_idle_to_the_highest_rate_offered():
    points = live_plots.rate_points(LIVE["designs"]["shared"])
    assert [p["offered"] for p in points] == [0.0, 100.0, 400.0]
    assert [p["p95"] for p in points] == [5.0, 6.0, 9.0]


def test_both_live_figures_are_drawn_from_a_live_stage(tmp_path):
    written = live_plots.render(LIVE, tmp_path)
    assert sorted(p.name for p in written) == [
        "live_ingest.png",
        "live_ingest.svg",
        "live_rates.png",
        "live_rates.svg",
    ]
    assert all(p.stat().st_size > 1000 for p in written)


def test_no_live_stage_draws_no_figure(tmp_path):
    assert live_plots.render(None, tmp_path) == []
    assert (
        live_plots.render({"designs": {"shared": {"search": {"idle": phase(None, 5.0, 0.99)}}}}, tmp_path)
        == []
    )
