"""Parameter grids as data (bench/grids/<profile>.toml), expanded into builds and query settings.

As in ann-benchmarks, build arguments are kept apart from query arguments: each index build is done
once and then serves its whole sweep of query arguments × iterative-scan modes × access arms.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dimbench.errors import DimbenchError
from dimbench.evidence.rule import QUALITY_TOLERANCE
from dimbench.paths import grids_dir, plain_name
from dimbench.study import designs
from dimbench.study.configs import Build, QuerySetting  # noqa: F401  (a grid's builds; asv suites import them here)
from dimbench.study.migration import parse_migration
from dimbench.tomlcheck import in_range, no_unknown, read_toml, short, typed, unique_list
from dimbench.vocabulary import (  # noqa: F401  (re-exported: the grid's words are the vocabulary's)
    ACCESS_ARMS,
    BUILD_KEYS,
    COLUMN_TYPES,
    DEFAULT_DESIGN,
    DESIGNS,
    INDEX_KINDS,
    ITERATIVE,
    ITERATIVE_ONLY,
    OPTIONAL_QUERY_KEYS,
    PARAM_RANGES,
    QUERY_KEYS,
    SCOPES,
    SCOPES_BY_ACCESS,
)


def product(params: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """{"m": [16, 24], "ef": [64]} -> [{"m": 16, "ef": 64}, {"m": 24, "ef": 64}] (sorted keys)."""
    keys = sorted(params)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(params[k] for k in keys))]


@dataclass
class IndexSpec:
    kind: str
    build: dict[str, list[Any]]
    query: dict[str, list[Any]]
    iterative_scan: list[str]
    column_types: tuple[str, ...] = ()  # built on these only (default: every column type of the grid)

    def builds_on(self, column_type: str) -> bool:
        return not self.column_types or column_type in self.column_types

    def settings(self) -> list[QuerySetting]:
        """Every query argument × iterative-scan mode; an argument that only matters with iterative scan
        on (max_scan_tuples) is swept only where it is on."""
        out = []
        for params in product(self.query):
            for mode in self.iterative_scan:
                if mode == "off" and any(
                    params[key] != self.query[key][0] for key in ITERATIVE_ONLY if key in params
                ):
                    continue
                if mode == "off":
                    params_here = {k: v for k, v in params.items() if k not in ITERATIVE_ONLY}
                else:
                    params_here = params
                out.append(QuerySetting(params_here, mode))
        return out


@dataclass(frozen=True)
class DesignSpec:
    """One [[design]] of a grid: a layout or route measured on the builds of one index kind.

    It rides on every build of `index` (same build arguments) for its `column_types`, and sweeps the
    query settings of that index restricted to `query` and `iterative_scan`, under its `access` arms.
    """

    name: str
    index: str
    column_types: tuple[str, ...]
    access: tuple[str, ...]
    query: dict[str, list[Any]] = field(default_factory=dict, hash=False)
    iterative_scan: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    def settings(self, all_settings: list[QuerySetting]) -> list[QuerySetting]:
        """Its own `query` × `iterative_scan` when given (the index's modes otherwise), else the index's."""
        if not self.query:
            modes = self.iterative_scan or tuple(dict.fromkeys(s.iterative_scan for s in all_settings))
            return [s for s in all_settings if s.iterative_scan in modes]
        modes = self.iterative_scan or tuple(dict.fromkeys(s.iterative_scan for s in all_settings))
        return IndexSpec(self.index, {}, self.query, list(modes)).settings()


@dataclass(frozen=True)
class Confirm:
    """The confirmation stage: the leading candidates of screening, measured again, interleaved."""

    max_queries: int = 300  # per (scope, bucket) cell; the corpus must hold that many distinct queries
    batch: int = 50  # queries per round before checking which cells are decided
    max_candidates: int = 12
    reach: float = 0.5  # a candidate's worst p95 may be up to this much above the best's
    half_width: float = 0.01  # a recall interval this narrow decides a cell even when it straddles the target
    recall_target: float = 0.95
    # the best of every design goes too (small: each design meets the others); false keeps the best five,
    # the best per column type and per arm and the within-reach extras (scale: a design installed again
    # at 1M costs minutes)
    every_design: bool = True


@dataclass
class Grid:
    profile: str
    corpus: str
    k: int
    column_types: list[str]
    access: list[str]
    indexes: list[IndexSpec]
    queries_per_cell: int
    warmup: int
    concurrency: list[int]
    concurrency_queries: int
    calibrate: bool = False  # measure the corpus's unfiltered hnsw recall first (if not yet in its manifest)
    confirm: Confirm | None = None  # None: screening only
    designs: list[DesignSpec] = field(default_factory=list)  # besides `shared`, which every build is
    corpora: list[str] = field(default_factory=list)  # a scale profile: the same grid on each, in order
    # {"queries", "per_query", "cycles"}: measure the side channel (sidechannel.py)
    side_channel: dict[str, int] | None = None
    rounds: int = 1  # [screening] rounds: queries_per_cell asked in this many rounds, racing between them
    latency_margin: float = 0.0  # [screening]: how far past the reference's p95 upper bound a latency drop is
    source: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # as read; its digest is part of a run's identity
    quality_tolerance: float = QUALITY_TOLERANCE  # [rule]: the rule's nDCG@10 tolerance

    def builds(self) -> Iterator[tuple[Build, list[QuerySetting]]]:
        for column_type in self.column_types:
            for spec in self.indexes:
                if not spec.builds_on(column_type):
                    continue
                settings = spec.settings()
                for params in product(spec.build):
                    yield Build(column_type, spec.kind, params), settings

    def designs_for(self, build: Build) -> list[DesignSpec]:
        """The grid's designs that ride on this build, in the grid's order."""
        return [d for d in self.designs if d.index == build.index and build.column_type in d.column_types]

    def designs_on(self, build: Build) -> list[DesignSpec]:
        """Every design measured on this build: shared (the build itself, its whole sweep, every arm),
        then the grid's designs that ride on it."""
        shared = DesignSpec(DEFAULT_DESIGN, build.index, tuple(self.column_types), tuple(self.access))
        return [shared, *self.designs_for(build)]

    def round_targets(self) -> list[int]:
        """How many queries a cell has been asked after each screening round (the last: queries_per_cell)."""
        base, extra = divmod(self.queries_per_cell, self.rounds)
        sizes = [base + (1 if i < extra else 0) for i in range(self.rounds)]
        return [sum(sizes[: i + 1]) for i in range(self.rounds)]

    def scopes_for(self, access: str) -> tuple[str, ...]:
        return SCOPES_BY_ACCESS[access]


def profile_path(profile: str) -> Path:
    return grids_dir() / f"{profile}.toml"


def available_profiles() -> list[str]:
    return sorted(path.stem for path in grids_dir().glob("*.toml"))


def load_grid(profile_or_path: str | Path) -> Grid:
    path = Path(profile_or_path)
    if path.suffix != ".toml":
        path = profile_path(str(profile_or_path))
        if not path.exists():
            known = ", ".join(available_profiles())
            raise DimbenchError(f"unknown profile {profile_or_path!r}: choose one of {known}")
    raw = read_toml(path, "grid")
    grid = parse_grid(raw, path)
    grid.raw = raw
    return grid


def parse_grid(raw: dict[str, Any], path: Path | None = None) -> Grid:
    where = str(path) if path else "grid"
    known = {
        "profile",
        "corpus",
        "k",
        "column_types",
        "access",
        "index",
        "queries_per_cell",
        "warmup",
        "concurrency",
        "concurrency_queries",
        "calibrate",
        "confirm",
        "design",
        "corpora",
        "side_channel",
        "screening",
        "live",  # dimbench live's section, read by live_section()
        "migration",  # prices and throughput for the record's migration figures (study/migration.py)
        "rule",  # the decision rule's own values (quality_tolerance), read back from run.json
    }
    no_unknown(raw, known, where)
    parse_migration(raw.get("migration"), where)  # checked here; the report reads it from run.json

    def get(key: str, kind: type, default: Any = None) -> Any:
        return typed(raw, key, kind, default, where)

    def count(key: str, default: int, low: int, high: int) -> int:
        value = get(key, int, default)
        in_range(value, low, high, where, key)
        return value

    profile = plain_name(get("profile", str), "profile", where)
    k = count("k", 10, 1, 100)  # hnsw.ef_search caps what one scan returns (as a corpus's k)
    column_types = unique_list(raw, "column_types", str, None, where, allowed=COLUMN_TYPES)
    access = unique_list(raw, "access", str, list(ACCESS_ARMS), where, allowed=ACCESS_ARMS)
    concurrency = unique_list(raw, "concurrency", int, [1], where)
    for clients in concurrency:
        in_range(clients, 1, 64, where, "concurrency")
    # An [[index]] may name a column type beyond the grid's (ada's, measured on one build only): the grid
    # then measures it too, on that entry's builds; an entry without column_types builds on the grid's.
    indexes = [
        _parse_index(item, f"{where} [[index]] #{i + 1}", list(COLUMN_TYPES))
        for i, item in enumerate(get("index", list))
    ]
    if not indexes:
        raise DimbenchError(f"{where}: no [[index]] entries")
    indexes = [replace(s, column_types=s.column_types or tuple(column_types)) for s in indexes]
    column_types = column_types + sorted(
        {ct for s in indexes for ct in s.column_types} - set(column_types), key=list(COLUMN_TYPES).index
    )
    _no_build_twice(indexes, column_types, where)
    queries_per_cell = count("queries_per_cell", 20, 1, 100_000)
    warmup = count("warmup", 3, 0, 10_000)
    concurrency_queries = count("concurrency_queries", 40, 0, 1_000_000)  # 0: 1 client only
    corpora = unique_list(raw, "corpora", str, None, where) if "corpora" in raw else []
    rounds, latency_margin = _parse_screening(
        raw.get("screening", {}), f"{where} [screening]", queries_per_cell
    )
    quality_tolerance = parse_rule(raw.get("rule", {}), f"{where} [rule]")
    return Grid(
        profile=profile,
        corpus=_spec_name(corpora[0] if corpora else get("corpus", str), where),
        corpora=[_spec_name(c, where) for c in corpora],
        side_channel=_parse_side_channel(raw["side_channel"], where) if "side_channel" in raw else None,
        rounds=rounds,
        latency_margin=latency_margin,
        k=k,
        column_types=column_types,
        access=access,
        indexes=indexes,
        queries_per_cell=queries_per_cell,
        warmup=warmup,
        concurrency=sorted(set(concurrency)),
        concurrency_queries=concurrency_queries,
        calibrate=get("calibrate", bool, False),
        confirm=_parse_confirm(raw["confirm"], f"{where} [confirm]") if "confirm" in raw else None,
        designs=_distinct_designs(
            [
                _parse_design(item, f"{where} [[design]] #{i + 1}", column_types, access, indexes)
                for i, item in enumerate(get("design", list, []))
            ],
            where,
        ),
        source=path,
        quality_tolerance=quality_tolerance,
    )


def parse_rule(raw: Any, where: str) -> float:
    """[rule] quality_tolerance: the relative nDCG@10 shortfall a configuration may have against the best
    option's exact search, strictly inside (0, 1); absent: the rule's default (2 %, the ada-002 -> 3-small
    MTEB gap)."""
    if not isinstance(raw, dict):
        raise DimbenchError(f"{where}: must be a table")
    no_unknown(raw, {"quality_tolerance"}, where)
    value = typed(raw, "quality_tolerance", float, QUALITY_TOLERANCE, where)
    in_range(value, 0, 1, where, "quality_tolerance", low_open=True, high_open=True)
    return value


def _distinct_designs(specs: list[DesignSpec], where: str) -> list[DesignSpec]:
    """One design may appear more than once (other settings on another column type), but never twice on
    the same build: its install and its cells are known by (design, build)."""
    seen: set[tuple[str, str, str]] = set()
    for spec in specs:
        for column_type in spec.column_types:
            if (spec.name, spec.index, column_type) in seen:
                raise DimbenchError(
                    f"{where}: [[design]] {spec.name!r} appears twice on {column_type} {spec.index}; give "
                    "each entry its own column_types"
                )
            seen.add((spec.name, spec.index, column_type))
    return specs


def _parse_screening(raw: Any, where: str, queries_per_cell: int) -> tuple[int, float]:
    """[screening] rounds = N: each cell's queries asked in N batches, configurations that the intervals
    exclude dropped between them (evidence/race.py); 1 (the default) asks them all at once.
    latency_margin = m: a latency drop needs the p95 lower bound beyond the reference's upper bound × (1 + m)
    (0, the default: beyond the upper bound itself)."""
    if not isinstance(raw, dict):
        raise DimbenchError(f"{where}: must be a table")
    no_unknown(raw, {"rounds", "latency_margin"}, where)
    rounds = typed(raw, "rounds", int, 1, where)
    in_range(rounds, 1, min(20, queries_per_cell), where, "rounds")
    margin = typed(raw, "latency_margin", float, 0.0, where)
    in_range(margin, 0.0, 10.0, where, "latency_margin")
    return rounds, float(margin)


def _parse_side_channel(raw: Any, where: str) -> dict[str, int]:
    where = f"{where} [side_channel]"
    if not isinstance(raw, dict):
        raise DimbenchError(f"{where}: must be a table")
    no_unknown(raw, {"queries", "per_query", "cycles"}, where)
    out = {
        "queries": typed(raw, "queries", int, 20, where),
        "per_query": typed(raw, "per_query", int, 50, where),
        "cycles": typed(raw, "cycles", int, 3, where),  # with/without cycles after the first pass without
    }
    for key, value in out.items():
        in_range(value, 1, 10_000, where, key)
    return out


def _parse_design(
    item: Any, where: str, column_types: list[str], access: list[str], indexes: list[IndexSpec]
) -> DesignSpec:
    if not isinstance(item, dict):
        raise DimbenchError(f"{where}: must be a table")
    no_unknown(item, {"name", "index", "column_types", "access", "query", "iterative_scan", "params"}, where)
    name = item.get("name")
    if not isinstance(name, str) or name not in DESIGNS or name == "shared":
        known = ", ".join(d for d in DESIGNS if d != "shared")
        raise DimbenchError(f"{where}: name must be one of {known} (every build is `shared`), got {name!r}")
    kind = item.get("index", "hnsw")
    if not isinstance(kind, str):
        raise DimbenchError(f"{where}: index must be one of {', '.join(INDEX_KINDS)}, got {kind!r}")
    specs = [s for s in indexes if s.kind == kind]
    if not specs:
        raise DimbenchError(f"{where}: index {kind!r} has no [[index]] entry in this grid to ride on")
    module = designs.get(name)
    if kind not in module.INDEX_KINDS:
        raise DimbenchError(f"{where}: {name} works with index {', '.join(module.INDEX_KINDS)}, got {kind!r}")
    cts = _subset(item, "column_types", column_types, where)
    arms = _subset(item, "access", access, where)
    unbuilt = [ct for ct in cts if not any(s.builds_on(ct) for s in specs)]
    if unbuilt:
        raise DimbenchError(f"{where}: no [[index]] entry builds {kind} on {', '.join(unbuilt)} to ride on")
    query = _parse_params(item.get("query", {}), (), f"{where} query", optional=QUERY_KEYS[kind])
    modes = (
        unique_list(item, "iterative_scan", str, None, where, allowed=ITERATIVE[kind])
        if "iterative_scan" in item
        else []
    )
    params = item.get("params", {})
    if not isinstance(params, dict):
        raise DimbenchError(f"{where}: params must be a table")
    no_unknown(params, set(module.PARAMS), f"{where} params")
    for key, value in params.items():
        _check_design_param(key, value, module.PARAMS[key], f"{where} params")
    return DesignSpec(
        name,
        kind,
        tuple(cts),
        tuple(arms),
        query,
        tuple(modes),
        {**module.PARAMS, **params},
    )


def _subset(item: dict[str, Any], key: str, universe: list[str], where: str) -> list[str]:
    """item[key]: distinct values of the grid's own list (the whole list when absent)."""
    if key not in item:
        return list(universe)
    values = unique_list(item, key, str, None, where)
    if any(v not in universe for v in values):
        raise DimbenchError(f"{where}: {key} must be a non-empty subset of the grid's {key} {universe}")
    return values


def _check_design_param(key: str, value: Any, default: Any, where: str) -> None:
    """A design's parameter has its default's type: a count is a positive integer; a word default (routed's
    "measured") also admits a non-negative row count instead."""
    if isinstance(default, str):
        if value == default or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return
        raise DimbenchError(f"{where}: {key} must be {default!r} or a row count ≥ 0, got {value!r}")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 2**31 - 1:
        raise DimbenchError(f"{where}: {key} must be a positive integer, got {value!r}")


# The confirmation's numbers: (low, high, low end open, high end open). Counts are at least 1; a recall
# target may be exactly 1.0 (every query perfect) but not 0; the other fractions lie strictly inside.
CONFIRM_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "max_queries": (1, 100_000, False, False),
    "batch": (1, 100_000, False, False),
    "max_candidates": (1, 1000, False, False),
    "reach": (0, 100, True, False),
    "half_width": (0, 0.5, True, True),
    "recall_target": (0, 1, True, False),
}


