"""Grids are data: build arguments apart from query arguments, validated with one-line errors."""

from __future__ import annotations

import re

import pytest

from dimbench.errors import DimbenchError
from dimbench.study.grid import available_profiles, load_grid, parse_grid, product

MINIMAL = {
    "profile": "p",
    "corpus": "tiny",
    "k": 10,
    "column_types": ["vector768"],
    "index": [
        {
            "kind": "hnsw",
            "build": {"m": [16, 24], "ef_construction": 64},
            "query": {"ef_search": [40, 100]},
            "iterative_scan": ["off", "strict_order"],
        }
    ],
}


def hnsw(ef_construction: int, query: dict) -> dict:
    """An hnsw [[index]] entry with m = 16."""
    return {"kind": "hnsw", "build": {"m": 16, "ef_construction": ef_construction}, "query": query}


def test_every_profile_the_cli_offers_has_a_valid_grid():
    assert {"tiny", "smoke", "small", "medium", "large"} <= set(available_profiles())
    for profile in available_profiles():
        assert load_grid(profile).profile == profile


def test_product_expands_every_combination_with_sorted_keys():
    assert product({"m": [16, 24], "ef_construction": [64]}) == [
        {"ef_construction": 64, "m": 16},
        {"ef_construction": 64, "m": 24},
    ]


def test_one_build_serves_the_whole_query_sweep():
    builds = list(parse_grid(MINIMAL).builds())
    assert [b.params for b, _ in builds] == [
        {"ef_construction": 64, "m": 16},
        {"ef_construction": 64, "m": 24},
    ]
    settings = builds[0][1]
    assert [(s.params["ef_search"], s.iterative_scan) for s in settings] == [
        (40, "off"),
        (40, "strict_order"),
        (100, "off"),
        (100, "strict_order"),
    ]


def test_rls_without_a_filter_is_measured_over_all_of_a_users_workspaces():
    grid = parse_grid(MINIMAL)
    assert grid.scopes_for("rls") == ("all",)
    assert grid.scopes_for("rls_filter") == ("workspace", "all")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown key colour"),
        ({"k": 0}, "k must be in [1, 100], got 0"),
        ({"k": "ten"}, "k must be int"),
        ({"column_types": ["vector512"]}, "column_types has 'vector512'"),
        ({"access": ["root"]}, "access has 'root'"),
        ({"concurrency": [0]}, "concurrency must be in [1, 64], got 0"),
        ({"index": []}, "no [[index]] entries"),
        ({"index": [{"kind": "annoy"}]}, "kind must be one of"),
        (
            {
                "index": [
                    {
                        "kind": "ivfflat",
                        "build": {"lists": 10},
                        "query": {"probes": 1},
                        "iterative_scan": ["strict_order"],
                    }
                ]
            },
            "iterative_scan has 'strict_order'; known: off, relaxed_order",
        ),
        (
            {
                "index": [
                    {"kind": "hnsw", "build": {"m": -1, "ef_construction": 64}, "query": {"ef_search": 40}}
                ]
            },
            "m must be in [2, 100], got -1",
        ),
        (
            {"index": [{"kind": "hnsw", "build": {"m": 16}, "query": {"ef_search": 40}}]},
            "missing ef_construction",
        ),
        ({"confirm": {"max_querys": 10}}, "unknown key max_querys"),
        ({"confirm": {"max_queries": 0}}, "max_queries must be in [1, 100000], got 0"),
        ({"confirm": {"max_queries": 10, "batch": 20}}, "batch (20) exceeds max_queries (10)"),
        ({"confirm": {"recall_target": 1.5}}, "recall_target must be in (0, 1], got 1.5"),
        ({"confirm": {"reach": "far"}}, "reach must be float"),
        ({"confirm": {"every_design": 1}}, "every_design must be bool"),
        ({"side_channel": {"cycles": 0}}, "cycles must be in [1, 10000], got 0"),
        # Values that once slipped through, or crashed with a traceback:
        ({"confirm": {"recall_target": float("nan")}}, "recall_target must be a finite number"),
        ({"confirm": {"reach": float("inf")}}, "reach must be a finite number"),
        ({"access": ["rls", "rls"]}, "access lists 'rls' twice"),
        ({"access": []}, "access must not be empty"),
        ({"column_types": []}, "column_types must not be empty"),
        ({"column_types": [["vector768"]]}, "column_types must list str values"),
        ({"corpora": 5}, "corpora must be list"),
        ({"corpora": ["tiny", "tiny"]}, "corpora lists 'tiny' twice"),
        ({"profile": ""}, "profile must be a plain name"),
        ({"profile": "x/../../notebooks"}, "profile must be a plain name"),
        ({"profile": "../../escape"}, "profile must be a plain name"),
        ({"concurrency": [2, 2]}, "concurrency lists 2 twice"),
        (
            {"index": [hnsw(64, {"ef_search": [40, 40]})]},
            "ef_search lists a value twice",
        ),
        (
            {"index": [hnsw(64, {"ef_search": 4000})]},
            "ef_search must be in [1, 1000], got 4000",
        ),
        (
            {"index": [hnsw(16, {"ef_search": 40})]},
            "ef_construction must be at least twice m",
        ),
    ],
)
def test_a_malformed_grid_is_one_clear_error(change, message):
    with pytest.raises(DimbenchError, match=re.escape(message)):
        parse_grid({**MINIMAL, **change})


