"""The `[live]` section of a grid: the platform's rates and how `dimbench live` measures a design under
them. Parsed and checked before anything runs (an impossible rate or mix is one line).

Rates are the platform's, stated per 100,000 chunks of corpus, so one section serves every corpus size:
`ingest_rate = 200` offers 200 chunks/s to a 100k corpus and 2,000 chunks/s to a 1M one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dimbench.errors import DimbenchError
from dimbench.study.live_migration_spec import parse_migration
from dimbench.tomlcheck import in_range, no_unknown, typed, unique_list

PER_CHUNKS = 100_000  # the rates' unit of corpus
TRANSACTIONS = ("document", "request")


@dataclass(frozen=True)
class DocSizes:
    """Document sizes in chunks: a mix of (share, fewest, most), each drawn uniformly in its range."""

    mix: tuple[tuple[float, int, int], ...] = ((0.9, 10, 100), (0.1, 1000, 3000))

    def mean(self) -> float:
        return sum(share * (low + high) / 2 for share, low, high in self.mix)

    def describe(self) -> list[dict[str, Any]]:
        return [{"share": s, "chunks": [lo, hi]} for s, lo, hi in self.mix]


@dataclass(frozen=True)
class Runbook:
    """The streaming runbook (big-ann-benchmarks 2023 style): steps of inserts, document replacements
    (delete a document's chunks, insert new ones) and a search step with its own ground truth."""

    steps: int = 10
    insert_docs: int = 5  # new documents per step
    replace_docs: int = 5  # documents replaced per step
    queries: int = 20  # questions asked at every search step


@dataclass(frozen=True)
class LiveSpec:
    column_type: str = "vector768"
    index: str = "hnsw"  # the grid's first [[index]] build of this kind on column_type
    access: str = "rls"
    designs: tuple[str, ...] = ()  # empty: shared and every grid design riding on that build
    seconds: float = 20.0  # each timed phase
    search_rate: float = 50.0  # searches/s offered (open loop) while idle and while ingest runs
    search_clients: int = 4
    latency_limit_ms: float = 1000.0
    ingest_rate: float = 200.0  # chunks/s per 100k chunks of corpus: the platform's ingest
    churn: float = 0.1  # share of the ingested documents that replace an existing one
    writers: tuple[int, ...] = (1, 2, 4)
    request_chunks: int = 100  # chunks per insert statement
    # "document": a document's statements are one transaction (an ingest worker: nothing visible until
    # all of it is; the transaction stays open while its embeddings arrive); "request": each statement is
    # its own PostgREST request
    transaction: str = "document"
    doc_sizes: DocSizes = field(default_factory=DocSizes)
    freshness_probes: int = 20
    replace_share: float = 0.3  # share of one tenant's chunks replaced before the VACUUM phases
    runbook: Runbook = field(default_factory=Runbook)
    p95_bound: float = 1.5  # search p95 under ingest may be at most this × idle (judged on its interval)
    # the searches under ingest again at these multiples of ingest_rate (1 is always measured): the rate
    # up to which the decision holds, and p95 / recall against the rate
    rate_multiples: tuple[float, ...] = (1.0,)
    corpora: tuple[str, ...] = ()  # a scale grid's corpora the live stage runs on (empty: every one)
    # the replacement phase's REINDEX CONCURRENTLY + VACUUM (a whole index rebuilt per design: minutes at 1M)
    reindex: bool = True
    migration: dict[str, Any] | None = None  # [live.migration], JSON-safe (live_migration_spec.py)

    def ingest_chunks_per_s(self, corpus_chunks: int) -> float:
        return self.ingest_rate * corpus_chunks / PER_CHUNKS

    @property
    def whole_document(self) -> bool:
        return self.transaction == "document"

    def describe(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("doc_sizes", "runbook")}
        out["designs"], out["writers"] = list(self.designs), list(self.writers)
        out["rate_multiples"], out["corpora"] = list(self.rate_multiples), list(self.corpora)
        out["doc_sizes"] = self.doc_sizes.describe()
        out["runbook"] = dict(self.runbook.__dict__)
        return out


NUMBERS: dict[str, tuple[type, float, float, bool]] = {  # key: (type, low, high, low end open)
    "seconds": (float, 0.5, 3600, False),
    "search_rate": (float, 0, 100_000, True),
    "search_clients": (int, 1, 64, False),
    "latency_limit_ms": (float, 0, 600_000, True),
    "ingest_rate": (float, 0, 1_000_000, True),
    "churn": (float, 0, 0.99, False),
    "request_chunks": (int, 1, 10_000, False),
    "freshness_probes": (int, 1, 10_000, False),
    "replace_share": (float, 0, 1, True),
    "p95_bound": (float, 1, 100, True),
}


def parse_live(raw: Any, where: str, corpus_chunks: int | None = None) -> LiveSpec:
    """A grid's [live] table (None: every default). `corpus_chunks`: the grid's corpus size, to check
    the rates against it (an ingest rate that sends less than one request in a phase measures nothing)."""
    where = f"{where} [live]"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise DimbenchError(f"{where}: must be a table")
    defaults = LiveSpec()
    no_unknown(raw, set(defaults.__dataclass_fields__), where)
    values: dict[str, Any] = {}
    for key, (kind, low, high, low_open) in NUMBERS.items():
        value = typed(raw, key, kind, getattr(defaults, key), where)
        in_range(value, low, high, where, key, low_open=low_open)
        values[key] = value
    for key in ("column_type", "index", "access", "transaction"):
        values[key] = typed(raw, key, str, getattr(defaults, key), where)
    if values["transaction"] not in TRANSACTIONS:
        raise DimbenchError(
            f"{where}: transaction must be one of {', '.join(TRANSACTIONS)}, got {values['transaction']!r}"
        )
    values["designs"] = tuple(unique_list(raw, "designs", str, [], where)) if "designs" in raw else ()
    values["corpora"] = tuple(unique_list(raw, "corpora", str, [], where)) if "corpora" in raw else ()
    values["rate_multiples"] = _multiples(raw, where)
    values["reindex"] = typed(raw, "reindex", bool, defaults.reindex, where)
    writers = unique_list(raw, "writers", int, list(defaults.writers), where)
    for n in writers:
        in_range(n, 1, 64, where, "writers")
    values["writers"] = tuple(sorted(writers))
    values["doc_sizes"] = _doc_sizes(raw.get("doc_sizes"), where) if "doc_sizes" in raw else DocSizes()
    values["runbook"] = _runbook(raw.get("runbook"), where) if "runbook" in raw else Runbook()
    values["migration"] = parse_migration(raw.get("migration"), where)
    spec = LiveSpec(**values)
    _check_possible(spec, where, corpus_chunks)
    return spec


def _multiples(raw: dict[str, Any], where: str) -> tuple[float, ...]:
    """rate_multiples as sorted distinct positive numbers, 1 among them (the platform's own rate)."""
    values = typed(raw, "rate_multiples", list, [1.0], where)
    if not values or any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        raise DimbenchError(f"{where}: rate_multiples must list positive numbers, got {values!r}")
    for value in values:
        in_range(float(value), 0, 1000, where, "rate_multiples", low_open=True)
    return tuple(sorted({1.0, *map(float, values)}))


def _doc_sizes(raw: Any, where: str) -> DocSizes:
    what = f"{where}: doc_sizes must be a list of [share, fewest, most] (shares summing to 1)"
    if not isinstance(raw, list) or not raw:
        raise DimbenchError(f"{what}, got {raw!r}")
    mix = []
    for item in raw:
        if (
            not isinstance(item, list)
            or len(item) != 3
            or any(isinstance(x, bool) for x in item)
            or not isinstance(item[0], int | float)
            or not all(isinstance(x, int) for x in item[1:])
        ):
            raise DimbenchError(f"{what}, got {item!r}")
        share, low, high = float(item[0]), item[1], item[2]
        if not (math.isfinite(share) and 0 < share <= 1) or not 1 <= low <= high <= 1_000_000:
            raise DimbenchError(f"{what}: each share in (0, 1] and 1 ≤ fewest ≤ most, got {item!r}")
        mix.append((share, low, high))
    total = sum(s for s, _, _ in mix)
    if abs(total - 1) > 1e-9:
        raise DimbenchError(f"{what}: the shares add up to {total:g}")
    return DocSizes(tuple(mix))


def _runbook(raw: Any, where: str) -> Runbook:
    where = f"{where} runbook"
    if not isinstance(raw, dict):
        raise DimbenchError(f"{where}: must be a table")
    defaults = Runbook()
    no_unknown(raw, set(defaults.__dataclass_fields__), where)
    values = {}
    for key in defaults.__dataclass_fields__:
        value = typed(raw, key, int, getattr(defaults, key), where)
        in_range(value, 0 if key.endswith("_docs") else 1, 100_000, where, key)
        values[key] = value
    if values["insert_docs"] + values["replace_docs"] == 0:
        raise DimbenchError(f"{where}: insert_docs and replace_docs are both 0: the runbook changes nothing")
    return Runbook(**values)


def _check_possible(spec: LiveSpec, where: str, corpus_chunks: int | None) -> None:
    """Rates and mixes that cannot be offered as stated, refused before anything runs."""
    if spec.search_rate * spec.seconds < 1:
        raise DimbenchError(
            f"{where}: search_rate {spec.search_rate:g}/s for {spec.seconds:g} s offers no search at all"
        )
    if spec.search_clients > spec.search_rate * spec.seconds:
        raise DimbenchError(
            f"{where}: {spec.search_clients} search clients for {spec.search_rate * spec.seconds:g} "
            "searches in a phase: most clients would never send one"
        )
    if spec.p95_bound <= 1:
        raise DimbenchError(f"{where}: p95_bound must exceed 1")
    if corpus_chunks is None:
        return
    offered = spec.ingest_chunks_per_s(corpus_chunks)
    if offered * spec.seconds < spec.request_chunks:
        raise DimbenchError(
            f"{where}: ingest_rate {spec.ingest_rate:g} per 100k chunks is {offered:g} chunks/s on this "
            f"{corpus_chunks:,}-chunk corpus: under one {spec.request_chunks}-chunk request in a "
            f"{spec.seconds:g} s phase"
        )
    largest = max(high for _, _, high in spec.doc_sizes.mix)
    if largest > corpus_chunks:
        raise DimbenchError(
            f"{where}: doc_sizes reaches {largest:,} chunks, more than the whole "
            f"{corpus_chunks:,}-chunk corpus"
        )