def _parse_confirm(raw: Any, where: str) -> Confirm:
    if not isinstance(raw, dict):
        raise DimbenchError(f"{where}: must be a table")
    defaults = Confirm()
    no_unknown(raw, set(defaults.__dataclass_fields__), where)
    values: dict[str, Any] = {}
    for key in defaults.__dataclass_fields__:
        kind = type(getattr(defaults, key))
        value = typed(raw, key, kind, getattr(defaults, key), where)
        if kind is bool:
            values[key] = value
            continue
        low, high, low_open, high_open = CONFIRM_RANGES[key]
        in_range(value, low, high, where, key, low_open=low_open, high_open=high_open)
        values[key] = kind(value)
    if values["batch"] > values["max_queries"]:
        raise DimbenchError(
            f"{where}: batch ({values['batch']}) exceeds max_queries ({values['max_queries']})"
        )
    return Confirm(**values)


def _no_build_twice(indexes: list[IndexSpec], column_types: list[str], where: str) -> None:
    """Two [[index]] entries may split a kind between column types (a sweep each), never build the same
    index twice: one build serves one sweep."""
    seen: set[str] = set()
    for spec in indexes:
        for column_type in spec.column_types or column_types:
            for params in product(spec.build):
                key = Build(column_type, spec.kind, params).key
                if key in seen:
                    raise DimbenchError(f"{where}: {key} is built by two [[index]] entries")
                seen.add(key)