def test_the_confirmation_stage_defaults_fill_what_a_grid_leaves_out():
    grid = parse_grid({**MINIMAL, "confirm": {"max_queries": 120}})
    assert grid.confirm.max_queries == 120 and grid.confirm.batch == 50 and grid.confirm.recall_target == 0.95
    assert parse_grid(MINIMAL).confirm is None


@pytest.mark.parametrize("profile", ["small", "scale"])
def test_a_shipped_study_confirms_with_a_query_pool_its_corpora_can_fill(profile):
    import tomllib

    from dimbench.paths import datasets_dir

    grid = load_grid(profile)
    assert grid.confirm is not None
    for corpus in grid.corpora or [grid.corpus]:
        spec = tomllib.loads((datasets_dir() / f"{corpus}.toml").read_text())
        assert spec["corpus"]["queries_per_bucket"] >= grid.confirm.max_queries, corpus


def test_an_unknown_profile_names_the_known_ones():
    with pytest.raises(DimbenchError, match="unknown profile 'huge': choose one of .*small"):
        load_grid("huge")


def test_invalid_toml_is_reported_with_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("k = [")
    with pytest.raises(DimbenchError, match="bad.toml: not valid TOML"):
        load_grid(bad)


def with_designs(*designs: dict) -> dict:
    return {
        "profile": "t",
        "corpus": "tiny",
        "k": 10,
        "column_types": ["vector768", "halfvec1536"],
        "index": [
            {
                "kind": "hnsw",
                "build": {"m": 16, "ef_construction": 64},
                "query": {"ef_search": [40], "max_scan_tuples": [20000, 100000]},
                "iterative_scan": ["off", "relaxed_order"],
            }
        ],
        "design": list(designs),
    }


def test_max_scan_tuples_is_swept_only_where_iterative_scan_is_on():
    grid = parse_grid(with_designs())
    ((_, settings), _) = list(grid.builds())
    assert [s.key for s in settings] == [
        "(ef_search=40)/off",
        "(ef_search=40,max_scan_tuples=20000)/relaxed_order",
        "(ef_search=40,max_scan_tuples=100000)/relaxed_order",
    ]


def test_a_design_sweeps_its_own_settings_on_its_column_types():
    grid = parse_grid(
        with_designs(
            {
                "name": "routed",
                "column_types": ["vector768"],
                "query": {"ef_search": [100]},
                "iterative_scan": ["relaxed_order"],
            }
        )
    )
    (vector768, settings), (halfvec, _) = list(grid.builds())
    (routed,) = grid.designs_for(vector768)
    assert [s.key for s in routed.settings(settings)] == ["(ef_search=100)/relaxed_order"]
    assert grid.designs_for(halfvec) == []
    assert routed.params == {"threshold": "measured"}


def test_one_design_may_take_other_settings_on_another_column_type():
    grid = parse_grid(
        with_designs(
            {"name": "routed", "column_types": ["vector768"], "query": {"ef_search": [40, 100]}},
            {"name": "routed", "column_types": ["halfvec1536"], "query": {"ef_search": [100]}},
        )
    )
    (vector768, settings), (halfvec, _) = list(grid.builds())
    ((mine_768,), (mine_halfvec,)) = grid.designs_for(vector768), grid.designs_for(halfvec)
    assert [s.key for s in mine_768.settings(settings)] == [
        "(ef_search=40)/off",
        "(ef_search=40)/relaxed_order",
        "(ef_search=100)/off",
        "(ef_search=100)/relaxed_order",
    ]
    assert [s.key for s in mine_halfvec.settings(settings)] == [
        "(ef_search=100)/off",
        "(ef_search=100)/relaxed_order",
    ]


