"""The record's options table and first-screen quality line, on hand-made rows: each option's exact
nDCG@10 per bucket from the run, ada-002 never given 3-small's index numbers, the chosen option's quality
beside the best option's."""

from __future__ import annotations

from pathlib import Path

from dimbench.evidence.results import Results
from dimbench.evidence.rule import decide
from dimbench.report.options_text import options_section, quality_line
from tests.test_report_rule import row

BUILDS = [
    {
        "build_key": f"{ct}/hnsw",
        "column_type": ct,
        "index": "hnsw",
        "rows": 1000,
        "index_bytes": 1000 * b,
        "table_bytes": 0,
        "seconds": s,
    }
    for ct, b, s in (("vector768", 400, 1.5), ("vector1536", 800, 3.0), ("halfvec1536", 400, 2.5))
]


def quality_row(column_type, bucket, exact, ndcg, *, scope="all", gap=(0.0, [-0.01, 0.01]), p95=1.0):
    """One cell with four queries' per-query quality: exact = option -> its four exact nDCG@10 values."""
    r = row(column_type, "rls", bucket, 0.99, p95, scope=scope)
    r["per_query"] = {"qid": [0, 1, 2, 3], "ndcg10": [ndcg] * 4}
    r["per_query"].update({f"exact_ndcg10_{o}": v for o, v in exact.items()})
    r.update(
        ndcg10=ndcg,
        ndcg10_ci95=[ndcg - 0.01, ndcg + 0.01],
        ndcg10_gap=gap[0],
        ndcg10_gap_ci95=gap[1],
        quality_reference="1536",
    )
    return r


EXACT = {"1536": [0.8] * 4, "768": [0.7] * 4, "ada": [0.75] * 4}


def results(rows) -> Results:
    run = {"run_id": None, "builds": BUILDS, "corpus": {"counts": {"chunks": 1000}}}
    return Results(Path("."), run, rows)


def cells(column_type, **kw):
    return [quality_row(column_type, b, EXACT, 0.78, **kw) for b in ("small", "large")]


def test_each_options_exact_ndcg_per_bucket_is_its_lower_scoring_scope():
    rows = cells("vector768") + [
        quality_row("vector768", "large", {"1536": [0.6] * 4, "768": [0.5] * 4}, 0.5, scope="workspace")
    ]
    r = results(rows)
    text = "\n".join(options_section(r, decide(r)))
    line = next(t for t in text.splitlines() if t.startswith("| 3-small @ 768"))
    assert "| 0.700 [" in line and "| 0.500 [" in line  # small bucket: all scope; large: workspace's 0.5


def test_ada_is_never_given_3_smalls_index_numbers():
    r = results(cells("vector1536", p95=7.25))
    text = "\n".join(options_section(r, decide(r)))
    ada = next(t for t in text.splitlines() if t.startswith("| ada-002 @ 1536"))
    three_small = next(t for t in text.splitlines() if t.startswith("| 3-small @ 1536 | `vector1536`"))
    assert "7.25" in three_small and "7.25" not in ada
    assert "not measured" in ada and "0.750" in ada  # its exact quality is measured, its index is not


def test_with_nothing_qualifying_the_table_shows_the_configuration_closest_to_the_target():
    fast_and_wrong = [quality_row("vector768", b, EXACT, 0.78, p95=1.0) for b in ("small", "large")]
    for r in fast_and_wrong:
        r.update(recall_mean=0.5, recall_ci95=[0.4, 0.6])
    near = [quality_row("vector768", b, EXACT, 0.78, p95=4.5) for b in ("small", "large")]
    for r in near:
        r.update(recall_mean=0.94, recall_ci95=[0.93, 0.95], query_params={"ef_search": 100})
    r = results(fast_and_wrong + near)
    line = next(
        t for t in options_section(r, decide(r, recall_target=0.99)) if t.startswith("| 3-small @ 768")
    )
    assert "ef_search=100" in line and "4.50" in line


def test_an_option_the_corpus_lacks_is_not_measured_rather_than_zero():
    exact = {"1536": [0.8] * 4, "768": [0.7] * 4}
    r = results([quality_row("vector768", b, exact, 0.7) for b in ("small", "large")])
    text = "\n".join(options_section(r, decide(r)))
    ada = next(t for t in text.splitlines() if t.startswith("| ada-002 @ 1536"))
    assert "not measured (the corpus has no such column)" in ada and "0.000" not in ada
    assert "`ada = false`" in text


def test_the_first_screen_line_puts_the_chosen_options_ndcg_beside_the_best_options():
    r = results(cells("vector768", gap=(-0.025, [-0.03, -0.02])))
    line = quality_line(r, decide(r, quality_tolerance=0.05))
    assert line is not None
    assert "3-small @ 768" in line and "0.780 [" in line  # the chosen configuration as measured
    assert "3-small @ 1536" in line and "0.800" in line  # the best option's exact search
    assert "-2.5%" in line and "[-3.0%, -2.0%]" in line


def test_no_first_screen_line_when_the_rows_carry_no_quality():
    r = results([row("vector768", "rls", b, 0.99, 1.0) for b in ("small", "large")])
    assert quality_line(r, decide(r)) is None
    assert options_section(r, decide(r)) == []


def test_a_tiny_runs_published_record_leads_with_the_options_and_carries_sensitivity_and_migration(
    tiny_results, tmp_path
):
    import shutil

    from dimbench.cli import main

    _, run_dir = tiny_results
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert main(["sensitivity", str(copy), "--no-progress"]) == 0
    assert main(["publish", str(copy), "--to", str(tmp_path / "published")]) == 0
    text = (tmp_path / "published" / "DECISION.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings.index("## The options compared") < headings.index("## The table")
    assert "**Quality** (" in text.split("## The options compared")[0]
    assert "| 3-small @ 768 | `vector768` |" in text
    assert "(calibrated)" in text and "measured at the calibrated values only" in text
    assert "## Migration, per option" in text


def test_the_first_screen_line_gives_the_quality_in_every_measured_bucket():
    r = results(cells("vector768", gap=(-0.025, [-0.03, -0.02])))
    line = quality_line(r, decide(r, quality_tolerance=0.05))
    assert line is not None
    per_bucket = line.split("Per bucket")[1]
    buckets = {row["bucket"] for row in r.rows}
    assert buckets and all(f"{b} (" in per_bucket for b in buckets)


def test_ada_measured_as_its_own_column_shows_its_own_rows_index_numbers():
    rows = cells("vector1536", p95=7.25) + cells("ada_halfvec1536", p95=3.5)
    r = results(rows)
    text = "\n".join(options_section(r, decide(r)))
    ada = next(t for t in text.splitlines() if t.startswith("| ada-002 @ 1536"))
    assert "`ada_halfvec1536`" in ada and "3.50" in ada and "7.25" not in ada
    assert "indexed no ada-002 column" not in ada
    assert "never 3-small's" in text
