"""The [live] section of a grid: the platform's rates, checked before anything runs. An impossible rate
or mix is one line and a non-zero exit, and nothing is written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dimbench.errors import DimbenchError
from dimbench.paths import grids_dir
from dimbench.study.grid import live_section, load_grid
from dimbench.study.live_spec import LiveSpec, parse_live
from tests.cli_helpers import assert_one_line_error, run_cli

LIVE_TINY = grids_dir() / "live-tiny.toml"
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"  # never reached: the grid is refused first


def test_the_shipped_live_grid_parses_and_its_rates_scale_with_the_corpus():
    spec = live_section(load_grid("live-tiny"))
    assert spec.writers == (1, 2) and spec.transaction == "document"
    assert spec.ingest_chunks_per_s(100_000) == spec.ingest_rate
    assert spec.ingest_chunks_per_s(2_000) == pytest.approx(spec.ingest_rate / 50)


def test_a_grid_without_a_live_section_gets_the_stated_defaults():
    assert parse_live(None, "grid", 100_000) == LiveSpec()


@pytest.mark.parametrize(
    ("section", "said"),
    [
        ({"ingest_rate": 0}, "ingest_rate must be in (0"),
        ({"ingest_rate": -5}, "ingest_rate must be in (0"),
        ({"search_rate": 0.01, "seconds": 10}, "offers no search at all"),
        ({"search_clients": 8, "search_rate": 1, "seconds": 2}, "most clients would never send one"),
        ({"churn": 1.0}, "churn must be in [0, 0.99]"),
        ({"doc_sizes": [[0.5, 10, 100], [0.4, 1000, 3000]]}, "the shares add up to 0.9"),
        ({"doc_sizes": [[1.0, 100, 10]]}, "1 ≤ fewest ≤ most"),
        ({"doc_sizes": [[1.0, 10, 200_000]]}, "more than the whole"),
        ({"ingest_rate": 0.01, "request_chunks": 100}, "under one 100-chunk request"),
        ({"writers": [0]}, "writers must be in [1, 64]"),
        ({"transaction": "sometimes"}, "transaction must be one of document, request"),
        ({"runbook": {"insert_docs": 0, "replace_docs": 0}}, "the runbook changes nothing"),
        ({"p95_bound": 1.0}, "p95_bound must be in (1"),
        ({"unknown": 1}, "unknown"),
        ({"rate_multiples": [2, 0]}, "rate_multiples must be in (0"),
        ({"rate_multiples": ["twice"]}, "rate_multiples must list positive numbers"),
    ],
)
def test_an_impossible_rate_or_mix_is_refused(section, said):
    with pytest.raises(DimbenchError, match=re.escape(said)):
        parse_live({**section}, "grid", 100_000)


def test_the_rate_multiples_always_hold_the_platforms_own_rate_in_order():
    assert parse_live({"rate_multiples": [4, 2]}, "grid", 100_000).rate_multiples == (1.0, 2.0, 4.0)


def bad_grid(tmp_path: Path, old: str, new: str) -> Path:
    text = LIVE_TINY.read_text().replace(old, new)
    assert text != LIVE_TINY.read_text()
    path = tmp_path / "live-bad.toml"
    path.write_text(text.replace('profile = "live-tiny"', 'profile = "live-bad"'))
    return path


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("ingest_rate = 4000", "ingest_rate = 0", "ingest_rate must be in (0"),
        ("[[0.8, 5, 20], [0.2, 40, 80]]", "[[0.8, 5, 20], [0.1, 40, 80]]", "the shares add up to 0.9"),
    ],
)
def test_dimbench_live_refuses_a_bad_section_in_one_line_before_anything_runs(tmp_path, old, new, said):
    grid = bad_grid(tmp_path, old, new)
    out = tmp_path / "out"
    result = run_cli("live", "--profile", str(grid), "--dsn", UNREACHABLE, "--out", str(out))
    assert_one_line_error(result, "[live]", said)
    assert not out.exists()


def test_dimbench_live_refuses_a_design_the_grid_does_not_measure(tmp_path):
    result = run_cli("live", "--profile", "live-tiny", "--designs", "partial", "--dsn", UNREACHABLE)
    assert_one_line_error(result, "design 'partial' is not measured")


def test_the_live_stage_of_a_run_measures_the_choices_build_and_query_setting():
    from dimbench.evidence.rule import Config
    from dimbench.study import live
    from dimbench.study.grid import load_grid

    grid = load_grid("small")
    choice = Config(
        "routed",
        "{}",
        "halfvec1536",
        "hnsw",
        '{"ef_construction": 64, "m": 16}',
        '{"ef_search": 100, "max_scan_tuples": 20000}',
        "relaxed_order",
        "rls",
    )
    planned = live.plan_grid(grid, ["routed"], strict=False, prefer=choice)
    assert planned.build.key == choice.build_key
    assert planned.setting.params == {"ef_search": 100, "max_scan_tuples": 20000}
    assert planned.setting.iterative_scan == "relaxed_order"
    assert live.plan_grid(grid, ["routed"], strict=False).setting.params["ef_search"] == 40  # no choice


def test_a_live_section_naming_a_corpus_the_grid_lacks_is_refused(tmp_path):
    from dimbench.study import live

    path = bad_grid(tmp_path, "[live]\n", '[live]\ncorpora = ["scale-1m"]\n')
    with pytest.raises(DimbenchError, match=re.escape("corpora ['scale-1m'] are not among the grid's")):
        live.plan_grid(load_grid(str(path)), None, strict=False)