def _parse_index(item: Any, where: str, grid_column_types: list[str]) -> IndexSpec:
    if not isinstance(item, dict):
        raise DimbenchError(f"{where}: must be a table")
    no_unknown(item, {"kind", "build", "query", "iterative_scan", "column_types"}, where)
    cts = _subset(item, "column_types", grid_column_types, where)
    kind = item.get("kind")
    if not isinstance(kind, str) or kind not in INDEX_KINDS:
        raise DimbenchError(f"{where}: kind must be one of {', '.join(INDEX_KINDS)}, got {kind!r}")
    build = _parse_params(item.get("build", {}), BUILD_KEYS[kind], f"{where} build")
    if kind == "hnsw" and any(e < 2 * m for m in build["m"] for e in build["ef_construction"]):
        raise DimbenchError(f"{where} build: ef_construction must be at least twice m (pgvector's rule)")
    optional = tuple(k for k in QUERY_KEYS[kind] if k in OPTIONAL_QUERY_KEYS)
    required = tuple(k for k in QUERY_KEYS[kind] if k not in OPTIONAL_QUERY_KEYS)
    query = _parse_params(item.get("query", {}), required, f"{where} query", optional=optional)
    modes = unique_list(item, "iterative_scan", str, ["off"], where, allowed=ITERATIVE[kind])
    return IndexSpec(kind, build, query, list(modes), tuple(cts) if "column_types" in item else ())