def test_one_design_twice_on_the_same_build_is_one_clear_error():
    with pytest.raises(DimbenchError, match="'routed' appears twice on vector768 hnsw"):
        parse_grid(with_designs({"name": "routed"}, {"name": "routed", "column_types": ["vector768"]}))


@pytest.mark.parametrize(
    "design, message",
    [
        ({"name": "shared"}, "every build is `shared`"),
        ({"name": "sharded"}, "name must be one of"),
        ({"name": "partial", "index": "ivfflat"}, "index 'ivfflat' has no [[index]]"),
        ({"name": "partial", "params": {"min_row": 5}}, "min_row"),
        ({"name": "routed", "access": ["superuser"]}, "access must be a non-empty subset"),
        ({"name": "routed", "access": ["rls", "rls"]}, "access lists 'rls' twice"),
        ({"name": "partial", "params": {"min_rows": "abc"}}, "min_rows must be a positive integer"),
        ({"name": "routed", "params": {"threshold": "guess"}}, "threshold must be 'measured' or a row count"),
        ({"name": 7}, "name must be one of"),
    ],
)
def test_a_malformed_design_is_one_clear_error(design, message):
    with pytest.raises(DimbenchError, match=re.escape(message)):
        parse_grid(with_designs(design))


def split_by_column_type(**halfvec_entry: object) -> dict:
    """One hnsw build per column type, each with its own sweep (a scale grid's trim)."""
    raw = with_designs()
    raw["index"] = [
        {**raw["index"][0], "column_types": ["vector768"]},
        {
            "kind": "hnsw",
            "build": {"m": 16, "ef_construction": 64},
            "query": {"ef_search": [40]},
            "iterative_scan": ["relaxed_order"],
            "column_types": ["halfvec1536"],
            **halfvec_entry,
        },
    ]
    return raw


def test_an_index_entry_builds_and_sweeps_only_its_column_types():
    grid = parse_grid(split_by_column_type())
    builds = [(build.key, [s.key for s in settings]) for build, settings in grid.builds()]
    assert builds == [
        (
            "vector768/hnsw(ef_construction=64,m=16)",
            [
                "(ef_search=40)/off",
                "(ef_search=40,max_scan_tuples=20000)/relaxed_order",
                "(ef_search=40,max_scan_tuples=100000)/relaxed_order",
            ],
        ),
        ("halfvec1536/hnsw(ef_construction=64,m=16)", ["(ef_search=40)/relaxed_order"]),
    ]


def test_two_index_entries_may_not_build_the_same_index():
    with pytest.raises(
        DimbenchError, match=re.escape("vector768/hnsw(ef_construction=64,m=16) is built by two")
    ):
        parse_grid(split_by_column_type(column_types=["vector768", "halfvec1536"]))


def test_an_index_entry_names_only_the_vocabularys_column_types():
    with pytest.raises(DimbenchError, match="column_types must be a non-empty subset"):
        parse_grid(split_by_column_type(column_types=["vector999"]))


def test_an_index_entry_naming_a_column_type_beyond_the_grids_measures_it_on_that_entry_only():
    grid = parse_grid(split_by_column_type(column_types=["ada_halfvec1536"]))
    assert grid.column_types[-1] == "ada_halfvec1536"
    ada = [build.key for build, _ in grid.builds() if build.column_type == "ada_halfvec1536"]
    assert ada == ["ada_halfvec1536/hnsw(ef_construction=64,m=16)"]


def test_a_design_needs_a_build_of_its_index_on_each_of_its_column_types():
    raw = split_by_column_type()
    raw["index"] = raw["index"][:1]  # hnsw on vector768 only
    raw["design"] = [{"name": "routed", "column_types": ["halfvec1536"]}]
    with pytest.raises(DimbenchError, match="no \\[\\[index\\]\\] entry builds hnsw on halfvec1536"):
        parse_grid(raw)
