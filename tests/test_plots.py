"""The report's figures show the decision: one colour per arm across figures, recall axes zoomed to the
region the rule reads, no empty panel, the rule's choice drawn. Rendered from the results fixture (no
database: the figures only read a results directory)."""

from __future__ import annotations

from matplotlib.colors import to_hex

from dimbench.evidence.results import Results, read_results
from dimbench.evidence.rule import decide
from dimbench.report import palette, plots
from tests.results_fixture import write_results


def grid(tmp_path) -> tuple[Results, object]:
    data = read_results(write_results(tmp_path / "results"))
    chosen = decide(data).chosen
    return plots.grid_results(data, chosen), chosen


def colour_of(fig, label: str) -> str:
    for ax in fig.axes:
        for artist in [*ax.lines, *ax.patches, *ax.containers]:
            if artist.get_label() == label:
                face = artist.patches[0].get_facecolor() if hasattr(artist, "patches") else None
                return to_hex(face if face is not None else artist.get_color())
    raise AssertionError(f"{label!r} not drawn")


def test_an_arm_has_the_same_colour_in_every_figure_that_draws_it(tmp_path):
    results, chosen = grid(tmp_path)
    overhead = plots.make("rls_overhead", results, 0.95, chosen)
    pareto = plots.make("pareto", results, 0.95, chosen)
    assert colour_of(overhead, "rls_seed") == palette.arm("rls_seed").lower()
    assert colour_of(pareto, "hnsw · seed RLS") == palette.arm("rls_seed").lower()


def test_a_recall_axis_starts_above_half_when_every_value_is_above_0_9():
    low, high = plots.recall_limits(0.95, [0.91, 0.97, 1.0])
    assert 0.5 < low <= 0.9
    assert high >= 1.0


def test_a_recall_axis_reaches_down_to_the_lowest_plotted_bound():
    low, _ = plots.recall_limits(0.95, [0.62, 0.99])
    assert low < 0.62


def test_no_figure_has_an_empty_panel(tmp_path):
    results, chosen = grid(tmp_path)
    for name in plots.FIGURES:
        fig = plots.make(name, results, 0.95, chosen)
        if fig is None:
            continue
        for ax in fig.axes:
            data = [line for line in ax.lines if line.get_gid() != plots.REFERENCE]
            assert data or ax.patches or ax.collections, f"{name}: empty panel {ax.get_title()!r}"


def test_the_recall_by_bucket_axis_is_zoomed_when_the_data_is_high(tmp_path):
    results, chosen = grid(tmp_path)
    fig = plots.make("recall_by_bucket", results, 0.95, chosen)
    lows = [v for ax in fig.axes for line in ax.lines for v in line.get_ydata() if line.get_marker() == "o"]
    if min(lows) > 0.9:
        assert all(ax.get_ylim()[0] > 0.5 for ax in fig.axes)
    assert all(ax.get_ylim()[0] >= min(lows) - 0.1 for ax in fig.axes)


def test_the_rules_choice_is_drawn_in_the_grid_figures(tmp_path):
    results, chosen = grid(tmp_path)
    assert chosen is not None
    for name in ("pareto", "recall_by_bucket"):
        fig = plots.make(name, results, 0.95, chosen)
        labels = {line.get_label() for ax in fig.axes for line in ax.lines}
        assert "the decision" in labels, name


def test_a_throughput_figure_is_not_drawn_from_a_single_client_level(tmp_path):
    results, chosen = grid(tmp_path)
    for r in results.rows:
        r["qps"] = {"1": (r["qps"] or {}).get("1")}
    assert plots.make("qps", results, 0.95, chosen) is None


def test_a_line_below_the_zoomed_recall_axis_is_marked_at_its_floor_with_its_value():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    ax.set_ylim(0.9, 1.005)
    plots.mark_below(ax, {"tiny": (0.84,), "small": (0.70,), "large": (0.99,)}, "#777777")
    marked = [line for line in ax.lines if line.get_marker() == "v"]
    assert [float(line.get_ydata()[0]) for line in marked] == [0.9, 0.9]
    assert sorted(t.get_text() for t in ax.texts) == ["0.70", "0.84"]


def test_pgvector_defaults_are_the_shared_hnsw_index_as_pgvector_leaves_it_under_rls():
    from dimbench.evidence.rule import Config

    def config(**changed: str) -> Config:
        fields = {
            "column_type": "halfvec1536",
            "index": "hnsw",
            "build_params": '{"ef_construction": 64, "m": 16}',
            "query_params": '{"ef_search": 40, "max_scan_tuples": 20000}',
            "iterative_scan": "off",
            "access": "rls",
            "design": "shared",
            "design_params": "{}",
        }
        return Config(**{**fields, **changed})

    assert plots.is_default(config())
    assert not plots.is_default(config(query_params='{"ef_search": 100, "max_scan_tuples": 20000}'))
    assert not plots.is_default(config(iterative_scan="relaxed_order"))
    assert not plots.is_default(config(access="service"))
    assert not plots.is_default(config(design="routed"))


def test_ndcg_compares_column_types_on_the_queries_every_one_answered():
    """A cell raced out after 5 queries is compared over those 5, not against another's 20."""

    def cell(column: str, scores: list[float]) -> dict:
        return {
            "stage": "screening",
            "design": "shared",
            "access": "rls",
            "scope": "all",
            "bucket": "small",
            "column_type": column,
            "per_query": {"ndcg10": scores},
        }

    values = plots.ndcg_by_column(
        [cell("vector1536", [0.5] * 5 + [1.0] * 15), cell("halfvec1536", [0.5] * 5)]
    )
    assert values["vector1536"]["small"] == values["halfvec1536"]["small"] == [0.5]


def test_the_storage_figure_names_the_decisions_build(tmp_path):
    results, chosen = grid(tmp_path)
    fig = plots.make("storage_build", results, 0.95, chosen)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert [label for label in labels if label.endswith("(the decision)")] == [
        f"{chosen.config.column_type}/{chosen.config.label.split(' · ')[1]} (the decision)"
    ]