def _parse_params(
    raw: Any, keys: tuple[str, ...], where: str, optional: tuple[str, ...] = ()
) -> dict[str, list[Any]]:
    if not isinstance(raw, dict):
        raise DimbenchError(f"{where}: must be a table")
    no_unknown(raw, (*keys, *optional), where)
    missing = [key for key in keys if key not in raw]
    if missing:
        raise DimbenchError(f"{where}: missing {', '.join(missing)}")
    params: dict[str, list[Any]] = {}
    for key in (*keys, *(k for k in optional if k in raw)):
        values = raw[key] if isinstance(raw[key], list) else [raw[key]]
        low, high = PARAM_RANGES[key]
        if not values or any(not isinstance(v, int) or isinstance(v, bool) for v in values):
            raise DimbenchError(f"{where}: {key} must be integers in [{low}, {high}], got {short(raw[key])}")
        for value in values:
            in_range(value, low, high, where, key)
        if len(set(values)) != len(values):
            raise DimbenchError(f"{where}: {key} lists a value twice: {values!r}")
        params[key] = values
    return params


def _spec_name(name: Any, where: str) -> str:
    """A grid names a spec in datasets/ by its stem: no paths, so a grid cannot point elsewhere."""
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        raise DimbenchError(
            f"{where}: corpus must be the name of a spec in datasets/ (letters, digits, _ and -), "
            f"got {name!r}"
        )
    return name


def live_section(grid: Grid) -> Any:
    """The grid's [live] section (`dimbench live`), checked against its corpus's size: a LiveSpec."""
    from dimbench.corpus.spec import load_spec
    from dimbench.paths import datasets_dir
    from dimbench.study.live_spec import parse_live

    size = load_spec(datasets_dir() / f"{grid.corpus}.toml").chunks
    return parse_live(grid.raw.get("live"), str(grid.source or "grid"), size)
