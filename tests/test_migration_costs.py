"""Migration figures per option, from the corpus's own counts and the grid's dated prices: tokens,
API cost, time, the extra storage while both models are kept, the index build measured here."""

from __future__ import annotations

from pathlib import Path

import pytest

from dimbench.errors import DimbenchError
from dimbench.evidence.results import Results
from dimbench.report.costs import migration, migration_section
from dimbench.study.grid import load_grid
from dimbench.study.migration import parse_migration

BUILDS = [
    {
        "build_key": f"{ct}/hnsw(m=16)",
        "column_type": ct,
        "index": "hnsw",
        "rows": 1000,
        "index_bytes": 1000 * b,
        "seconds": s,
    }
    for ct, b, s in (("vector768", 400, 1.5), ("vector1536", 800, 3.0), ("halfvec1536", 400, 2.5))
]
PRICES = {
    "text-embedding-3-small": {"usd_per_million_tokens": 0.02, "as_of": "2024-01-25"},
    "text-embedding-ada-002": {"usd_per_million_tokens": 0.10, "as_of": "2024-01-25"},
}


def results(counts, grid_migration=None) -> Results:
    grid = {"migration": grid_migration} if grid_migration is not None else {}
    run = {"builds": BUILDS, "corpus": {"counts": counts}, "identity": {"grid": grid}}
    return Results(Path("."), run, [])


def test_tokens_are_chunks_times_the_stated_tokens_per_chunk_when_the_corpus_does_not_count_them():
    m = migration(results({"chunks": 100_000}, {"tokens_per_chunk": 300, "prices": PRICES}), "768")
    assert m["tokens"] == 30_000_000 and m["tokens_assumed"]
    assert m["cost_usd"] == pytest.approx(30 * 0.02)


def test_the_corpus_own_token_count_wins_over_the_assumption():
    m = migration(results({"chunks": 100_000, "tokens": 1_000_000}), "ada")
    assert m["tokens"] == 1_000_000 and not m["tokens_assumed"]
    assert m["cost_usd"] == pytest.approx(1 * 0.10)  # ada-002's list price


def test_time_is_tokens_at_the_stated_throughput():
    m = migration(results({"chunks": 1000}, {"tokens_per_chunk": 600, "tokens_per_minute": 1000}), "1536")
    assert m["minutes"] == pytest.approx(600)


def test_extra_storage_while_both_are_kept_is_the_retired_columns_with_their_measured_indexes():
    r = results({"chunks": 1000})
    assert migration(r, "768")["extra_bytes_per_million"] == pytest.approx((6152 + 800) * 1e6)  # ada retired
    assert migration(r, "ada")["extra_bytes_per_million"] == pytest.approx((3080 + 400) * 1e6)  # 768 retired


def test_the_build_time_is_the_runs_own_hnsw_build_of_the_options_column_type():
    text = "\n".join(migration_section(results({"chunks": 1000})))
    line = next(t for t in text.splitlines() if t.startswith("| 3-small @ 768"))
    assert "1.5 s for 1,000 rows" in line
    # ada's build is its own column's or not measured: never 3-small's
    assert next(t for t in text.splitlines() if t.startswith("| ada-002")).endswith("| not measured |")


def test_the_record_names_the_price_date_and_labels_the_assumptions():
    text = "\n".join(migration_section(results({"chunks": 1000}, {"prices": PRICES})))
    assert "as of 2024-01-25" in text and "**assumed**" in text and "≤" in text


def test_the_default_grid_dates_its_prices():
    raw = load_grid("small").raw["migration"]
    assert all(p["as_of"] for p in parse_migration(raw, "small")["prices"].values())


@pytest.mark.parametrize(
    "bad",
    [
        {"prices": {"text-embedding-3-small": {"usd_per_million_tokens": -1, "as_of": "2024-01-25"}}},
        {"prices": {"text-embedding-3-small": {"usd_per_million_tokens": 0.02}}},
        {"tokens_per_chunk": 0},
        {"throughput": 5},
    ],
)
def test_a_bad_migration_section_is_one_line(bad):
    with pytest.raises(DimbenchError, match=r"\[migration\]"):
        parse_migration(bad, "grid")
